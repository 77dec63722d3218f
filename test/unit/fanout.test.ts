// controllers/fanout.ts: a watch event reconciles the machines that plan or wait with what
// changed, and no others. A status write that changes nothing a peer uses (a peer count, a
// condition message) reconciles only the machine itself; a MeshNetwork's recount, no machine.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import type { Condition } from "../../api/meta.js";
import { FanOut } from "../../controllers/fanout.js";
import type { SecretObject } from "../../runtime/informer.js";
import { mesh, pub, nat } from "../support/fixtures.js";

const cond = (type: string, status: "True" | "False" | "Unknown", reason = "X"): Condition => ({
  type,
  status,
  reason,
  message: "",
  lastTransitionTime: "2026-01-01T00:00:00Z",
  observedGeneration: 1,
});

function withStatus(m: Machine, status: Machine["status"]): Machine {
  return { ...m, status: { ...m.status, ...status } };
}

const ready = (m: Machine, yes: boolean) =>
  withStatus(m, { conditions: [cond("Ready", yes ? "True" : "False"), cond("Reachable", "True"), cond("WireGuardReady", "True")], peers: yes ? "2/2" : "1/2" });

function setup() {
  const fan = new FanOut();
  let all: Machine[] = [ready(withStatus(pub("a", 0), { publicKey: "A" }), true), ready(withStatus(pub("b", 1), { publicKey: "B" }), false), ready(withStatus(nat("h"), { publicKey: "H" }), false)];
  const ns = () => all;
  for (const m of all) fan.onMachine({ type: "ADDED", object: m }, ns);
  const modify = (m: Machine) => {
    const old = all.find((x) => x.metadata.name === m.metadata.name)!;
    all = all.map((x) => (x.metadata.name === m.metadata.name ? m : x));
    return fan.onMachine({ type: "MODIFIED", object: m, old }, ns);
  };
  return { fan, ns, get: (name: string) => all.find((m) => m.metadata.name === name)!, modify };
}

test("fan-out: ADDED reconciles the machine and recounts meshes; its peers learn of it from the mesh's allocation", () => {
  const fan = new FanOut();
  const m = pub("new", 5);
  assert.deepEqual(
    fan.onMachine({ type: "ADDED", object: m }, () => [m, pub("a", 0)]),
    { machines: ["default/new"], meshes: true },
  );
});

test("fan-out: a new endpoint, new labels, deletion or unreachability reach every machine", () => {
  const every = ["default/a", "default/b", "default/h"];
  for (const change of [
    (m: Machine) => ({ ...m, spec: { ...m.spec, endpoint: "203.0.113.99:51820" } }),
    // A per-mesh port (issue 12): the peers of that mesh configure it.
    (m: Machine) => ({ ...m, spec: { ...m.spec, endpointPorts: [{ meshNetwork: "two", port: 40002 }] } }),
    (m: Machine) => ({ ...m, metadata: { ...m.metadata, labels: { zone: "x" } } }),
    (m: Machine) => ({ ...m, metadata: { ...m.metadata, deletionTimestamp: new Date("2026-01-01T00:00:00Z") } }),
    (m: Machine) => withStatus(m, { conditions: [cond("Ready", "False"), cond("Reachable", "False")] }),
  ]) {
    const s = setup();
    const r = s.modify(change(s.get("b")));
    assert.deepEqual(r.machines.slice(1).sort(), every);
    assert.equal(r.meshes, true);
  }
  const s = setup();
  assert.deepEqual(
    s.fan
      .onMachine({ type: "DELETED", object: s.get("b"), old: s.get("b") }, s.ns)
      .machines.slice(1)
      .sort(),
    every,
  );
});

test("fan-out: status.publicKey alone reconciles only the machine itself (peers take keys from the key Secrets)", () => {
  const s = setup();
  assert.deepEqual(s.modify(withStatus(s.get("b"), { publicKey: "B2" })), { machines: ["default/b"], meshes: false });
});

test("fan-out: a key Secret created reaches the machines not Ready; a new key in it every machine; anything else none", () => {
  const s = setup();
  const keySecret = (name: string, privateKey: string): SecretObject => ({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace: "default" }, data: { privateKey } });
  const isKey = (n: string) => ["a-wireguard", "b-wireguard", "h-wireguard"].includes(n);
  assert.deepEqual(s.fan.onKeySecret({ type: "ADDED", object: keySecret("b-wireguard", "K1") }, isKey, s.ns).sort(), ["default/b", "default/h"], "a is Ready: nothing to add");
  assert.deepEqual(s.fan.onKeySecret({ type: "MODIFIED", object: keySecret("b-wireguard", "K1"), old: keySecret("b-wireguard", "K1") }, isKey, s.ns), [], "same key");
  assert.deepEqual(
    s.fan.onKeySecret({ type: "MODIFIED", object: keySecret("b-wireguard", "K2"), old: keySecret("b-wireguard", "K1") }, isKey, s.ns).sort(),
    ["default/a", "default/b", "default/h"],
    "rotated",
  );
  assert.deepEqual(s.fan.onKeySecret({ type: "ADDED", object: keySecret("ssh", "x") }, isKey, s.ns), [], "not a key Secret");
  assert.deepEqual(s.fan.onKeySecret({ type: "DELETED", object: keySecret("b-wireguard", "K2"), old: keySecret("b-wireguard", "K2") }, isKey, s.ns), []);
});

