// The fleet on /metrics, registered into the process's registry (runtime/metrics.ts):
// - computed from the Machine informer's cache at scrape time: dockmesh_machines{condition,status},
//   dockmesh_peers{namespace,machine} and dockmesh_peers_recent_handshake{namespace,machine};
// - per peer (controllers/peer-stats.ts), as each machine's last look at its host saw them:
//   dockmesh_peer_last_handshake_age_seconds, dockmesh_peer_handshake_stale,
//   dockmesh_peer_receive_bytes_total, dockmesh_peer_transmit_bytes_total and dockmesh_peer_relayed
//   {namespace,mesh,machine,peer}, capped at maxPeerPairs pairs (the worst handshakes; a mesh of
//   N machines has N·(N-1) pairs: ~4 million series at 1,000), dockmesh_peer_pairs_dropped for
//   the rest, and per-machine byte totals that are never capped.
import { Counter, Gauge, type Registry } from "prom-client";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { CONNECTED_HANDSHAKE_AGE_S, MACHINE_CONDITION_TYPES, isFreshHandshake, type PeerState } from "./machine-conditions.js";
import { DEFAULT_MAX_PAIRS, MAX_STORED_PER_MACHINE, type Exported, type PeerStats } from "./peer-stats.js";

const CONDITION_STATUSES = ["True", "False", "Unknown"] as const;

/** A peer has a recent handshake when the controller last saw it in this state (a handshake within 3 minutes). */
const RECENT_PEER_STATE: PeerState = "Connected";

const PEER_LABELS = ["namespace", "mesh", "machine", "peer"] as const;

export interface FleetMetricsOptions {
  /** Per-peer pairs exported at most (default DEFAULT_MAX_PAIRS; 0: none, only per-machine totals). */
  maxPeerPairs?: number;
  /** Seconds since the epoch, for handshake ages (default: the system clock). */
  nowS?: () => number;
}

export class FleetMetrics {
  private machines: () => readonly Machine[] = () => [];
  private peers: { stats: PeerStats; meshes: () => readonly MeshNetwork[] } | undefined;
  private peerScrape: { at: number; data: Exported } | undefined;

  constructor(
    private readonly registry: Registry,
    opts: FleetMetricsOptions = {},
  ) {
    const registers = [registry];
    const machines = () => this.machines();
    new Gauge({
      name: "dockmesh_machines",
      help: "Machines by condition type and status (a Machine without the condition counts as Unknown).",
      labelNames: ["condition", "status"],
      registers,
      collect() {
        this.reset();
        const counts = machineConditionCounts(machines());
        for (const [key, n] of counts) {
          const [condition, status] = JSON.parse(key) as [string, string];
          this.set({ condition, status }, n);
        }
      },
    });
    new Gauge({
      name: "dockmesh_peers_recent_handshake",
      help: "Peers of a Machine (over all its meshes) with a WireGuard handshake in the last 3 minutes, as of its last reconcile.",
      labelNames: ["namespace", "machine"],
      registers,
      collect() {
        this.reset();
        for (const m of machines()) this.set({ namespace: m.metadata.namespace ?? "", machine: m.metadata.name ?? "" }, recentPeers(m));
      },
    });
    new Gauge({
      name: "dockmesh_peers",
      help: "Peers of a Machine (over all its meshes), as of its last reconcile.",
      labelNames: ["namespace", "machine"],
      registers,
      collect() {
        this.reset();
        for (const m of machines()) this.set({ namespace: m.metadata.namespace ?? "", machine: m.metadata.name ?? "" }, allPeers(m));
      },
    });
    this.peerMetrics(opts.maxPeerPairs ?? DEFAULT_MAX_PAIRS, opts.nowS ?? (() => Date.now() / 1000));
  }

  /** Where the fleet gauges read Machines from at scrape time (the Machine informer's cache). */
  setMachines(list: () => readonly Machine[]): void {
    this.machines = list;
  }

  /** Where the per-peer series come from, and the meshes that still exist (the others' series go). */
  setPeerStats(stats: PeerStats, meshes: () => readonly MeshNetwork[]): void {
    this.peers = { stats, meshes };
    this.peerScrape = undefined;
  }

  /** The per-peer view, computed once per scrape (every per-peer metric's collect reads it). */
  private peerData(maxPairs: number): Exported {
    const now = performance.now();
    if (this.peerScrape && now - this.peerScrape.at < 1000) return this.peerScrape.data;
    const p = this.peers;
    if (!p) return { pairs: [], machines: [], dropped: 0 };
    const machines = new Set(this.machines().map((m) => `${m.metadata.namespace ?? ""}/${m.metadata.name ?? ""}`));
    const meshes = new Set(p.meshes().map((m) => `${m.metadata.namespace ?? ""}/${m.metadata.name ?? ""}`));
    const data = p.stats.exported(maxPairs, { machine: (ns, name) => machines.has(`${ns}/${name}`), mesh: (ns, name) => meshes.has(`${ns}/${name}`) });
    this.peerScrape = { at: now, data };
    return data;
  }

