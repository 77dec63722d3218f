// The work of `dockmesh controller`, and of the controllers inside `dockmesh up` (imported lazily
// by cli/controller.ts): the API client, the controllers, SSH, the logger and the metrics are
// loaded only by the commands that run them.
import { KubeConfig } from "../vendor/client-node.js";
import { startControllers, type ControllerOptions, type RunningControllers } from "../controllers/manager.js";
import { onRoundTrip } from "../hosts/ssh.js";
import { createLogger, describeError, setRootLogger, type LogFormat, type LogLevel, type Logger } from "../runtime/log.js";
import { ControllerMetrics } from "../controllers/metrics.js";
import { startOpsServer, type Check, type OpsServer } from "../runtime/health.js";
import { LeaderElector, coordinationLeaseClient, defaultIdentity, type LeaderElectionTimings } from "../runtime/leader.js";
import { keepHeapNearLive } from "../runtime/heap.js";
import { kubeApiClient } from "../runtime/kube-client.js";
import { leaderTimings, leaseNamespace, parseDuration, peerMetricsMaxPairs, wholeNumber, type ControllerFlags, type LeaderFlags } from "./controller.js";

export function controllerOptions(flags: ControllerFlags, kubeConfig: KubeConfig): ControllerOptions {
  const level = (flags.logLevel ?? "info") as LogLevel;
  if (!["error", "warn", "info", "debug"].includes(level)) throw new Error(`--log-level: ${JSON.stringify(flags.logLevel)} must be one of error, warn, info, debug`);
  if (flags.logFormat !== undefined && !["json", "text"].includes(flags.logFormat)) throw new Error(`--log-format: ${JSON.stringify(flags.logFormat)} must be json or text`);
  const logger = createLogger({ level, ...(flags.logFormat ? { format: flags.logFormat as LogFormat } : {}) });
  setRootLogger(logger);
  const readyCheckMs = flags.readyCheckPeriod === undefined ? undefined : parseDuration(flags.readyCheckPeriod, "--ready-check-period");
  return {
    api: kubeApiClient(kubeConfig, { reuseConnections: true }),
    logger,
    resyncMs: parseDuration(flags.resyncPeriod, "--resync-period"),
    ...(readyCheckMs !== undefined ? { readyCheckMs } : {}),
    concurrency: wholeNumber(flags.concurrency, "--concurrency", 1, 1000),
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
      client: coordinationLeaseClient(options.api),
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
    ready["leader-election"] = () => ({
      ok: e.healthy(),
      message: e.isLeader ? "leading" : e.healthy() ? `standing by; leader: ${e.leader || "none"}` : "cannot reach the API server to check the Lease",
    });
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

/** The controllers of `dockmesh up`, connecting through the kubeconfig it wrote. */
export function startForUp(flags: ControllerFlags, kubeconfigPath: string): Promise<ManagedControllers> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return startManagedControllers(flags, kc, { defaultBindAddress: "0" });
}

/** `dockmesh controller`: runs until SIGINT or SIGTERM. */
export async function runController(flags: ControllerFlags & LeaderFlags): Promise<void> {
  keepHeapNearLive();
  const kc = new KubeConfig();
  kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error("no cluster configured: set KUBECONFIG, or run inside a cluster");
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
  console.error(
    flags.leaderElect
      ? `dockmesh: controller ${identity} campaigning for Lease ${leaseNamespace(flags.leaderElectionNamespace)}/${flags.leaseName} on ${where}`
      : `dockmesh: controllers running against ${where}`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  console.error("dockmesh: shutting down");
  await managed.stop();
}
