// Time-to-mesh on lab hosts (issue 7, item 1): N public hosts (2, 4, 8), from "go" to every
// host configured and cross-host TCP proven (bench/lab-proof.ts: each host's httpd, started before
// go, moves onto the mesh network, then a ring of fetches; the same for every variant), for three
// ways of getting there:
//   dockmesh  `kubectl apply` of the Secret, MeshNetwork and Machines → all Machines Ready (as a
//             `kubectl get machines --watch` started before the apply sees it)
//   manual    the manual procedure (lab/manual.ts) as a person runs it: host after host, one SSH command per step
//   floor     the same end state as dockmesh by a minimal script: keys and plan made locally, one
//             SSH command per host, all hosts at once
// Each variant runs on a fresh lab. Prints seconds, the ratios dockmesh/manual and dockmesh/floor,
// and the CPU seconds the machine spent in each phase.
//   sudo node dist/bench/time-to-mesh.js
// Environment: BENCH_SIZES=2,4,8  BENCH_RUNS=1 (more: medians too)  BENCH_VARIANTS=floor,manual,dockmesh
//   BENCH_LOG=<file> (the controller's log and Events of the last dockmesh run)  BENCH_VERBOSE=1 (lab progress)
//   BENCH_PERF=<dir> (a perf profile of each configure phase, see Clock)
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { runManualProcedure } from "../lab/manual.js";
import { benchLab, benchMeshEnv, hostNames, meshYaml, requireRoot, secs, sizesFromEnv, subnetOf, table, MESH } from "./lab-setup.js";
import { checkFullMatrix, prepareProof, proveTcp } from "./lab-proof.js";
import { floorLeftovers, hostFactsOf, runFloor } from "./lab-floor.js";
import { applyWindows, parseLog } from "./lab-log.js";
import { ReadyWatch } from "./lab-watch.js";
import { cpuMs, machineCpuMs } from "./lab-metrics.js";

interface Result {
  /** From go to configured (dockmesh: all Ready). */
  configureMs: number;
  /** The httpd containers' move onto the network and the ring of fetches. */
  proofMs: number;
  totalMs: number;
  /** CPU seconds the whole machine spent while configuring (every host, the controller, Docker). */
  configureCpuMs: number;
  proofCpuMs: number;
  notes: string[];
}

/**
 * Marks of wall time and machine CPU at go, configured and proven. With BENCH_PERF=<dir>, the
 * configure phase also runs under `perf record -a` (<dir>/<variant>-<n>.data; read it with
 * `perf report -i FILE --sort comm`): which programs the CPU went to, short-lived ones too.
 */
class Clock {
  private readonly perf: ChildProcess | undefined;
  readonly t0: number;
  private readonly c0: number;
  private c1 = 0;
  configureMs = 0;
  constructor(variant: string, n: number) {
    const dir = process.env.BENCH_PERF;
    this.perf = dir ? spawn("perf", ["record", "-a", "-q", "-F", "499", "-o", `${dir}/${variant}-${n}.data`], { stdio: "ignore" }) : undefined;
    this.perf?.on("error", (err) => console.error(`BENCH_PERF: perf could not run (${err.message}); install linux-perf, or unset BENCH_PERF`));
    this.t0 = Date.now();
    this.c0 = machineCpuMs();
  }
  /** `at`: when configuring ended (dockmesh: when the watch saw the last Ready), default now. */
  configured(at = Date.now()): void {
    this.configureMs = at - this.t0;
    this.c1 = machineCpuMs();
    this.perf?.kill("SIGINT");
  }
  /** Call when proven: the Result's figures. */
  proven(notes: string[]): Result {
    const totalMs = Date.now() - this.t0;
    return { configureMs: this.configureMs, proofMs: totalMs - this.configureMs, totalMs, configureCpuMs: this.c1 - this.c0, proofCpuMs: machineCpuMs() - this.c1, notes };
  }
}

