// Time-to-mesh on lab hosts (issue 7, item 1; issue 14): N public hosts (2, 4, 8), from "go" to
// Ready — every host configured and every peer handshaken, the same point for every variant — and
// on to traffic between containers (bench/lab-proof.ts: each host's httpd, started before go, moves
// onto the mesh network, then a ring of fetches; the same for every variant), for three ways of
// getting there:
//   dockmesh  `kubectl apply` of the Secret, MeshNetwork and Machines → all Machines Ready (as a
//             `kubectl get machines --watch` started before the apply sees it; Ready needs every
//             peer's handshake)
//   manual    the manual procedure (lab/manual.ts) as a person runs it: host after host, one SSH
//             command per step; then each host pings its peers and waits for their handshakes
//   floor     the same end state as dockmesh by a minimal script: keys and plan made locally, one
//             SSH command per host, all hosts at once, each returning once its peers handshook
// Each variant runs on a fresh lab. Prints seconds to Ready and to traffic, the ratios to the floor
// (and to manual), the host-side CPU per host until Ready (every process in the host's namespace:
// sshd and what it ran, dockerd, wireguard-go, dnsmasq) and the CPU seconds the whole machine
// spent. With BENCH_HOG, the same runs again with a CPU hog beside them (a bounded busy loop, one
// core of two), and the ratios measured with it.
//   sudo node dist/bench/time-to-mesh.js
// Environment: BENCH_SIZES=2,4,8  BENCH_RUNS=1 (more: medians too)  BENCH_VARIANTS=floor,manual,dockmesh
//   BENCH_HOG=0|1|only (1: every run without and with the hog)
//   BENCH_VARIANTS=dockmesh,dockmesh6: IPv4-only against dual-stack (issue 17), both on hosts with dockerd --ip6tables
//   BENCH_LOG=<file> (the controller's log and Events of every dockmesh run, appended)  BENCH_VERBOSE=1 (lab progress)
//   BENCH_PERF=<dir> (a perf profile of each configure phase, see Clock)
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync } from "node:fs";
import { runManualProcedure } from "../lab/manual.js";
import { benchHosts, benchLab, benchMeshEnv, hostNames, meshYaml, requireRoot, secs, sizesFromEnv, subnetOf, table, MESH } from "./lab-setup.js";
import { checkFullMatrix, prepareProof, proveTcp } from "./lab-proof.js";
import { floorLeftovers, hostFactsOf, runFloor, waitForHandshakes } from "./lab-floor.js";
import { HostCpu } from "./lab-host-cpu.js";
import type { Lab } from "../lab/lab.js";
import { applyWindows, parseLog, reconcileTrips } from "./lab-log.js";
import { ReadyWatch } from "./lab-watch.js";
import { cpuMs, machineCpuMs } from "./lab-metrics.js";

interface Result {
  /** From go to Ready: every host configured, every peer handshaken. */
  configureMs: number;
  /** The httpd containers' move onto the network and the ring of fetches. */
  proofMs: number;
  /** From go to traffic between containers (Ready + proof). */
  totalMs: number;
  /** CPU seconds the whole machine spent until Ready (every host, the controller, Docker). */
  configureCpuMs: number;
  proofCpuMs: number;
  /** Host-side CPU until Ready, per host (ms): the mean and the busiest. */
  hostCpuMs: { mean: number; max: number };
  notes: string[];
}

/**
 * Marks of wall time, machine CPU and each host's CPU at go, Ready and traffic. With
 * BENCH_PERF=<dir>, the configure phase also runs under `perf record -a`
 * (<dir>/<variant>-<n>.data; read it with `perf report -i FILE --sort comm`): which programs the
 * CPU went to, short-lived ones too.
 */
