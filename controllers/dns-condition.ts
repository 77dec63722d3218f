// The Machine's DNSReady condition: whether the mesh DNS works for this host, decided from what
// the converge found (the resolver on the host) and what the records half sees (the host's event
// stream, its records held or withdrawn). Pure. Not part of Ready: a host whose resolver cannot
// run still carries the mesh's traffic, and says so here. No counts or times in messages.
import type { NetworkPlan } from "../mesh/plan.js";
import type { DnsHostState } from "./dns.js";
import type { ConditionInput } from "./machine-conditions.js";
import { resolverMissing } from "../mesh/dns-plan.js";
import type { HostObservation } from "../hosts/observe.js";
import type { AreaStep } from "../hosts/diff.js";

export const DNS_CONDITION = "DNSReady" as const;

/** One mesh's resolver as DNSReady names it. */
export const servingText = (zone: string, address: string, containers: string): string => `${zone} at ${address} (containers: ${containers})`;

/** What a converge found of the resolvers (kept between converges, for the Ready check's path). */
export interface ResolverVerdict {
  /** Meshes with DNS on this host: "zone at address (containers: mode)", sorted. */
  serving: string[];
  /** Why the resolver does not run as planned, or undefined. */
  problem?: { reason: string; message: string };
}

/** The converge's side: from the plan, the host's final observation and what is left to do. */
export function resolverVerdict(networks: readonly NetworkPlan[], obs: HostObservation | undefined, remaining: readonly AreaStep[] = []): ResolverVerdict | undefined {
  const withDns = networks.filter((n) => n.dns);
  if (withDns.length === 0) return undefined;
  const serving = withDns.map((n) => servingText(n.dns!.zone, n.dns!.address, n.dns!.mode.mode)).sort();
  if (!obs) return { serving };
  const missing = resolverMissing(obs.resolver);
  if (missing) return { serving, problem: { reason: "ResolverMissing", message: missing } };
  const notRunning = withDns
    .filter((n) => !obs.ifaces.get(n.wireguard.interface)?.dnsRunning)
    .map((n) => n.meshNetwork)
    .sort();
  const left = [...new Set(remaining.filter((s) => s.area === "dns").map((s) => s.display))].sort();
  if (notRunning.length || left.length) {
    const what = [...(notRunning.length ? [`the resolver of ${notRunning.join(", ")} does not run`] : []), ...(left.length ? [`still to do: ${left.join("; ")}`] : [])];
    return { serving, problem: { reason: "ResolverNotRunning", message: `${what.join("; ")}; see the controller's log for dnsmasq's message (is port 53 on the bridge gateway taken?)` } };
  }
  const unavailable = withDns.filter((n) => n.dns!.mode.unavailable).sort((a, b) => (a.meshNetwork < b.meshNetwork ? -1 : 1));
  if (unavailable.length) {
    return { serving, problem: { reason: "ContainersModeUnavailable", message: unavailable.map((n) => `MeshNetwork ${n.meshNetwork}: ${n.dns!.mode.reason}`).join("; ") } };
  }
  return { serving };
}

/**
 * DNSReady from the converge's verdict (undefined: no mesh of this machine serves DNS, and the
 * condition is removed) and the records half's view of the host.
 */
export function dnsCondition(verdict: ResolverVerdict | undefined, state: DnsHostState | undefined, graceSeconds: number): ConditionInput | undefined {
  if (!verdict) return undefined;
  const type = DNS_CONDITION;
  if (state?.withdrawn) {
    return {
      type,
      status: "False",
      reason: "RecordsWithdrawn",
      message: `the controller has not followed this host's containers for longer than ${graceSeconds}s (spec.dns.unreachableGraceSeconds): their names are withdrawn from the other hosts' resolvers until it is reached again`,
    };
  }
  if (state?.stream === "Unreachable") {
    return {
      type,
      status: "False",
      reason: "RecordsHeld",
      message: `the controller cannot follow this host's containers (its event stream is down): their names stay on the other hosts' resolvers for up to ${graceSeconds}s, then are withdrawn`,
    };
  }
  if (verdict.problem) return { type, status: "False", ...verdict.problem };
  if (state?.stream !== "Connected") {
    return { type, status: "Unknown", reason: "RecordsPending", message: `resolver running (${verdict.serving.join(", ")}); waiting for the first look at the host's containers` };
  }
  return { type, status: "True", reason: "Serving", message: verdict.serving.join(", ") };
}
