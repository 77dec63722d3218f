// The work queue between watch events and reconciles, after client-go's workqueue and
// controller-runtime's reconcile loop:
// - keys ("namespace/name"), not events: a key waiting is queued once however many
//   events name it; a key being reconciled is marked dirty and reconciled again after,
//   never twice at the same time;
// - at most `concurrency` reconciles at once;
// - a failed reconcile comes back after a per-key exponential backoff (reset by a
//   success); a TerminalError is not retried; `{ requeueAfter }` schedules a resync.
import type { Clock, TimerHandle } from "./clock.js";
import { realClock } from "./clock.js";
import type { Logger } from "./log.js";
import { describeError, rootLogger } from "./log.js";

/**
 * Thrown (or found in the cause chain of what is thrown) by a reconcile that must not be
 * retried until something changes: invalid spec, a decision only the user can undo.
 * dockmesh's controllers throw none today (an invalid spec is a condition, not an error; what
 * they throw is retried because the fix may come without an event), but the queue keeps the
 * outcome: dockmesh_reconcile_total{outcome="terminal"} is part of the metrics.
 */
export class TerminalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TerminalError";
  }
}

/** True when err or any error in its cause chain is a TerminalError. */
export function isTerminalError(err: unknown): boolean {
  let cur: unknown = err;
  for (let depth = 0; cur instanceof Error && depth < 16; depth++) {
    if (cur instanceof TerminalError) return true;
    cur = cur.cause;
  }
  return false;
}

export interface ReconcileResult {
  /** Reconcile the key again after this many milliseconds (periodic drift check); ignored unless > 0. */
  requeueAfter?: number;
}

export interface ReconcileContext {
  /** Consecutive failed reconciles of this key before this one (0 after a success). */
  failures: number;
}

export type Reconciler = (key: string, ctx: ReconcileContext) => Promise<ReconcileResult | void> | ReconcileResult | void;

/** success: done, no requeue; requeue: done, requeueAfter given; error: retried with backoff; terminal: TerminalError, not retried. */
export type ReconcileOutcome = "success" | "requeue" | "error" | "terminal";
export const RECONCILE_OUTCOMES: readonly ReconcileOutcome[] = ["success", "requeue", "error", "terminal"];

export interface BackoffOptions {
  /** First retry delay (default 1 s). */
  baseMs?: number;
  /**
   * Longest delay (default 1 min). A failing key is mostly a host that cannot be reached: once it
   * is back, it is seen within this long (it was 5 min, which kept Machines Unreachable that long).
   */
  capMs?: number;
  /** Fraction 0..1 of each delay taken off at random (default 0: deterministic). */
  jitter?: number;
  /** Source of randomness for jitter (default Math.random). */
  random?: () => number;
}

/** Delay before retry number failures+1: base·2^failures, capped, minus jitter. */
export function backoffDelay(failures: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? 1000;
  const cap = opts.capMs ?? 60_000;
  const raw = failures >= 52 ? cap : base * 2 ** failures;
  const delay = Math.min(cap, raw);
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0));
  return jitter === 0 ? delay : Math.round(delay * (1 - jitter * (opts.random ?? Math.random)()));
}

export interface ReconcileRecord {
  queue: string;
  key: string;
  outcome: ReconcileOutcome;
  durationMs: number;
  /** Set for "error" and "terminal". */
  error?: unknown;
}

/** Point-in-time numbers of a queue, for a metrics exporter to read on scrape. */
export interface QueueStats {
  /** Keys ready and waiting for a worker. */
  depth: number;
  /** Keys waiting for a timer (backoff or requeueAfter). */
  delayed: number;
  inFlight: number;
  /** Keys put on the queue (an add of a key already waiting does not count). */
  addsTotal: number;
  /** Reconciles that failed and were scheduled again. */
  retriesTotal: number;
  reconcilesTotal: Record<ReconcileOutcome, number>;
  reconcileDurationMsTotal: Record<ReconcileOutcome, number>;
  /** How long the oldest running reconcile has been running (0 when none). */
  longestRunningMs: number;
}

