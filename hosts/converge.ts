// The steps of one converge on a host, each a helper the reconciler calls in order over one SSH
// session: observe → (plan: the caller's) → diff → apply+observe → diff. Round trips: one when
// nothing differs (a resync), two when something did (the observe after the changes runs in the
// apply's script), one for the first converge of a fresh host (hosts/fresh.ts).
import type { NetworkPlan } from "../mesh/plan.js";
import { applyThenObserve } from "./apply.js";
import { diffHost, type AreaStep, type Blocker, type PreviousNetwork } from "./diff.js";
import { HostError } from "./errors.js";
import { observeHost, type HostObservation, type Probe } from "./observe.js";
import type { HostSession } from "./ssh.js";
import type { Step } from "./steps.js";

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

/** What a diff needs beside the plan: the host's WireGuard keys and the networks it had. */
export interface HostKeys {
  privateKey: string;
  publicKey: string;
  previous: readonly PreviousNetwork[];
  /** A mesh still planned had IPv6 (its status says so): its IPv6 pieces are looked at, to be removed if no longer planned. */
  ipv6Before?: boolean;
}

/** The interfaces and Docker networks an observe looks at; `ipv6`: ip6tables and IPv6 routes too. */
export interface ObservedNames {
  ifaces: string[];
  nets: string[];
  /** A dual-stack mesh is planned, or was (its IPv6 pieces are found to be removed). */
  ipv6?: boolean;
}

export const namesOf = (networks: readonly NetworkPlan[], previous: readonly PreviousNetwork[], ipv6Before = false): ObservedNames => ({
  ifaces: [...new Set([...networks.map((n) => n.wireguard.interface), ...previous.map((p) => p.interface)])].sort(),
  nets: [...new Set([...networks.map((n) => n.docker.name), ...previous.flatMap((p) => (p.dockerNetwork ? [p.dockerNetwork] : []))])].sort(),
  ...(ipv6Before || networks.some((n) => n.subnetV6 !== undefined || n.docker.subnetV6 !== undefined || n.uplinkV6) || previous.some((p) => p.ipv6) ? { ipv6: true } : {}),
});

/** True when `b` names something `a` does not (an observe of `a` missed it). */
export const namesMissing = (a: ObservedNames, b: ObservedNames): boolean => b.ifaces.some((i) => !a.ifaces.includes(i)) || b.nets.some((n) => !a.nets.includes(n)) || (Boolean(b.ipv6) && !a.ipv6);

export function preflight(obs: HostObservation): HostError | undefined {
  const missing = (["wg", "wg-quick", "iptables", "ip", "docker"] as const).filter((t) => !obs.tools[t]);
  if (missing.length) {
    const pkgs = [...new Set(missing.map((t) => (t === "docker" ? "docker.io (or docker-ce)" : t === "ip" ? "iproute2" : t === "iptables" ? "iptables" : "wireguard-tools")))];
    return new HostError("MissingTools", `${missing.join(", ")} not found on the host; install ${pkgs.join(", ")} (e.g. apt-get install ${pkgs.map((p) => p.split(" ")[0]).join(" ")})`);
  }
  if (!obs.dockerVersion) return new HostError("DockerNotRunning", `Docker is not running: ${obs.dockerError ?? "no answer"}; start it (systemctl start docker)`);
  return undefined;
}

/** What the host needs to match the plan (`networks` empty: to lose everything of `keys.previous`). */
export function stepsFor(networks: readonly NetworkPlan[], keys: HostKeys, obs: HostObservation) {
  return diffHost({ networks, privateKey: keys.privateKey, publicKey: keys.publicKey, previous: keys.previous }, obs);
}

/**
 * Applies the steps and looks at the host after them (in the apply's script, probing
 * `look.probes`; again on its own, probing `look.again`, when that look did not come back), then
 * diffs again: what is still left.
 */
export async function applyAndCheck(
  session: HostSession,
  steps: readonly AreaStep[],
  networks: readonly NetworkPlan[],
  keys: HostKeys,
  look: { names: ObservedNames; probes: readonly Probe[]; again: readonly Probe[]; log?: (line: string) => void },
): Promise<{ applied: Step[]; applyError?: HostError; observation: HostObservation; blockers: Blocker[]; remaining: AreaStep[] }> {
  const r = await applyThenObserve(session, steps, { ...look.names, probes: look.probes }, look.log ? { log: look.log } : {});
  const observation = r.observation ?? (await observeHost(session, look.names, look.again));
  const after = stepsFor(networks, keys, observation);
  return { applied: r.done, ...(r.error ? { applyError: r.error } : {}), observation, blockers: after.blockers, remaining: after.steps };
}

/** Everything of ours for the given networks, as the host has it now: the steps that remove it. */
export async function teardownSteps(session: HostSession, previous: readonly PreviousNetwork[]): Promise<{ steps: AreaStep[]; observation: HostObservation }> {
  const names = namesOf([], previous);
  const observation = await observeHost(session, names);
  return { steps: stepsFor([], { privateKey: "", publicKey: "", previous }, observation).steps, observation };
}

/** Removes it; returns what is still left afterwards. */
export async function applyTeardown(session: HostSession, previous: readonly PreviousNetwork[], steps: readonly AreaStep[], log?: (line: string) => void): Promise<AreaStep[]> {
  const names = namesOf([], previous);
  const r = await applyThenObserve(session, steps, names, log ? { log } : {});
  if (r.error) throw r.error;
  return stepsFor([], { privateKey: "", publicKey: "", previous }, r.observation ?? (await observeHost(session, names))).steps;
}