class Clock {
  private readonly perf: ChildProcess | undefined;
  private readonly hostCpu: HostCpu;
  readonly t0: number;
  private readonly c0: number;
  private c1 = 0;
  private hosts = new Map<string, number>();
  configureMs = 0;
  constructor(variant: string, n: number, lab: Lab, hosts: readonly string[]) {
    const dir = process.env.BENCH_PERF;
    this.perf = dir ? spawn("perf", ["record", "-a", "-q", "-F", "499", "-o", `${dir}/${variant}-${n}.data`], { stdio: "ignore" }) : undefined;
    this.perf?.on("error", (err) => console.error(`BENCH_PERF: perf could not run (${err.message}); install linux-perf, or unset BENCH_PERF`));
    this.hostCpu = new HostCpu(new Map(hosts.map((h) => [h, lab.host(h).netns])));
    this.t0 = Date.now();
    this.c0 = machineCpuMs();
  }
  /** `at`: when Ready was reached (dockmesh: when the watch saw the last Ready), default now. */
  configured(at = Date.now()): void {
    this.configureMs = at - this.t0;
    this.c1 = machineCpuMs();
    this.hosts = this.hostCpu.since();
    this.perf?.kill("SIGINT");
  }
  /** Call when traffic is proven: the Result's figures. */
  proven(notes: string[]): Result {
    const totalMs = Date.now() - this.t0;
    const per = [...this.hosts.values()];
    const hostCpuMs = { mean: per.reduce((a, b) => a + b, 0) / Math.max(1, per.length), max: Math.max(0, ...per) };
    return { configureMs: this.configureMs, proofMs: totalMs - this.configureMs, totalMs, configureCpuMs: this.c1 - this.c0, proofCpuMs: machineCpuMs() - this.c1, hostCpuMs, notes };
  }
}

/** A CPU hog beside a run: a busy loop bounded to `ms`, stopped by its PID. */
function startHog(ms = 15 * 60_000): ChildProcess {
  return spawn(process.execPath, ["-e", `const end = Date.now() + ${ms}; while (Date.now() < end) {}`], { stdio: "ignore" });
}

async function dockmeshRun(n: number, opts: { ipv6?: boolean } = {}): Promise<Result> {
  const env = await benchMeshEnv(n);
  const hosts = hostNames(n);
  const watch = new ReadyWatch(env.kubeconfig);
  try {
    await prepareProof(env.lab, hosts);
    await new Promise((r) => setTimeout(r, 300)); // the watch is listening before the apply
    const logFrom = env.log.length;
    const pid = env.pid;
    const ctl0 = pid ? cpuMs(pid) : 0;
    const clock = new Clock("dockmesh", n, env.lab, hosts);
    const t0 = clock.t0;
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + meshYaml(opts) + env.machineYaml(hosts));
    const applied = Date.now() - t0;
    // All Ready: the moment the watch saw the last Machine turn Ready (kubectl wait, run after as a
    // check, adds its own latency: one request per Machine).
    clock.configured(await watch.allReady(hosts, 300_000));
    const controllerCpuMs = pid ? cpuMs(pid) - ctl0 : NaN;
    // With BENCH_LOG: each host's clock and its peers' endpoints, handshake times and bytes, read
    // at once (before the proof's traffic), to tell a late handshake's side from the controller's
    // log. Peer lines only (the interface line holds the private key).
    const handshakes = process.env.BENCH_LOG
      ? await Promise.all(
          hosts.map(
            async (h) =>
              `${h} ${(await env.lab.exec(h, ["sh", "-c", "date +%s.%N; wg show all dump | awk 'NF == 9 { print $1, substr($2, 1, 8), $4, $6, $7, $8 }'"], { timeoutMs: 10_000 })).stdout.trim().replace(/\n/g, "\n  ")}`,
          ),
        )
      : [];
    const proof = await proveTcp(env.lab, hosts, MESH.dockerNetwork);
    const result = clock.proven([]);
    const w0 = Date.now();
    await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=60s", ...hosts.map((h) => `machine/${h}`)], undefined, 90_000);
    const waitMs = Date.now() - w0;
    await checkFullMatrix(env.lab, hosts, MESH.dockerNetwork, proof.ips);
    if (process.env.BENCH_LOG) {
      const events = await env.kubectl(["get", "events", "-o", "custom-columns=FIRST:.firstTimestamp,LAST:.lastTimestamp,COUNT:.count,OBJ:.involvedObject.name,REASON:.reason,MSG:.message"]);
      appendFileSync(process.env.BENCH_LOG, `=== dockmesh N=${n} t0 ${new Date(t0).toISOString()}\n${env.log.slice(logFrom)}\n${events.stdout}\n${handshakes.join("\n")}\n`);
    }

    // Profile: when each host's apply steps ran, the round trips of its reconciles until Ready, and
    // when it turned Ready (s after the apply started).
    const lines = parseLog(env.log.slice(logFrom));
    const windows = applyWindows(lines, t0);
    // A reconcile logs its round trips once its status is written: shortly after Ready is seen.
    const trips = reconcileTrips(lines, t0 + clock.configureMs + 2000);
    const profile = hosts.map((h) => {
      const w = windows.get(`default/${h}`);
      const ready = watch.readyAt.get(h);
      const rt = (trips.get(`default/${h}`) ?? []).map((t) => t.join("+")).join(" | ");
      return `${h} [#]×${w?.steps ?? 0} ${w ? `${secs(w.first)}–${secs(w.last)}` : "-"} trips ${rt || "-"} Ready ${ready ? secs(ready - t0) : "?"}`;
    });
    result.notes.push(
      `kubectl apply ${secs(applied)} s`,
      `dockmesh up CPU ${secs(controllerCpuMs)} s`,
      ...profile,
      `fetch attempts ${proof.attempts}`,
      `kubectl wait on Ready machines ${secs(waitMs)} s`,
    );
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
    const clock = new Clock("manual", n, lab, hosts);
    const report = await runManualProcedure(
      lab,
      hosts.map((h, i) => ({ host: lab.host(h), subnet: subnetOf(i) })),
      { network: MESH.dockerNetwork, iface: MESH.iface },
    );
    await waitForHandshakes(lab, hosts, new Map(hosts.map((h, i) => [h, subnetOf(i)])), MESH.iface);
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
    const clock = new Clock("floor", n, lab, hosts);
    const run = await runFloor(lab, hosts, facts);
    clock.configured();
    const perHost = hosts.map((h) => `${h} ${secs((run.doneAt.get(h) ?? clock.t0) - clock.t0)}`).join(" ");
    const proof = await proveTcp(lab, hosts, MESH.dockerNetwork);
    const result = clock.proven([`${n} SSH commands (each returns once its peers handshook): ${perHost}`, `fetch attempts ${proof.attempts}`]);
    await checkFullMatrix(lab, hosts, MESH.dockerNetwork, proof.ips);
    const left = [...(await floorLeftovers(lab, hosts, run))].filter(([, steps]) => steps.length);
    const same = left.length === 0 ? "dockmesh finds nothing to change (same end state)" : `NOT the same end state: ${left.map(([h, s]) => `${h}: ${s.join("; ")}`).join(" | ")}`;
    result.notes.push(same);
    return result;
  } finally {
    await lab.destroy();
  }
}

