// Issue 12 §2 on the Machine reconciler: a mesh configured on a host that then clashes with an
// older one (its spec edited to overlap, a label change) is refused — NetworkConfigured False,
// MeshConflict — and kept as the host has it: the older mesh is configured beside it, nothing of
// the refused one is torn down, and its entry stays in status.networks, so that deleting it
// later still removes it from the host. Before, the entry was dropped from status at the next
// converge and the refused mesh's interface was left on the host for good once it was deleted.
// A simulated host behind a real SSH server on loopback (bench/sim).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork, MeshNetworkSpec } from "../../api/types.generated.js";
import { FINALIZER } from "../../controllers/resources.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { mesh, pub } from "../support/fixtures.js";
import { b64, machineReconciler, secret } from "../support/reconciler-harness.js";

const sshKey = generateEd25519("mesh-conflict");
const wg = generateKeyPair();
let fleet: SimulatedHostFleet;

before(async () => {
  fleet = await SimulatedHostFleet.start({ names: ["m0"], authorizedKey: sshKey.publicKey });
});
after(() => fleet.close());

function m0(): Machine {
  const host = fleet.get("m0")!;
  const base = pub("m0", 0, { spec: { ssh: { host: host.sshHost, port: host.sshPort, privateKeySecretRef: { name: "ssh" } } } });
  return { ...base, metadata: { name: "m0", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "1" }, status: { publicKey: wg.publicKey } };
}

const secrets = () => [secret("ssh", { "ssh-privatekey": b64(sshKey.privateKey) }), secret("m0-wireguard", { privateKey: b64(wg.privateKey), publicKey: b64(wg.publicKey) })];
const cond = (m: Machine | undefined, type: string) => m?.status?.conditions?.find((c) => c.type === type);

function allocated(name: string, spec: Partial<MeshNetworkSpec>, created: string, subnet: string): MeshNetwork {
  const x = mesh(name, spec);
  return { ...x, metadata: { ...x.metadata, creationTimestamp: created as unknown as Date }, status: { allocations: [{ machine: "m0", subnet }] } };
}

test("a configured mesh refused for a clash with an older one is kept on the host and in status, and torn down once deleted", async () => {
  const host = fleet.get("m0")!.host;
  const second = allocated("second", { cidr: "10.210.128.0/17", interface: "dm1", listenPort: 51822, dockerNetwork: "second" }, "2026-01-02T00:00:00Z", "10.210.128.0/24");
  const h = machineReconciler([m0()], [second], secrets());
  await h.reconciler.reconcile("default/m0");
  assert.ok(host.links.has("dm1") && host.networks.has("second"), "second configured");

  // An older mesh whose pool holds second's: second is refused on m0.
  h.meshes.set(allocated("mesh", { cidr: "10.210.0.0/16", interface: "dm0" }, "2026-01-01T00:00:00Z", "10.210.0.0/24"));
  await h.reconciler.reconcile("default/m0");
  const st = h.statuses.at(-1)!;
  assert.equal(cond(st, "NetworkConfigured")?.reason, "MeshConflict");
  assert.match(cond(st, "NetworkConfigured")?.message ?? "", /^MeshNetwork second: spec\.cidr: pool 10\.210\.128\.0\/17 overlaps the pool 10\.210\.0\.0\/16 of MeshNetwork mesh, /);
  assert.ok(host.links.has("dm0") && host.networks.has("mesh"), "the older mesh is configured");
  assert.ok(host.links.has("dm1") && host.networks.has("second"), "nothing of the refused mesh torn down");
  assert.deepEqual(
    st.status?.networks?.map((n) => [n.meshNetwork, n.interface]).sort(),
    [
      ["mesh", "dm0"],
      ["second", "dm1"],
    ],
    "its entry stays in status",
  );

  // The refused mesh deleted: it goes from the host, the older one stays.
  h.meshes.delete("default/second");
  await h.reconciler.reconcile("default/m0");
  assert.ok(!host.links.has("dm1") && !host.networks.has("second"), "second torn down");
  assert.ok(![...host.files.keys()].some((f) => f.includes("dm1")), "its files too");
  assert.ok(host.links.has("dm0"), "mesh stays");
  assert.deepEqual(
    h.statuses.at(-1)!.status?.networks?.map((n) => n.meshNetwork),
    ["mesh"],
  );
});
