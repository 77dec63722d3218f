// The Machine reconciler plans from the caches as they are once the host is connected and
// observed: a peer whose key (its key Secret) is published while the reconcile is connecting is configured in
// this apply (machines of a new mesh publish their keys at about the same time; planning from
// the start-of-reconcile view cost every host a second apply and a second handshake round);
// and a key published after the apply is applied in a second pass on the same session.
// Real SSH (hosts/ssh.ts) to a simulated host; caches, status and events are in-memory fakes.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { FINALIZER } from "../../controllers/resources.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { mesh, pub } from "../support/fixtures.js";
import { b64, machineReconciler, secret } from "../support/reconciler-harness.js";

const sshKey = generateEd25519("reconciler-test");
const wg = { m0: generateKeyPair(), m1: generateKeyPair() };
let fleet: SimulatedHostFleet;

before(async () => {
  fleet = await SimulatedHostFleet.start({ names: ["m0", "m1"], authorizedKey: sshKey.publicKey, latencyMs: 150 });
});
after(() => fleet.close());

test("a peer key published while the reconcile connects is in the first apply", async () => {
  const host = fleet.get("m0")!;
  const m0: Machine = {
    ...pub("m0", 0, { spec: { ssh: { host: host.sshHost, port: host.sshPort, privateKeySecretRef: { name: "ssh" } } } }),
    metadata: { name: "m0", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "1" },
    status: { publicKey: wg.m0.publicKey },
  };
  const m1: Machine = { ...pub("m1", 1), metadata: { name: "m1", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "2" } };
  const meshObj: MeshNetwork = {
    ...mesh("mesh", { cidr: "10.0.0.0/16", interface: "dm0", dockerNetwork: "apps" }),
    status: {
      allocations: [
        { machine: "m0", subnet: "10.0.0.0/24" },
        { machine: "m1", subnet: "10.0.1.0/24" },
      ],
    },
  };
  const h = machineReconciler(
    [m0, m1],
    [meshObj],
    [secret("ssh", { "ssh-privatekey": b64(sshKey.privateKey) }), secret("m0-wireguard", { privateKey: b64(wg.m0.privateKey), publicKey: b64(wg.m0.publicKey) })],
  );

  const running = h.reconciler.reconcile("default/m0");
  // m1 publishes its key once m0's reconcile is connected (its observe answer takes 150 ms).
  for (let i = 0; i < 500 && host.counters.sessions === 0; i++) await new Promise((r) => setTimeout(r, 2));
  assert.equal(host.counters.sessions, 1, "the reconcile connected");
  assert.equal(host.counters.applies, 0, "nothing applied yet");
  h.keySecrets.set(secret("m1-wireguard", { privateKey: b64(wg.m1.privateKey), publicKey: b64(wg.m1.publicKey) }));
  await running;

  const peers = [...(host.host.wg.get("dm0")?.peers.keys() ?? [])];
  assert.deepEqual(peers, [wg.m1.publicKey], "m1 is a peer after one reconcile");
  assert.equal(host.counters.applies, 1, "one apply");
  // Only the peer's handshake is missing: that first outcome is not written (quietFirstWait)…
  assert.equal(h.statuses.filter((s) => s.status?.conditions?.length).length, 0, "no conditions written by the first reconcile");
  // …the next look, once m1 had its own first converge (its status says how it went), writes
  // what it finds without applying anything again (secondLookWait, tested in test/unit/second-look).
  h.machines.set({ ...m1, status: { conditions: [{ type: "Ready", status: "False", reason: "Unreachable", message: "-", lastTransitionTime: "2026-01-01T00:00:00Z" }] } });
  await h.reconciler.reconcile("default/m0");
  assert.equal(host.counters.applies, 1, "still one apply");
  const last = h.statuses.at(-1)!;
  const pc = last.status?.conditions?.find((c) => c.type === "PeersConnected");
  assert.doesNotMatch(pc?.message ?? "", /no WireGuard key yet/, JSON.stringify(pc));
  assert.deepEqual(
    last.status?.networks?.[0]?.peers?.map((p) => p.machine),
    ["m1"],
  );
});

test("a peer key published after the apply is applied in a second pass on the same session", async () => {
  const fleet2 = await SimulatedHostFleet.start({ names: ["m0"], authorizedKey: sshKey.publicKey, latencyMs: 150, addressPrefix: "127.2" });
  try {
    const host = fleet2.get("m0")!;
    const m0: Machine = {
      ...pub("m0", 0, { spec: { ssh: { host: host.sshHost, port: host.sshPort, privateKeySecretRef: { name: "ssh" } } } }),
      metadata: { name: "m0", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "1" },
      status: { publicKey: wg.m0.publicKey },
    };
    const m1: Machine = { ...pub("m1", 1), metadata: { name: "m1", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "2" } };
    const meshObj: MeshNetwork = {
      ...mesh("mesh", { cidr: "10.0.0.0/16", interface: "dm0", dockerNetwork: "apps" }),
      status: {
        allocations: [
          { machine: "m0", subnet: "10.0.0.0/24" },
          { machine: "m1", subnet: "10.0.1.0/24" },
        ],
      },
    };
    const h = machineReconciler(
      [m0, m1],
      [meshObj],
      [secret("ssh", { "ssh-privatekey": b64(sshKey.privateKey) }), secret("m0-wireguard", { privateKey: b64(wg.m0.privateKey), publicKey: b64(wg.m0.publicKey) })],
    );
    const running = h.reconciler.reconcile("default/m0");
    // m1's key arrives once the first apply is done (the re-observe after it takes 150 ms).
    for (let i = 0; i < 1000 && host.counters.applies === 0; i++) await new Promise((r) => setTimeout(r, 2));
    assert.equal(host.counters.applies, 1, "the first apply ran");
    assert.deepEqual([...(host.host.wg.get("dm0")?.peers.keys() ?? [])], [], "without m1");
    h.keySecrets.set(secret("m1-wireguard", { privateKey: b64(wg.m1.privateKey), publicKey: b64(wg.m1.publicKey) }));
    await running;
    assert.deepEqual([...(host.host.wg.get("dm0")?.peers.keys() ?? [])], [wg.m1.publicKey], "m1 is a peer after one reconcile");
    assert.equal(host.counters.sessions, 1, "one SSH session");
    assert.equal(host.counters.applies, 2, "a second apply, for m1");
    const pc = h.statuses.at(-1)!.status?.conditions?.find((c) => c.type === "PeersConnected");
    assert.doesNotMatch(pc?.message ?? "", /no WireGuard key yet/, JSON.stringify(pc));
  } finally {
    await fleet2.close();
  }
});