async function dockmeshRun(n: number): Promise<Result> {
  const env = await benchMeshEnv(n);
  const hosts = hostNames(n);
  const watch = new ReadyWatch(env.kubeconfig);
  try {
    await prepareProof(env.lab, hosts);
    await new Promise((r) => setTimeout(r, 300)); // the watch is listening before the apply
    const logFrom = env.log.length;
    const pid = env.pid;
    const ctl0 = pid ? cpuMs(pid) : 0;
    const clock = new Clock("dockmesh", n);
    const t0 = clock.t0;
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + meshYaml() + env.machineYaml(hosts));
    const applied = Date.now() - t0;
    // All Ready: the moment the watch saw the last Machine turn Ready (kubectl wait, run after as a
    // check, adds its own latency: one request per Machine).
    clock.configured(await watch.allReady(hosts, 300_000));
    const controllerCpuMs = pid ? cpuMs(pid) - ctl0 : NaN;
    const proof = await proveTcp(env.lab, hosts, MESH.dockerNetwork);
    const result = clock.proven([]);
    const w0 = Date.now();
    await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=60s", ...hosts.map((h) => `machine/${h}`)], undefined, 90_000);
    const waitMs = Date.now() - w0;
    await checkFullMatrix(env.lab, hosts, MESH.dockerNetwork, proof.ips);
    if (process.env.BENCH_LOG) {
      const events = await env.kubectl(["get", "events", "-o", "custom-columns=FIRST:.firstTimestamp,LAST:.lastTimestamp,COUNT:.count,OBJ:.involvedObject.name,REASON:.reason,MSG:.message"]);
      writeFileSync(process.env.BENCH_LOG, `t0 ${new Date(t0).toISOString()}\n${env.log.slice(logFrom)}\n${events.stdout}`);
    }

    // Profile: when each host's apply steps ran and when it turned Ready (ms after the apply started).
    const windows = applyWindows(parseLog(env.log.slice(logFrom)), t0);
    const profile = hosts.map((h) => {
      const w = windows.get(`default/${h}`);
      const ready = watch.readyAt.get(h);
      return `${h} [#]×${w?.steps ?? 0} ${w ? `${secs(w.first)}–${secs(w.last)}` : "-"} Ready ${ready ? secs(ready - t0) : "?"}`;
    });
    result.notes.push(`kubectl apply ${secs(applied)} s`, `dockmesh up CPU ${secs(controllerCpuMs)} s`, ...profile, `fetch attempts ${proof.attempts}`, `kubectl wait on Ready machines ${secs(waitMs)} s`);
    return result;
  } finally {
    watch.stop();
    await env.close();
  }
}

async function manualRun(n: number): Promise<Result> {
  const lab = await benchLab(n);
  const hosts = hostNames(n);
  try {
    await prepareProof(lab, hosts);
    const clock = new Clock("manual", n);
    const report = await runManualProcedure(lab, hosts.map((h, i) => ({ host: lab.host(h), subnet: subnetOf(i) })), { network: MESH.dockerNetwork, iface: MESH.iface });
    clock.configured();
    const proof = await proveTcp(lab, hosts, MESH.dockerNetwork);
    const result = clock.proven([`${report.steps.length} SSH commands`, `fetch attempts ${proof.attempts}`]);
    await checkFullMatrix(lab, hosts, MESH.dockerNetwork, proof.ips);
    return result;
  } finally {
    await lab.destroy();
  }
}

async function floorRun(n: number): Promise<Result> {
  const lab = await benchLab(n);
  const hosts = hostNames(n);
  try {
    const facts = await hostFactsOf(lab, hosts); // known in advance, not timed
    await prepareProof(lab, hosts);
    const clock = new Clock("floor", n);
    const run = await runFloor(lab, hosts, facts);
    clock.configured();
    const proof = await proveTcp(lab, hosts, MESH.dockerNetwork);
    const result = clock.proven([`${n} SSH commands`, `fetch attempts ${proof.attempts}`]);
    await checkFullMatrix(lab, hosts, MESH.dockerNetwork, proof.ips);
    const left = [...(await floorLeftovers(lab, hosts, run))].filter(([, steps]) => steps.length);
    const same = left.length === 0 ? "dockmesh finds nothing to change (same end state)" : `NOT the same end state: ${left.map(([h, s]) => `${h}: ${s.join("; ")}`).join(" | ")}`;
    result.notes.push(same);
    return result;
  } finally {
    await lab.destroy();
  }
}

