// Relay candidates are part of a machine's plan only where the mesh has a pair to relay (two
// members behind NAT). In a mesh of public machines, another machine's status changing in a way
// that decides whether it may relay (here: it reports no connected peer) must not make a
// converged machine contact its host again: on 8 lab hosts it re-observed every host right
// after they all turned Ready, competing with the traffic the mesh was made for.
// Hosts are simulated (bench/sim) behind a real ssh2 server on loopback; nothing leaves it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { FINALIZER } from "../../controllers/resources.js";
import { canRelay } from "../../controllers/relays.js";
import { generateKeyPair, type KeyPair } from "../../mesh/keys.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { mesh, pub } from "../support/fixtures.js";
import { b64, machineReconciler, secret } from "../support/reconciler-harness.js";

const NAMES = ["m0", "m1", "m2"];
const sshKey = generateEd25519("relay-hash");
const wg = new Map<string, KeyPair>(NAMES.map((n) => [n, generateKeyPair()]));
let fleet: SimulatedHostFleet;

before(async () => {
  fleet = await SimulatedHostFleet.start({ names: NAMES, authorizedKey: sshKey.publicKey });
});
after(() => fleet.close());

function machineOf(name: string, i: number): Machine {
  const host = fleet.get(name)!;
  const base = pub(name, i, { spec: { ssh: { host: host.sshHost, port: host.sshPort, privateKeySecretRef: { name: "ssh" } } } });
  return { ...base, metadata: { name, namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "1" }, status: { publicKey: wg.get(name)!.publicKey } };
}

const theMesh: MeshNetwork = {
  ...mesh("mesh", { cidr: "10.0.0.0/16", interface: "dm0" }),
  status: { allocations: NAMES.map((machine, i) => ({ machine, subnet: `10.0.${i}.0/24` })) },
};
const secrets = () => [
  secret("ssh", { "ssh-privatekey": b64(sshKey.privateKey) }),
  ...NAMES.map((n) => secret(`${n}-wireguard`, { privateKey: b64(wg.get(n)!.privateKey), publicKey: b64(wg.get(n)!.publicKey) })),
];
const ready = (m: Machine | undefined) => m?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";

test("in a mesh without NAT'd pairs, another machine losing the ability to relay does not re-contact a converged host", async () => {
  const h = machineReconciler(NAMES.map(machineOf), [theMesh], secrets());
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

  const sessions = fleet.get("m0")!.counters.sessions;
  const result = await h.reconciler.reconcile("default/m0");
  assert.equal(fleet.get("m0")!.counters.sessions, sessions, "m0's host is not contacted: its plan did not change");
  assert.ok(result && (result.requeueAfter ?? 0) > 0, "m0 stays on its resync");
});

test("right after first contact recorded the host key, a reconcile with nothing new does not contact the host", async () => {
  // The hosts are configured by the test above; a fresh reconciler with no recorded host keys.
  const fresh = NAMES.map(machineOf);
  assert.equal(fresh[0]!.status?.hostKeyFingerprint, undefined);
  const h = machineReconciler(fresh, [theMesh], secrets());
  for (const n of NAMES) await h.reconciler.reconcile(`default/${n}`);
  const m0 = h.machines.informer.get("default/m0");
  assert.ok(ready(m0), "m0 Ready on its first reconcile");
  assert.match(m0?.status?.hostKeyFingerprint ?? "", /^SHA256:/, "the host key was recorded");

  const sessions = fleet.get("m0")!.counters.sessions;
  await h.reconciler.reconcile("default/m0");
  assert.equal(fleet.get("m0")!.counters.sessions, sessions, "not contacted again: recording the host key changed nothing on the host");
});
