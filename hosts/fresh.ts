// A first converge in one round trip. When the controller has reason to think a host has nothing
// of ours yet (no networks recorded for it), it plans from guessed host facts and sends one script:
// a guard (hosts/fresh-guard.ts) that checks on the host that nothing of ours is there and that the
// facts are the guessed ones, the steps a host without anything of these networks gets, and the
// observe. The controller then diffs the host as always: nothing left means converged in one
// round trip; a guard that applied nothing, or facts that turned out otherwise, an ordinary pass.
import type { HostFacts, NetworkPlan } from "../mesh/plan.js";
import { DEFAULT_UPLINK_MTU } from "../mesh/defaults.js";
import { diffHost, type AreaStep } from "./diff.js";
import { emptyObservation, type HostObservation } from "./observe.js";
import { guardArgs } from "./fresh-guard.js";

/**
 * Facts guessed for a host nothing is known of (the controller prefers the last host it
 * observed: fleets are alike): the planner's defaults for planning from manifests (uplink MTU
 * 1500, no systemd, dnsmasq there, systemd-resolved not the resolver, INPUT not dropping), and a
 * raw table, which `iptables -t raw` finds on every nftables host and on legacy hosts with the
 * module.
 */
export const DEFAULT_FRESH_FACTS: HostFacts = { uplinkMtu: DEFAULT_UPLINK_MTU, inputDrops: false, rawTable: true, systemd: false, resolver: { dnsmasq: true, resolvedStub: false } };

/** A host with the tools, Docker and the chains Docker makes, and nothing of ours: as the guessed facts have it. */
export function assumedFreshHost(facts: HostFacts, networks: readonly NetworkPlan[]): HostObservation {
  const obs = emptyObservation();
  for (const t of Object.keys(obs.tools) as Array<keyof HostObservation["tools"]>) obs.tools[t] = true;
  obs.dockerVersion = "0";
  obs.systemd = Boolean(facts.systemd);
  obs.resolver = facts.resolver ?? { dnsmasq: true, resolvedStub: false };
  obs.iptables.set("filter/DOCKER-USER", []);
  obs.iptables.set("nat/POSTROUTING", []);
  obs.iptables.set("filter/INPUT", []);
  obs.iptables.set("filter/FORWARD", []);
  if (facts.rawTable) obs.iptables.set("raw/PREROUTING", []);
  // A dual-stack mesh: Docker's ip6tables chains too (its ip6tables option is on by default since 27).
  if (networks.some((n) => n.subnetV6 !== undefined)) {
    for (const k of ["nat6/POSTROUTING", "filter6/INPUT", "filter6/FORWARD"]) obs.iptables.set(k, []);
    if (facts.dockerUserV6 !== false) obs.iptables.set("filter6/DOCKER-USER", []);
    if (facts.rawTableV6 ?? facts.rawTable) obs.iptables.set("raw6/PREROUTING", []);
  }
  for (const n of networks) obs.networks.set(n.docker.name, undefined);
  return obs;
}

export interface FreshApply {
  /** What a host without anything of these networks gets; a network is created by fresh_network. */
  steps: AreaStep[];
  /** fresh_guard's arguments. */
  guard: string[];
}

/**
 * The one-round-trip first converge for networks planned with `facts`: undefined when it cannot
 * be (nothing planned, or the plan is refused somewhere: the ordinary pass says why).
 */
export function freshApply(networks: readonly NetworkPlan[], privateKey: string, publicKey: string, facts: HostFacts): FreshApply | undefined {
  if (networks.length === 0) return undefined;
  // As if systemd ran the host, whatever the guess: the daemon_reload steps that gives run only
  // where it does (apply-prelude.sh), so a guess wrong about systemd costs no second pass.
  const d = diffHost({ networks, privateKey, publicKey }, assumedFreshHost({ ...facts, systemd: true }, networks));
  if (d.blockers.length || d.steps.length === 0) return undefined;
  // Rules come with wg-quick up (its PostUp lines, which pick ip6tables' chain on the host).
  const steps = d.steps.map((s) => (s.op === "ensure_network" ? { ...s, op: "fresh_network" as const } : s));
  const dns = networks.filter((n) => n.dns);
  const dnsmasq = facts.resolver?.dnsmasq !== false;
  const guard = guardArgs(
    {
      uplinkMtu: facts.uplinkMtu ?? DEFAULT_UPLINK_MTU,
      rawTable: Boolean(facts.rawTable),
      inputDrops: Boolean(facts.inputDrops),
      ...(dns.length ? { dnsmasq } : {}),
      ...(dns.length && dnsmasq ? { resolved: dns.some((n) => n.dns!.mode.mode === "resolved") } : {}),
      ...(networks.some((n) => n.subnetV6 !== undefined) ? { ipv6: { rawTable: Boolean(facts.rawTableV6 ?? facts.rawTable) } } : {}),
    },
    [...new Set(networks.map((n) => n.wireguard.interface))].sort(),
  );
  return { steps, guard };
}
