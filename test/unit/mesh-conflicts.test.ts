// Issue 12 §2: two MeshNetworks that clash on a machine they both select (overlapping pools, the
// same interface, UDP port or Docker network). One of them is refused as a whole — the older
// keeps its machines, then the first by name — and the refused one allocates nothing and is
// configured nowhere. One function decides (mesh/conflicts.ts); `dockmesh plan` (planAll) and the
// MeshNetwork controller's status (meshStatus) give the same message.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { MeshNetwork, MeshNetworkSpec } from "../../api/types.generated.js";
import { meshConflicts } from "../../mesh/conflicts.js";
import { resolveMesh, type ResolvedMesh } from "../../mesh/defaults.js";
import { planAll, planMesh, refusedMeshPlan } from "../../mesh/plan.js";
import { meshStatus } from "../../controllers/meshnetwork-status.js";
import { machine, mesh, pub } from "../support/fixtures.js";

const at = (m: MeshNetwork, created: string): MeshNetwork => ({ ...m, metadata: { ...m.metadata, creationTimestamp: created as unknown as Date } });
const resolved = (m: MeshNetwork): ResolvedMesh => resolveMesh(m).mesh!;

const three = [pub("m1", 0), pub("m2", 1), pub("m3", 2)];
const spec = (s: Partial<MeshNetworkSpec>) => s;

interface Case {
  name: string;
  meshes: MeshNetwork[];
  machines?: ReturnType<typeof pub>[];
  /** The refused mesh, its field, and what its message says; undefined: nothing refused. */
  refused?: { mesh: string; field: string; message: RegExp };
}

const cases: Case[] = [
  {
    name: "a /17 inside a /16 on the same machines (the issue's case)",
    meshes: [mesh("mesh", spec({ interface: "dm0" })), mesh("second", spec({ cidr: "10.210.128.0/17", interface: "dm1", listenPort: 51822, dockerNetwork: "second" }))],
    refused: {
      mesh: "second",
      field: "spec.cidr",
      message:
        /^pool 10\.210\.128\.0\/17 overlaps the pool 10\.210\.0\.0\/16 of MeshNetwork mesh, which came first \(older, or first by name when as old\) and shares machines m1, m2, m3 with it: nothing of second is allocated or configured; give it a different spec\.cidr, or select no machine of mesh$/,
    },
  },
  {
    name: "the same cidr twice",
    meshes: [mesh("a", spec({ interface: "dma" })), mesh("b", spec({ interface: "dmb", listenPort: 51821 }))],
    refused: { mesh: "b", field: "spec.cidr", message: /^pool 10\.210\.0\.0\/16 overlaps the pool 10\.210\.0\.0\/16 of MeshNetwork a,/ },
  },
  {
    name: "the older mesh wins whatever the names",
    meshes: [at(mesh("zeta", spec({ interface: "dmz" })), "2026-01-01T00:00:00Z"), at(mesh("alpha", spec({ cidr: "10.210.0.0/24", interface: "dma", listenPort: 51821 })), "2026-01-02T00:00:00Z")],
    refused: { mesh: "alpha", field: "spec.cidr", message: /of MeshNetwork zeta,/ },
  },
  {
    name: "the same interface",
    meshes: [mesh("a", spec({ cidr: "10.1.0.0/16", interface: "wg0" })), mesh("b", spec({ cidr: "10.2.0.0/16", interface: "wg0", listenPort: 51821 }))],
    refused: { mesh: "b", field: "spec.interface", message: /^interface wg0 is also the interface of MeshNetwork a,/ },
  },
  {
    name: "the same UDP port",
    meshes: [mesh("a", spec({ cidr: "10.1.0.0/16", interface: "dma" })), mesh("b", spec({ cidr: "10.2.0.0/16", interface: "dmb" }))],
    refused: { mesh: "b", field: "spec.listenPort", message: /^UDP port 51820 is also the listen port of MeshNetwork a,/ },
  },
  {
    name: "the same Docker network",
    meshes: [mesh("a", spec({ cidr: "10.1.0.0/16", interface: "dma", dockerNetwork: "apps" })), mesh("b", spec({ cidr: "10.2.0.0/16", interface: "dmb", listenPort: 51821, dockerNetwork: "apps" }))],
    refused: { mesh: "b", field: "spec.dockerNetwork", message: /^Docker network apps is also the Docker network of MeshNetwork a,/ },
  },
  {
    name: "overlapping pools but no machine in common: both stay",
    meshes: [
      mesh("a", spec({ interface: "dma", machineSelector: { matchLabels: { site: "a" } } })),
      mesh("b", spec({ interface: "dmb", listenPort: 51821, machineSelector: { matchLabels: { site: "b" } } })),
    ],
    machines: [pub("m1", 0, { labels: { site: "a" } }), pub("m2", 1, { labels: { site: "b" } })],
  },
  {
    name: "a machine being deleted does not count",
    meshes: [mesh("a", spec({ interface: "dma", machineSelector: { matchLabels: { site: "a" } } })), mesh("b", spec({ interface: "dmb", listenPort: 51821 }))],
    machines: [
      { ...pub("m1", 0, { labels: { site: "a" } }), metadata: { name: "m1", namespace: "default", labels: { site: "a" }, deletionTimestamp: "2026-01-01T00:00:00Z" as unknown as Date } },
      pub("m2", 1),
    ],
  },
  {
    name: "meshes in two namespaces never clash",
    meshes: [mesh("a", spec({ interface: "dm0" })), mesh("a", spec({ interface: "dm0" }), "other")],
    machines: [pub("m1", 0), pub("m1", 0, { namespace: "other" })],
  },
];

