// Start-up time of the CLI (issue 14): wall time of `dockmesh --help` and `dockmesh plan -f
// examples/`, each a fresh process, next to `node -e 0` (Node's own start-up) measured in the
// same rounds, so that the ratio holds on a busy machine where the milliseconds do not.
// The cases run alternating, round after round, so a burst of load hits all of them alike.
// On Linux also the CPU time (user + system) of each child, from this process's cutime and cstime
// in /proc/self/stat (10 ms ticks): less shaken by other work on the machine than the wall time.
//
//   node dist/bench/cli-startup.js [--runs N] [--bin [LABEL=]PATH]...
//
// --bin: the launcher to time (default: this checkout's bin/dockmesh.js); give it more than once
// to compare builds in one run, e.g. --bin before=/tmp/old/bin/dockmesh.js --bin after=bin/dockmesh.js.
// The manifests are this checkout's examples/ for every --bin.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { resolve } from "node:path";

const MAX_RUNS = 100;
const root = fileURLToPath(new URL("../../", import.meta.url));

const CLOCK_TICKS_PER_S = 100; // getconf CLK_TCK on Linux

interface Case {
  name: string;
  argv: string[];
  ms: number[];
  cpuMs: number[];
}

/** CPU time of this process's reaped children so far, ms (Linux); undefined elsewhere. */
function childrenCpuMs(): number | undefined {
  if (!existsSync("/proc/self/stat")) return undefined;
  const stat = readFileSync("/proc/self/stat", "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields after the command name: cutime is the 16th of stat, cstime the 17th.
  return ((Number(rest[13]) + Number(rest[14])) * 1000) / CLOCK_TICKS_PER_S;
}

function parseArgs(args: string[]): { runs: number; bins: Array<[string, string]> } {
  let runs = 15;
  const bins: Array<[string, string]> = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = args[i + 1];
    if (a === "--runs" && v !== undefined) {
      runs = Number(v);
      if (!Number.isInteger(runs) || runs < 1 || runs > MAX_RUNS) throw new Error(`--runs: ${JSON.stringify(v)} must be a whole number from 1 to ${MAX_RUNS}`);
      i++;
    } else if (a === "--bin" && v !== undefined) {
      const eq = v.indexOf("=");
      bins.push(eq > 0 ? [v.slice(0, eq), resolve(v.slice(eq + 1))] : [v, resolve(v)]);
      i++;
    } else {
      throw new Error(`unknown argument ${JSON.stringify(a)}; usage: cli-startup [--runs N] [--bin [LABEL=]PATH]...`);
    }
  }
  if (bins.length === 0) bins.push(["dockmesh", resolve(root, "bin/dockmesh.js")]);
  return { runs, bins };
}

function time(c: Case): { ms: number; cpuMs: number | undefined } {
  const cpu0 = childrenCpuMs();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, c.argv, { encoding: "utf8", cwd: root });
  const ms = performance.now() - t0;
  const cpu1 = childrenCpuMs();
  if (r.status !== 0 || r.error) throw new Error(`${c.name} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.slice(0, 500)}`);
  return { ms, cpuMs: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0 };
}

function readLoad(): string {
  return existsSync("/proc/loadavg") ? readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ") : "n/a";
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((s.length * p) / 100) - 1))]!;
}

const { runs, bins } = parseArgs(process.argv.slice(2));
const baseline: Case = { name: "node -e 0", argv: ["-e", "0"], ms: [], cpuMs: [] };
const cases: Case[] = [baseline];
for (const [label, bin] of bins) {
  cases.push({ name: `${label} --help`, argv: [bin, "--help"], ms: [], cpuMs: [] });
  cases.push({ name: `${label} plan -f examples/`, argv: [bin, "plan", "-f", resolve(root, "examples")], ms: [], cpuMs: [] });
}
for (const c of cases) time(c); // warm-up round: the file system cache, not measured
for (let i = 0; i < runs; i++) {
  for (const c of cases) {
    const t = time(c);
    c.ms.push(t.ms);
    if (t.cpuMs !== undefined) c.cpuMs.push(t.cpuMs);
  }
}

const base = percentile(baseline.ms, 50);
const cpuBase = baseline.cpuMs.length ? percentile(baseline.cpuMs, 50) : NaN;
const cpu = (c: Case) => (c.cpuMs.length ? [percentile(c.cpuMs, 50).toFixed(0).padStart(12), (percentile(c.cpuMs, 50) / cpuBase).toFixed(2).padStart(8)].join(" ") : "");
console.log(`CLI start-up, ${runs} runs each, alternating; Node ${process.version}, ${new Date().toISOString()}, load average ${readLoad()}`);
console.log(
  `${"case".padEnd(32)} ${"median ms".padStart(10)} ${"p90 ms".padStart(8)} ${"× node -e 0".padStart(12)} ${baseline.cpuMs.length ? `${"median CPU ms".padStart(12)} ${"× node".padStart(8)}` : ""}`,
);
for (const c of cases) {
  const med = percentile(c.ms, 50);
  console.log(`${c.name.padEnd(32)} ${med.toFixed(0).padStart(10)} ${percentile(c.ms, 90).toFixed(0).padStart(8)} ${(med / base).toFixed(2).padStart(12)} ${cpu(c)}`);
}
