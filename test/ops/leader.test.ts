// Leader election semantics (runtime/leader.ts) on a fake clock and an in-memory Lease with
// resourceVersion checks: one leader, takeover only after the lease duration, a leader that
// cannot renew stops before anyone may take over, release on stop, MicroTime format.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../runtime/clock.js";
import { silentLogger } from "../../runtime/log.js";
import { LeaderElector, checkTimings, formatMicroTime, type LeaseClient, type LeaseObject } from "../../runtime/leader.js";
import { flush } from "../runtime/helpers.js";

class MemoryLeases {
  lease: LeaseObject | undefined;
  private rv = 0;
  writes: LeaseObject[] = [];

  /** A client for one process; `down()` makes its calls fail like a partitioned network. */
  client(): LeaseClient & { down: boolean } {
    const leases = () => this.lease;
    const store = (l: LeaseObject) => this.store(l);
    const c = {
      down: false,
      async get(namespace: string, name: string) {
        if (c.down) throw new Error("connect ECONNREFUSED");
        const l = leases();
        return l && l.metadata.namespace === namespace && l.metadata.name === name ? structuredClone(l) : undefined;
      },
      async create(lease: LeaseObject) {
        if (c.down) throw new Error("connect ECONNREFUSED");
        if (leases()) throw Object.assign(new Error("already exists"), { code: 409 });
        return store(lease);
      },
      async update(lease: LeaseObject) {
        if (c.down) throw new Error("connect ECONNREFUSED");
        if (lease.metadata.resourceVersion !== leases()?.metadata.resourceVersion) throw Object.assign(new Error("conflict"), { code: 409 });
        return store(lease);
      },
    };
    return c;
  }

  private store(lease: LeaseObject): LeaseObject {
    for (const f of ["acquireTime", "renewTime"] as const) {
      const v = lease.spec[f];
      if (v !== undefined && !/\.\d{6}Z$/.test(v)) throw Object.assign(new Error(`${f} must have 6 fractional digits: ${v}`), { code: 422 });
    }
    this.lease = { metadata: { ...lease.metadata, resourceVersion: String(++this.rv) }, spec: { ...lease.spec } };
    this.writes.push(structuredClone(this.lease));
    return structuredClone(this.lease);
  }
}

const TIMINGS = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

function elector(leases: MemoryLeases, clock: FakeClock, identity: string, events: string[]) {
  const client = leases.client();
  const e = new LeaderElector({
    client,
    namespace: "dockmesh-system",
    name: "dockmesh-controller",
    identity,
    ...TIMINGS,
    clock,
    logger: silentLogger(),
    random: () => 0.5,
    onStartedLeading: () => void events.push(`${identity} started`),
    onStoppedLeading: () => void events.push(`${identity} lost`),
  });
  return { e, client };
}

/** Moves the fake clock forward in small steps, letting the async API calls settle between. */
async function tick(clock: FakeClock, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await flush(4);
  }
}

