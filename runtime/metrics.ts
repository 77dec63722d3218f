// Prometheus metrics of a controller process (prom-client), one registry per process:
// - reconciles: dockmesh_reconcile_total{kind,outcome}, dockmesh_reconcile_errors_total{kind}
//   and dockmesh_reconcile_duration_seconds{kind}, observed from WorkQueue.onReconcile;
// - work queues: depth, delayed, in flight, adds, retries, longest running, read from
//   WorkQueue.stats() at scrape time;
// - SSH: dockmesh_ssh_roundtrip_seconds{outcome}, one observation per command on a host;
// - leader election: dockmesh_leader_election_is_leader{lease};
// - the process (CPU, memory, event loop lag, …) with prom-client's default collectors.
// What the controllers know of the objects they manage is theirs to add: they register their
// collectors into `registry`.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { QueueMetrics } from "./workqueue.js";
import { RECONCILE_OUTCOMES } from "./workqueue.js";

/** Reconciles take from milliseconds (nothing to do) to minutes (first setup of a slow host). */
const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** One SSH command: a few milliseconds on a LAN to seconds across continents or for a slow step. */
const SSH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface SshRoundTrip {
  durationMs: number;
  ok: boolean;
}

export interface MetricsOptions {
  /** Include prom-client's process and Node.js metrics (default true). */
  processMetrics?: boolean;
  /**
   * Queue name → the kind label of its reconciles; every kind here has series from the start.
   * A queue not named here is labelled with its name.
   */
  queueKinds?: Readonly<Record<string, string>>;
}

export class RuntimeMetrics {
  readonly registry = new Registry();
  private readonly queues = new Map<string, QueueMetrics>();
  private readonly queueKinds: Readonly<Record<string, string>>;
  private readonly unsubscribers: Array<() => void> = [];
  private leader: { lease: string; isLeader: () => boolean } | undefined;

  private readonly reconciles: Counter<"kind" | "outcome">;
  private readonly errors: Counter<"kind">;
  private readonly durations: Histogram<"kind">;
  private readonly ssh: Histogram<"outcome">;

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.queueKinds = opts.queueKinds ?? {};

    this.reconciles = new Counter({
      name: "dockmesh_reconcile_total",
      help: "Reconciles finished, by kind and outcome (success, requeue, error, terminal).",
      labelNames: ["kind", "outcome"],
      registers,
    });
    this.errors = new Counter({ name: "dockmesh_reconcile_errors_total", help: "Reconciles that failed (outcome error or terminal), by kind.", labelNames: ["kind"], registers });
    this.durations = new Histogram({ name: "dockmesh_reconcile_duration_seconds", help: "Time one reconcile took, by kind.", labelNames: ["kind"], buckets: RECONCILE_BUCKETS, registers });
    this.ssh = new Histogram({
      name: "dockmesh_ssh_roundtrip_seconds",
      help: "Time from sending a command to a host over SSH to its exit status (one round trip), by outcome (ok, error).",
      labelNames: ["outcome"],
      buckets: SSH_BUCKETS,
      registers,
    });
    // Every kind and outcome from the start: a standby or an idle controller shows zeroes, not nothing.
    for (const kind of Object.values(this.queueKinds)) {
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

    const leader = () => this.leader;
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
    const kind = this.queueKinds[queue.name] ?? queue.name;
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
