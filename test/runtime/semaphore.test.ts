import { test } from "node:test";
import assert from "node:assert/strict";
import { Semaphore } from "../../runtime/semaphore.js";
import { deferred, flush, until } from "./helpers.js";

test("use() bounds parallelism and serves waiters in order", async () => {
  const sem = new Semaphore(2);
  const gates = Array.from({ length: 5 }, () => deferred());
  const started: number[] = [];
  let active = 0;
  let maxActive = 0;
  const runs = gates.map((g, i) =>
    sem.use(async () => {
      started.push(i);
      active++;
      maxActive = Math.max(maxActive, active);
      await g.promise;
      active--;
      return i * 10;
    }),
  );
  await flush();
  assert.deepEqual(started, [0, 1]);
  assert.equal(sem.available, 0);
  assert.equal(sem.waiting, 3);
  gates[1]?.resolve();
  await until(() => started.length === 3, "third started");
  assert.deepEqual(started, [0, 1, 2]);
  for (const g of gates) g.resolve();
  assert.deepEqual(await Promise.all(runs), [0, 10, 20, 30, 40]);
  assert.equal(maxActive, 2);
  assert.equal(sem.available, 2);
});

test("use() releases the permit when fn throws", async () => {
  const sem = new Semaphore(1);
  await assert.rejects(
    sem.use(() => {
      throw new Error("ssh failed");
    }),
    /ssh failed/,
  );
  assert.equal(sem.available, 1);
  assert.equal(await sem.use(() => "ok"), "ok");
});

test("acquire/release by hand, tryAcquire, over-release is an error", async () => {
  const sem = new Semaphore(1);
  await sem.acquire();
  assert.equal(sem.tryAcquire(), false);
  let second = false;
  const p = sem.acquire().then(() => {
    second = true;
  });
  await flush();
  assert.equal(second, false);
  sem.release();
  await p;
  assert.equal(second, true);
  sem.release();
  assert.equal(sem.tryAcquire(), true);
  sem.release();
  assert.throws(() => sem.release(), /without a matching acquire/);
  assert.throws(() => new Semaphore(0), /positive integer/);
});

test("an aborted waiter leaves the line and holds nothing", async () => {
  const sem = new Semaphore(1);
  await sem.acquire();
  const ac = new AbortController();
  const waiting = sem.acquire(ac.signal);
  const after = sem.acquire();
  ac.abort(new Error("shutting down"));
  await assert.rejects(waiting, /aborted/);
  assert.equal(sem.waiting, 1);
  sem.release();
  await after; // the next waiter got the permit
  assert.equal(sem.available, 0);
  await assert.rejects(sem.acquire(ac.signal), /aborted/);
});
