// Per-peer numbers for /metrics (issue 15): for each Machine, what its last look at the host (a
// converge's observe, or a Ready check) saw of each peer: latest handshake, bytes received and
// sent, and whether the pair goes through a relay.
//
// Trust: every label comes from the controller's own plan (mesh and machine names, which are
// object names in validated formats); the host's output only supplies numbers, matched to a
// peer by the public key the plan configured. Nothing the host prints becomes a label.
//
// Cardinality: a mesh of N machines has N·(N-1) pairs, each seen from both ends; at 1,000
// machines that is 999,000 pairs, ~4 million series. So each Machine keeps only its
// MAX_STORED_PER_MACHINE worst pairs (never handshaken first, then the oldest handshake) plus
// its totals, and /metrics exports at most --peer-metrics-max-pairs of those (the worst across
// the fleet); the rest are counted in dockmesh_peer_pairs_dropped.
import type { NetworkPlan } from "../mesh/plan.js";
import type { WgPeerState } from "../hosts/observe.js";

/** Pairs kept per Machine (its worst): bounds the controller's memory at N·64, not N². */
export const MAX_STORED_PER_MACHINE = 64;
/** Pairs exported on /metrics unless --peer-metrics-max-pairs says otherwise (~5 series each). */
export const DEFAULT_MAX_PAIRS = 1000;

export interface PeerSample {
  mesh: string;
  /** The peer Machine's name (from the plan). */
  peer: string;
  /** Reached through a relay: its handshake is the relay's; it has no bytes of its own. */
  relayed: boolean;
  /** Seconds since the epoch (host clock); 0: never. */
  latestHandshake: number;
  rxBytes?: number;
  txBytes?: number;
}

export interface MachinePeers {
  namespace: string;
  machine: string;
  /** Its worst pairs, at most MAX_STORED_PER_MACHINE (worst first). */
  peers: StoredPeers;
  /** All pairs of the machine, and the bytes over all its direct peers. */
  pairs: number;
  rxBytes: number;
  txBytes: number;
}

export type MachineTotals = Omit<MachinePeers, "peers">;

/**
 * A machine's stored pairs as columns, not one object each: at 1,000 machines there are 64,000,
 * and as objects they held ~4 MB besides their boxed numbers and out-of-object property arrays;
 * as columns 3.6 MB in all (heap snapshots, docs/benchmarks.md). Names are references to the
 * plan's strings.
 */
export class StoredPeers {
  private readonly meshes: string[];
  private readonly peers: string[];
  /** latestHandshake, rxBytes, txBytes per pair (NaN: no bytes read). */
  private readonly numbers: Float64Array;
  private readonly relayed: Uint8Array;

  constructor(samples: readonly PeerSample[]) {
    const n = samples.length;
    this.meshes = new Array<string>(n);
    this.peers = new Array<string>(n);
    this.numbers = new Float64Array(n * 3);
    this.relayed = new Uint8Array(n);
    samples.forEach((s, i) => {
      this.meshes[i] = s.mesh;
      this.peers[i] = s.peer;
      this.numbers[i * 3] = s.latestHandshake;
      this.numbers[i * 3 + 1] = s.rxBytes ?? NaN;
      this.numbers[i * 3 + 2] = s.txBytes ?? NaN;
      this.relayed[i] = s.relayed ? 1 : 0;
    });
  }

  get length(): number {
    return this.peers.length;
  }

  mesh(i: number): string {
    return this.meshes[i]!;
  }

  peer(i: number): string {
    return this.peers[i]!;
  }

  latestHandshake(i: number): number {
    return this.numbers[i * 3]!;
  }

  /** The pair at i as a PeerSample (a copy). */
  at(i: number): PeerSample {
    const rx = this.numbers[i * 3 + 1]!;
    const sample: PeerSample = { mesh: this.meshes[i]!, peer: this.peers[i]!, relayed: this.relayed[i] === 1, latestHandshake: this.latestHandshake(i) };
    if (!Number.isNaN(rx)) Object.assign(sample, { rxBytes: rx, txBytes: this.numbers[i * 3 + 2]! });
    return sample;
  }

  all(): PeerSample[] {
    return this.peers.map((_, i) => this.at(i));
  }
}

type WgPeers = ReadonlyMap<string, { peers: readonly Pick<WgPeerState, "publicKey" | "latestHandshake" | "rxBytes" | "txBytes">[] }>;

/** Worst first: never handshaken, then the oldest handshake; then by mesh and peer (stable output). */
export function worstFirst(a: PeerSample, b: PeerSample): number {
  return worstOrder(a.latestHandshake, a.mesh, a.peer, b.latestHandshake, b.mesh, b.peer);
}

function worstOrder(handshakeA: number, meshA: string, peerA: string, handshakeB: number, meshB: string, peerB: string): number {
  const ha = handshakeA || -1;
  const hb = handshakeB || -1;
  if (ha !== hb) return ha - hb;
  if (meshA !== meshB) return meshA < meshB ? -1 : 1;
  return peerA < peerB ? -1 : peerA > peerB ? 1 : 0;
}