test("fan-out: a status write that changes nothing peers use reconciles only the machine itself", () => {
  const s = setup();
  const b = s.get("b");
  const r = s.modify(
    withStatus(b, { conditions: [cond("Ready", "False", "HandshakePending"), cond("Reachable", "True"), cond("WireGuardReady", "True")], subnet: "10.0.1.0/24", dockerVersion: "27.5.1" }),
  );
  assert.deepEqual(r, { machines: ["default/b"], meshes: false });
});

test("fan-out: a machine becoming Ready reconciles the ones still waiting, not the Ready ones", () => {
  const s = setup();
  const r = s.modify(ready(s.get("b"), true));
  assert.deepEqual(r.machines, ["default/b", "default/h"], "a is Ready already; h is waiting");
  assert.equal(r.meshes, true, "the mesh's ready count changed");
});

test("fan-out: a public machine that can no longer relay reconciles the machines behind NAT only", () => {
  const s = setup();
  const a = s.get("a");
  const cut = withStatus(a, { peers: "0/2", conditions: [cond("Ready", "True"), cond("Reachable", "True"), cond("WireGuardReady", "True"), cond("PeersConnected", "False")] });
  const r = s.modify(cut);
  assert.deepEqual(r.machines, ["default/a", "default/h"]);
});

test("fan-out: a MeshNetwork's allocations or spec reach every machine; a recount none; its Ready message the unallocated", () => {
  const fan = new FanOut();
  const machines = [pub("a", 0), pub("b", 1), pub("c", 2)];
  const ns = () => machines;
  const base: MeshNetwork = {
    ...mesh("m"),
    status: {
      allocations: [
        { machine: "a", subnet: "10.0.0.0/24" },
        { machine: "b", subnet: "10.0.1.0/24" },
      ],
      machines: "0/2",
      conditions: [cond("Ready", "False", "MachinesNotReady")],
    },
  };
  assert.equal(fan.onMesh({ type: "ADDED", object: base }, ns).length, 3);
  const recount = { ...base, status: { ...base.status, machines: "1/2", readyMachineCount: 1 } };
  assert.deepEqual(fan.onMesh({ type: "MODIFIED", object: recount, old: base }, ns), []);
  const exhausted = { ...recount, status: { ...recount.status, conditions: [cond("Ready", "False", "PoolExhausted")] } };
  assert.deepEqual(fan.onMesh({ type: "MODIFIED", object: exhausted, old: recount }, ns), ["default/c"], "only the machine without a subnet quotes that message");
  const more = { ...exhausted, status: { ...exhausted.status, allocations: [...exhausted.status.allocations!, { machine: "c", subnet: "10.0.2.0/24" }] } };
  assert.equal(fan.onMesh({ type: "MODIFIED", object: more, old: exhausted }, ns).length, 3);
  const spec = { ...more, spec: { ...more.spec, mtu: 1380 } };
  assert.equal(fan.onMesh({ type: "MODIFIED", object: spec, old: more }, ns).length, 3);
  assert.equal(fan.onMesh({ type: "DELETED", object: spec, old: spec }, ns).length, 3);
});

test("fanout: a MeshNetwork's arrival, spec change or deletion re-reconciles its namespace's meshes (they may clash with it, or no longer); its status alone only itself", () => {
  const fan = new FanOut();
  const a = mesh("a", { interface: "dma" });
  const b = mesh("b", { interface: "dmb", listenPort: 51821 });
  const all = () => [a, b];
  const keys = (e: Parameters<FanOut["onMeshForMeshes"]>[0]) => fan.onMeshForMeshes(e, all).sort();
  const written: MeshNetwork = { ...a, status: { machines: "1/1" } };
  const respec: MeshNetwork = { ...a, spec: { ...a.spec, cidr: "10.9.0.0/16" } };
  const deleting: MeshNetwork = { ...a, spec: { ...a.spec, cidr: "10.9.0.0/16" }, metadata: { ...a.metadata, deletionTimestamp: "2026-01-01T00:00:00Z" as unknown as Date } };
  const cases: Array<[string, Parameters<FanOut["onMeshForMeshes"]>[0], string[]]> = [
    ["added", { type: "ADDED", object: a }, ["default/a", "default/a", "default/b"]],
    ["status written", { type: "MODIFIED", object: written, old: a }, ["default/a"]],
    ["spec changed", { type: "MODIFIED", object: respec, old: written }, ["default/a", "default/a", "default/b"]],
    ["being deleted", { type: "MODIFIED", object: deleting, old: respec }, ["default/a", "default/a", "default/b"]],
    ["deleted", { type: "DELETED", object: a, old: deleting }, ["default/a", "default/b"]],
  ];
  for (const [what, e, want] of cases) assert.deepEqual(keys(e), want, what);
});