// dockmesh6: the same with a dual-stack mesh (spec.cidrV6, issue 17); Ready then covers IPv6 too.
const VARIANTS = { floor: floorRun, manual: manualRun, dockmesh: (n: number) => dockmeshRun(n), dockmesh6: (n: number) => dockmeshRun(n, { ipv6: true }) } as const;
type Variant = keyof typeof VARIANTS;

function variantsFromEnv(): Variant[] {
  const text = process.env.BENCH_VARIANTS;
  if (!text) return ["floor", "manual", "dockmesh"];
  const list = text.split(",").map((s) => s.trim());
  const bad = list.filter((v) => !(v in VARIANTS));
  if (bad.length) throw new Error(`BENCH_VARIANTS: unknown ${bad.join(", ")}; use floor, manual, dockmesh, dockmesh6`);
  return list as Variant[];
}

/** Without the hog, with it, or both (BENCH_HOG=0|1|only). */
function hogsFromEnv(): boolean[] {
  const v = process.env.BENCH_HOG ?? "0";
  if (v === "0" || v === "") return [false];
  if (v === "1") return [false, true];
  if (v === "only") return [true];
  throw new Error(`BENCH_HOG=${v}: use 0, 1 or only`);
}

function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const fmt = (ms: number | undefined) => (ms === undefined ? "-" : secs(ms));
const ratioText = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? (a / b).toFixed(2) : "-");

