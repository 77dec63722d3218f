// The picture `dockmesh graph` draws: machines as nodes, links as edges, each edge coloured by
// its last handshake. Built from Machines and MeshNetworks as the API has them; pure (no I/O), so
// the same objects always give the same graph (everything sorted).
//
// Status is untrusted input (docs/security.md): a peer name that is no member of the mesh is
// left out, text is kept as text (the renderers escape it, mesh/graph-render.ts), and what is read
// is bounded (MAX_GRAPH_MACHINES, MAX_PEERS_READ).
import type { Machine, MeshNetwork } from "../api/types.generated.js";

/**
 * The health of a link, from the peer states the controller writes in Machine
 * status.networks[].peers[].state (controllers/machine-conditions.ts):
 * - fresh: Connected (a handshake within 3 minutes) or Relayed (the relay leg is Connected);
 * - stale: Stale (the last handshake is older than 3 minutes: the link was up, and is not now);
 * - never: NoHandshake (none yet) or Unreachable (both behind NAT, no relay exists);
 * - unknown: neither end reports the other (not observed yet, or a state this version does not know).
 * Both ends report a link; the worse report wins (never > stale > fresh). A relayed link is no
 * better than either of its two legs through the relay.
 */
export type LinkHealth = "fresh" | "stale" | "never" | "unknown";

export const PEER_STATE_HEALTH: Readonly<Record<string, LinkHealth>> = {
  Connected: "fresh",
  Relayed: "fresh",
  Stale: "stale",
  NoHandshake: "never",
  Unreachable: "never",
};

const RANK: Record<LinkHealth, number> = { unknown: -1, fresh: 0, stale: 1, never: 2 };

export function worse(a: LinkHealth, b: LinkHealth): LinkHealth {
  return RANK[b] > RANK[a] ? b : a;
}

/** More machines than this make a picture nobody can read (and a dot run of minutes): narrow with --mesh. */
export const MAX_GRAPH_MACHINES = 200;
/** Peers read per Machine and mesh; the controller lists at most 50 (MAX_LISTED_PEERS), so more is a forged status. */
export const MAX_PEERS_READ = 1000;
/** Longest text kept for any one label line (the renderers cut it with "…"). */
export const MAX_LABEL_CHARS = 80;

export interface GraphNode {
  name: string;
  /** Subnet per mesh drawn, sorted by mesh. */
  subnets: { mesh: string; subnet: string }[];
  /** spec.endpoint; undefined: behind NAT. */
  endpoint?: string;
  /** The Ready condition: "True", "False", "Unknown", or undefined when there is none yet. */
  ready?: string;
  readyReason?: string;
}

export interface GraphEdge {
  mesh: string;
  /** The two machines, a < b. */
  a: string;
  b: string;
  /** The relay the pair talks through (both behind NAT). */
  via?: string;
  /** Both behind NAT, and no relay exists. */
  noRelay?: boolean;
  health: LinkHealth;
}

export interface MeshGraph {
  /** Meshes drawn, sorted. */
  meshes: string[];
  nodes: GraphNode[];
  /** Sorted by mesh, then a, then b. */
  edges: GraphEdge[];
}

export class GraphTooLargeError extends Error {}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const pairKey = (mesh: string, a: string, b: string) => (a < b ? `${mesh}\u0000${a}\u0000${b}` : `${mesh}\u0000${b}\u0000${a}`);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/**
 * The graph of the given meshes (all of them) over the given machines. A machine is drawn when it
 * is a member of a drawn mesh (in the mesh's status.allocations, or with a status.networks entry
 * for it); with no mesh at all, every machine is drawn, without edges.
 */