for (const c of cases) {
  test(`conflicts: ${c.name}`, () => {
    const machines = c.machines ?? three;
    const refused = meshConflicts(c.meshes.map(resolved), machines);
    const plan = planAll(c.meshes, machines);
    if (!c.refused) {
      assert.deepEqual([...refused.keys()], []);
      assert.deepEqual(plan.errors, []);
      return;
    }
    assert.deepEqual([...refused.keys()], [`default/${c.refused.mesh}`]);
    const err = refused.get(`default/${c.refused.mesh}`)!;
    assert.equal(err.field, c.refused.field);
    assert.match(err.message, c.refused.message);
    // dockmesh plan: exactly this error, once; the refused mesh allocates nothing; no host has it.
    assert.deepEqual(plan.errors, [err]);
    const p = plan.meshes.find((x) => x.mesh.name === c.refused!.mesh)!;
    assert.deepEqual([p.allocations, p.refused], [[], err]);
    for (const h of plan.hosts) {
      assert.deepEqual(
        h.networks.map((n) => n.meshNetwork).filter((n) => n === c.refused!.mesh),
        [],
        `${h.machine} has no network of the refused mesh`,
      );
      assert.deepEqual(h.errors, [err], `${h.machine} says why`);
    }
    // The MeshNetwork controller's status of that plan: Ready False, the same message, no allocations.
    const st = meshStatus(p, new Map());
    assert.deepEqual(st.ready, { type: "Ready", status: "False", reason: "MeshConflict", message: `${err.field}: ${err.message}` });
    assert.deepEqual(st.fields, { machines: `0/${p.members.length}`, machineCount: p.members.length, readyMachineCount: 0, allocations: [] });
  });
}

test("conflicts: without the check, two meshes with the same cidr hand out the same /24 (what the check prevents)", () => {
  const [a, b] = [mesh("a", spec({ interface: "dma" })), mesh("b", spec({ interface: "dmb", listenPort: 51821 }))].map(resolved) as [ResolvedMesh, ResolvedMesh];
  assert.deepEqual(planMesh(a, three).allocations, planMesh(b, three).allocations);
  const plan = planAll([mesh("a", spec({ interface: "dma" })), mesh("b", spec({ interface: "dmb", listenPort: 51821 }))], three);
  const subnets = plan.meshes.flatMap((p) => p.allocations.map((x) => x.subnet));
  assert.equal(new Set(subnets).size, subnets.length, `no /24 handed out twice: ${subnets.join(", ")}`);
});

test("conflicts: a refused mesh refuses no later one; the order of the input does not matter", () => {
  // b clashes with a (port), c clashes only with b (interface): c stays.
  const ms = [
    mesh("a", spec({ cidr: "10.1.0.0/16", interface: "dma" })),
    mesh("b", spec({ cidr: "10.2.0.0/16", interface: "dmc" })),
    mesh("c", spec({ cidr: "10.3.0.0/16", interface: "dmc", listenPort: 51822 })),
  ];
  for (const order of [ms, [...ms].reverse()]) {
    const refused = meshConflicts(order.map(resolved), [...three].reverse());
    assert.deepEqual([...refused.keys()], ["default/b"]);
  }
  const plan = planAll(ms, three);
  assert.deepEqual(
    plan.hosts.map((h) => h.networks.map((n) => n.meshNetwork).join()),
    ["a,c", "a,c", "a,c"],
  );
});

test("conflicts: refusedMeshPlan lists members and nothing else", () => {
  const m = resolved(mesh("b"));
  const err = { kind: "MeshNetwork" as const, namespace: "default", name: "b", field: "spec.cidr", message: "x" };
  const p = refusedMeshPlan(m, [...three, machine("other", { namespace: "elsewhere" })], err);
  assert.deepEqual(p.members, ["m1", "m2", "m3"]);
  assert.deepEqual([p.allocations, p.relays, p.unreachablePairs, p.errors], [[], [], [], [err]]);
});

test("conflicts: the mesh that keeps a machine counts it ready when only the refused mesh keeps it from Ready", () => {
  const c = (type: string, status: "True" | "False", reason = "X") => ({ type, status, reason, message: "", lastTransitionTime: "2026-01-01T00:00:00Z" });
  const withConds = (name: string, i: number, conds: ReturnType<typeof c>[]) => ({ ...pub(name, i), status: { conditions: conds } });
  const fine = ["Reachable", "DockerReady", "WireGuardReady", "PeersConnected"].map((t) => c(t, "True"));
  const machines = [
    withConds("m1", 0, [c("Ready", "False", "MeshConflict"), c("NetworkConfigured", "False", "MeshConflict"), ...fine]),
    withConds("m2", 1, [c("Ready", "True", "Converged"), ...fine]),
    withConds("m3", 2, [c("Ready", "False", "MeshConflict"), c("NetworkConfigured", "False", "MeshConflict"), ...fine.slice(0, 3), c("PeersConnected", "False", "HandshakePending")]),
  ];
  const p = planMesh(resolved(mesh("mesh")), machines);
  const st = meshStatus(p, new Map(machines.map((m) => [m.metadata.name!, m])));
  assert.equal(st.fields.machines, "2/3", "m1 counts; m3 has a problem of its own (peers)");
  assert.match(st.ready.message, /not ready: m3 \(MeshConflict\)/);
});