async function main(): Promise<void> {
  requireRoot("bench/time-to-mesh");
  const sizes = sizesFromEnv([2, 4, 8]);
  const variants = variantsFromEnv();
  // A dual-stack variant: every variant runs on hosts whose Docker manages ip6tables.
  if (variants.includes("dockmesh6")) benchHosts.dockerIp6tables = true;
  const hogs = hogsFromEnv();
  const runs = Math.max(1, Math.min(10, Number(process.env.BENCH_RUNS ?? 1) || 1));
  const rows: string[][] = [];
  const all = new Map<string, Result[]>(); // "N hog variant" → results, for medians
  const detail: string[][] = [];
  for (const n of sizes) {
    for (let r = 1; r <= runs; r++) {
      for (const hog of hogs) {
        const got = new Map<Variant, Result>();
        for (const v of variants) {
          console.error(`time-to-mesh: N=${n} run ${r}/${runs}${hog ? " with a CPU hog" : ""}: ${v}…`);
          const hogProc = hog ? startHog() : undefined;
          let res: Result;
          try {
            res = await VARIANTS[v](n);
          } finally {
            hogProc?.kill("SIGKILL");
          }
          console.error(`  ${v}: Ready ${secs(res.configureMs)} s, traffic ${secs(res.totalMs)} s`);
          got.set(v, res);
          const k = `${n} ${hog} ${v}`;
          all.set(k, [...(all.get(k) ?? []), res]);
          detail.push([
            String(n),
            hog ? "yes" : "no",
            v,
            secs(res.configureMs),
            secs(res.proofMs),
            secs(res.totalMs),
            String(Math.round(res.hostCpuMs.mean)),
            String(Math.round(res.hostCpuMs.max)),
            secs(res.configureCpuMs),
            secs(res.proofCpuMs),
            res.notes.join("; "),
          ]);
        }
        const [dm, man, fl] = [got.get("dockmesh"), got.get("manual"), got.get("floor")];
        rows.push([
          runs > 1 ? `${n} (run ${r})` : String(n),
          hog ? "yes" : "no",
          fmt(dm?.configureMs),
          fmt(fl?.configureMs),
          fmt(man?.configureMs),
          ratioText(dm?.configureMs, fl?.configureMs),
          fmt(dm?.totalMs),
          fmt(fl?.totalMs),
          ratioText(dm?.totalMs, fl?.totalMs),
          ratioText(dm?.totalMs, man?.totalMs),
          dm && fl ? `${Math.round(dm.hostCpuMs.mean)} / ${Math.round(fl.hostCpuMs.mean)}` : "-",
        ]);
      }
    }
  }
  const header = [
    "N",
    "hog",
    "dockmesh Ready",
    "floor Ready",
    "manual Ready",
    "Ready dockmesh/floor",
    "dockmesh traffic",
    "floor traffic",
    "traffic dockmesh/floor",
    "traffic dockmesh/manual",
    "host CPU ms/host dockmesh / floor",
  ];
  console.log("\nTime to Ready (s: every host configured, every peer handshaken) and to traffic (s: + containers moved onto the mesh, a ring of fetches):\n");
  console.log(table(header, rows));
  if (runs > 1) {
    const med = (n: number, hog: boolean, v: Variant, f: (x: Result) => number) => median((all.get(`${n} ${hog} ${v}`) ?? []).map(f));
    const mrows = sizes.flatMap((n) =>
      hogs.map((hog) => {
        const ready = (v: Variant) => med(n, hog, v, (x) => x.configureMs);
        const traffic = (v: Variant) => med(n, hog, v, (x) => x.totalMs);
        const cpu = (v: Variant) => med(n, hog, v, (x) => x.hostCpuMs.mean);
        return [
          String(n),
          hog ? "yes" : "no",
          fmt(ready("dockmesh")),
          fmt(ready("floor")),
          fmt(ready("manual")),
          ratioText(ready("dockmesh"), ready("floor")),
          fmt(traffic("dockmesh")),
          fmt(traffic("floor")),
          ratioText(traffic("dockmesh"), traffic("floor")),
          ratioText(traffic("dockmesh"), traffic("manual")),
          cpu("dockmesh") !== undefined && cpu("floor") !== undefined ? `${Math.round(cpu("dockmesh")!)} / ${Math.round(cpu("floor")!)}` : "-",
        ];
      }),
    );
    console.log(`\nMedians of ${runs} runs (ratios of the medians):\n`);
    console.log(table(header, mrows));
  }
  console.log("\nBreakdown (s): Ready; proof = each host's httpd joins the network + ring of fetches; traffic = Ready + proof. Host CPU: until Ready, per host (ms),");
  console.log(
    "every process in the host's namespace. Machine CPU = CPU seconds the whole machine spent in that phase (all hosts, the controller, Docker, the hog; two cores give at most 2 per second)\n",
  );
  console.log(table(["N", "hog", "variant", "Ready", "proof", "traffic", "host CPU mean", "host CPU max", "machine CPU Ready", "machine CPU proof", "notes"], detail));
  console.log("\nTargets at N=8 (issue 14): Ready dockmesh/floor ≤ 1.0, and ≤ 1.2 with the CPU hog.");
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
