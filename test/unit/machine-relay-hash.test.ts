// Relay candidates are part of a machine's plan only where the mesh has a pair to relay (two
// members behind NAT). In a mesh of public machines, another machine's status changing in a way
// that decides whether it may relay (here: it reports no connected peer) must not make a
// converged machine contact its host again: on 8 lab hosts it re-observed every host right
// after they all turned Ready, competing with the traffic the mesh was made for.
// Hosts are simulated (bench/sim) behind a real ssh2 server on loopback; nothing leaves it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine } from "../../api/types.generated.js";
import { canRelay } from "../../controllers/relays.js";
import { SimulatedMesh, machineReconciler } from "../support/reconciler-harness.js";

const sim = new SimulatedMesh(["m0", "m1", "m2"], "relay-hash");
const NAMES = sim.names;

before(() => sim.start());
after(() => sim.close());
const ready = (m: Machine | undefined) => m?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";

test("in a mesh without NAT'd pairs, another machine losing the ability to relay does not re-contact a converged host", async () => {
  const h = machineReconciler(sim.machines(), [sim.mesh], sim.secrets());
  // Converge all three (a peer handshakes once both sides have each other): bounded rounds.
  for (let round = 0; round < 4 && !NAMES.every((n) => ready(h.machines.informer.get(`default/${n}`))); round++) {
    for (const n of NAMES) await h.reconciler.reconcile(`default/${n}`);
  }
  for (const n of NAMES) assert.ok(ready(h.machines.informer.get(`default/${n}`)), `${n} Ready`);

  // m1 now reports no connected peer: it may no longer relay.
  const m1 = h.machines.informer.get("default/m1")!;
  assert.equal(canRelay(m1), true, "m1 could relay before");
  const conditions = (m1.status?.conditions ?? []).map((c) => (c.type === "PeersConnected" ? { ...c, status: "False" as const, reason: "NoHandshake" } : c));
  h.machines.set({ ...m1, status: { ...m1.status, peers: "0/2", conditions } });
  assert.equal(canRelay(h.machines.informer.get("default/m1")), false, "m1 can no longer relay");

  const sessions = sim.fleet.get("m0")!.counters.sessions;
  const result = await h.reconciler.reconcile("default/m0");
  assert.equal(sim.fleet.get("m0")!.counters.sessions, sessions, "m0's host is not contacted: its plan did not change");
  assert.ok(result && (result.requeueAfter ?? 0) > 0, "m0 stays on its resync");
});

test("right after first contact recorded the host key, a reconcile with nothing new does not contact the host", async () => {
  // The hosts are configured by the test above; a fresh reconciler with no recorded host keys.
  const fresh = sim.machines();
  assert.equal(fresh[0]!.status?.hostKeyFingerprint, undefined);
  const h = machineReconciler(fresh, [sim.mesh], sim.secrets());
  for (const n of NAMES) await h.reconciler.reconcile(`default/${n}`);
  const m0 = h.machines.informer.get("default/m0");
  assert.ok(ready(m0), "m0 Ready on its first reconcile");
  assert.match(m0?.status?.hostKeyFingerprint ?? "", /^SHA256:/, "the host key was recorded");

  const sessions = sim.fleet.get("m0")!.counters.sessions;
  await h.reconciler.reconcile("default/m0");
  assert.equal(sim.fleet.get("m0")!.counters.sessions, sessions, "not contacted again: recording the host key changed nothing on the host");
});
