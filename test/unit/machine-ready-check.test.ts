// Issue 12 §4: Ready means true now. After every lab host was gone, all Machines stayed Ready True
// 2/2 for the whole 5-minute resync. Now a Ready Machine's host is checked every readyCheckMs
// (one light command); a host that went away is Unreachable on the next check, its PEERS count
// is removed rather than left at 2/2, and a host that answers and still handshakes costs one SSH
// login and one command and writes nothing.
// Hosts are simulated (bench/sim) behind a real ssh2 server on loopback; nothing leaves it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine } from "../../api/types.generated.js";
import { FakeClock } from "../../runtime/clock.js";
import { OwnWrites } from "../../runtime/own-writes.js";
import { SimulatedMesh, machineReconciler, type Harness } from "../support/reconciler-harness.js";

const sim = new SimulatedMesh(["m0", "m1", "m2"], "ready-check");
const NAMES = sim.names;
const clock = new FakeClock(Date.now());

before(() => sim.start({ nowS: () => Math.floor(clock.now() / 1000) }));
after(() => sim.close());
const cond = (m: Machine | undefined, type: string) => m?.status?.conditions?.find((c) => c.type === type);
const get = (h: Harness, n: string) => h.machines.informer.get(`default/${n}`);

async function convergeAll(h: Harness): Promise<void> {
  for (let round = 0; round < 4 && !NAMES.every((n) => cond(get(h, n), "Ready")?.status === "True"); round++) {
    for (const n of NAMES) await h.reconciler.reconcile(`default/${n}`);
  }
  for (const n of NAMES) assert.equal(cond(get(h, n), "Ready")?.status, "True", `${n} Ready`);
}

test("a Ready machine's host is checked every 30 s: one login, one command, nothing written while it holds", async () => {
  const h = machineReconciler(sim.machines(), [sim.mesh], sim.secrets(), { clock, readyCheckMs: 30_000 });
  await convergeAll(h);
  assert.equal(get(h, "m0")?.status?.peers, "2/2");

  // Not due yet: the host is not contacted, and the next look is at most 30 s away.
  const c0 = { ...sim.fleet.get("m0")!.counters };
  const writes = h.statuses.length;
  const r1 = await h.reconciler.reconcile("default/m0");
  assert.equal(sim.fleet.get("m0")!.counters.sessions, c0.sessions);
  assert.ok(r1 && r1.requeueAfter !== undefined && r1.requeueAfter <= 30_000, `requeue in ${r1?.requeueAfter} ms`);

  // Due: one SSH login, one command (the light check, no observe), no status write.
  clock.advance(30_000);
  const r2 = await h.reconciler.reconcile("default/m0");
  const c1 = sim.fleet.get("m0")!.counters;
  assert.equal(c1.sessions - c0.sessions, 1, "one SSH login");
  assert.equal(c1.roundTrips - c0.roundTrips, 1, "one command");
  assert.equal(c1.readyChecks - c0.readyChecks, 1, "the Ready check, not an observe");
  assert.equal(c1.observes, c0.observes);
  assert.equal(h.statuses.length, writes, "nothing written");
  assert.equal(r2?.requeueAfter, 30_000);
});

test("every host gone: each Machine is Unreachable at its next check, and PEERS is removed, not left at 2/2", async () => {
  const h = machineReconciler(sim.machines(), [sim.mesh], sim.secrets(), { clock, readyCheckMs: 30_000 });
  await convergeAll(h);
  for (const n of NAMES) sim.fleet.get(n)!.down = true;
  try {
    clock.advance(30_000);
    for (const n of NAMES) {
      await assert.rejects(h.reconciler.reconcile(`default/${n}`), /machine default\/m\d: /);
      const m = get(h, n);
      assert.equal(cond(m, "Ready")?.status, "False", `${n} Ready`);
      assert.equal(cond(m, "Reachable")?.status, "False", `${n} Reachable`);
      assert.equal(m?.status?.peers, undefined, `${n} PEERS`);
    }
  } finally {
    for (const n of NAMES) sim.fleet.get(n)!.down = false;
  }
});

test("one host gone: the others stay Ready and their PEERS agrees with Ready (the gone peer is not counted once stale)", async () => {
  const h = machineReconciler(sim.machines(), [sim.mesh], sim.secrets(), { clock, readyCheckMs: 30_000 });
  await convergeAll(h);
  sim.fleet.get("m2")!.down = true;
  try {
    clock.advance(30_000);
    await assert.rejects(h.reconciler.reconcile("default/m2"));
    assert.equal(cond(get(h, "m2"), "Reachable")?.status, "False");
    // m2's handshakes age past 3 minutes; m0 and m1 keep theirs fresh with each other.
    for (let i = 0; i < 7; i++) {
      clock.advance(30_000);
      for (const n of ["m0", "m1"]) await h.reconciler.reconcile(`default/${n}`);
    }
    for (const n of ["m0", "m1"]) {
      const m = get(h, n);
      assert.equal(cond(m, "Ready")?.status, "True", `${n} Ready`);
      assert.equal(m?.status?.peers, "1/1", `${n} PEERS counts what Ready counts`);
      assert.match(cond(m, "PeersConnected")?.message ?? "", /not counted: m2 \(the controller cannot reach it\)/);
    }
  } finally {
    sim.fleet.get("m2")!.down = false;
  }
});