const VARIANTS = { floor: floorRun, manual: manualRun, dockmesh: dockmeshRun } as const;
type Variant = keyof typeof VARIANTS;

function variantsFromEnv(): Variant[] {
  const text = process.env.BENCH_VARIANTS;
  if (!text) return ["floor", "manual", "dockmesh"];
  const list = text.split(",").map((s) => s.trim());
  const bad = list.filter((v) => !(v in VARIANTS));
  if (bad.length) throw new Error(`BENCH_VARIANTS: unknown ${bad.join(", ")}; use floor, manual, dockmesh`);
  return list as Variant[];
}

function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const fmt = (ms: number | undefined) => (ms === undefined ? "-" : secs(ms));

const ratio = (a: Result | undefined, b: Result | undefined) => (a && b ? a.totalMs / b.totalMs : undefined);

async function main(): Promise<void> {
  requireRoot("bench/time-to-mesh");
  const sizes = sizesFromEnv([2, 4, 8]);
  const variants = variantsFromEnv();
  const runs = Math.max(1, Math.min(10, Number(process.env.BENCH_RUNS ?? 1) || 1));
  const rows: string[][] = [];
  const all = new Map<string, number[]>(); // "N variant" → totals, for medians
  const detail: string[][] = [];
  for (const n of sizes) {
    for (let r = 1; r <= runs; r++) {
      const got = new Map<Variant, Result>();
      for (const v of variants) {
        console.error(`time-to-mesh: N=${n} run ${r}/${runs}: ${v}…`);
        const res = await VARIANTS[v](n);
        console.error(`  ${v} ${secs(res.totalMs)} s`);
        got.set(v, res);
        all.set(`${n} ${v}`, [...(all.get(`${n} ${v}`) ?? []), res.totalMs]);
        detail.push([String(n), v, secs(res.configureMs), secs(res.proofMs), secs(res.totalMs), secs(res.configureCpuMs), secs(res.proofCpuMs), res.notes.join("; ")]);
      }
      const dm = got.get("dockmesh");
      const vsManual = ratio(dm, got.get("manual"));
      const vsFloor = ratio(dm, got.get("floor"));
      const cell = (x: Result | undefined) => (x ? secs(x.totalMs) : "-");
      rows.push([runs > 1 ? `${n} (run ${r})` : String(n), cell(dm), cell(got.get("manual")), cell(got.get("floor")), vsManual === undefined ? "-" : `${vsManual.toFixed(2)} (${(1 / vsManual).toFixed(1)}× faster)`, vsFloor === undefined ? "-" : vsFloor.toFixed(2)]);
    }
  }
  console.log("\nTime to mesh (s), from go to every host configured and cross-host TCP proven (ring of fetches):\n");
  console.log(table(["N", "dockmesh", "manual", "floor", "dockmesh/manual", "dockmesh/floor"], rows));
  if (runs > 1) {
    const med = (n: number, v: Variant) => median(all.get(`${n} ${v}`) ?? []);
    const mrows = sizes.map((n) => {
      const [d, m, f] = [med(n, "dockmesh"), med(n, "manual"), med(n, "floor")];
      return [String(n), fmt(d), fmt(m), fmt(f), d && m ? (d / m).toFixed(2) : "-", d && f ? (d / f).toFixed(2) : "-"];
    });
    console.log(`\nMedians of ${runs} runs (s):\n`);
    console.log(table(["N", "dockmesh", "manual", "floor", "dockmesh/manual", "dockmesh/floor"], mrows));
  }
  console.log("\nBreakdown (s): configure = until configured (dockmesh: all Ready); proof = each host's httpd joins the network + ring of fetches;");
  console.log("CPU = CPU seconds the whole machine spent in that phase (all hosts, the controller, Docker; two cores give at most 2 per second)\n");
  console.log(table(["N", "variant", "configure", "proof", "total", "configure CPU", "proof CPU", "notes"], detail));
  console.log("\nTargets at N=8: dockmesh/manual ≤ 0.33 (≥3× faster than manual), dockmesh/floor ≤ 1.5.");
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
