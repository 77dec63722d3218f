import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../runtime/clock.js";
import { silentLogger } from "../../runtime/log.js";
import type { ReconcileRecord, Reconciler, WorkQueueOptions } from "../../runtime/workqueue.js";
import { TerminalError, WorkQueue, backoffDelay, isTerminalError } from "../../runtime/workqueue.js";
import type { Deferred } from "./helpers.js";
import { captureLogger, deferred, flush, until } from "./helpers.js";

function setup(opts: Partial<WorkQueueOptions> = {}) {
  const clock = new FakeClock();
  const q = new WorkQueue({ name: "test", clock, logger: silentLogger(), ...opts });
  return { clock, q };
}

test("backoffDelay: doubling from base to cap, deterministic without jitter", () => {
  const cases: Array<{ failures: number; opts?: Parameters<typeof backoffDelay>[1]; want: number }> = [
    { failures: 0, want: 1000 },
    { failures: 1, want: 2000 },
    { failures: 2, want: 4000 },
    { failures: 5, want: 32_000 },
    // Capped at a minute (issue 12: an unreachable host that came back stayed Unreachable for up
    // to 5 minutes because its retries had backed off that far).
    { failures: 6, want: 60_000 },
    { failures: 9, want: 60_000 },
    { failures: 1000, want: 60_000 },
    { failures: 0, opts: { baseMs: 5, capMs: 20 }, want: 5 },
    { failures: 3, opts: { baseMs: 5, capMs: 20 }, want: 20 },
    { failures: 1, opts: { jitter: 0.5, random: () => 0.5 }, want: 1500 },
    { failures: 1, opts: { jitter: 0.5, random: () => 0 }, want: 2000 },
  ];
  for (const c of cases) assert.equal(backoffDelay(c.failures, c.opts), c.want, JSON.stringify(c));
});

test("a key added many times while waiting is reconciled once, in first-add order", async () => {
  const { q } = setup();
  const seen: string[] = [];
  for (const k of ["ns/a", "ns/b", "ns/a", "ns/c", "ns/b", "ns/a"]) q.add(k);
  assert.equal(q.len(), 3);
  q.start((key) => {
    seen.push(key);
  });
  await q.whenIdle();
  assert.deepEqual(seen, ["ns/a", "ns/b", "ns/c"]);
  assert.equal(q.stats().addsTotal, 3);
  assert.equal(q.stats().reconcilesTotal.success, 3);
});

test("a key added during its reconcile is reconciled once more afterwards, never concurrently", async () => {
  const { q } = setup({ concurrency: 4 });
  const gates = [deferred(), deferred()];
  let calls = 0;
  let active = 0;
  let maxActive = 0;
  q.start(async () => {
    const gate = gates[calls++];
    active++;
    maxActive = Math.max(maxActive, active);
    await gate?.promise;
    active--;
  });
  q.add("ns/a");
  await until(() => calls === 1, "first reconcile started");
  // Three events while the first reconcile runs: one more reconcile, not three, and not now.
  q.add("ns/a");
  q.add("ns/a");
  q.add("ns/a");
  await flush();
  assert.equal(calls, 1, "no second reconcile while the first runs");
  gates[0]?.resolve();
  await until(() => calls === 2, "second reconcile started");
  gates[1]?.resolve();
  await q.whenIdle();
  assert.equal(calls, 2);
  assert.equal(maxActive, 1);
});

test("at most `concurrency` reconciles run at once; the rest wait in order", async () => {
  const { q } = setup({ concurrency: 2 });
  const gates = new Map<string, Deferred>();
  const started: string[] = [];
  let active = 0;
  let maxActive = 0;
  q.start(async (key) => {
    started.push(key);
    active++;
    maxActive = Math.max(maxActive, active);
    const gate = deferred();
    gates.set(key, gate);
    await gate.promise;
    active--;
  });
  for (const k of ["a", "b", "c", "d", "e"]) q.add(k);
  await until(() => started.length === 2, "two started");
  await flush();
  assert.deepEqual(started, ["a", "b"]);
  assert.equal(q.stats().inFlight, 2);
  assert.equal(q.stats().depth, 3);
  gates.get("b")?.resolve();
  await until(() => started.length === 3, "third started");
  assert.deepEqual(started, ["a", "b", "c"]);
  for (let i = 0; i < 10 && started.length < 5; i++) {
    for (const g of gates.values()) g.resolve();
    await flush();
  }
  for (const g of gates.values()) g.resolve();
  await q.whenIdle();
  assert.deepEqual(started, ["a", "b", "c", "d", "e"]);
  assert.equal(maxActive, 2);
});

