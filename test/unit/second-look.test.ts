// Issue 14: a machine configured just now whose only missing piece was its peers' handshakes
// (its first outcome left unwritten) looks at its host again only once every peer had its own
// first converge, or once the namespace's first converges stopped coming (15 s after the last);
// not before, when the look would find the handshakes still missing, write Ready=False and have to
// look once more. Waiting costs no SSH.
// Hosts are simulated (bench/sim) behind a real ssh2 server on loopback; nothing leaves it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../runtime/clock.js";
import { SimulatedMesh, machineReconciler, type Harness } from "../support/reconciler-harness.js";

const clock = new FakeClock(Date.parse("2026-12-04T12:00:00Z"));
const waits = new SimulatedMesh(["m0", "m1", "m2"], "second-look");
const capped = new SimulatedMesh(["c0", "c1"], "second-look-cap");
const arriving = new SimulatedMesh(["p0", "p1", "p2"], "second-look-arriving");

before(async () => {
  await waits.start({ nowS: () => Math.floor(clock.now() / 1000) });
  await capped.start({ nowS: () => Math.floor(clock.now() / 1000), addressPrefix: "127.3" });
  await arriving.start({ nowS: () => Math.floor(clock.now() / 1000), addressPrefix: "127.5" });
});
after(async () => {
  await waits.close();
  await capped.close();
  await arriving.close();
});

const ready = (h: Harness, n: string) => h.machines.informer.get(`default/${n}`)?.status?.conditions?.find((c) => c.type === "Ready");
const observes = (sim: SimulatedMesh, n: string) => sim.fleet.get(n)!.counters.observes;

/** The last peer's first converge, then `machine` a second on: one look at its host, which writes Ready=True. */
async function lastPeerThenOneLook(h: Harness, sim: SimulatedMesh, last: string, machine: string, looked: number): Promise<void> {
  await h.reconciler.reconcile(`default/${last}`);
  clock.advance(1_000);
  await h.reconciler.reconcile(`default/${machine}`);
  assert.equal(observes(sim, machine), looked + 1, "one look, once every peer was configured");
  assert.equal(ready(h, machine)?.status, "True", JSON.stringify(ready(h, machine)));
}

test("the look that writes a quieted machine's first outcome waits for every peer's first converge, without SSH", async () => {
  const h = machineReconciler(waits.machines(), [waits.mesh], waits.secrets(), { clock });
  await h.reconciler.reconcile("default/m0");
  assert.equal(ready(h, "m0"), undefined, "m0's first outcome (peers' handshakes pending) is not written");
  const looked = observes(waits, "m0");

  // m1 and m2 have not been configured: m0's next look would find their handshakes missing.
  clock.advance(5_000);
  assert.deepEqual(await h.reconciler.reconcile("default/m0"), { requeueAfter: 1_000 });
  assert.equal(observes(waits, "m0"), looked, "no look at m0's host while its peers are not configured");

  await h.reconciler.reconcile("default/m1");
  clock.advance(1_000);
  assert.deepEqual(await h.reconciler.reconcile("default/m0"), { requeueAfter: 1_000 }, "m2 still not configured");
  assert.equal(observes(waits, "m0"), looked);

  await lastPeerThenOneLook(h, waits, "m2", "m0", looked);
});

test("the wait ends 15 s after the namespace's last first converge: the machine is looked at and its status written", async () => {
  const h = machineReconciler(capped.machines(), [capped.mesh], capped.secrets(), { clock });
  await h.reconciler.reconcile("default/c0");
  assert.equal(ready(h, "c0"), undefined);
  const looked = observes(capped, "c0");
  clock.advance(14_000);
  assert.deepEqual(await h.reconciler.reconcile("default/c0"), { requeueAfter: 1_000 });
  assert.equal(observes(capped, "c0"), looked);
  // c1 never gets its first converge (say its reconciles keep failing before the host): 15 s on, c0 is looked at anyway.
  clock.advance(1_000);
  await h.reconciler.reconcile("default/c0");
  assert.equal(observes(capped, "c0"), looked + 1);
  assert.equal(ready(h, "c0")?.status, "False");
  assert.match(ready(h, "c0")?.message ?? "", /c1/);
});

test("while the mesh's machines go on arriving, the wait goes on past 30 s", async () => {
  const h = machineReconciler(arriving.machines(), [arriving.mesh], arriving.secrets(), { clock });
  await h.reconciler.reconcile("default/p0");
  const looked = observes(arriving, "p0");
  clock.advance(20_000);
  await h.reconciler.reconcile("default/p1"); // p1's first converge, 20 s after p0's (p2 still to come)
  assert.equal(ready(h, "p1"), undefined, "p1 quieted too");
  clock.advance(11_000);
  assert.deepEqual(await h.reconciler.reconcile("default/p0"), { requeueAfter: 1_000 }, "31 s on, 11 s after p1's first converge: p0 still waits");
  assert.equal(observes(arriving, "p0"), looked);
  await lastPeerThenOneLook(h, arriving, "p2", "p0", looked);
});
