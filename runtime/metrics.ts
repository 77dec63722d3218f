// Prometheus metrics of the controllers (prom-client), one registry per process:
// - reconciles: dockmesh_reconcile_total{kind,outcome}, dockmesh_reconcile_errors_total{kind}
//   and dockmesh_reconcile_duration_seconds{kind}, observed from WorkQueue.onReconcile;
// - work queues: depth, delayed, in flight, adds, retries, longest running, read from
//   WorkQueue.stats() at scrape time;
// - SSH: dockmesh_ssh_roundtrip_seconds{outcome}, one observation per command on a host;
// - fleet state, computed from the Machine informer's cache at scrape time:
//   dockmesh_machines{condition,status} and dockmesh_peers_recent_handshake{namespace,machine};
// - per peer (controllers/peer-stats.ts), as each machine's last look at its host saw them:
//   dockmesh_peer_last_handshake_age_seconds, dockmesh_peer_handshake_stale,
//   dockmesh_peer_receive_bytes_total, dockmesh_peer_transmit_bytes_total and dockmesh_peer_relayed
//   {namespace,mesh,machine,peer}, capped at maxPeerPairs pairs (the worst handshakes; a mesh of
//   N machines has N·(N-1) pairs: ~4 million series at 1,000), dockmesh_peer_pairs_dropped for
//   the rest, and per-machine byte totals that are never capped;
// - leader election: dockmesh_leader_election_is_leader{lease};
// - the process (CPU, memory, event loop lag, …) with prom-client's default collectors.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { CONNECTED_HANDSHAKE_AGE_S, isFreshHandshake } from "../controllers/machine-conditions.js";
import { DEFAULT_MAX_PAIRS, MAX_STORED_PER_MACHINE, type Exported, type PeerStats } from "../controllers/peer-stats.js";
import type { QueueMetrics } from "./workqueue.js";
import { RECONCILE_OUTCOMES } from "./workqueue.js";

/** The condition types every Machine reports; each gets a series even when no Machine has it. */
export const MACHINE_CONDITIONS = ["Ready", "Reachable", "DockerReady", "WireGuardReady", "NetworkConfigured", "PeersConnected"] as const;
const CONDITION_STATUSES = ["True", "False", "Unknown"] as const;

/** Queue names as the controllers call them → the kind label. */
const KIND_OF_QUEUE: Record<string, string> = { machine: "Machine", meshnetwork: "MeshNetwork" };
export const KINDS = ["Machine", "MeshNetwork"] as const;

/** Reconciles take from milliseconds (nothing to do) to minutes (first setup of a slow host). */
const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** One SSH command: a few milliseconds on a LAN to seconds across continents or for a slow step. */
const SSH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A peer has a recent handshake when the controller last saw it in this state (a handshake within 3 minutes). */
export const RECENT_PEER_STATE = "Connected";

export interface SshRoundTrip {
  durationMs: number;
  ok: boolean;
}

export interface MetricsOptions {
  /** Include prom-client's process and Node.js metrics (default true). */
  processMetrics?: boolean;
  /** Per-peer pairs exported at most (default DEFAULT_MAX_PAIRS; 0: none, only per-machine totals). */
  maxPeerPairs?: number;
  /** Seconds since the epoch, for handshake ages (default: the system clock). */
  nowS?: () => number;
}

const PEER_LABELS = ["namespace", "mesh", "machine", "peer"] as const;