test("errors are retried with per-key exponential backoff, reset by a success", async () => {
  const { q, clock } = setup({ backoff: { baseMs: 1000, capMs: 3000 } });
  // Outcome script for key a: fail, fail, fail, fail, succeed, fail.
  const script = [false, false, false, false, true, false];
  const failuresSeen: number[] = [];
  q.start((_key, ctx) => {
    failuresSeen.push(ctx.failures);
    const ok = script.shift();
    if (!ok) throw new Error("ssh: connection refused");
  });
  q.add("a");
  const delays: number[][] = [];
  for (let i = 0; i < 5; i++) {
    await q.whenIdle();
    delays.push(clock.pendingDelays());
    clock.advance(clock.pendingDelays()[0] ?? 0);
  }
  await q.whenIdle();
  // After 1..4 failures: 1 s, 2 s, 3 s (cap), 3 s; after the success nothing is pending.
  assert.deepEqual(delays, [[1000], [2000], [3000], [3000], []]);
  assert.deepEqual(failuresSeen, [0, 1, 2, 3, 4]);
  assert.equal(q.failures("a"), 0);
  // A new failure after the success starts from the base again.
  q.add("a");
  await q.whenIdle();
  assert.deepEqual(clock.pendingDelays(), [1000]);
  const s = q.stats();
  assert.equal(s.retriesTotal, 5);
  assert.deepEqual(s.reconcilesTotal, { success: 1, requeue: 0, error: 5, terminal: 0 });
});

test("backoff is per key: one failing key does not slow another", async () => {
  const { q, clock } = setup();
  const seen: string[] = [];
  q.start((key) => {
    seen.push(key);
    if (key === "bad") throw new Error("boom");
  });
  q.add("bad");
  await q.whenIdle();
  clock.advance(1000);
  await q.whenIdle();
  q.add("good");
  await q.whenIdle();
  assert.deepEqual(seen, ["bad", "bad", "good"]);
  assert.equal(q.failures("bad"), 2);
  assert.equal(q.failures("good"), 0);
  assert.deepEqual(clock.pendingDelays(), [2000]);
});

test("a TerminalError, also wrapped as a cause, is not retried", async () => {
  const cases: Array<{ name: string; err: Error }> = [
    { name: "thrown directly", err: new TerminalError("spec.cidr is not a CIDR") },
    { name: "wrapped", err: new Error("reconcile ns/a", { cause: new TerminalError("spec.cidr is not a CIDR") }) },
  ];
  for (const c of cases) {
    const { q, clock } = setup();
    let calls = 0;
    q.start(() => {
      calls++;
      throw c.err;
    });
    q.add("ns/a");
    await q.whenIdle();
    clock.advance(3_600_000);
    await q.whenIdle();
    assert.equal(calls, 1, c.name);
    assert.equal(clock.pending(), 0, c.name);
    assert.deepEqual(q.stats().reconcilesTotal, { success: 0, requeue: 0, error: 0, terminal: 1 }, c.name);
    assert.equal(q.stats().retriesTotal, 0, c.name);
  }
  assert.equal(isTerminalError(new Error("x")), false);
  assert.equal(isTerminalError("x"), false);
});

test("requeueAfter schedules a resync; an earlier pending wake-up wins over a later one", async () => {
  const { q, clock } = setup();
  const seen: number[] = [];
  q.start(() => {
    seen.push(clock.now());
    return { requeueAfter: 30_000 };
  });
  const t0 = clock.now();
  q.add("a");
  await q.whenIdle();
  assert.deepEqual(clock.pendingDelays(), [30_000]);
  q.addAfter("a", 60_000); // later than the pending resync: ignored
  q.addAfter("a", 10_000); // earlier: replaces it
  assert.deepEqual(clock.pendingDelays(), [10_000]);
  clock.advance(10_000);
  await q.whenIdle();
  clock.advance(30_000);
  await q.whenIdle();
  assert.deepEqual(
    seen.map((t) => t - t0),
    [0, 10_000, 40_000],
  );
  assert.equal(q.stats().reconcilesTotal.requeue, 3);
  assert.equal(q.stats().delayed, 1);
});

