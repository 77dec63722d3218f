// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics
// (k8s.io/client-go/tools/leaderelection):
// - a candidate tries to acquire every retryPeriod (jittered) until it holds the Lease;
// - the Lease is taken over only when its record has not changed for leaseDuration, as
//   measured on the candidate's own clock from when it last saw the record change (so
//   clock skew between replicas does not matter);
// - the leader renews every retryPeriod; if no renewal succeeds for renewDeadline it has
//   lost the Lease and must stop at once (renewDeadline < leaseDuration: it stops before
//   anyone else may start);
// - every write is an update guarded by metadata.resourceVersion (optimistic concurrency):
//   of two candidates racing for an expired Lease exactly one update succeeds;
// - on a graceful stop the leader releases the Lease (empty holder), so a standby takes
//   over within one retry period instead of waiting out the lease duration.
// acquireTime/renewTime are metav1.MicroTime: RFC 3339 with exactly six fractional digits,
// which real API servers (and the embedded store) require.
import { hostname } from "node:os";
import type { V1Lease } from "@kubernetes/client-node";
import { V1MicroTime } from "../vendor/client-node.js";
import { LEASES, isNotFound, type ApiClient } from "./client.js";
import type { Clock, TimerHandle } from "./clock.js";
import { realClock } from "./clock.js";
import type { Logger } from "./log.js";
import { describeError, rootLogger } from "./log.js";

/** What the election reads and writes of a Lease's spec. */
export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  /** MicroTime, e.g. 2025-01-01T00:00:00.123456Z. */
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface LeaseObject {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseRecord;
}

/** The API calls the elector makes; coordinationLeaseClient is the real one. */
export interface LeaseClient {
  /** undefined when the Lease does not exist. */
  get(namespace: string, name: string): Promise<LeaseObject | undefined>;
  create(lease: LeaseObject): Promise<LeaseObject>;
  /** Replaces the Lease; fails (409) when metadata.resourceVersion is stale. */
  update(lease: LeaseObject): Promise<LeaseObject>;
}

/** metav1.MicroTime text of a time in milliseconds: six fractional digits, UTC. */
export function formatMicroTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** A MicroTime (string, or the Date client-node may hand back) in milliseconds; NaN when absent or unreadable. */
export function parseMicroTime(value: unknown): number {
  if (value instanceof Date) return value.getTime();
  return typeof value === "string" ? Date.parse(value) : Number.NaN;
}

function toRecord(spec: V1Lease["spec"]): LeaseRecord {
  const s = spec ?? {};
  const time = (v: unknown): string | undefined => {
    const ms = parseMicroTime(v);
    if (!Number.isNaN(ms)) return typeof v === "string" ? v : formatMicroTime(ms);
    return undefined;
  };
  const acquireTime = time(s.acquireTime);
  const renewTime = time(s.renewTime);
  return {
    ...(s.holderIdentity ? { holderIdentity: s.holderIdentity } : {}),
    ...(typeof s.leaseDurationSeconds === "number" ? { leaseDurationSeconds: s.leaseDurationSeconds } : {}),
    ...(acquireTime ? { acquireTime } : {}),
    ...(renewTime ? { renewTime } : {}),
    ...(typeof s.leaseTransitions === "number" ? { leaseTransitions: s.leaseTransitions } : {}),
  };
}

function fromLease(l: V1Lease): LeaseObject {
  return {
    metadata: { name: l.metadata?.name ?? "", namespace: l.metadata?.namespace ?? "", ...(l.metadata?.resourceVersion ? { resourceVersion: l.metadata.resourceVersion } : {}) },
    spec: toRecord(l.spec),
  };
}

/** client-node's V1MicroTime prints three digits padded with zeroes: six in all, as required. */
function microTime(text: string | undefined): V1MicroTime | undefined {
  const ms = parseMicroTime(text);
  return Number.isNaN(ms) ? undefined : new V1MicroTime(ms);
}