  private peerMetrics(maxPairs: number, nowS: () => number): void {
    const registers = [this.registry];
    const data = () => this.peerData(maxPairs);
    const labels = (p: Exported["pairs"][number]) => ({ namespace: p.namespace, mesh: p.mesh, machine: p.machine, peer: p.peer });
    const labelNames = [...PEER_LABELS];
    new Gauge({
      name: "dockmesh_peer_last_handshake_age_seconds",
      help: "Seconds since the latest WireGuard handshake with the peer (a relayed peer: with its relay), as of the machine's last look at its host; absent when there was none.",
      labelNames,
      registers,
      collect() {
        this.reset();
        const now = nowS();
        for (const p of data().pairs) if (p.latestHandshake > 0) this.set(labels(p), Math.max(0, Math.round(now - p.latestHandshake)));
      },
    });
    new Gauge({
      name: "dockmesh_peer_handshake_stale",
      help: `1 when the peer has had no WireGuard handshake for ${CONNECTED_HANDSHAKE_AGE_S} s or never had one (the link is down), else 0.`,
      labelNames,
      registers,
      collect() {
        this.reset();
        const now = nowS();
        for (const p of data().pairs) this.set(labels(p), isFreshHandshake(p.latestHandshake, now) ? 0 : 1);
      },
    });
    new Gauge({
      name: "dockmesh_peer_relayed",
      help: "1 when the machine reaches the peer through a relay machine (both behind NAT), else 0.",
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const p of data().pairs) this.set(labels(p), p.relayed ? 1 : 0);
      },
    });
    for (const [name, field, help] of [
      [
        "dockmesh_peer_receive_bytes_total",
        "rxBytes",
        "Bytes received from the peer over WireGuard (`wg show transfer`; restarts at 0 when the interface is recreated). Direct peers only: a relayed peer's bytes are its relay's.",
      ],
      ["dockmesh_peer_transmit_bytes_total", "txBytes", "Bytes sent to the peer over WireGuard (`wg show transfer`; restarts at 0 when the interface is recreated). Direct peers only."],
    ] as const) {
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const p of data().pairs) {
            const v = p[field];
            if (v !== undefined) this.inc(labels(p), v);
          }
        },
      });
    }
    for (const [name, field, help] of [
      ["dockmesh_machine_peer_receive_bytes_total", "rxBytes", "Bytes a machine received from all its direct peers over WireGuard (never capped)."],
      ["dockmesh_machine_peer_transmit_bytes_total", "txBytes", "Bytes a machine sent to all its direct peers over WireGuard (never capped)."],
    ] as const) {
      new Counter({
        name,
        help,
        labelNames: ["namespace", "machine"],
        registers,
        collect() {
          this.reset();
          for (const m of data().machines) this.inc({ namespace: m.namespace, machine: m.machine }, m[field]);
        },
      });
    }
    new Gauge({
      name: "dockmesh_peer_pairs_dropped",
      help: `Pairs (machine, peer) observed but left out of the per-peer series at this scrape: over --peer-metrics-max-pairs (the worst handshakes are kept) or beyond a machine's ${MAX_STORED_PER_MACHINE} worst.`,
      registers,
      collect() {
        this.set(data().dropped);
      },
    });
  }
}

/** JSON [condition, status] → number of Machines; every Machine condition type and status present. */
export function machineConditionCounts(machines: readonly Machine[]): Map<string, number> {
  const counts = new Map<string, number>();
  // Each condition type every Machine reports gets a series even when no Machine has it yet.
  const types = new Set<string>(MACHINE_CONDITION_TYPES);
  for (const m of machines) for (const c of m.status?.conditions ?? []) types.add(c.type);
  for (const t of types) for (const s of CONDITION_STATUSES) counts.set(JSON.stringify([t, s]), 0);
  for (const m of machines) {
    for (const t of types) {
      const c = (m.status?.conditions ?? []).find((x) => x.type === t);
      const status = c && (CONDITION_STATUSES as readonly string[]).includes(c.status) ? c.status : "Unknown";
      const key = JSON.stringify([t, status]);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

export function recentPeers(m: Machine): number {
  return (m.status?.networks ?? []).reduce((n, net) => n + (net.peers ?? []).filter((p) => p.state === RECENT_PEER_STATE).length, 0);
}

export function allPeers(m: Machine): number {
  return (m.status?.networks ?? []).reduce((n, net) => n + (net.peers ?? []).length, 0);
}
