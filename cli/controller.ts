// `dockmesh controller`: the controllers alone, against $KUBECONFIG or the in-cluster config,
// with /metrics, /healthz and /readyz, and (--leader-elect) leader election on a Lease so
// that of several replicas exactly one reconciles.
// Also the UpComponent that runs them inside `dockmesh up` (one process: no election).
import { existsSync, readFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import type { Command } from "commander";
import { startControllers, type ControllerOptions, type RunningControllers } from "../controllers/manager.js";
import { DEFAULT_READY_CHECK_MS } from "../controllers/machine.js";
import { onRoundTrip } from "../hosts/ssh.js";
import { createLogger, describeError, setRootLogger, type LogFormat, type LogLevel, type Logger } from "../runtime/log.js";
import { ControllerMetrics } from "../runtime/metrics.js";
import { DEFAULT_MAX_PAIRS } from "../controllers/peer-stats.js";
import { startOpsServer, type Check, type OpsServer } from "../runtime/health.js";
import { LeaderElector, coordinationLeaseClient, defaultIdentity, type LeaderElectionTimings } from "../runtime/leader.js";
import type { UpComponent } from "./up.js";
import { keepHeapNearLive } from "../runtime/heap.js";
import { reuseConnections } from "../runtime/kube-agent.js";

export interface ControllerFlags {
  resyncPeriod: string;
  /** Unset: 30s. */
  readyCheckPeriod?: string;
  concurrency: string;
  logLevel?: string;
  logFormat?: string;
  /** Unset: :8080 for `dockmesh controller`, off for `dockmesh up`. */
  metricsBindAddress?: string;
  /** Unset: DEFAULT_MAX_PAIRS. */
  peerMetricsMaxPairs?: string;
}

export interface LeaderFlags {
  leaderElect?: boolean;
  leaderElectionNamespace?: string;
  leaseName: string;
  leaseDuration: string;
  renewDeadline: string;
  retryPeriod: string;
}

export const DEFAULT_LEASE_NAME = "dockmesh-controller";
const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** "90s", "5m", "1h" or plain seconds → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`${flag}: ${JSON.stringify(text)} is not a duration; write it like 30s, 5m or 1h`);
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  return Math.round(n * (unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000));
}

/** A whole number from min to max, or an error naming the flag (and what the bounds mean, in `note`). */
function wholeNumber(text: string, flag: string, min: number, max: number, note = ""): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw new Error(`${flag}: ${JSON.stringify(text)} must be a whole number from ${min} to ${max}${note}`);
  return n;
}

/** --peer-metrics-max-pairs: a whole number from 0 to 1,000,000 (unset: DEFAULT_MAX_PAIRS). */
export function peerMetricsMaxPairs(text: string | undefined): number {
  return text === undefined ? DEFAULT_MAX_PAIRS : wholeNumber(text, "--peer-metrics-max-pairs", 0, 1_000_000, " (0: only per-machine totals)");
}

export function addControllerFlags(cmd: Command): Command {
  return cmd
    .option("--resync-period <duration>", "how often each host is re-checked for drift (e.g. 30s, 5m)", "5m")
    .option("--ready-check-period <duration>", "how often a Ready machine's host is checked between resyncs (one light SSH command: interfaces up, handshakes fresh); Ready=True is at most this plus 10 s old; 0 turns it off", `${DEFAULT_READY_CHECK_MS / 1000}s`)
    .option("--concurrency <n>", "machines reconciled (and SSH sessions open) at once", "8")
    .option("--log-level <level>", "error, warn, info or debug", process.env.DOCKMESH_LOG_LEVEL ?? "info")
    .option("--log-format <format>", "json or text (default: json in a cluster, text in a terminal)")
    .option("--metrics-bind-address <addr>", "where /metrics, /healthz and /readyz are served: :8080, 127.0.0.1:8080, or 0 for off (default :8080 for `dockmesh controller`, off for `dockmesh up`)")
    .option("--peer-metrics-max-pairs <n>", `per-peer series on /metrics for at most this many (machine, peer) pairs, the worst handshakes first (~5 series each; a mesh of N machines has N·(N-1) pairs); the rest are counted in dockmesh_peer_pairs_dropped; 0: only per-machine totals (default ${DEFAULT_MAX_PAIRS})`);
}

