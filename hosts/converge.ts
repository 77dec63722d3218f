// One reconcile's work on a host over one SSH session: observe → plan → diff → apply →
// re-observe. Round trips: one when nothing differs (a resync), three when something did.
import type { NetworkPlan } from "../mesh/plan.js";
import { applySteps } from "./apply.js";
import { diffHost, type AreaStep, type Blocker, type PreviousNetwork } from "./diff.js";
import { HostError } from "./errors.js";
import { observeHost, type HostObservation, type Probe } from "./observe.js";
import type { HostSession } from "./ssh.js";
import type { Step } from "./steps.js";

export interface ConvergeInput {
  /** Builds the desired networks once the host's facts (uplink MTU) are known. */
  plan: (obs: HostObservation) => NetworkPlan[];
  privateKey: string;
  publicKey: string;
  previous: readonly PreviousNetwork[];
  probes?: (networks: readonly NetworkPlan[]) => Probe[];
  log?: (line: string) => void;
  /** Called with the changes about to be made, before making them (to report drift first). */
  beforeApply?: (steps: readonly AreaStep[], networks: readonly NetworkPlan[], obs: HostObservation) => Promise<void>;
}

export interface ConvergeResult {
  networks: NetworkPlan[];
  /** The host as it is after the changes. */
  observation: HostObservation;
  applied: Step[];
  blockers: Blocker[];
  /** Differences still there after applying (empty when converged). */
  remaining: AreaStep[];
  applyError?: HostError;
  /** Each round trip of this converge with its milliseconds, in order ("observe 412"), for debug logs. */
  timings?: string[];
}

const namesOf = (networks: readonly NetworkPlan[], previous: readonly PreviousNetwork[]) => ({
  ifaces: [...new Set([...networks.map((n) => n.wireguard.interface), ...previous.map((p) => p.interface)])].sort(),
  nets: [...new Set([...networks.map((n) => n.docker.name), ...previous.flatMap((p) => (p.dockerNetwork ? [p.dockerNetwork] : []))])].sort(),
});

export function preflight(obs: HostObservation): HostError | undefined {
  const missing = (["wg", "wg-quick", "iptables", "ip", "docker"] as const).filter((t) => !obs.tools[t]);
  if (missing.length) {
    const pkgs = [...new Set(missing.map((t) => (t === "docker" ? "docker.io (or docker-ce)" : t === "ip" ? "iproute2" : t === "iptables" ? "iptables" : "wireguard-tools")))];
    return new HostError("MissingTools", `${missing.join(", ")} not found on the host; install ${pkgs.join(", ")} (e.g. apt-get install ${pkgs.map((p) => p.split(" ")[0]).join(" ")})`);
  }
  if (!obs.dockerVersion) return new HostError("DockerNotRunning", `Docker is not running: ${obs.dockerError ?? "no answer"}; start it (systemctl start docker)`);
  return undefined;
}

export interface ConvergeOptions {
  /**
   * Probe idle peers in the observation before planning too (default true). A second pass right
   * after a first does without: the first pass's re-observe has just probed them.
   */
  probeBeforePlan?: boolean;
}

export async function converge(session: HostSession, input: ConvergeInput, previousPlanGuess: readonly NetworkPlan[] = [], opts: ConvergeOptions = {}): Promise<ConvergeResult> {
  const guess = namesOf(previousPlanGuess, input.previous);
  const firstProbes = opts.probeBeforePlan === false ? [] : (input.probes?.(previousPlanGuess) ?? []);
  const timings: string[] = [];
  const timed = async <T>(what: string, p: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await p();
    } finally {
      timings.push(`${what} ${Math.round(performance.now() - t)}`);
    }
  };
  let obs = await timed("observe", () => observeHost(session, guess.ifaces, guess.nets, firstProbes));
  const pre = preflight(obs);
  if (pre) throw pre;
  const networks = input.plan(obs);
  const names = namesOf(networks, input.previous);
  // The first observation may have missed names the plan introduced (a new mesh): look again.
  if (names.ifaces.some((i) => !guess.ifaces.includes(i)) || names.nets.some((n) => !guess.nets.includes(n))) {
    obs = await timed("observe", () => observeHost(session, names.ifaces, names.nets));
  }
  const diffInput = { networks, privateKey: input.privateKey, publicKey: input.publicKey, previous: input.previous };
  const first = diffHost(diffInput, obs);
  if (first.steps.length === 0) return { networks, observation: obs, applied: [], blockers: first.blockers, remaining: [], timings };

  await input.beforeApply?.(first.steps, networks, obs);
  let applyError: HostError | undefined;
  let applied: Step[] = [];
  try {
    applied = (await timed("apply", () => applySteps(session, first.steps, input.log))).done;
  } catch (err) {
    if (!(err instanceof HostError)) throw err;
    applyError = err;
  }
  const after = await timed("observe", () => observeHost(session, names.ifaces, names.nets, input.probes?.(networks) ?? []));
  const second = diffHost(diffInput, after);
  return { networks, observation: after, applied, blockers: second.blockers, remaining: second.steps, timings, ...(applyError ? { applyError } : {}) };
}

/**
 * Removes everything of ours for the given networks; returns what is still left afterwards.
 * beforeApply sees the steps and the host first (to say which containers are disconnected).
 */
export async function teardown(
  session: HostSession,
  previous: readonly PreviousNetwork[],
  log?: (line: string) => void,
  beforeApply?: (steps: readonly AreaStep[], obs: HostObservation) => Promise<void>,
): Promise<AreaStep[]> {
  const { ifaces, nets } = namesOf([], previous);
  const obs = await observeHost(session, ifaces, nets);
  const all = (o: HostObservation) => diffHost({ networks: [], privateKey: "", publicKey: "", previous }, o).steps;
  const steps = all(obs);
  if (steps.length === 0) return [];
  await beforeApply?.(steps, obs);
  await applySteps(session, steps, log);
  return all(await observeHost(session, ifaces, nets));
}