/**
 * What a Prometheus exporter needs: counters and gauges read at scrape time through
 * stats(), durations observed one by one through onReconcile (for a histogram).
 */
export interface QueueMetrics {
  readonly name: string;
  stats(): QueueStats;
  /** Calls listener after every reconcile; returns the unsubscribe function. */
  onReconcile(listener: (record: ReconcileRecord) => void): () => void;
}

export interface WorkQueueOptions {
  /** Names the queue in logs and metrics, e.g. "machine". */
  name: string;
  /** Reconciles running at once (default 1). */
  concurrency?: number;
  backoff?: BackoffOptions;
  clock?: Clock;
  logger?: Logger;
}

const zeroes = (): Record<ReconcileOutcome, number> => ({ success: 0, requeue: 0, error: 0, terminal: 0 });

export class WorkQueue implements QueueMetrics {
  readonly name: string;
  private readonly concurrency: number;
  private readonly backoff: BackoffOptions;
  private readonly clock: Clock;
  private readonly log: Logger;

  private readonly queue: string[] = [];
  /** Keys waiting in `queue`, or to be queued again when their current reconcile ends. */
  private readonly dirty = new Set<string>();
  /** Keys being reconciled → start time. */
  private readonly processing = new Map<string, number>();
  private readonly delayedKeys = new Map<string, { at: number; handle: TimerHandle }>();
  private readonly failureCounts = new Map<string, number>();
  private readonly running = new Set<Promise<void>>();
  private readonly listeners = new Set<(record: ReconcileRecord) => void>();
  private idleWaiters: Array<() => void> = [];
  private reconciler: Reconciler | undefined;
  private pumpScheduled = false;
  private stopping = false;

  private addsTotal = 0;
  private retriesTotal = 0;
  private readonly reconcilesTotal = zeroes();
  private readonly durationTotal = zeroes();

