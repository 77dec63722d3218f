// A mesh added to a Ready machine (a label change, a new MeshNetwork) goes on record in
// status.networks before anything of it is applied; Ready goes False (Converging) in that same
// write. Before, that write left Ready True beside the new mesh's entry, and
// `kubectl wait --for=condition=Ready` passed before the mesh was configured (e2e/multimesh,
// once in CI: a2's mesh two listed no peers while every Machine said Ready).
// Hosts are simulated (bench/sim) behind a real ssh2 server on loopback; nothing leaves it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MachineStatus, MachineStatusNetwork } from "../../api/types.generated.js";
import type { NetworkPlan } from "../../mesh/plan.js";
import { intendedStatus } from "../../controllers/machine-status.js";
import { FakeClock } from "../../runtime/clock.js";
import { mesh } from "../support/fixtures.js";
import { SimulatedMesh, machineReconciler } from "../support/reconciler-harness.js";

const plan = (meshNetwork: string, iface: string): NetworkPlan =>
  ({
    meshNetwork,
    subnet: "10.1.0.0/24",
    docker: { name: meshNetwork, bridge: `br-${meshNetwork}` },
    wireguard: { interface: iface, listenPort: 51820, mtu: 1420, peers: [] },
    relayed: [],
    unreachable: [],
  }) as unknown as NetworkPlan;
const ready = (status: "True" | "False", reason: string) => ({ type: "Ready", status, reason, message: "m", lastTransitionTime: "2026-12-04T11:00:00Z", observedGeneration: 1 });
const one: MachineStatusNetwork = { meshNetwork: "one", interface: "dm1", subnet: "10.0.0.0/24", peers: [{ machine: "m1", state: "Connected" }] };
const at = Date.parse("2026-12-04T12:00:00Z");

test("intendedStatus: what the write before applying a new mesh says", () => {
  const cases: Array<{ name: string; cur: MachineStatus | undefined; planned: NetworkPlan[]; ready?: [string, string, RegExp?]; networks?: string[] }> = [
    { name: "nothing new: no write", cur: { networks: [one], conditions: [ready("True", "Converged")] }, planned: [plan("one", "dm1")] },
    { name: "a first converge: the entry, and no Ready made up", cur: undefined, planned: [plan("one", "dm1")], networks: ["one"] },
    {
      name: "a Ready machine gets a mesh: Ready False, naming it",
      cur: { networks: [one], conditions: [ready("True", "Converged")] },
      planned: [plan("one", "dm1"), plan("two", "dm2")],
      ready: ["False", "Converging", /^NetworkConfigured: configuring MeshNetwork two on the host$/],
      networks: ["one", "two"],
    },
    {
      name: "two meshes at once, named in order",
      cur: { conditions: [ready("False", "AuthFailed")] },
      planned: [plan("zeta", "dm2"), plan("alpha", "dm1")],
      ready: ["False", "Converging", /configuring MeshNetwork alpha, MeshNetwork zeta on/],
      networks: ["alpha", "zeta"],
    },
  ];
  for (const c of cases) {
    const got = intendedStatus(c.cur, c.planned, 1, at);
    if (!c.networks) {
      assert.equal(got, undefined, c.name);
      continue;
    }
    assert.deepEqual(
      got?.networks?.map((n) => n.meshNetwork),
      c.networks,
      c.name,
    );
    const r = got?.conditions?.find((x) => x.type === "Ready");
    if (!c.ready) {
      assert.equal(r, undefined, c.name);
      continue;
    }
    assert.equal(r?.status, c.ready[0], c.name);
    assert.equal(r?.reason, c.ready[1], c.name);
    if (c.ready[2]) assert.match(r?.message ?? "", c.ready[2], c.name);
    assert.equal(got?.conditions?.find((x) => x.type === "NetworkConfigured")?.status, "False", c.name);
  }
});

const clock = new FakeClock(at);
const sim = new SimulatedMesh(["m0", "m1"], "intended-status");
before(() => sim.start({ nowS: () => Math.floor(clock.now() / 1000), addressPrefix: "127.5" }));
after(() => sim.close());

test("a Ready machine's reconcile that adds a mesh writes Ready False with the mesh's entry, then converges it", async () => {
  const h = machineReconciler(sim.machines(), [sim.mesh], sim.secrets(), { clock });
  for (let i = 0; i < 3 && !["m0", "m1"].every((n) => isReady(h.machines.informer.get(`default/${n}`))); i++) {
    for (const n of ["m0", "m1"]) await h.reconciler.reconcile(`default/${n}`);
    clock.advance(5_000);
  }
  assert.ok(isReady(h.machines.informer.get("default/m0")), "m0 Ready in the first mesh");

  const two = {
    ...mesh("two", { cidr: "10.9.0.0/16", interface: "dm9", listenPort: 51829 }),
    status: {
      allocations: [
        { machine: "m0", subnet: "10.9.0.0/24" },
        { machine: "m1", subnet: "10.9.1.0/24" },
      ],
    },
  };
  h.meshes.set(two);
  const from = h.statuses.length;
  await h.reconciler.reconcile("default/m0");
  const written = h.statuses.slice(from).filter((m) => m.metadata.name === "m0");
  const first = written.find((m) => m.status?.networks?.some((n) => n.meshNetwork === "two"));
  assert.ok(first, `a write listing mesh two: ${JSON.stringify(written.map((m) => m.status?.networks?.map((n) => n.meshNetwork)))}`);
  const r = first.status?.conditions?.find((c) => c.type === "Ready");
  assert.equal(r?.status, "False", JSON.stringify(r));
  assert.equal(r?.reason, "Converging");
  const last = h.machines.informer.get("default/m0")!;
  assert.ok(
    last.status?.networks?.find((n) => n.meshNetwork === "two")?.peers?.some((p) => p.machine === "m1"),
    `mesh two configured after: ${JSON.stringify(last.status?.networks)}`,
  );
});

function isReady(m: Machine | undefined): boolean {
  return m?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}