function addLeaderFlags(cmd: Command): Command {
  return cmd
    .option("--leader-elect", "take a Lease before reconciling, so that of several replicas exactly one works (the Helm chart and deploy/ turn it on)", false)
    .option("--leader-election-namespace <ns>", "namespace of the Lease (default: the pod's namespace, else default)")
    .option("--lease-name <name>", "name of the Lease", DEFAULT_LEASE_NAME)
    .option("--lease-duration <duration>", "how long standbys wait before taking over a Lease that is not renewed", "15s")
    .option("--renew-deadline <duration>", "how long the leader keeps trying to renew before it stops", "10s")
    .option("--retry-period <duration>", "interval between attempts to acquire or renew the Lease", "2s");
}

export function controllerOptions(flags: ControllerFlags, kubeConfig: KubeConfig): ControllerOptions {
  const level = (flags.logLevel ?? "info") as LogLevel;
  if (!["error", "warn", "info", "debug"].includes(level)) throw new Error(`--log-level: ${JSON.stringify(flags.logLevel)} must be one of error, warn, info, debug`);
  if (flags.logFormat !== undefined && !["json", "text"].includes(flags.logFormat)) throw new Error(`--log-format: ${JSON.stringify(flags.logFormat)} must be json or text`);
  const logger = createLogger({ level, ...(flags.logFormat ? { format: flags.logFormat as LogFormat } : {}) });
  setRootLogger(logger);
  const readyCheckMs = flags.readyCheckPeriod === undefined ? undefined : parseDuration(flags.readyCheckPeriod, "--ready-check-period");
  return {
    kubeConfig,
    logger,
    resyncMs: parseDuration(flags.resyncPeriod, "--resync-period"),
    ...(readyCheckMs !== undefined ? { readyCheckMs } : {}),
    concurrency: wholeNumber(flags.concurrency, "--concurrency", 1, 1000),
  };
}

/** The Lease's namespace: the flag, else the pod's (POD_NAMESPACE, or the service account's), else default. */
export function leaseNamespace(flag: string | undefined, env: Record<string, string | undefined> = process.env): string {
  if (flag) return flag;
  if (env["POD_NAMESPACE"]) return env["POD_NAMESPACE"];
  if (existsSync(SERVICE_ACCOUNT_NAMESPACE)) return readFileSync(SERVICE_ACCOUNT_NAMESPACE, "utf8").trim();
  return "default";
}

export function leaderTimings(flags: LeaderFlags): LeaderElectionTimings {
  return {
    leaseDurationMs: parseDuration(flags.leaseDuration, "--lease-duration"),
    renewDeadlineMs: parseDuration(flags.renewDeadline, "--renew-deadline"),
    retryPeriodMs: parseDuration(flags.retryPeriod, "--retry-period"),
  };
}

export interface ManagedOptions {
  /** Used when flags.metricsBindAddress is unset. */
  defaultBindAddress: string;
  /** With leader election: the Lease, and what to do when it is lost. */
  leaderElection?: { namespace: string; name: string; identity: string; timings: LeaderElectionTimings; onLost: () => void };
}

export interface ManagedControllers {
  metrics: ControllerMetrics;
  server: OpsServer | undefined;
  elector: LeaderElector | undefined;
  /** The controllers, once started (at once without election, when leading with it). */
  running(): RunningControllers | undefined;
  stop(): Promise<void>;
}

/**
 * The controllers with metrics and probes, and with leader election when asked: the
 * controllers (informers included) start only once the Lease is held, so a standby makes no
 * API call but its Lease checks.
 */
