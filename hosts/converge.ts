// One reconcile's work on a host over one SSH session: observe → plan → diff → apply → observe,
// the last two in one script. Round trips: one when nothing differs (a resync), two when something
// did, one for the first converge of a fresh host (hosts/fresh.ts).
import type { NetworkPlan } from "../mesh/plan.js";
import { applyThenObserve } from "./apply.js";
import { assumedFreshHost, freshApply } from "./fresh.js";
import type { HostFacts } from "../mesh/plan.js";
import { diffHost, type AreaStep, type Blocker, type PreviousNetwork } from "./diff.js";
import { HostError } from "./errors.js";
import { observeHost, type HostObservation, type Probe } from "./observe.js";
import type { HostSession } from "./ssh.js";
import type { Step } from "./steps.js";

export interface ConvergeInput {
  /** Builds the desired networks once the host's facts (uplink MTU) are known. */
  plan: (obs: HostObservation) => NetworkPlan[];
  /** Builds the desired networks from guessed facts, for a first converge in one round trip (ConvergeOptions.fresh). */
  planWith?: (facts: HostFacts) => NetworkPlan[];
  privateKey: string;
  publicKey: string;
  previous: readonly PreviousNetwork[];
  /**
   * Peers to probe before reading handshakes. `settle`: after changes were applied, when peers
   * being configured at the same moment may be waited for (Probe.wait).
   */
  probes?: (networks: readonly NetworkPlan[], opts?: { settle?: boolean }) => Probe[];
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
  /**
   * The host is thought to have nothing of ours (no networks recorded for it): try the first
   * converge in one round trip (hosts/fresh.ts), planned by input.planWith with these guessed facts.
   */
  fresh?: HostFacts;
  /** The host as this session just observed it, nothing changed since (the last pass's): no observe first. */
  observation?: HostObservation;
}

/**
 * Observe → plan → diff → apply+observe. Round trips: one when nothing differs (a resync), two
 * when something did (the observe after the changes runs in the apply's script), one for a fresh
 * host whose guessed facts hold (opts.fresh), none to start with when opts.observation is given.
 */
export async function converge(session: HostSession, input: ConvergeInput, previousPlanGuess: readonly NetworkPlan[] = [], opts: ConvergeOptions = {}): Promise<ConvergeResult> {
  let guess = namesOf(previousPlanGuess, input.previous);
  const timings: string[] = [];
  const timed = async <T>(what: string, p: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await p();
    } finally {
      timings.push(`${what} ${Math.round(performance.now() - t)}`);
    }
  };
  let obs = opts.observation;
  let applied: Step[] = [];
  let applyError: HostError | undefined;
  if (!obs && opts.fresh && input.planWith && input.previous.length === 0) {
    const guessed = input.planWith(opts.fresh);
    const fresh = freshApply(guessed, input.privateKey, input.publicKey, opts.fresh);
    if (fresh) {
      guess = namesOf(guessed, input.previous);
      await input.beforeApply?.(fresh.steps, guessed, assumedFreshHost(opts.fresh, guessed));
      const r = await timed("fresh", () => applyThenObserve(session, fresh.steps, { ...guess, probes: input.probes?.(guessed, { settle: true }) ?? [] }, { guard: fresh.guard, ...(input.log ? { log: input.log } : {}) }));
      if (r.skipped) input.log?.(`first converge in one round trip not taken: ${r.skipped}`);
      applied = r.done;
      applyError = r.error;
      obs = r.observation;
    }
  }
  if (!obs) {
    const firstProbes = opts.probeBeforePlan === false ? [] : (input.probes?.(previousPlanGuess) ?? []);
    obs = await timed("observe", () => observeHost(session, guess.ifaces, guess.nets, firstProbes));
  }
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
  // A first converge whose step failed: the host as it is after the failure, retried later.
  if (first.steps.length === 0 || applyError) {
    return { networks, observation: obs, applied, blockers: first.blockers, remaining: applyError ? first.steps : [], timings, ...(applyError ? { applyError } : {}) };
  }

  await input.beforeApply?.(first.steps, networks, obs);
  const r = await timed("apply+observe", () => applyThenObserve(session, first.steps, { ...names, probes: input.probes?.(networks, { settle: true }) ?? [] }, input.log ? { log: input.log } : {}));
  applied = [...applied, ...r.done];
  const after = r.observation ?? (await timed("observe", () => observeHost(session, names.ifaces, names.nets, input.probes?.(networks) ?? [])));
  const second = diffHost(diffInput, after);
  return { networks, observation: after, applied, blockers: second.blockers, remaining: second.steps, timings, ...(r.error ? { applyError: r.error } : {}) };
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
  const r = await applyThenObserve(session, steps, { ifaces, nets }, log ? { log } : {});
  if (r.error) throw r.error;
  return all(r.observation ?? (await observeHost(session, ifaces, nets)));
}
