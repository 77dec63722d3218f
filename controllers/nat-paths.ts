// NAT↔NAT direct paths (issue 19). Two members behind NAT reach each other through a relay by
// default; where their NATs map a port the same way for every destination (endpoint-independent
// mapping, as Linux MASQUERADE does), each can reach the other through the mapping a public peer
// sees: the public peer's `wg show` lists where the NAT'd peer's packets arrive from.
//
// Per pair, a small state machine shared by the two sides' reconciles (one process):
//   Probing: each side gets the other as a peer at its mapping, with a keepalive and no
//            addresses (the relay still carries the subnet), so both send at once and open
//            their NATs to each other;
//   Direct:  a handshake came within the bound; each side moves the other's subnet to it;
//   Failed:  no handshake within PROBE_BOUND_MS once both sides had the probe (or a direct
//            path lost its handshake): relayed, until either mapping changes.
// A mapping that changes (a NAT rebinding, a new public address) starts a new probe; meanwhile
// the relay carries the pair again. Memory only: after a restart, a pair whose host still shows a
// direct handshake stays Direct; a failure is tried once more.
//
// Everything here is input from hosts: a mapping is used only when it is an IPv4 address and port
// that is not loopback, link-local, multicast or unspecified. A host that lies about a mapping
// can at most make a peer send handshakes there: a path goes direct only on a handshake, which
// needs the peer's private key.
import { isIPv4 } from "node:net";
import type { Machine } from "../api/types.generated.js";
import type { Member, MeshView, NatPath } from "../mesh/plan.js";
import type { WgInterfaceState, WgPeerState } from "../hosts/observe.js";
import { formatTime } from "../runtime/conditions.js";
import { isFreshHandshake } from "./machine-conditions.js";

/** Longest wait for a handshake once both sides have the probe. */
export const PROBE_BOUND_MS = 5_000;
/** Longest wait for the second side to take up a probe the first has. */
export const PROBE_START_BOUND_MS = 30_000;
/** How often a machine with a pair probing looks again. */
export const PROBE_POLL_MS = 1_000;

export type PathPhase = "Direct" | "Probing" | "Relayed";

/** The decision for one NAT'd pair, as seen from one side. */
export interface PathDecision {
  path: PathPhase;
  /** The peer's mapping, for Direct and Probing. */
  endpoint?: string;
  /** Why, for status; stable text (no times), so a look that changes nothing writes nothing. */
  reason: string;
  /** Milliseconds since the epoch when the pair took this path. */
  since: number;
}

interface PairRecord {
  /** The two mappings this record is about, "a b" in name order of the pair. */
  mappings: string;
  phase: "Probing" | "Direct" | "Failed";
  since: number;
  reason: string;
  /** Side → when its host was first seen with the probe peer configured. */
  applied: Map<string, number>;
}

/** An IPv4 host:port fit to be a WireGuard endpoint for another host, or undefined. */
export function mappingOf(endpoint: string | undefined): string | undefined {
  if (endpoint === undefined || endpoint.length > 21) return undefined;
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(endpoint);
  if (!m || !isIPv4(m[1]!)) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  const [a, b] = m[1]!.split(".").map(Number) as [number, number];
  if (a === 0 || a === 127 || a >= 224 || (a === 169 && b === 254)) return undefined;
  return endpoint;
}

const pairKey = (ns: string, mesh: string, a: string, b: string) => (a < b ? `${ns}/${mesh}/${a}/${b}` : `${ns}/${mesh}/${b}/${a}`);

export class NatPaths {
  /**
   * ns/mesh/machine → observer (a public member) → where that observer sees its packets come
   * from, since when it has seen that, and when it last looked (seconds).
   */
  private readonly seen = new Map<string, Map<string, { endpoint: string; since: number; at: number }>>();
  private readonly pairs = new Map<string, PairRecord>();
  private readonly listeners = new Set<(ns: string, machines: readonly string[]) => void>();
  private readonly versions = new Map<string, number>();

  /** Moves on whenever machines are told a mapping or a pair's path changed (part of a NAT'd machine's plan hash). */
  version(ns: string): number {
    return this.versions.get(ns) ?? 0;
  }

