// The first contact with a fresh host waits (bounded) for the machines created with it to get a
// key and a subnet, so that one converge configures them all (issue 14: ~4 converges and ~10
// round trips per host when a mesh was created at once). Real SSH to simulated hosts; caches,
// status and events are in-memory fakes; time is a FakeClock.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { FINALIZER } from "../../controllers/resources.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { FakeClock } from "../../runtime/clock.js";
import { mesh, pub } from "../support/fixtures.js";
import { b64, machineReconciler, secret } from "../support/reconciler-harness.js";

const sshKey = generateEd25519("first-contact-test");
const wg = { m0: generateKeyPair(), m1: generateKeyPair() };
let fleet: SimulatedHostFleet;

before(async () => {
  fleet = await SimulatedHostFleet.start({ names: ["m0"], authorizedKey: sshKey.publicKey, addressPrefix: "127.3" });
});
after(() => fleet.close());

const keySecret = (name: "m0" | "m1") => secret(`${name}-wireguard`, { privateKey: b64(wg[name].privateKey), publicKey: b64(wg[name].publicKey) });

/** m0 (a fresh host) and m1, both allocated; m1 created `m1AgeMs` before the clock's now, without a key. */
function setup(clock: FakeClock, m1AgeMs: number) {
  const host = fleet.get("m0")!;
  host.host.wg.clear();
  const stamp = (ms: number) => new Date(clock.now() - ms);
  const m0: Machine = {
    ...pub("m0", 0, { spec: { ssh: { host: host.sshHost, port: host.sshPort, privateKeySecretRef: { name: "ssh" } } } }),
    metadata: { name: "m0", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "1", creationTimestamp: stamp(0) },
  };
  const m1: Machine = { ...pub("m1", 1), metadata: { name: "m1", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "2", creationTimestamp: stamp(m1AgeMs) } };
  const meshObj: MeshNetwork = {
    ...mesh("mesh", { cidr: "10.0.0.0/16", interface: "dm0", dockerNetwork: "apps" }),
    status: {
      allocations: [
        { machine: "m0", subnet: "10.0.0.0/24" },
        { machine: "m1", subnet: "10.0.1.0/24" },
      ],
    },
  };
  const h = machineReconciler([m0, m1], [meshObj], [secret("ssh", { "ssh-privatekey": b64(sshKey.privateKey) }), keySecret("m0")], { clock });
  const before = { ...host.counters };
  const peers = () => [...(host.host.wg.get("dm0")?.peers.keys() ?? [])];
  return {
    host,
    h,
    peers,
    sessions: () => host.counters.sessions - before.sessions,
    applies: () => host.counters.applies - before.applies,
    roundTrips: () => host.counters.roundTrips - before.roundTrips,
  };
}

test("a fresh host waits for a peer created with it, goes on at the peer's key, and configures it in its one apply", async () => {
  const clock = new FakeClock(Date.now());
  const { h, peers, sessions, applies, roundTrips } = setup(clock, 0);
  assert.deepEqual(await h.reconciler.reconcile("default/m0"), { requeueAfter: 1_000 }, "waits a second");
  assert.equal(sessions(), 0, "the host is not contacted while m1 has no key");
  // m1's key arrives; its event requeues m0 at once and, with nothing left to wait for, m0 goes on
  // without waiting for the rest of the poll period.
  h.keySecrets.set(keySecret("m1"));
  clock.advance(300);
  await h.reconciler.reconcile("default/m0");
  assert.equal(sessions(), 1, "one SSH session, 300 ms after the wait began");
  assert.equal(applies(), 1, "one apply");
  // Nothing was observed before it, so the facts are guessed (no systemd); the simulated host runs
  // systemd, and that costs no second pass (the guard does not check it).
  assert.equal(roundTrips(), 1, "the first converge of a systemd host in one round trip");
  assert.deepEqual(peers(), [wg.m1.publicKey], "m1 configured by the first apply");
  assert.ok(fleet.get("m0")!.host.enabled.has("dm0"), "wg-quick@dm0 enabled");
});

test("a requeue while a peer still lacks its key keeps waiting for the rest of the poll period", async () => {
  const clock = new FakeClock(Date.now());
  const { h, sessions } = setup(clock, 0);
  assert.deepEqual(await h.reconciler.reconcile("default/m0"), { requeueAfter: 1_000 });
  clock.advance(300); // past the arrivals' reuse: they are looked at again, and m1 still has no key
  assert.deepEqual(await h.reconciler.reconcile("default/m0"), { requeueAfter: 700 });
  assert.equal(sessions(), 0, "the host is not contacted while m1 has no key");
});

// Each row: how long ago m1 was created, how long m0 is kept waiting, whether m1 is in the first apply.
const bounds: Array<{ name: string; m1AgeMs: number; waits: number }> = [
  { name: "a peer that never gets a key holds the first contact 15 s at most", m1AgeMs: 0, waits: 15 },
  { name: "a peer created long ago without a key does not hold it at all", m1AgeMs: 120_000, waits: 0 },
];
for (const row of bounds) {
  test(row.name, async () => {
    const clock = new FakeClock(Date.now());
    const { h, peers, sessions } = setup(clock, row.m1AgeMs);
    let waited = 0;
    for (let i = 0; i < 100; i++) {
      const r = await h.reconciler.reconcile("default/m0");
      if (sessions() > 0) break;
      assert.ok(r && r.requeueAfter, "a wait says when to look again");
      clock.advance(r.requeueAfter);
      waited++;
    }
    assert.equal(waited, row.waits, "seconds waited");
    assert.equal(sessions(), 1, "then the host is converged");
    assert.deepEqual(peers(), [], "without the peer that has no key");
  });
}