export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly queues = new Map<string, QueueMetrics>();
  private readonly unsubscribers: Array<() => void> = [];
  private machines: () => readonly Machine[] = () => [];
  private leader: { lease: string; isLeader: () => boolean } | undefined;
  private peers: { stats: PeerStats; meshes: () => readonly MeshNetwork[] } | undefined;
  private peerScrape: { at: number; data: Exported } | undefined;

  private readonly reconciles: Counter<"kind" | "outcome">;
  private readonly errors: Counter<"kind">;
  private readonly durations: Histogram<"kind">;
  private readonly ssh: Histogram<"outcome">;

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    this.reconciles = new Counter({ name: "dockmesh_reconcile_total", help: "Reconciles finished, by kind and outcome (success, requeue, error, terminal).", labelNames: ["kind", "outcome"], registers });
    this.errors = new Counter({ name: "dockmesh_reconcile_errors_total", help: "Reconciles that failed (outcome error or terminal), by kind.", labelNames: ["kind"], registers });
    this.durations = new Histogram({ name: "dockmesh_reconcile_duration_seconds", help: "Time one reconcile took, by kind.", labelNames: ["kind"], buckets: RECONCILE_BUCKETS, registers });
    this.ssh = new Histogram({ name: "dockmesh_ssh_roundtrip_seconds", help: "Time from sending a command to a host over SSH to its exit status (one round trip), by outcome (ok, error).", labelNames: ["outcome"], buckets: SSH_BUCKETS, registers });
    // Every kind and outcome from the start: a standby or an idle controller shows zeroes, not nothing.
    for (const kind of KINDS) {
      for (const outcome of RECONCILE_OUTCOMES) this.reconciles.inc({ kind, outcome }, 0);
      this.errors.inc({ kind }, 0);
      this.durations.zero({ kind });
    }
    for (const outcome of ["ok", "error"]) this.ssh.zero({ outcome });

    this.queueGauge("dockmesh_workqueue_depth", "Keys waiting for a worker.", (s) => s.depth);
    this.queueGauge("dockmesh_workqueue_delayed", "Keys waiting for a timer (retry backoff or periodic resync).", (s) => s.delayed);
    this.queueGauge("dockmesh_workqueue_in_flight", "Reconciles running now.", (s) => s.inFlight);
    this.queueGauge("dockmesh_workqueue_longest_running_seconds", "How long the oldest running reconcile has been running.", (s) => s.longestRunningMs / 1000);
    this.queueCounter("dockmesh_workqueue_adds_total", "Keys put on the queue.", (s) => s.addsTotal);
    this.queueCounter("dockmesh_workqueue_retries_total", "Failed reconciles scheduled again with backoff.", (s) => s.retriesTotal);

    const machines = () => this.machines();
    const leader = () => this.leader;
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
    new Gauge({
      name: "dockmesh_leader_election_is_leader",
      help: "1 while this process holds the leader election Lease (always 1 without leader election).",
      labelNames: ["lease"],
      registers,
      collect() {
        this.reset();
        const l = leader();
        if (l) this.set({ lease: l.lease }, l.isLeader() ? 1 : 0);
      },
    });
  }

  /** Counts the reconciles of a queue and reads its stats on scrape; returns the unsubscribe function. */
  watchQueue(queue: QueueMetrics): () => void {
    const kind = KIND_OF_QUEUE[queue.name] ?? queue.name;
    this.queues.set(queue.name, queue);
    const unsubscribe = queue.onReconcile((r) => {
      this.reconciles.inc({ kind, outcome: r.outcome });
      if (r.outcome === "error" || r.outcome === "terminal") this.errors.inc({ kind });
      this.durations.observe({ kind }, r.durationMs / 1000);
    });
    const done = () => {
      unsubscribe();
      this.queues.delete(queue.name);
    };
    this.unsubscribers.push(done);
    return done;
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

  setLeaderElection(lease: string, isLeader: () => boolean): void {
    this.leader = { lease, isLeader };
  }

  /** Records one SSH round trip (see hosts/ssh.ts onRoundTrip). */
  observeSsh(rt: SshRoundTrip): void {
    this.ssh.observe({ outcome: rt.ok ? "ok" : "error" }, rt.durationMs / 1000);
  }

  /** The exposition text. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  stop(): void {
    for (const u of this.unsubscribers.splice(0)) u();
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
      ["dockmesh_peer_receive_bytes_total", "rxBytes", "Bytes received from the peer over WireGuard (`wg show transfer`; restarts at 0 when the interface is recreated). Direct peers only: a relayed peer's bytes are its relay's."],
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

  private queueGauge(name: string, help: string, value: (s: ReturnType<QueueMetrics["stats"]>) => number): void {
    const queues = this.queues;
    new Gauge({
      name,
      help,
      labelNames: ["name"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const q of queues.values()) this.set({ name: q.name }, value(q.stats()));
      },
    });
  }

  private queueCounter(name: string, help: string, value: (s: ReturnType<QueueMetrics["stats"]>) => number): void {
    const queues = this.queues;
    new Counter({
      name,
      help,
      labelNames: ["name"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const q of queues.values()) this.inc({ name: q.name }, value(q.stats()));
      },
    });
  }
}

/** JSON [condition, status] → number of Machines; every known condition and status present. */
export function machineConditionCounts(machines: readonly Machine[]): Map<string, number> {
  const counts = new Map<string, number>();
  const types = new Set<string>(MACHINE_CONDITIONS);
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