// A host back from an outage must be Ready again on the server, whatever the informer cache
// lagged behind. Seen in CI (new-user scenario, step 4): the reconcile that found the host
// back started from a cached Machine older than its own Unreachable write; that cached status
// already said Ready, so the Ready outcome looked "unchanged" and was never sent, and the Ready
// claim then skipped every look until the 5-minute resync. Now a reconcile starts from this
// controller's own last write when the cache is older (runtime/own-writes.ts), and a Ready claim
// holds only while the object says Ready too.
/** What the API server holds: the last status written (the harness's cache takes every write at once). */
const server = (h: Harness, n: string) => [...h.statuses].reverse().find((x) => x.metadata.name === n) ?? get(h, n);

/** m1 goes away and is written Unreachable; returns the Machine as cached just before that write. */
async function outage(h: Harness): Promise<Machine> {
  const before = get(h, "m1")!;
  sim.fleet.get("m1")!.down = true;
  try {
    clock.advance(30_000);
    await assert.rejects(h.reconciler.reconcile("default/m1"), /machine default\/m1: /);
  } finally {
    sim.fleet.get("m1")!.down = false;
  }
  assert.equal(cond(server(h, "m1"), "Ready")?.status, "False", "the outage was written");
  return before;
}

const cases: Array<{ name: string; backFirst: boolean; lag: (h: Harness, before: Machine) => void }> = [
  {
    name: "the watch has not delivered the Unreachable write when the host is looked at again",
    backFirst: false,
    lag: (h, before) => h.machines.set(before),
  },
  {
    name: "someone else wrote Ready=False over the Ready claim (status is input)",
    backFirst: true,
    lag: (h) => {
      const cur = get(h, "m1")!;
      const conditions = (cur.status?.conditions ?? []).map((c) => (c.type === "Ready" ? { ...c, status: "False" as const, reason: "Patched", message: "by hand" } : c));
      const theirs: Machine = { ...cur, metadata: { ...cur.metadata, resourceVersion: `${cur.metadata.resourceVersion}-theirs` }, status: { ...cur.status, conditions } };
      h.statuses.push(theirs);
      h.machines.set(theirs);
    },
  },
];

for (const c of cases) {
  test(`back from an outage, Ready is written again when ${c.name}`, async () => {
    const h = machineReconciler(sim.machines(), [sim.mesh], sim.secrets(), { clock, readyCheckMs: 30_000 });
    await convergeAll(h);
    const before = await outage(h);
    if (c.backFirst) {
      // Back and claimed Ready before the lag.
      await h.reconciler.reconcile("default/m1");
      assert.equal(cond(server(h, "m1"), "Ready")?.status, "True");
    }
    c.lag(h, before);
    await h.reconciler.reconcile("default/m1");
    const written = server(h, "m1");
    assert.equal(cond(written, "Ready")?.status, "True", `written by the look that found the host back: ${JSON.stringify(written?.status?.conditions)}`);
    // The watch catches up; the next look keeps it so.
    h.machines.set(written!);
    clock.advance(30_000);
    await h.reconciler.reconcile("default/m1");
    assert.equal(cond(server(h, "m1"), "Ready")?.status, "True");
    assert.equal(cond(server(h, "m1"), "Reachable")?.status, "True");
  });
}

test("OwnWrites: a cached version this controller replaced gives its write; any other version is the server's", () => {
  const own = new OwnWrites<Machine>();
  const at = (rv: string, note: string) =>
    ({ apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", metadata: { name: "a", namespace: "default", resourceVersion: rv }, spec: { ssh: { host: note } } }) as unknown as Machine;
  own.wrote("default/a", "1", at("2", "ours"));
  own.wrote("default/a", "2", at("3", "ours again"));
  assert.equal(own.fresh("default/a", at("1", "stale")).metadata.resourceVersion, "3", "two writes behind");
  assert.equal(own.fresh("default/a", at("2", "stale")).metadata.resourceVersion, "3", "one write behind");
  assert.equal(own.fresh("default/a", at("7", "theirs")).metadata.resourceVersion, "7", "a version we never replaced is newer");
  assert.equal(own.size, 0, "forgotten once the cache has moved past our writes");
  own.wrote("default/a", undefined, at("9", "no version read"));
  assert.equal(own.size, 0, "nothing recorded without the version replaced");
});
