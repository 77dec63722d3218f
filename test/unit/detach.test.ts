// Issue 12 §3: deleting a Machine or a MeshNetwork disconnected running containers from the mesh's
// Docker network without a word. The containers a teardown disconnects are named (bounded), from
// names the host reported and the observe checked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseObservation, MAX_CONTAINER_NAMES, type HostObservation } from "../../hosts/observe.js";
import { containersDetached, describeDetached } from "../../hosts/detach.js";
import type { AreaStep } from "../../hosts/diff.js";

function observed(containers: Record<string, unknown>): HostObservation {
  const net = JSON.stringify({ Name: "mesh", Id: "abc123", IPAM: { Config: [{ Subnet: "10.210.0.0/24" }] }, Options: {}, Labels: { "dockmesh.io/interface": "dm0" }, Containers: containers });
  return parseObservation(["@@dockmesh network mesh", net, "@@dockmesh end", ""].join("\n"));
}

const removeMesh: AreaStep = { op: "remove_network", args: ["mesh"], display: "docker network rm mesh", area: "teardown", meshNetwork: "mesh" };

test("the containers a network removal disconnects are named, sorted", () => {
  const obs = observed({ a1: { Name: "web" }, b2: { Name: "db" } });
  assert.deepEqual(obs.networks.get("mesh")?.containerNames, ["db", "web"]);
  const d = containersDetached([removeMesh], obs);
  assert.equal(describeDetached(d), "Docker network mesh (MeshNetwork mesh): 2 container(s) disconnected: db, web");
});

test("names that are not container names are dropped but counted; the list is bounded", () => {
  const many = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`id${i}`, { Name: `c${String(i).padStart(2, "0")}` }]));
  const obs = observed({ ...many, x: { Name: "bad\u001b[2Jname" }, y: null });
  const d = containersDetached([removeMesh], obs);
  assert.equal(d[0]?.count, 62);
  assert.equal(d[0]?.names.length, MAX_CONTAINER_NAMES);
  assert.match(describeDetached(d), /: 62 container\(s\) disconnected: c00, c01, .*c49 and 12 more$/);
  assert.ok(!describeDetached(d).includes("\u001b"));
});

test("no containers, or no network removed: nothing to say", () => {
  assert.deepEqual(containersDetached([removeMesh], observed({})), []);
  assert.deepEqual(containersDetached([{ ...removeMesh, op: "wg_down", args: ["dm0"] }], observed({ a: { Name: "web" } })), []);
});