export function buildMeshGraph(meshes: readonly MeshNetwork[], machines: readonly Machine[]): MeshGraph {
  const known = new Map(machines.map((m) => [m.metadata.name ?? "", m]));
  const meshNames = meshes.map((m) => m.metadata.name ?? "").sort(byString);
  const members = new Map<string, Set<string>>(meshNames.map((n) => [n, new Set()]));
  const subnets = new Map<string, Map<string, string>>(); // machine → mesh → subnet

  const setSubnet = (machine: string, mesh: string, subnet: string | undefined, prefer: boolean) => {
    if (!subnet) return;
    const per = subnets.get(machine) ?? new Map<string, string>();
    subnets.set(machine, per);
    if (prefer || !per.has(mesh)) per.set(mesh, subnet);
  };

  for (const mesh of meshes) {
    const name = mesh.metadata.name ?? "";
    for (const a of (Array.isArray(mesh.status?.allocations) ? mesh.status.allocations : []).slice(0, MAX_PEERS_READ)) {
      const m = str(a?.machine);
      if (!m || !known.has(m)) continue;
      members.get(name)!.add(m);
      setSubnet(m, name, str(a.subnet), false);
    }
  }
  for (const m of machines) {
    const name = m.metadata.name ?? "";
    for (const n of Array.isArray(m.status?.networks) ? m.status.networks : []) {
      const mesh = str(n?.meshNetwork);
      if (!mesh || !members.has(mesh)) continue;
      members.get(mesh)!.add(name);
      // What the host has wins over the mesh's allocation (they differ only while it moves).
      setSubnet(name, mesh, str(n.subnet), true);
    }
  }

  const drawn = meshes.length ? new Set([...members.values()].flatMap((s) => [...s])) : new Set(known.keys());
  if (drawn.size > MAX_GRAPH_MACHINES) {
    throw new GraphTooLargeError(`${drawn.size} machines are more than a graph can show (at most ${MAX_GRAPH_MACHINES}); draw one mesh at a time with --mesh, or one namespace with -n`);
  }

  // Reports: what each end says of the other, per mesh and pair.
  const health = new Map<string, LinkHealth>();
  const via = new Map<string, string>();
  const noRelay = new Set<string>();
  // NAT'd pairs whose ends say they talk directly (issue 19): no relay is drawn between them.
  const directPairs = new Set<string>();
  for (const m of machines) {
    const self = m.metadata.name ?? "";
    if (!drawn.has(self)) continue;
    for (const n of Array.isArray(m.status?.networks) ? m.status.networks : []) {
      const mesh = str(n?.meshNetwork);
      if (!mesh || !members.get(mesh)?.has(self)) continue;
      for (const p of (Array.isArray(n.peers) ? n.peers : []).slice(0, MAX_PEERS_READ)) {
        const peer = str(p?.machine);
        if (!peer || peer === self || !members.get(mesh)!.has(peer)) continue;
        const key = pairKey(mesh, self, peer);
        const h = PEER_STATE_HEALTH[String(p.state)] ?? "unknown";
        health.set(key, worse(health.get(key) ?? "unknown", h));
        const v = str(p.via);
        if (v && !via.has(key)) via.set(key, v);
        if (p.state === "Unreachable") noRelay.add(key);
        if (p.path === "Direct") directPairs.add(key);
      }
    }
  }
  // The mesh's own list of relayed pairs names the relay first; reports fill in the rest.
  for (const mesh of meshes) {
    const name = mesh.metadata.name ?? "";
    for (const r of (Array.isArray(mesh.status?.relays) ? mesh.status.relays : []).slice(0, MAX_PEERS_READ)) {
      const [a, b] = Array.isArray(r?.machines) ? r.machines : [];
      const v = str(r?.via);
      if (typeof a === "string" && typeof b === "string" && v && members.get(name)!.has(a) && members.get(name)!.has(b)) via.set(pairKey(name, a, b), v);
    }
    for (const u of (Array.isArray(mesh.status?.unreachablePairs) ? mesh.status.unreachablePairs : []).slice(0, MAX_PEERS_READ)) {
      const [a, b] = typeof u === "string" ? u.split("<->") : [];
      if (a && b && members.get(name)!.has(a) && members.get(name)!.has(b)) noRelay.add(pairKey(name, a, b));
    }
  }

  const edges: GraphEdge[] = [];
  for (const mesh of meshNames) {
    const ms = [...members.get(mesh)!].sort(byString);
    for (let i = 0; i < ms.length; i++) {
      for (let j = i + 1; j < ms.length; j++) {
        const a = ms[i]!;
        const b = ms[j]!;
        const key = pairKey(mesh, a, b);
        let h = health.get(key) ?? "unknown";
        const direct = directPairs.has(key);
        const v = direct ? undefined : via.get(key);
        const relayless = noRelay.has(key) && !v && !direct;
        if (relayless) h = "never";
        else if (v && v !== a && v !== b && members.get(mesh)!.has(v)) {
          // Traffic crosses both legs: the pair is no better than the worse of them.
          for (const leg of [pairKey(mesh, a, v), pairKey(mesh, v, b)]) h = worse(h, health.get(leg) ?? "unknown");
        }
        edges.push({ mesh, a, b, ...(v ? { via: v } : {}), ...(relayless ? { noRelay: true } : {}), health: h });
      }
    }
  }

  const nodes: GraphNode[] = [...drawn].sort(byString).map((name) => {
    const m = known.get(name)!;
    const ready = (Array.isArray(m.status?.conditions) ? m.status.conditions : []).find((c) => c?.type === "Ready");
    const per = subnets.get(name) ?? new Map<string, string>();
    return {
      name,
      subnets: [...per.entries()].sort((x, y) => byString(x[0], y[0])).map(([mesh, subnet]) => ({ mesh, subnet })),
      ...(str(m.spec?.endpoint) ? { endpoint: m.spec.endpoint! } : {}),
      ...(str(ready?.status) ? { ready: ready!.status } : {}),
      ...(str(ready?.reason) ? { readyReason: ready!.reason } : {}),
    };
  });
  return { meshes: meshNames, nodes, edges };
}
