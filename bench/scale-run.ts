// One run of the scale benchmark: the embedded store (in this process), N simulated hosts (in
// this process, SimulatedHostFleet), and `dockmesh controller` (a child process); one
// MeshNetwork with N Machines, mesh DNS on or off. Measures time until every Machine is Ready
// (and, with DNS on, DNSReady), the controller's RSS, API writes and SSH round trips, then a
// steady-state window of whole resync periods.
import { reuseConnections } from "../runtime/kube-client.js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { CoreV1Api, CustomObjectsApi, KubeConfig, Watch } from "@kubernetes/client-node";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { startStore, type StoreHandle } from "../store/server.js";
import { generateEd25519 } from "../lab/keys.js";
import { GROUP, VERSION } from "../controllers/resources.js";
import { SimulatedHostFleet, type SimulatedHostCounters } from "./sim/simulated-fleet.js";
import { BENCH_MESH, BENCH_NAMESPACE, benchEndpoint, benchMesh, machineName } from "./scale-plan.js";
import { ControllerChild, metricSum, type ProcStats } from "./scale-proc.js";

export interface ScaleRunOptions {
  machines: number;
  resyncMs: number;
  /** Steady-state window, in resync periods. */
  steadyPeriods: number;
  convergeTimeoutMs: number;
  /** Added to every simulated host's answer. */
  latencyMs: number;
  concurrency: number;
  /** spec.dns.enabled of the MeshNetwork (the product's default is on). */
  dns: boolean;
  progress: (line: string) => void;
}

export interface WriteCounts {
  total: number;
  machines: number;
  meshNetworks: number;
  secrets: number;
  events: number;
}

export interface SteadyState {
  windowMs: number;
  periods: number;
  /** Round trips of resyncs (observe, apply), the Ready checks and mesh DNS's commands apart. */
  roundTripsPerHostPerResync: number;
  /** Ready checks (hosts/liveness.ts) per host, between resyncs. */
  readyChecksPerHostPerResync: number;
  /** Mesh DNS's commands per host (its own loop: event stream, looks, writes; controllers/dns.ts). */
  dnsCommandsPerHostPerResync: number;
  sessionsPerHostPerResync: number;
  /** Round trips per SSH session (one session per reconcile that contacts the host). */
  roundTripsPerSession: number;
  /** Round trips of the busiest host in the window, per period. */
  maxRoundTripsPerHostPerResync: number;
  writesPerResync: number;
  cpuMsPerResync: number;
  reconcilesPerResync: number;
}