  constructor(opts: WorkQueueOptions) {
    const concurrency = opts.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`work queue ${opts.name}: concurrency must be a positive integer, got ${concurrency}`);
    this.name = opts.name;
    this.concurrency = concurrency;
    this.backoff = opts.backoff ?? {};
    this.clock = opts.clock ?? realClock;
    this.log = (opts.logger ?? rootLogger()).child({ queue: opts.name });
  }

  /** Queues key unless it is already waiting; a key being reconciled is reconciled once more after. */
  add(key: string): void {
    if (this.stopping || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addsTotal++;
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.schedulePump();
  }

  /** Adds key after ms; of several pending delayed adds of one key the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.stopping) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + ms;
    const pending = this.delayedKeys.get(key);
    if (pending && pending.at <= at) return;
    if (pending) this.clock.clearTimeout(pending.handle);
    const handle = this.clock.setTimeout(() => {
      this.delayedKeys.delete(key);
      this.add(key);
    }, ms);
    this.delayedKeys.set(key, { at, handle });
  }

  /** Adds key after its backoff delay and counts one more failure; returns the delay. */
  addRateLimited(key: string): number {
    const failures = this.failureCounts.get(key) ?? 0;
    this.failureCounts.set(key, failures + 1);
    const delay = backoffDelay(failures, this.backoff);
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets key's backoff (done after every successful reconcile). */
  forget(key: string): void {
    this.failureCounts.delete(key);
  }

  /** Consecutive failures of key. */
  failures(key: string): number {
    return this.failureCounts.get(key) ?? 0;
  }

  /** Keys waiting for a worker. */
  len(): number {
    return this.queue.length;
  }

  get shuttingDown(): boolean {
    return this.stopping;
  }

  /** Starts the workers. Keys added before start wait for it. */
  start(reconcile: Reconciler): void {
    if (this.reconciler) throw new Error(`work queue ${this.name}: already started`);
    if (this.stopping) throw new Error(`work queue ${this.name}: already shut down`);
    this.reconciler = reconcile;
    this.schedulePump();
  }

  /** Stops taking keys, drops waiting and delayed ones and resolves when the reconciles in flight have finished. */
  async shutdown(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      for (const { handle } of this.delayedKeys.values()) this.clock.clearTimeout(handle);
      this.delayedKeys.clear();
      this.queue.length = 0;
      this.dirty.clear();
    }
    await Promise.all([...this.running]);
    this.checkIdle();
  }

  /**
   * Resolves when no key is waiting or being reconciled (keys waiting for a timer do not
   * count). For tests: add, advance the clock, await whenIdle(), assert.
   */
  whenIdle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.checkIdle();
    });
  }

  stats(): QueueStats {
    const now = this.clock.now();
    let longest = 0;
    for (const started of this.processing.values()) longest = Math.max(longest, now - started);
    return {
      depth: this.queue.length,
      delayed: this.delayedKeys.size,
      inFlight: this.processing.size,
      addsTotal: this.addsTotal,
      retriesTotal: this.retriesTotal,
      reconcilesTotal: { ...this.reconcilesTotal },
      reconcileDurationMsTotal: { ...this.durationTotal },
      longestRunningMs: longest,
    };
  }

  onReconcile(listener: (record: ReconcileRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // Workers start from a microtask, never inside add(): a reconcile never runs
  // re-entrantly inside the event handler (or the reconcile) that queued its key.
  private schedulePump(): void {
    if (!this.reconciler || this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const reconcile = this.reconciler;
    while (reconcile && !this.stopping && this.processing.size < this.concurrency) {
      const key = this.queue.shift();
      if (key === undefined) break;
      this.dirty.delete(key);
      this.processing.set(key, this.clock.now());
      const run: Promise<void> = this.process(key, reconcile).finally(() => this.running.delete(run));
      this.running.add(run);
    }
    this.checkIdle();
  }

  /** One reconcile of key and its bookkeeping; never rejects. */
  private async process(key: string, reconcile: Reconciler): Promise<void> {
    const started = this.clock.now();
    let outcome: ReconcileOutcome;
    let error: unknown;
    let requeueAfter = 0;
    try {
      const result = await reconcile(key, { failures: this.failures(key) });
      requeueAfter = result && typeof result.requeueAfter === "number" && result.requeueAfter > 0 ? result.requeueAfter : 0;
      outcome = requeueAfter > 0 ? "requeue" : "success";
    } catch (err) {
      error = err;
      outcome = isTerminalError(err) ? "terminal" : "error";
    }
    const durationMs = this.clock.now() - started;

    this.processing.delete(key);
    // An add() while the reconcile ran left the key dirty: queue it now.
    if (this.dirty.has(key)) this.queue.push(key);

    switch (outcome) {
      case "success":
        this.forget(key);
        break;
      case "requeue":
        this.forget(key);
        this.addAfter(key, requeueAfter);
        break;
      case "terminal":
        this.forget(key);
        this.log.error("reconcile failed; not retrying until the object changes", { key, error: describeError(error) });
        break;
      case "error": {
        if (this.stopping) break;
        this.retriesTotal++;
        const delay = this.addRateLimited(key);
        this.log.warn("reconcile failed; will retry", { key, error: describeError(error), retryInMs: delay, failures: this.failures(key) });
        break;
      }
    }

    this.reconcilesTotal[outcome]++;
    this.durationTotal[outcome] += durationMs;
    const record: ReconcileRecord = { queue: this.name, key, outcome, durationMs, ...(error !== undefined ? { error } : {}) };
    for (const listener of this.listeners) {
      try {
        listener(record);
      } catch (err) {
        this.log.debug("reconcile listener threw", { error: describeError(err) });
      }
    }
    this.schedulePump();
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.queue.length > 0 || this.processing.size > 0 || this.pumpScheduled) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
