// `dockmesh controller`: the controllers alone, against $KUBECONFIG or the in-cluster config,
// with /metrics, /healthz and /readyz, and (--leader-elect) leader election on a Lease so
// that of several replicas exactly one reconciles.
// Also the UpComponent that runs them inside `dockmesh up` (one process: no election).
// Registration and flags only: the API client, the controllers, SSH, the logger and the metrics
// are imported in the action (cli/controller-run.ts), so other commands start without them.
import { existsSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { DEFAULT_READY_CHECK_MS } from "../controllers/machine-defaults.js";
import { DEFAULT_MAX_PAIRS } from "../controllers/peer-stats.js";
import type { LeaderElectionTimings } from "../runtime/leader.js";
import type { UpComponent } from "./up.js";

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
export function wholeNumber(text: string, flag: string, min: number, max: number, note = ""): number {
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
    .option(
      "--ready-check-period <duration>",
      "how often a Ready machine's host is checked between resyncs (one light SSH command: interfaces up, handshakes fresh); Ready=True is at most this plus 10 s old; 0 turns it off",
      `${DEFAULT_READY_CHECK_MS / 1000}s`,
    )
    .option("--concurrency <n>", "machines reconciled (and SSH sessions open) at once", "32")
    .option("--log-level <level>", "error, warn, info or debug", process.env.DOCKMESH_LOG_LEVEL ?? "info")
    .option("--log-format <format>", "json or text (default: json in a cluster, text in a terminal)")
    .option("--metrics-bind-address <addr>", "where /metrics, /healthz and /readyz are served: :8080, 127.0.0.1:8080, or 0 for off (default :8080 for `dockmesh controller`, off for `dockmesh up`)")
    .option(
      "--peer-metrics-max-pairs <n>",
      `per-peer series on /metrics for at most this many (machine, peer) pairs, the worst handshakes first (~5 series each; a mesh of N machines has N·(N-1) pairs); the rest are counted in dockmesh_peer_pairs_dropped; 0: only per-machine totals (default ${DEFAULT_MAX_PAIRS})`,
    );
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

/** The controllers as a part of `dockmesh up`, connecting through the kubeconfig it wrote. */
export function controllersComponent(flags: () => ControllerFlags): UpComponent {
  return {
    name: "controllers",
    async start(store) {
      const { startForUp } = await import("./controller-run.js");
      return startForUp(flags(), store.kubeconfigPath);
    },
  };
}

export function registerController(program: Command): void {
  const cmd = program.command("controller").description("run the controllers against $KUBECONFIG, or the in-cluster service account");
  addLeaderFlags(addControllerFlags(cmd)).action(async (flags: ControllerFlags & LeaderFlags) => {
    const { runController } = await import("./controller-run.js");
    await runController(flags);
  });
}