test("a failure while dirty: reconciled again at once for the new event, and retried later", async () => {
  const { q, clock } = setup();
  const gate = deferred();
  let calls = 0;
  q.start(async () => {
    calls++;
    if (calls === 1) {
      await gate.promise;
      throw new Error("first attempt failed");
    }
  });
  q.add("a");
  await until(() => calls === 1, "started");
  q.add("a");
  gate.resolve();
  await q.whenIdle();
  assert.equal(calls, 2, "reconciled again for the event that came in");
  // The success of the second reconcile reset the backoff, but the retry timer stands.
  assert.equal(q.failures("a"), 0);
  clock.advance(1000);
  await q.whenIdle();
  assert.equal(calls, 3);
});

test("shutdown waits for in-flight reconciles, drops the rest", async () => {
  const { q, clock } = setup({ concurrency: 1 });
  const gate = deferred();
  const seen: string[] = [];
  q.start(async (key) => {
    seen.push(key);
    await gate.promise;
  });
  q.add("a");
  q.add("b");
  q.addAfter("c", 5000);
  await until(() => seen.length === 1, "a started");
  let done = false;
  const stopped = q.shutdown().then(() => {
    done = true;
  });
  await flush();
  assert.equal(done, false, "shutdown resolved before the reconcile in flight ended");
  assert.equal(clock.pending(), 0, "delayed adds cancelled");
  q.add("d"); // ignored after shutdown
  gate.resolve();
  await stopped;
  assert.equal(done, true);
  clock.advance(10_000);
  await flush();
  assert.deepEqual(seen, ["a"]);
  assert.throws(() => q.start(() => undefined), /already started/);
});

test("stats and onReconcile report outcomes and durations", async () => {
  const { q, clock } = setup();
  const records: ReconcileRecord[] = [];
  const unsubscribe = q.onReconcile((r) => records.push(r));
  const reconcile: Reconciler = (key) => {
    clock.advance(250); // the reconcile "takes" 250 ms on the fake clock
    if (key === "err") throw new Error("e");
    if (key === "term") throw new TerminalError("t");
    if (key === "req") return { requeueAfter: 1000 };
    return undefined;
  };
  q.start(reconcile);
  for (const k of ["ok", "err", "term", "req"]) q.add(k);
  await q.whenIdle();
  assert.deepEqual(
    records.map((r) => [r.key, r.outcome, r.durationMs]),
    [
      ["ok", "success", 250],
      ["err", "error", 250],
      ["term", "terminal", 250],
      ["req", "requeue", 250],
    ],
  );
  const s = q.stats();
  assert.deepEqual(s.reconcilesTotal, { success: 1, requeue: 1, error: 1, terminal: 1 });
  assert.deepEqual(s.reconcileDurationMsTotal, { success: 250, requeue: 250, error: 250, terminal: 250 });
  assert.equal(s.addsTotal, 4);
  assert.equal(s.retriesTotal, 1);
  assert.equal(s.depth, 0);
  assert.equal(s.inFlight, 0);
  assert.equal(s.delayed, 2, "err's retry and req's resync wait for timers");
  unsubscribe();
  q.add("ok");
  await q.whenIdle();
  assert.equal(records.length, 4);
});

test("reconcile failures are logged with the key and the cause chain, terminal ones at error", async () => {
  const { logger, lines } = captureLogger();
  const { q } = setup({ logger });
  q.start((key) => {
    if (key === "ns/a") throw new Error("reconcile ns/a", { cause: new Error("ssh root@203.0.113.10: connection refused") });
    throw new TerminalError("spec.interface longer than 15 characters");
  });
  q.add("ns/a");
  q.add("ns/b");
  await q.whenIdle();
  await flush();
  const warn = lines.find((l) => l.level === "warn");
  assert.equal(warn?.key, "ns/a");
  assert.equal(warn?.error, "reconcile ns/a: ssh root@203.0.113.10: connection refused");
  assert.equal(warn?.retryInMs, 1000);
  assert.equal(warn?.queue, "test");
  const err = lines.find((l) => l.level === "error");
  assert.equal(err?.key, "ns/b");
});
