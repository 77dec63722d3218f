// Issue 12 §1, the plan a user sees (`dockmesh plan`, planAll): with endpoints written host:51820
// and a second MeshNetwork on listenPort 51822, the second mesh's peers are configured at :51822
// (before: :51820, the first mesh's port, so no traffic crossed the second mesh).
import { test } from "node:test";
import assert from "node:assert/strict";
import { planAll } from "../../mesh/plan.js";
import { mesh, pub, nat } from "../support/fixtures.js";

test("two meshes over the same machines: each mesh's peers on that mesh's port, in the plan", () => {
  const meshes = [mesh("one", { cidr: "10.230.0.0/16", interface: "dm1" }), mesh("two", { cidr: "10.231.0.0/16", interface: "dm2", listenPort: 51822 })];
  const machines = [pub("a", 0), pub("b", 1), nat("n")];
  const plan = planAll(meshes, machines);
  assert.deepEqual(plan.errors, []);
  const n = plan.hosts.find((h) => h.machine === "n")!;
  const peers = (mesh: string) => n.networks.find((x) => x.meshNetwork === mesh)!.wireguard.peers.map((p) => [p.machine, p.endpoint]);
  assert.deepEqual(peers("one"), [
    ["a", "203.0.113.10:51820"],
    ["b", "203.0.113.11:51820"],
  ]);
  assert.deepEqual(peers("two"), [
    ["a", "203.0.113.10:51822"],
    ["b", "203.0.113.11:51822"],
  ]);
});

test("a port forward per mesh (spec.endpointPorts) is what the peers of that mesh use", () => {
  const meshes = [mesh("one", { cidr: "10.230.0.0/16", interface: "dm1" }), mesh("two", { cidr: "10.231.0.0/16", interface: "dm2", listenPort: 51822 })];
  const gw = pub("gw", 0, { endpoint: "gw.example.com:40000", spec: { endpointPorts: [{ meshNetwork: "two", port: 40002 }] } });
  const plan = planAll(meshes, [gw, pub("b", 1)]);
  const b = plan.hosts.find((h) => h.machine === "b")!;
  const at = (mesh: string) => b.networks.find((x) => x.meshNetwork === mesh)!.wireguard.peers.find((p) => p.machine === "gw")?.endpoint;
  assert.equal(at("one"), "gw.example.com:40000");
  assert.equal(at("two"), "gw.example.com:40002");
});