function toLease(l: LeaseObject, previous?: V1Lease): V1Lease {
  const acquireTime = microTime(l.spec.acquireTime);
  const renewTime = microTime(l.spec.renewTime);
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { ...(previous?.metadata ?? {}), name: l.metadata.name, namespace: l.metadata.namespace, ...(l.metadata.resourceVersion ? { resourceVersion: l.metadata.resourceVersion } : {}) },
    spec: {
      // Fields the election does not own (strategy, preferredHolder) stay as they were.
      ...(previous?.spec ?? {}),
      holderIdentity: l.spec.holderIdentity ?? "",
      ...(l.spec.leaseDurationSeconds !== undefined ? { leaseDurationSeconds: l.spec.leaseDurationSeconds } : {}),
      ...(acquireTime ? { acquireTime } : {}),
      ...(renewTime ? { renewTime } : {}),
      ...(l.spec.leaseTransitions !== undefined ? { leaseTransitions: l.spec.leaseTransitions } : {}),
    },
  };
}

/** Leases through the API client. */
export function coordinationLeaseClient(api: ApiClient): LeaseClient {
  const seen = new Map<string, V1Lease>();
  const remember = (l: V1Lease): LeaseObject => {
    seen.set(`${l.metadata?.namespace}/${l.metadata?.name}`, l);
    return fromLease(l);
  };
  return {
    async get(namespace, name) {
      try {
        return remember(await api.get(LEASES, namespace, name));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async create(lease) {
      return remember(await api.create(LEASES, toLease(lease)));
    },
    async update(lease) {
      const previous = seen.get(`${lease.metadata.namespace}/${lease.metadata.name}`);
      return remember(await api.replace(LEASES, toLease(lease, previous)));
    },
  };
}

/** holderIdentity: the pod name in a cluster (POD_NAME from the Downward API), else host name and pid. */
export function defaultIdentity(env: Record<string, string | undefined> = process.env): string {
  return env["POD_NAME"] || `${hostname()}_${process.pid}`;
}

export interface LeaderElectionTimings {
  /** How long a Lease not renewed keeps others waiting (default 15 s). */
  leaseDurationMs: number;
  /** How long the leader keeps trying to renew before it gives up leading (default 10 s). */
  renewDeadlineMs: number;
  /** Interval between attempts to acquire or renew (default 2 s). */
  retryPeriodMs: number;
}

export const DEFAULT_TIMINGS: LeaderElectionTimings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** client-go's JitterFactor: an acquire attempt waits retryPeriod plus up to 1.2 × retryPeriod more. */
export const JITTER_FACTOR = 1.2;

/** Throws unless leaseDuration > renewDeadline > JITTER_FACTOR × retryPeriod > 0 (client-go's checks). */
export function checkTimings(t: LeaderElectionTimings): void {
  if (!(t.retryPeriodMs > 0)) throw new Error(`leader election: the retry period must be positive, got ${t.retryPeriodMs} ms`);
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) throw new Error(`leader election: the lease duration (${t.leaseDurationMs} ms) must be longer than the renew deadline (${t.renewDeadlineMs} ms)`);
  if (!(t.renewDeadlineMs > JITTER_FACTOR * t.retryPeriodMs))
    throw new Error(`leader election: the renew deadline (${t.renewDeadlineMs} ms) must be longer than ${JITTER_FACTOR} × the retry period (${t.retryPeriodMs} ms)`);
}

export interface LeaderElectorOptions extends Partial<LeaderElectionTimings> {
  client: LeaseClient;
  namespace: string;
  name: string;
  /** Default defaultIdentity(). */
  identity?: string;
  /** Called once, when this process becomes the leader. */
  onStartedLeading: () => void | Promise<void>;
  /** Called once, when a leader loses the Lease (not on stop()). The process should stop reconciling at once. */
  onStoppedLeading: () => void;
  /** Called whenever the holder this process sees changes (its own identity included). */
  onNewLeader?: (identity: string) => void;
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
}

export type ElectionState = "candidate" | "leading" | "lost" | "stopped";

export class LeaderElector {
  readonly identity: string;
  readonly namespace: string;
  readonly name: string;
  readonly timings: LeaderElectionTimings;
  private readonly client: LeaseClient;
  private readonly opts: LeaderElectorOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private current: ElectionState = "candidate";
  private started = false;
  private observed: { raw: string; record: LeaseRecord; at: number } | undefined;
  private lastRenewAt = 0;
  private lastContactAt: number | undefined;
  /** When the Lease held by another expires, on this process's clock. */
  private expiresAt: number | undefined;
  private leaderSeen = "";
  private timer: { handle: TimerHandle; wake: () => void } | undefined;
  private loop: Promise<void> = Promise.resolve();

  constructor(opts: LeaderElectorOptions) {
    this.opts = opts;
    this.client = opts.client;
    this.namespace = opts.namespace;
    this.name = opts.name;
    this.identity = opts.identity ?? defaultIdentity();
    this.timings = {
      leaseDurationMs: opts.leaseDurationMs ?? DEFAULT_TIMINGS.leaseDurationMs,
      renewDeadlineMs: opts.renewDeadlineMs ?? DEFAULT_TIMINGS.renewDeadlineMs,
      retryPeriodMs: opts.retryPeriodMs ?? DEFAULT_TIMINGS.retryPeriodMs,
    };
    checkTimings(this.timings);
    if (!this.identity) throw new Error("leader election: the identity must not be empty");
    this.clock = opts.clock ?? realClock;
    this.log = (opts.logger ?? rootLogger()).child({ component: "leader-election", lease: `${this.namespace}/${this.name}`, identity: this.identity });
    this.random = opts.random ?? Math.random;
  }

  get state(): ElectionState {
    return this.current;
  }

  get isLeader(): boolean {
    return this.current === "leading";
  }

  /** The holder this process last saw in the Lease ("" when none). */
  get leader(): string {
    return this.leaderSeen;
  }

  /**
   * True while the election works as it should: a leader that renewed within the renew
   * deadline, or a candidate that reached the API server within the lease duration.
   */
  healthy(): boolean {
    const now = this.clock.now();
    if (this.current === "leading") return now - this.lastRenewAt <= this.timings.renewDeadlineMs;
    if (this.current === "candidate") return this.lastContactAt !== undefined && now - this.lastContactAt <= this.timings.leaseDurationMs;
    return false;
  }

  /** Starts campaigning; returns at once. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.log.info("waiting to acquire the lease");
    this.loop = this.run().catch((err: unknown) => {
      this.log.error("leader election stopped unexpectedly", { error: describeError(err) });
    });
  }

  /** Stops campaigning; a leader releases the Lease so that a standby takes over at once. */
  async stop(): Promise<void> {
    const wasRunning = this.current === "candidate" || this.current === "leading";
    if (wasRunning) this.current = "stopped";
    this.wake();
    await this.loop;
    // Also when an attempt in flight at stop() acquired it: release checks the holder.
    if (wasRunning && this.started) await this.release();
  }

  private async run(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs } = this.timings;
    while (this.current === "candidate") {
      if (await this.attempt(renewDeadlineMs)) break;
      // The next attempt after the jittered retry period, or right when the Lease held by
      // another expires if that is sooner.
      const jittered = retryPeriodMs * (1 + JITTER_FACTOR * this.random());
      const untilExpiry = this.expiresAt !== undefined ? this.expiresAt - this.clock.now() + 1 : Number.POSITIVE_INFINITY;
      await this.sleep(Math.max(1, Math.min(jittered, untilExpiry)));
    }
    if (this.current !== "candidate") return;
    this.current = "leading";
    this.lastRenewAt = this.clock.now();
    this.log.info("acquired the lease; leading");
    // Not awaited (client-go runs it in a goroutine): renewing goes on while the controllers start.
    void Promise.resolve()
      .then(() => this.opts.onStartedLeading())
      .catch((err: unknown) => this.log.error("starting as the leader failed", { error: describeError(err) }));
    while (this.current === "leading") {
      await this.sleep(retryPeriodMs);
      if (this.current !== "leading") return;
      const left = this.lastRenewAt + renewDeadlineMs - this.clock.now();
      if (left > 0 && (await this.attempt(left))) {
        this.lastRenewAt = this.clock.now();
        continue;
      }
      if (this.current !== "leading") return;
      if (this.clock.now() - this.lastRenewAt >= renewDeadlineMs) {
        this.current = "lost";
        this.log.error("lost the lease: no renewal within the renew deadline; stopping", { renewDeadlineMs });
        this.opts.onStoppedLeading();
        return;
      }
    }
  }

  /** One tryAcquireOrRenew bounded by timeoutMs; false on any failure. */
  private async attempt(timeoutMs: number): Promise<boolean> {
    let handle: TimerHandle | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      handle = this.clock.setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([
        this.tryAcquireOrRenew().catch((err: unknown) => {
          this.log.warn(this.current === "leading" ? "renewing the lease failed" : "acquiring the lease failed", { error: describeError(err) });
          return false;
        }),
        timeout,
      ]);
    } finally {
      if (handle) this.clock.clearTimeout(handle);
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.clock.now();
    const leaseSeconds = Math.ceil(this.timings.leaseDurationMs / 1000);
    const existing = await this.client.get(this.namespace, this.name);
    if (!existing) {
      const created = await this.client.create({
        metadata: { name: this.name, namespace: this.namespace },
        spec: { holderIdentity: this.identity, leaseDurationSeconds: leaseSeconds, acquireTime: formatMicroTime(now), renewTime: formatMicroTime(now), leaseTransitions: 0 },
      });
      this.observe(created.spec, this.clock.now());
      return true;
    }
    this.lastContactAt = this.clock.now();
    this.observe(existing.spec, now);
    const holder = existing.spec.holderIdentity ?? "";
    const observedAt = this.observed?.at ?? now;
    const duration = (existing.spec.leaseDurationSeconds ?? leaseSeconds) * 1000;
    if (holder && holder !== this.identity && observedAt + duration > now) {
      this.expiresAt = observedAt + duration;
      return false;
    }
    this.expiresAt = undefined;
    const mine = holder === this.identity;
    const spec: LeaseRecord = {
      holderIdentity: this.identity,
      leaseDurationSeconds: leaseSeconds,
      acquireTime: mine && existing.spec.acquireTime ? existing.spec.acquireTime : formatMicroTime(now),
      renewTime: formatMicroTime(now),
      leaseTransitions: mine ? (existing.spec.leaseTransitions ?? 0) : (existing.spec.leaseTransitions ?? 0) + 1,
    };
    const updated = await this.client.update({ metadata: existing.metadata, spec });
    this.lastContactAt = this.clock.now();
    this.observe(updated.spec, this.clock.now());
    return true;
  }

  private observe(record: LeaseRecord, at: number): void {
    const raw = JSON.stringify(record);
    if (this.observed?.raw !== raw) this.observed = { raw, record, at };
    const holder = record.holderIdentity ?? "";
    if (holder !== this.leaderSeen) {
      this.leaderSeen = holder;
      if (holder) this.log.info("new leader observed", { leader: holder });
      this.opts.onNewLeader?.(holder);
    }
  }

  /** Gives the Lease up (empty holder, 1 s duration), as client-go's ReleaseOnCancel. */
  private async release(): Promise<void> {
    try {
      const existing = await this.client.get(this.namespace, this.name);
      if (!existing || existing.spec.holderIdentity !== this.identity) return;
      const now = formatMicroTime(this.clock.now());
      await this.client.update({
        metadata: existing.metadata,
        spec: { holderIdentity: "", leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: existing.spec.leaseTransitions ?? 0 },
      });
      this.log.info("released the lease");
    } catch (err) {
      this.log.warn("could not release the lease; a standby takes over when it expires", { error: describeError(err) });
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        if (this.timer?.wake === wake) this.timer = undefined;
        resolve();
      };
      this.timer = { handle: this.clock.setTimeout(wake, ms), wake };
    });
  }

  private wake(): void {
    const t = this.timer;
    if (!t) return;
    this.timer = undefined;
    this.clock.clearTimeout(t.handle);
    t.wake();
  }
}