export interface ScaleRunResult {
  machines: number;
  dns: boolean;
  converged: boolean;
  /** Until every Machine was Ready. */
  convergeMs: number;
  /** With DNS on: Machines whose DNSReady was True at the end, and when the last became so (undefined: not all did). */
  dnsReady?: { machines: number; ms: number | undefined };
  /** Controller process. */
  peakRssBytes: number;
  rssAfterBytes: number;
  cpuMsToConverge: number;
  writes: WriteCounts;
  ssh: { total: SimulatedHostCounters; perHostMean: number; perHostMax: number };
  /**
   * The controller's mesh round trips (observe, apply, Ready check; a first converge's one command
   * once) at each host up to its Machine's own Ready: the way to Ready, without the resyncs of
   * machines Ready before the last one. Undefined when not every Machine was Ready.
   */
  meshTripsToReady?: { mean: number; max: number };
  reconciles: number;
  steady?: SteadyState;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Mesh DNS's commands among a host's counters. */
export const dnsCommands = (c: SimulatedHostCounters): number => c.dnsStreams + c.dnsInspects + c.dnsWrites;
const SSH_SECRET = "sim-ssh";

/** GET on the store with its token and CA; JSON, or a Table with `table`. */
function storeGet(store: StoreHandle, path: string, table = false): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, store.url),
      {
        ca: store.caCertPem,
        headers: { Authorization: `Bearer ${store.token}`, Accept: table ? "application/json;as=Table;v=v1;g=meta.k8s.io" : "application/json" },
        timeout: 60_000,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          if (res.statusCode !== 200) reject(new Error(`GET ${path}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
          else resolve(JSON.parse(text));
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** The store's resourceVersion now: one per write since it started (a list reports the global counter). */
async function currentRv(store: StoreHandle): Promise<number> {
  const list = (await storeGet(store, "/api/v1/namespaces/kube-public/configmaps")) as { metadata: { resourceVersion: string } };
  return Number(list.metadata.resourceVersion);
}

/** Counts watch events (writes) of small kinds; Machines are the rest of the resourceVersion delta. */
class WriteWatch {
  readonly counts = { meshNetworks: 0, secrets: 0, events: 0 };
  private readonly aborts: AbortController[] = [];

  static async start(kc: KubeConfig, fromRv: number): Promise<WriteWatch> {
    const w = new WriteWatch();
    const watch = new Watch(kc);
    const paths: Array<[keyof WriteWatch["counts"], string]> = [
      ["meshNetworks", `/apis/${GROUP}/${VERSION}/namespaces/${BENCH_NAMESPACE}/meshnetworks`],
      ["secrets", `/api/v1/namespaces/${BENCH_NAMESPACE}/secrets`],
      ["events", `/api/v1/namespaces/${BENCH_NAMESPACE}/events`],
    ];
    for (const [kind, path] of paths) {
      w.aborts.push(
        await watch.watch(
          path,
          { resourceVersion: String(fromRv) },
          (phase) => {
            if (phase === "ADDED" || phase === "MODIFIED" || phase === "DELETED") w.counts[kind]++;
          },
          () => {},
        ),
      );
    }
    return w;
  }

  stop(): void {
    for (const a of this.aborts) a.abort();
  }
}

async function createAll(kc: KubeConfig, fleet: SimulatedHostFleet, clientKey: string, n: number, dns: boolean): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  await core.createNamespacedSecret({
    namespace: BENCH_NAMESPACE,
    body: { apiVersion: "v1", kind: "Secret", metadata: { name: SSH_SECRET }, data: { "ssh-privatekey": Buffer.from(clientKey).toString("base64") } },
  });
  const mesh: MeshNetwork = benchMesh({ dns });
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: "meshnetworks", namespace: BENCH_NAMESPACE, body: mesh });
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const h = fleet.hosts[i]!;
      const body: Machine = {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "Machine",
        metadata: { name: machineName(i), namespace: BENCH_NAMESPACE },
        spec: { ssh: { host: h.sshHost, port: h.sshPort, privateKeySecretRef: { name: SSH_SECRET } }, endpoint: benchEndpoint(i) },
      };
      try {
        await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: "machines", namespace: BENCH_NAMESPACE, body });
      } catch (err) {
        throw new Error(`create Machine ${machineName(i)}`, { cause: err });
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

interface MeshReadiness {
  ready: number;
  total: number;
}

async function meshReadiness(store: StoreHandle): Promise<MeshReadiness> {
  const m = (await storeGet(store, `/apis/${GROUP}/${VERSION}/namespaces/${BENCH_NAMESPACE}/meshnetworks/${BENCH_MESH}`)) as MeshNetwork;
  return { ready: m.status?.readyMachineCount ?? 0, total: m.status?.machineCount ?? 0 };
}

/** Machines whose READY column (server-side Table, as kubectl prints it) is True. */
async function readyMachines(store: StoreHandle): Promise<number> {
  const t = (await storeGet(store, `/apis/${GROUP}/${VERSION}/namespaces/${BENCH_NAMESPACE}/machines`, true)) as { columnDefinitions: Array<{ name: string }>; rows: Array<{ cells: unknown[] }> };
  const col = t.columnDefinitions.findIndex((c) => c.name.toLowerCase() === "ready");
  if (col < 0) throw new Error("the Machine table has no Ready column");
  return t.rows.filter((r) => r.cells[col] === "True").length;
}

/** Per machine, the mesh round trips its host saw up to the second its Ready condition turned True (lastTransitionTime). */
async function meshTripsToReady(store: StoreHandle, fleet: SimulatedHostFleet): Promise<{ mean: number; max: number } | undefined> {
  const list = (await storeGet(store, `/apis/${GROUP}/${VERSION}/namespaces/${BENCH_NAMESPACE}/machines`)) as { items: Machine[] };
  const counts: number[] = [];
  for (const m of list.items) {
    const ready = m.status?.conditions?.find((c) => c.type === "Ready" && c.status === "True");
    const host = fleet.get(m.metadata?.name ?? "");
    if (!ready?.lastTransitionTime || !host) return undefined;
    // The condition's time has whole seconds: every command begun within its second counts.
    const until = Date.parse(String(ready.lastTransitionTime)) + 999;
    counts.push(host.meshTrips.filter((t) => t <= until).length);
  }
  return counts.length ? { mean: counts.reduce((a, b) => a + b, 0) / counts.length, max: Math.max(...counts) } : undefined;
}

/** Machines whose DNSReady condition is True. */
async function dnsReadyMachines(store: StoreHandle): Promise<number> {
  const list = (await storeGet(store, `/apis/${GROUP}/${VERSION}/namespaces/${BENCH_NAMESPACE}/machines`)) as { items: Machine[] };
  return list.items.filter((m) => m.status?.conditions?.some((c) => c.type === "DNSReady" && c.status === "True")).length;
}

const fmtPeriods = (p: number) => p.toFixed(2);
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;

export async function runScale(opts: ScaleRunOptions): Promise<ScaleRunResult> {
  const n = opts.machines;
  const dir = mkdtempSync(join(tmpdir(), `dockmesh-scale-${n}-`));
  const logFile = join(dir, "controller.log");
  const clientKey = generateEd25519("dockmesh-scale-bench");
  let store: StoreHandle | undefined;
  let fleet: SimulatedHostFleet | undefined;
  let child: ControllerChild | undefined;
  let writes: WriteWatch | undefined;
  let ok = false;
  let stopSignals = () => {};
  try {
    store = await startStore({ stateDir: join(dir, "store"), listen: "127.0.0.1:0" });
    const kc = new KubeConfig();
    kc.loadFromFile(store.kubeconfigPath);
    // Kept-alive connections, as kubectl's: creating 1,000 Machines is not a TLS handshake each.
    reuseConnections(kc);
    fleet = await SimulatedHostFleet.start({ names: Array.from({ length: n }, (_, i) => machineName(i)), authorizedKey: clientKey.publicKey, latencyMs: opts.latencyMs });
    child = await ControllerChild.start({ kubeconfig: store.kubeconfigPath, resyncPeriod: `${opts.resyncMs}ms`, concurrency: opts.concurrency, logFile });
    const c = child;
    // Interrupted: stop the controller child rather than leave it running against a dead store.
    const interrupted = () => {
      void c.stop().finally(() => process.exit(130));
    };
    process.once("SIGINT", interrupted);
    process.once("SIGTERM", interrupted);
    stopSignals = () => {
      process.off("SIGINT", interrupted);
      process.off("SIGTERM", interrupted);
    };
    const s = store;
    const f = fleet;

    const rv0 = await currentRv(s);
    writes = await WriteWatch.start(kc, rv0);
    const cpu0 = c.stats().cpuMs;
    const started = performance.now();
    await createAll(kc, f, clientKey.privateKey, n, opts.dns);
    const ownWrites = n + 2;
    opts.progress(
      `N=${n}: created 1 MeshNetwork (DNS ${opts.dns ? "on" : "off"}), ${n} Machines and the SSH Secret in ${((performance.now() - started) / 1000).toFixed(1)} s; waiting for every Machine to be Ready${opts.dns ? " and DNSReady" : ""}`,
    );

    let converged = false;
    let convergeMs = 0;
    let dnsReady = 0;
    let dnsReadyMs: number | undefined;
    let lastReport = performance.now();
    for (let i = 0; i < 100_000 && performance.now() - started < opts.convergeTimeoutMs; i++) {
      await sleep(n >= 500 ? 1000 : 250);
      const r = await meshReadiness(s);
      if (!converged && r.total === n && r.ready === n && (await readyMachines(s)) === n) {
        converged = true;
        convergeMs = performance.now() - started;
      }
      if (opts.dns) {
        dnsReady = await dnsReadyMachines(s);
        if (dnsReady === n) dnsReadyMs = performance.now() - started;
      }
      if (converged && (!opts.dns || dnsReadyMs !== undefined)) break;
      if (performance.now() - lastReport >= 10_000) {
        lastReport = performance.now();
        const st = c.stats();
        opts.progress(
          `  ${((performance.now() - started) / 1000).toFixed(0)} s: ${r.ready}/${n} Ready (per the MeshNetwork)${opts.dns ? `, ${dnsReady}/${n} DNSReady` : ""}; controller RSS ${mb(st.rss)} (peak ${mb(st.peakRss)}), CPU ${(st.cpuMs / 1000).toFixed(0)} s; API writes ${(await currentRv(s)) - rv0 - ownWrites}; SSH round trips ${f.totals().roundTrips}`,
        );
      }
    }
    if (!converged) convergeMs = performance.now() - started;
    const rv1 = await currentRv(s);
    const st1: ProcStats = c.stats();
    const totals = f.totals();
    const perHost = f.hosts.map((h) => h.counters.roundTrips);
    const wc = { ...writes.counts };
    const total = rv1 - rv0 - ownWrites;
    const result: ScaleRunResult = {
      machines: n,
      dns: opts.dns,
      converged,
      convergeMs,
      ...(opts.dns ? { dnsReady: { machines: dnsReady, ms: dnsReadyMs } } : {}),
      peakRssBytes: st1.peakRss,
      rssAfterBytes: st1.rss,
      cpuMsToConverge: st1.cpuMs - cpu0,
      writes: { total, meshNetworks: wc.meshNetworks - 1, secrets: wc.secrets - 1, events: wc.events, machines: total - (wc.meshNetworks - 1) - (wc.secrets - 1) - wc.events },
      ssh: { total: totals, perHostMean: totals.roundTrips / n, perHostMax: Math.max(...perHost) },
      ...(converged ? { meshTripsToReady: await meshTripsToReady(s, f) } : {}),
      reconciles: metricSum(await c.metrics(), "dockmesh_reconcile_total", { kind: "Machine" }),
    };
    opts.progress(
      converged
        ? `N=${n}: all ${n} Machines Ready after ${(convergeMs / 1000).toFixed(1)} s`
        : `N=${n}: NOT converged within ${(opts.convergeTimeoutMs / 1000).toFixed(0)} s (${(await meshReadiness(s)).ready}/${n} Ready)`,
    );
    if (opts.dns) opts.progress(dnsReadyMs !== undefined ? `N=${n}: all ${n} Machines DNSReady after ${(dnsReadyMs / 1000).toFixed(1)} s` : `N=${n}: ${dnsReady}/${n} Machines DNSReady at the end`);

    if (converged && opts.steadyPeriods > 0) {
      // Let requeues of the last reconciles run out, then measure whole resync periods.
      opts.progress(`N=${n}: steady state: settling for one resync period (${opts.resyncMs / 1000} s), then measuring ${opts.steadyPeriods} periods`);
      await sleep(opts.resyncMs);
      const hostsBefore = f.snapshot();
      const a = { rv: await currentRv(s), fleet: f.totals(), cpu: c.stats().cpuMs, rec: metricSum(await c.metrics(), "dockmesh_reconcile_total", { kind: "Machine" }), t: performance.now() };
      await sleep(opts.resyncMs * opts.steadyPeriods);
      const b = { rv: await currentRv(s), fleet: f.totals(), cpu: c.stats().cpuMs, rec: metricSum(await c.metrics(), "dockmesh_reconcile_total", { kind: "Machine" }), t: performance.now() };
      const periods = (b.t - a.t) / opts.resyncMs;
      // Resync round trips: the Ready checks and mesh DNS's commands (their own loops) apart.
      const resyncTrips = (x: SimulatedHostCounters | undefined) => (x ? x.roundTrips - x.readyChecks - dnsCommands(x) : 0);
      const perHostWindow = f.hosts.map((h) => resyncTrips(h.counters) - resyncTrips(hostsBefore.get(h.name)));
      const histogram = new Map<number, number>();
      for (const x of perHostWindow) histogram.set(x, (histogram.get(x) ?? 0) + 1);
      opts.progress(
        `N=${n}: round trips per host in ${fmtPeriods(periods)} resync periods: ${[...histogram]
          .sort((x, y) => x[0] - y[0])
          .map(([rt, hosts]) => `${rt} on ${hosts} host(s)`)
          .join(", ")}`,
      );
      if (opts.dns) {
        const d = (k: "dnsStreams" | "dnsInspects" | "dnsWrites" | "dnsNoResolver") => b.fleet[k] - a.fleet[k];
        opts.progress(
          `N=${n}: mesh DNS's commands in the window (apart from those): ${d("dnsStreams")} stream, ${d("dnsInspects")} inspect, ${d("dnsWrites")} write (${d("dnsNoResolver")} "no resolver yet")`,
        );
      }
      result.steady = {
        windowMs: b.t - a.t,
        periods,
        roundTripsPerHostPerResync: (resyncTrips(b.fleet) - resyncTrips(a.fleet)) / n / periods,
        readyChecksPerHostPerResync: (b.fleet.readyChecks - a.fleet.readyChecks) / n / periods,
        dnsCommandsPerHostPerResync: (dnsCommands(b.fleet) - dnsCommands(a.fleet)) / n / periods,
        sessionsPerHostPerResync: (b.fleet.sessions - a.fleet.sessions) / n / periods,
        roundTripsPerSession: (b.fleet.roundTrips - a.fleet.roundTrips) / Math.max(1, b.fleet.sessions - a.fleet.sessions),
        maxRoundTripsPerHostPerResync: Math.max(...perHostWindow) / periods,
        writesPerResync: (b.rv - a.rv) / periods,
        cpuMsPerResync: (b.cpu - a.cpu) / periods,
        reconcilesPerResync: (b.rec - a.rec) / periods,
      };
      const end = c.stats();
      result.peakRssBytes = end.peakRss;
      result.rssAfterBytes = end.rss;
    }
    ok = true;
    return result;
  } catch (err) {
    throw new Error(`scale run with ${n} machines failed (controller log: ${logFile})`, { cause: err });
  } finally {
    stopSignals();
    writes?.stop();
    await child?.stop();
    await fleet?.close();
    await store?.close();
    if (!ok) {
      try {
        opts.progress(`controller log (last lines):\n${readFileSync(logFile, "utf8").split("\n").slice(-15).join("\n")}`);
      } catch {
        // no log
      }
    }
    if (ok && !process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
    else if (ok) opts.progress(`kept ${dir}`);
  }
}
