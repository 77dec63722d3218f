// Which address families a machine's uplink has, and so which pairs of machines can talk
// directly. A machine's uplink families are those of its endpoints: spec.endpoint (an IPv6
// address in brackets: IPv6; an IPv4 address or a DNS name: IPv4) and spec.endpointV6 beside an
// IPv4 one. A machine without an endpoint is behind NAT, which is IPv4. A pair talks directly
// when one side has an endpoint in a family the other side's uplink has (that side sends first
// and the other learns its address from the handshake, as with NAT); otherwise through a relay
// that can talk directly to both. With IPv4 endpoints only, this is the rule there always was:
// direct unless both are behind NAT.
//
// Pure and cheap: the planner asks it for every pair of a mesh.
import type { Machine } from "../api/types.generated.js";
import { ENDPOINT, ENDPOINT_V6 } from "../api/formats.js";

export type Family = 4 | 6;

/** What the rule needs of a machine: its endpoints as its peers use them. */
export interface Reach {
  /** Primary endpoint (either family); absent: behind NAT. */
  endpoint?: string;
  /** Second endpoint, IPv6, beside an IPv4 spec.endpoint. */
  endpointV6?: string;
}

/** The family of an endpoint already checked against ENDPOINT: a bracketed host is IPv6. */
export const endpointFamily = (endpoint: string): Family => (endpoint.startsWith("[") ? 6 : 4);

/** Families the machine's uplink has: 4 and/or 6 as bits 1 and 2 (a NAT'd machine: IPv4). */
function uplinkBits(m: Reach): number {
  if (m.endpoint === undefined) return 1;
  const primary = endpointFamily(m.endpoint) === 6 ? 2 : 1;
  return m.endpointV6 !== undefined && primary === 1 ? 3 : primary;
}

export function uplinkFamilies(m: Reach): Family[] {
  const bits = uplinkBits(m);
  return [...(bits & 1 ? [4 as const] : []), ...(bits & 2 ? [6 as const] : [])];
}

/**
 * The endpoint `from` configures for `to`: to's primary endpoint when from's uplink has its
 * family, else to's IPv6 one when from's uplink has IPv6; undefined when from cannot reach `to`
 * first (then `to` must send first, or a relay carries the pair).
 */
export function endpointFor(from: Reach, to: Reach): string | undefined {
  const bits = uplinkBits(from);
  if (to.endpoint !== undefined && bits & (endpointFamily(to.endpoint) === 6 ? 2 : 1)) return to.endpoint;
  if (to.endpointV6 !== undefined && to.endpoint !== undefined && endpointFamily(to.endpoint) === 4 && bits & 2) return to.endpointV6;
  return undefined;
}

/** Whether a and b talk directly (one of them can send to the other's endpoint). Symmetric. */
export const isDirect = (a: Reach, b: Reach): boolean => endpointFor(a, b) !== undefined || endpointFor(b, a) !== undefined;

/** Both behind NAT: the pair hole-punches or is relayed (controllers/nat-paths.ts). */
export const bothBehindNat = (a: Reach, b: Reach): boolean => a.endpoint === undefined && b.endpoint === undefined;

/**
 * A short key of what decides directness: machines with the same key are direct with the same
 * others. Lets the planner work per kind of machine instead of per machine.
 */
export function reachKind(m: Reach): string {
  if (m.endpoint === undefined) return "nat";
  const primary = endpointFamily(m.endpoint);
  return primary === 4 && m.endpointV6 !== undefined ? "dual" : `v${primary}`;
}

/** Whether some pair among these machines has a family gap: not direct, yet not both behind NAT. */
export function hasFamilyGap(members: readonly Reach[]): boolean {
  const kinds = new Map<string, Reach>();
  for (const m of members) if (!kinds.has(reachKind(m))) kinds.set(reachKind(m), m);
  const reps = [...kinds.values()];
  for (let i = 0; i < reps.length; i++) {
    for (let j = i; j < reps.length; j++) {
      const a = reps[i]!;
      const b = reps[j]!;
      if (!isDirect(a, b) && !bothBehindNat(a, b)) return true;
    }
  }
  return false;
}

/** A Machine's endpoints as far as directness goes, from its spec (ports do not matter; bad values count as absent). */
export function reachOfMachine(m: Machine): Reach {
  const endpoint = typeof m.spec.endpoint === "string" && ENDPOINT.test(m.spec.endpoint) ? m.spec.endpoint : undefined;
  const v6 = m.spec.endpointV6;
  const endpointV6 = endpoint !== undefined && endpointFamily(endpoint) === 4 && typeof v6 === "string" && ENDPOINT_V6.test(v6) ? v6 : undefined;
  return { ...(endpoint !== undefined ? { endpoint } : {}), ...(endpointV6 !== undefined ? { endpointV6 } : {}) };
}

/**
 * Whether `self` can carry some pair of the others: two of them that are not direct with each
 * other but are both direct with self (two NAT'd machines, for a machine with an IPv4 endpoint).
 */
export function carriesAPair(self: Reach, others: readonly Reach[]): boolean {
  const kinds = new Map<string, { rep: Reach; count: number }>();
  for (const m of others) {
    const k = reachKind(m);
    const e = kinds.get(k);
    if (e) e.count++;
    else kinds.set(k, { rep: m, count: 1 });
  }
  const list = [...kinds.values()].filter((k) => isDirect(self, k.rep));
  for (let i = 0; i < list.length; i++) {
    for (let j = i; j < list.length; j++) {
      if (i === j && list[i]!.count < 2) continue;
      if (!isDirect(list[i]!.rep, list[j]!.rep)) return true;
    }
  }
  return false;
}