export async function startManagedControllers(flags: ControllerFlags, kc: KubeConfig, opts: ManagedOptions): Promise<ManagedControllers> {
  const options = controllerOptions(flags, kc);
  const log: Logger = options.logger!;
  const metrics = new ControllerMetrics({ maxPeerPairs: peerMetricsMaxPairs(flags.peerMetricsMaxPairs) });
  const offSsh = onRoundTrip((rt) => metrics.observeSsh(rt));
  let running: RunningControllers | undefined;
  let stopping = false;

  const start = async (): Promise<void> => {
    if (stopping) return;
    const r = await startControllers(options);
    running = r;
    metrics.watchQueue(r.machineQueue);
    metrics.watchQueue(r.meshQueue);
    metrics.setMachines(() => r.machines.list());
    metrics.setPeerStats(r.peerStats, () => r.meshes.list());
  };

  let elector: LeaderElector | undefined;
  const le = opts.leaderElection;
  if (le) {
    elector = new LeaderElector({
      client: coordinationLeaseClient(kc),
      namespace: le.namespace,
      name: le.name,
      identity: le.identity,
      ...le.timings,
      logger: log,
      onStartedLeading: () =>
        start().catch((err: unknown) => {
          log.error("the controllers could not start; exiting so that another replica can lead", { error: describeError(err) });
          le.onLost();
        }),
      onStoppedLeading: le.onLost,
    });
    const e = elector;
    metrics.setLeaderElection(`${le.namespace}/${le.name}`, () => e.isLeader);
  } else {
    metrics.setLeaderElection("", () => true);
  }

  const synced: Check = () => {
    if (running) {
      const ok = running.machines.hasSynced && running.meshes.hasSynced;
      return { ok, message: ok ? "caches synced" : "caches not synced yet" };
    }
    if (elector && !elector.isLeader) return { ok: true, message: "standing by (not the leader)" };
    return { ok: false, message: "controllers not started yet" };
  };
  const ready: Record<string, Check> = { informers: synced };
  if (elector) {
    const e = elector;
    ready["leader-election"] = () => ({ ok: e.healthy(), message: e.isLeader ? "leading" : e.healthy() ? `standing by; leader: ${e.leader || "none"}` : "cannot reach the API server to check the Lease" });
  }
  const server = await startOpsServer({
    bind: flags.metricsBindAddress ?? opts.defaultBindAddress,
    metrics,
    live: { ping: () => ({ ok: true }) },
    ready,
    logger: log,
  });

  try {
    if (elector) elector.start();
    else await start();
  } catch (err) {
    offSsh();
    await server?.close();
    throw err;
  }

  return {
    metrics,
    server,
    elector,
    running: () => running,
    async stop() {
      stopping = true;
      // Reconciles finish before the Lease is released: two replicas never reconcile at once.
      if (running) await running.stop();
      await elector?.stop();
      offSsh();
      metrics.stop();
      await server?.close();
    },
  };
}

/** The controllers as a part of `dockmesh up`, connecting through the kubeconfig it wrote. */
export function controllersComponent(flags: () => ControllerFlags): UpComponent {
  return {
    name: "controllers",
    async start(store) {
      const kc = new KubeConfig();
      kc.loadFromFile(store.kubeconfigPath);
      return startManagedControllers(flags(), reuseConnections(kc), { defaultBindAddress: "0" });
    },
  };
}

export function registerController(program: Command): void {
  const cmd = program.command("controller").description("run the controllers against $KUBECONFIG, or the in-cluster service account");
  addLeaderFlags(addControllerFlags(cmd)).action(async (flags: ControllerFlags & LeaderFlags) => {
    keepHeapNearLive();
    const kc = new KubeConfig();
    kc.loadFromDefault();
    if (!kc.getCurrentCluster()) throw new Error("no cluster configured: set KUBECONFIG, or run inside a cluster");
    reuseConnections(kc);
    const identity = defaultIdentity();
    const managed = await startManagedControllers(flags, kc, {
      defaultBindAddress: ":8080",
      ...(flags.leaderElect
        ? {
            leaderElection: {
              namespace: leaseNamespace(flags.leaderElectionNamespace),
              name: flags.leaseName,
              identity,
              timings: leaderTimings(flags),
              // As client-go/controller-runtime: a leader that lost its Lease exits at once. Reconciles
              // in flight (SSH steps on hosts) cannot be recalled, but nothing new starts, and the
              // restarted process campaigns again as a standby with empty caches.
              onLost: () => {
                console.error("dockmesh: leader election lost; exiting");
                process.exit(1);
              },
            },
          }
        : {}),
    });
    const where = kc.getCurrentCluster()?.server;
    console.error(flags.leaderElect ? `dockmesh: controller ${identity} campaigning for Lease ${leaseNamespace(flags.leaderElectionNamespace)}/${flags.leaseName} on ${where}` : `dockmesh: controllers running against ${where}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    console.error("dockmesh: shutting down");
    await managed.stop();
  });
}