describe("leader election", () => {
  test("MicroTime has exactly six fractional digits; bad timings are refused", () => {
    assert.equal(formatMicroTime(Date.UTC(2025, 0, 2, 3, 4, 5, 678)), "2025-01-02T03:04:05.678000Z");
    assert.throws(() => checkTimings({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }), /longer than the renew deadline/);
    assert.throws(() => checkTimings({ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }), /1.2 × the retry period/);
  });

  test("of two candidates exactly one leads; the Lease is renewed every retry period", async () => {
    const clock = new FakeClock();
    const leases = new MemoryLeases();
    const events: string[] = [];
    const a = elector(leases, clock, "a", events);
    const b = elector(leases, clock, "b", events);
    a.e.start();
    await flush(10);
    b.e.start();
    await tick(clock, 30_000);
    assert.deepEqual(events, ["a started"]);
    assert.equal(a.e.isLeader, true);
    assert.equal(b.e.isLeader, false);
    assert.equal(b.e.leader, "a");
    assert.equal(leases.lease?.spec.holderIdentity, "a");
    assert.equal(leases.lease?.spec.leaseDurationSeconds, 15);
    assert.equal(leases.lease?.spec.leaseTransitions, 0);
    const renewals = leases.writes.filter((w) => w.spec.holderIdentity === "a").length;
    assert.ok(renewals >= 14 && renewals <= 16, `about one renewal per 2 s over 30 s, got ${renewals}`);
    assert.ok(a.e.healthy() && b.e.healthy(), "leader and standby both healthy");
  });

  test("a crashed leader is replaced only after the lease duration, within one more retry period", async () => {
    const clock = new FakeClock();
    const leases = new MemoryLeases();
    const events: string[] = [];
    const a = elector(leases, clock, "a", events);
    const b = elector(leases, clock, "b", events);
    a.e.start();
    await flush(10);
    b.e.start();
    await tick(clock, 5_000);
    // "Crash": a's process is gone (its calls fail and it never reacts).
    a.client.down = true;
    const crashedAt = clock.now();
    const lastRenew = Date.parse(leases.lease!.spec.renewTime!);
    let takenAt: number | undefined;
    for (let t = 0; t < 30_000 && takenAt === undefined; t += 100) {
      await tick(clock, 100);
      if (b.e.isLeader) takenAt = clock.now();
    }
    assert.ok(takenAt !== undefined, "b took over");
    assert.ok(takenAt - lastRenew >= TIMINGS.leaseDurationMs, `not before the lease expired (${takenAt - lastRenew} ms after the last renewal)`);
    assert.ok(takenAt - crashedAt <= TIMINGS.leaseDurationMs + TIMINGS.retryPeriodMs * 2.2, `within lease duration + a retry period of the crash (${takenAt - crashedAt} ms)`);
    assert.equal(leases.lease?.spec.holderIdentity, "b");
    assert.equal(leases.lease?.spec.leaseTransitions, 1);
    assert.ok(events.includes("b started"));
  });

  test("a leader that cannot renew stops at the renew deadline, before anyone may take over", async () => {
    const clock = new FakeClock();
    const leases = new MemoryLeases();
    const events: string[] = [];
    const a = elector(leases, clock, "a", events);
    const b = elector(leases, clock, "b", events);
    a.e.start();
    await flush(10);
    b.e.start();
    await tick(clock, 4_000);
    a.client.down = true; // partitioned from the API server, still running
    const lastRenew = Date.parse(leases.lease!.spec.renewTime!);
    let lostAt: number | undefined;
    let bAt: number | undefined;
    for (let t = 0; t < 30_000; t += 100) {
      await tick(clock, 100);
      if (lostAt === undefined && events.includes("a lost")) lostAt = clock.now();
      if (bAt === undefined && b.e.isLeader) bAt = clock.now();
    }
    assert.ok(lostAt !== undefined && bAt !== undefined);
    assert.ok(lostAt - lastRenew <= TIMINGS.renewDeadlineMs + TIMINGS.retryPeriodMs, `a stopped ${lostAt - lastRenew} ms after its last renewal`);
    assert.ok(lostAt < bAt, "the old leader stopped before the new one started");
    assert.equal(a.e.state, "lost");
    assert.equal(a.e.isLeader, false);
  });

  test("stop() releases the Lease: the standby takes over within a retry period", async () => {
    const clock = new FakeClock();
    const leases = new MemoryLeases();
    const events: string[] = [];
    const a = elector(leases, clock, "a", events);
    const b = elector(leases, clock, "b", events);
    a.e.start();
    await flush(10);
    b.e.start();
    await tick(clock, 5_000);
    const stopping = a.e.stop();
    await tick(clock, 100);
    await stopping;
    assert.equal(leases.lease?.spec.holderIdentity, "");
    const releasedAt = clock.now();
    for (let t = 0; t < 10_000 && !b.e.isLeader; t += 100) await tick(clock, 100);
    assert.equal(b.e.isLeader, true);
    assert.ok(clock.now() - releasedAt <= TIMINGS.retryPeriodMs * 2.2 + 100, `took ${clock.now() - releasedAt} ms`);
    assert.ok(!events.includes("a lost"), "a graceful stop is not a loss");
  });

  test("two candidates racing for an expired Lease: one update wins (resourceVersion), one leader", async () => {
    const clock = new FakeClock();
    const leases = new MemoryLeases();
    // An expired Lease of a process long gone.
    const old = formatMicroTime(clock.now() - 60_000);
    await leases.client().create({
      metadata: { name: "dockmesh-controller", namespace: "dockmesh-system" },
      spec: { holderIdentity: "gone", leaseDurationSeconds: 15, acquireTime: old, renewTime: old, leaseTransitions: 3 },
    });
    const events: string[] = [];
    const a = elector(leases, clock, "a", events);
    const b = elector(leases, clock, "b", events);
    a.e.start();
    b.e.start();
    await tick(clock, 40_000);
    assert.equal([a.e.isLeader, b.e.isLeader].filter(Boolean).length, 1);
    assert.equal(events.filter((e) => e.endsWith("started")).length, 1);
    assert.equal(leases.lease?.spec.leaseTransitions, 4);
  });
});