  /** Called with machines whose pairs should be looked at again (a mapping or a pair's path changed). */
  onChange(fn: (ns: string, machines: readonly string[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Tells the machines to look again; the version moves so that their plan hash does too. Nobody to tell: nothing moves. */
  private notify(ns: string, machines: readonly string[]): void {
    if (!machines.length) return;
    this.versions.set(ns, this.version(ns) + 1);
    for (const fn of this.listeners) fn(ns, machines);
  }

  /**
   * What a public member's host showed of its NAT'd peers: the endpoint each one's packets came
   * from, for those with a fresh handshake (others are forgotten for this observer). `natMembers`:
   * the mesh's members behind NAT, told when a mapping changed.
   */
  observed(ns: string, mesh: string, observer: string, peers: ReadonlyArray<{ machine: string; live?: WgPeerState }>, nowS: number, natMembers: () => readonly string[]): void {
    let changed = false;
    for (const { machine, live } of peers) {
      const key = `${ns}/${mesh}/${machine}`;
      const before = this.describe(key);
      const mapping = live && isFreshHandshake(live.latestHandshake, nowS) ? mappingOf(live.endpoint) : undefined;
      let by = this.seen.get(key);
      if (mapping) {
        if (!by) {
          by = new Map();
          this.seen.set(key, by);
        }
        const old = by.get(observer);
        by.set(observer, { endpoint: mapping, since: old?.endpoint === mapping ? old.since : nowS, at: nowS });
      } else if (by) {
        by.delete(observer);
        if (!by.size) this.seen.delete(key);
      }
      if (this.describe(key) !== before) changed = true;
    }
    if (changed) this.notify(ns, natMembers());
  }

  private describe(key: string): string {
    return JSON.stringify(this.mappingAt(key));
  }

  /** A machine's mapping as the public members see it: one endpoint, several (it maps per destination), or none yet. */
  mapping(ns: string, mesh: string, machine: string): { endpoint?: string; perDestination?: string[] } {
    return this.mappingAt(`${ns}/${mesh}/${machine}`);
  }

  /**
   * Observers that disagree mean a NAT that maps per destination, unless one of them has not
   * looked since the newest value appeared: then it is behind (a rebinding seen by one public
   * member first, or a member that left the mesh and looks no more), and the newest value holds.
   */
  private mappingAt(key: string): { endpoint?: string; perDestination?: string[] } {
    const by = this.seen.get(key);
    if (!by?.size) return {};
    const seen = [...by.values()];
    const newest = Math.max(...seen.map((o) => o.since));
    const all = [...new Set(seen.filter((o) => o.at >= newest).map((o) => o.endpoint))].sort();
    return all.length === 1 ? { endpoint: all[0]! } : { perDestination: all };
  }

  /**
   * The path from `self` to `peer` (both behind NAT), given what self's host shows of the direct
   * peer (`live`: its entry in `wg show`, when configured). Moves the pair's record on.
   */
  decide(ns: string, mesh: string, self: string, peer: string, live: WgPeerState | undefined, now: number, enabled: boolean): PathDecision {
    const key = pairKey(ns, mesh, self, peer);
    let rec = this.pairs.get(key);
    if (!enabled) return this.settle(key, rec, "Failed", "spec.natTraversal of the MeshNetwork is Relay", now, "disabled");
    const nowS = Math.floor(now / 1000);
    const liveFresh = live !== undefined && isFreshHandshake(live.latestHandshake, nowS);
    const mine = this.mapping(ns, mesh, self);
    const theirs = this.mapping(ns, mesh, peer);
    const perDest = (name: string, m: { perDestination?: string[] }) =>
      m.perDestination ? `the NAT in front of ${name} maps per destination: public peers see it at ${m.perDestination.slice(0, 4).join(", ")}` : undefined;
    // In name order, so both sides of the pair give the shared record the same reason.
    const blocked = self < peer ? (perDest(self, mine) ?? perDest(peer, theirs)) : (perDest(peer, theirs) ?? perDest(self, mine));
    if (blocked) return this.settle(key, rec, "Failed", blocked, now, `blocked: ${blocked}`);
    if (!mine.endpoint || !theirs.endpoint) {
      // No mapping known (a restart, or no public peer has a handshake with one of them yet): a
      // direct path the host still shows working stays; nothing new is tried.
      if (rec?.phase === "Direct" || (!rec && liveFresh && live?.endpoint && live.allowedIPs.length)) {
        if (!rec) this.pairs.set(key, (rec = { mappings: "", phase: "Direct", since: now, reason: "direct (found on the host)", applied: new Map() }));
        if (liveFresh || now - rec.since < PROBE_BOUND_MS) return { path: "Direct", endpoint: live?.endpoint ?? theirs.endpoint ?? "", reason: rec.reason, since: rec.since };
      }
      const who = [self, peer]
        .filter((x) => (x === self ? !mine.endpoint : !theirs.endpoint))
        .sort()
        .join(" and ");
      return this.settle(key, rec, "Failed", `no NAT mapping of ${who} known yet: no public member has a fresh handshake with it`, now, "unknown");
    }
    const mappings = self < peer ? `${mine.endpoint} ${theirs.endpoint}` : `${theirs.endpoint} ${mine.endpoint}`;
    if (!rec || (rec.mappings !== mappings && rec.mappings !== "")) {
      const between = mappings.replace(" ", " and ");
      const why = rec?.phase === "Direct" ? `a NAT mapping changed: probing between ${between}, relayed meanwhile` : `probing between ${between}, relayed meanwhile`;
      rec = { mappings, phase: "Probing", since: now, reason: why, applied: new Map() };
      this.pairs.set(key, rec);
      this.notify(ns, [peer]);
    } else if (rec.mappings === "") {
      rec.mappings = mappings; // a Direct pair found on the host after a restart, now with its mappings known
    }
    if (rec.phase === "Failed") return { path: "Relayed", reason: rec.reason, since: rec.since };
    if (rec.phase === "Direct") {
      if (live && !liveFresh && now - rec.since > PROBE_BOUND_MS)
        return this.settle(key, rec, "Failed", `the direct path between ${mappings.replace(" ", " and ")} lost its handshake`, now, mappings, peer);
      return { path: "Direct", endpoint: theirs.endpoint, reason: rec.reason, since: rec.since };
    }
    // Probing: configured on this side once its host has the peer at all (a NAT'd peer is a
    // WireGuard peer of a NAT'd machine only for a direct path or a probe).
    if (live && !rec.applied.has(self)) rec.applied.set(self, now);
    if (live && live.latestHandshake > 0 && live.latestHandshake * 1000 >= rec.since - 1000 && liveFresh) {
      return this.settle(key, rec, "Direct", `direct between ${mappings.replace(" ", " and ")}`, now, mappings, peer, theirs.endpoint);
    }
    const a = rec.applied.get(self);
    const b = rec.applied.get(peer);
    if (a !== undefined && b !== undefined && now - Math.max(a, b) > PROBE_BOUND_MS) {
      return this.settle(key, rec, "Failed", `no handshake within ${PROBE_BOUND_MS / 1000} s between ${mappings.replace(" ", " and ")}: a NAT maps per destination or filters`, now, mappings, peer);
    }
    if ((a === undefined || b === undefined) && now - rec.since > PROBE_START_BOUND_MS) {
      const late = [self, peer]
        .filter((x) => !rec.applied.has(x))
        .sort()
        .join(" and ");
      return this.settle(key, rec, "Failed", `${late} did not take up the probe within ${PROBE_START_BOUND_MS / 1000} s`, now, mappings, peer);
    }
    return { path: "Probing", endpoint: theirs.endpoint, reason: rec.reason, since: rec.since };
  }

  /** Moves a pair to Direct or Failed (telling the other side), and the decision that follows. */
  private settle(key: string, rec: PairRecord | undefined, phase: "Direct" | "Failed", reason: string, now: number, mappings: string, other?: string, endpoint = ""): PathDecision {
    if (!rec || rec.phase !== phase || rec.reason !== reason || rec.mappings !== mappings) {
      const next: PairRecord = { mappings, phase, since: rec?.phase === phase ? rec.since : now, reason, applied: rec?.applied ?? new Map<string, number>() };
      this.pairs.set(key, next);
      rec = next;
      this.notify(key.split("/")[0]!, other ? [other] : []);
    }
    if (phase === "Direct") return { path: "Direct", endpoint, reason: rec.reason, since: rec.since };
    return { path: "Relayed", reason: rec.reason, since: rec.since };
  }

  /** A machine deleted: its pairs and what it saw or was seen at go. */
  forgetMachine(ns: string, machine: string): void {
    for (const [key] of this.pairs) {
      const parts = key.split("/");
      if (parts[0] === ns && (parts[2] === machine || parts[3] === machine)) this.pairs.delete(key);
    }
    for (const [key, by] of this.seen) {
      if (!key.startsWith(`${ns}/`)) continue;
      if (key.endsWith(`/${machine}`)) this.seen.delete(key);
      else if (by.delete(machine) && !by.size) this.seen.delete(key);
    }
  }
}

/**
 * NAT↔NAT paths from what a host shows. A public member tells
 * where its NAT'd peers' packets come from (their NAT mappings); a NAT'd member gets, per other
 * NAT'd member, the path decided for the pair. Views of meshes with fewer than two NAT'd
 * members are returned as they are.
 */
export function natPathViews(paths: NatPaths, m: Machine, views: readonly MeshView[], wg: ReadonlyMap<string, Pick<WgInterfaceState, "peers">>, now: number): MeshView[] {
  const ns = m.metadata.namespace ?? "default";
  const self = m.metadata.name ?? "";
  return views.map((v) => {
    const me = v.members.find((x) => x.name === self);
    const nat = v.members.filter((x) => !x.endpoint && x.subnet);
    if (!me || nat.length < 2) return v;
    const byKey = new Map((wg.get(v.mesh.interface)?.peers ?? []).map((p) => [p.publicKey, p]));
    const liveOf = (x: Member) => (x.publicKey ? byKey.get(x.publicKey) : undefined);
    if (me.endpoint) {
      // Mappings matter only where pairs may go direct: a Relay mesh's would only requeue its NAT'd members.
      if (v.mesh.natTraversal !== "Relay")
        paths.observed(
          ns,
          v.mesh.name,
          self,
          nat.map((x) => ({ machine: x.name, live: liveOf(x) })),
          Math.floor(now / 1000),
          () => nat.map((x) => x.name),
        );
      return v;
    }
    const natPaths = new Map<string, NatPath>();
    for (const p of nat) {
      if (p.name === self) continue;
      const d = paths.decide(ns, v.mesh.name, self, p.name, liveOf(p), now, v.mesh.natTraversal !== "Relay");
      natPaths.set(p.name, { path: d.path, ...(d.endpoint ? { endpoint: d.endpoint } : {}), reason: d.reason, since: formatTime(d.since) });
    }
    return { ...v, natPaths };
  });
}