/** The pairs of one machine from its plan and what `wg show` printed (matched by the planned key). */
export function peerSamples(networks: readonly NetworkPlan[], wg: WgPeers): PeerSample[] {
  const out: PeerSample[] = [];
  for (const net of networks) {
    const live = new Map((wg.get(net.wireguard.interface)?.peers ?? []).map((p) => [p.publicKey, p]));
    const handshake = new Map<string, number>();
    for (const p of net.wireguard.peers) {
      // A NAT'd peer being probed for a direct path is counted as relayed (below), once.
      if (p.path === "Probing") continue;
      const s = p.publicKey ? live.get(p.publicKey) : undefined;
      handshake.set(p.machine, s?.latestHandshake ?? 0);
      out.push({ mesh: net.meshNetwork, peer: p.machine, relayed: false, latestHandshake: s?.latestHandshake ?? 0, ...(s ? { rxBytes: s.rxBytes, txBytes: s.txBytes } : {}) });
    }
    for (const r of net.relayed) out.push({ mesh: net.meshNetwork, peer: r.machine, relayed: true, latestHandshake: handshake.get(r.via) ?? 0 });
    for (const u of net.unreachable) out.push({ mesh: net.meshNetwork, peer: u, relayed: false, latestHandshake: 0 });
  }
  return out;
}

export interface Exported {
  pairs: Array<PeerSample & { namespace: string; machine: string }>;
  /** Each machine's totals (not its stored pairs: the export is kept for a scrape's duration, and would keep them alive past their replacement). */
  machines: MachineTotals[];
  /** Pairs observed but not exported (over the cap, or past a machine's stored worst). */
  dropped: number;
}

export class PeerStats {
  private readonly byMachine = new Map<string, MachinePeers>();

  /** Replaces what is known of a machine (its meshes and peers as planned now). */
  record(namespace: string, machine: string, samples: readonly PeerSample[]): void {
    let rx = 0;
    let tx = 0;
    for (const s of samples) {
      rx += s.rxBytes ?? 0;
      tx += s.txBytes ?? 0;
    }
    const peers = new StoredPeers([...samples].sort(worstFirst).slice(0, MAX_STORED_PER_MACHINE));
    this.byMachine.set(`${namespace}/${machine}`, { namespace, machine, peers, pairs: samples.length, rxBytes: rx, txBytes: tx });
  }

  /** A deleted (or finalized) Machine: its series go. */
  forget(key: string): void {
    this.byMachine.delete(key);
  }

  get size(): number {
    return this.byMachine.size;
  }

  /** The pairs stored for a machine ("namespace/name"), worst first. */
  stored(key: string): PeerSample[] | undefined {
    return this.byMachine.get(key)?.peers.all();
  }

  /**
   * What /metrics shows: the maxPairs worst pairs of machines and peers that still exist, in
   * meshes that still exist (a Machine, a peer or a mesh deleted meanwhile disappears at once).
   */
  exported(maxPairs: number, exists: { machine(ns: string, name: string): boolean; mesh(ns: string, name: string): boolean }): Exported {
    const machines: MachineTotals[] = [];
    // Indexes first, copies only of the pairs kept: at 1,000 machines there are 64,000 candidates.
    const candidates: Array<{ i: number; m: MachinePeers }> = [];
    const limit = Math.max(0, maxPairs);
    let seen = 0;
    for (const [key, m] of this.byMachine) {
      if (!exists.machine(m.namespace, m.machine)) {
        this.byMachine.delete(key);
        continue;
      }
      machines.push({ namespace: m.namespace, machine: m.machine, pairs: m.pairs, rxBytes: m.rxBytes, txBytes: m.txBytes });
      let live = 0;
      for (let i = 0; i < m.peers.length; i++) {
        if (!exists.machine(m.namespace, m.peers.peer(i)) || !exists.mesh(m.namespace, m.peers.mesh(i))) continue;
        live++;
        // A machine's list is sorted worst first: more than `limit` of it can never be kept.
        if (live <= limit) candidates.push({ i, m });
      }
      seen += m.pairs - (m.peers.length - live);
    }
    const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    const worst = ({ m: { peers: a }, i }: (typeof candidates)[number], { m: { peers: b }, i: j }: (typeof candidates)[number]) =>
      worstOrder(a.latestHandshake(i), a.mesh(i), a.peer(i), b.latestHandshake(j), b.mesh(j), b.peer(j));
    candidates.sort((a, b) => worst(a, b) || byName(a.m.namespace, b.m.namespace) || byName(a.m.machine, b.m.machine));
    const pairs = candidates.slice(0, limit).map(({ i, m }) => ({ ...m.peers.at(i), namespace: m.namespace, machine: m.machine }));
    return { pairs, machines, dropped: seen - pairs.length };
  }
}
