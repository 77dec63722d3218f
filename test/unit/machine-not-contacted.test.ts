// A Machine with nothing to configure because of a bad input — its MeshNetwork is invalid, or the
// mesh refuses it a subnet (a pin outside the pool, a pin another machine holds) — is not
// contacted: no SSH session, no command; its NetworkConfigured condition names the field to fix.
// A mesh that turns invalid tears nothing down on a host that had it. And a machine merely waiting
// for its subnet says so (WaitingForSubnet), also without contacting the host.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { FINALIZER } from "../../controllers/resources.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { mesh, pub } from "../support/fixtures.js";
import { b64, machineReconciler, secret } from "../support/reconciler-harness.js";

const sshKey = generateEd25519("not-contacted");
const wg = generateKeyPair();
let fleet: SimulatedHostFleet;

before(async () => {
  fleet = await SimulatedHostFleet.start({ names: ["m0"], authorizedKey: sshKey.publicKey });
});
after(() => fleet.close());

function m0(extra: Partial<Machine> = {}): Machine {
  const host = fleet.get("m0")!;
  const base = pub("m0", 0, { spec: { ssh: { host: host.sshHost, port: host.sshPort, privateKeySecretRef: { name: "ssh" } } } });
  return {
    ...base,
    metadata: { name: "m0", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "1" },
    status: { publicKey: wg.publicKey },
    ...extra,
    spec: { ...base.spec, ...extra.spec, ssh: base.spec.ssh },
  };
}

const secrets = () => [secret("ssh", { "ssh-privatekey": b64(sshKey.privateKey) }), secret("m0-wireguard", { privateKey: b64(wg.privateKey), publicKey: b64(wg.publicKey) })];
const cond = (m: Machine | undefined, type: string) => m?.status?.conditions?.find((c) => c.type === type);

const cases: Array<{ name: string; meshes: MeshNetwork[]; machine?: Partial<Machine>; reason: string; message: RegExp }> = [
  {
    name: "the MeshNetwork's pool has host bits set",
    meshes: [mesh("mesh", { cidr: "10.0.1.0/16", interface: "dm0" })],
    reason: "InvalidSpec",
    message: /^MeshNetwork mesh is invalid: spec\.cidr: 10\.0\.1\.0\/16 has host bits set; the pool's network address is 10\.0\.0\.0\/16$/,
  },
  {
    name: "the default interface name is too long",
    meshes: [mesh("a-very-long-mesh-name")],
    reason: "InvalidSpec",
    message: /spec\.interface: the default interface name dm-a-very-long-mesh-name is longer than 15 characters; set spec\.interface/,
  },
  {
    name: "the mesh refuses the machine's pin",
    meshes: [mesh("mesh", { cidr: "10.0.0.0/16", interface: "dm0" })],
    machine: { spec: { ...pub("m0", 0).spec, subnet: "10.9.0.0/24" } },
    reason: "InvalidSpec",
    message: /^MeshNetwork mesh refuses this machine a subnet: spec\.subnet: subnet 10\.9\.0\.0\/24 is outside the mesh's pool 10\.0\.0\.0\/16; pin a subnet inside it or remove spec\.subnet$/,
  },
  {
    // The mesh's own Ready message mentions other machines (and contains this one's name, "m0",
    // as a substring of "m01"): only this machine's own refusal counts.
    name: "no subnet allocated yet, while the mesh reports another machine's error",
    meshes: [
      {
        ...mesh("mesh", { cidr: "10.0.0.0/16", interface: "dm0" }),
        status: {
          allocations: [],
          conditions: [
            {
              type: "Ready",
              status: "False",
              reason: "MachineSpecInvalid",
              message: "m01: spec.subnet: MeshNetwork mesh: subnet 10.9.0.0/24 is outside the mesh's pool",
              lastTransitionTime: "2026-01-01T00:00:00Z",
            },
          ],
        },
      },
    ],
    reason: "WaitingForSubnet",
    message: /^MeshNetwork mesh has not allocated a subnet to this machine yet$/,
  },
  {
    name: "no subnet allocated yet",
    meshes: [mesh("mesh", { cidr: "10.0.0.0/16", interface: "dm0" })],
    reason: "WaitingForSubnet",
    message: /^MeshNetwork mesh has not allocated a subnet to this machine yet$/,
  },
];

for (const c of cases) {
  test(`not contacted: ${c.name}`, async () => {
    const before = fleet.get("m0")!.counters.sessions;
    const h = machineReconciler([m0(c.machine)], c.meshes, secrets());
    await h.reconciler.reconcile("default/m0");
    assert.equal(fleet.get("m0")!.counters.sessions, before, "no SSH session");
    const last = h.statuses.at(-1);
    assert.equal(cond(last, "NetworkConfigured")?.status, "False");
    assert.equal(cond(last, "NetworkConfigured")?.reason, c.reason);
    assert.match(cond(last, "NetworkConfigured")?.message ?? "", c.message);
    assert.equal(cond(last, "Reachable")?.reason, "NotContacted");
    assert.equal(cond(last, "Ready")?.reason, c.reason);
  });
}

test("a mesh that turns invalid leaves the host's network as it is", async () => {
  const before = fleet.get("m0")!.counters.sessions;
  const had: Partial<Machine> = { status: { publicKey: wg.publicKey, networks: [{ meshNetwork: "mesh", interface: "dm0", dockerNetwork: "apps", subnet: "10.0.0.0/24" }] } };
  const h = machineReconciler([m0(had)], [mesh("mesh", { cidr: "10.0.0.0/33", interface: "dm0" })], secrets());
  await h.reconciler.reconcile("default/m0");
  assert.equal(fleet.get("m0")!.counters.sessions, before, "no SSH session: nothing torn down");
  assert.match(cond(h.statuses.at(-1), "NetworkConfigured")?.message ?? "", /MeshNetwork mesh is invalid: spec\.cidr: "10\.0\.0\.0\/33" is not an IPv4 CIDR/);
});

test("a machine in no mesh at all is still contacted (Reachable, Docker reported)", async () => {
  const before = fleet.get("m0")!.counters.sessions;
  const h = machineReconciler([m0()], [], secrets());
  await h.reconciler.reconcile("default/m0");
  assert.equal(fleet.get("m0")!.counters.sessions, before + 1);
  assert.equal(cond(h.statuses.at(-1), "Reachable")?.status, "True");
  assert.equal(cond(h.statuses.at(-1), "NetworkConfigured")?.reason, "NoNetworks");
});
