import { test } from "node:test";
import assert from "node:assert/strict";
import { machineConditions, readyCondition, peerReports, peersColumn, type Outcome } from "../../controllers/machine-conditions.js";
import { canRelay } from "../../controllers/relays.js";
import { meshStatus } from "../../controllers/meshnetwork-status.js";
import type { ConvergeResult } from "../../hosts/converge.js";
import type { HostObservation } from "../../hosts/observe.js";
import { planAll } from "../../mesh/plan.js";
import { resolveMesh } from "../../mesh/defaults.js";
import { planMesh } from "../../mesh/plan.js";
import type { Condition } from "../../api/meta.js";
import { mesh, pub, nat, machine } from "../support/fixtures.js";
import { observation } from "../support/observations.js";

const pubs = new Map(["a", "b", "h"].map((n) => [n, `${n.toUpperCase().repeat(43)}=`]));
const net = planAll([mesh("mesh", { interface: "dm0" })], [pub("a", 0), pub("b", 1), nat("h")], pubs).hosts.find((h) => h.machine === "a")!.networks[0]!;

function obs(peers: Array<[string, number]>): HostObservation {
  return observation({
    links: new Map([["dm0", { name: "dm0", up: true, mtu: 1420 }]]),
    wg: new Map([["dm0", { publicKey: "x", listenPort: 51820, peers: peers.map(([k, t]) => ({ publicKey: pubs.get(k)!, allowedIPs: [], latestHandshake: t, rxBytes: 0, txBytes: 0 })) }]]),
  });
}

const NOW = 1_800_000_000;
function converged(o: HostObservation, extra: Partial<Extract<Outcome, { kind: "converged" }>> = {}): Outcome {
  const result: ConvergeResult = { networks: [net], observation: o, applied: [], blockers: [], remaining: [] };
  return { kind: "converged", result, connectedVia: "ssh root@a:22", peers: peerReports([net], o, NOW), planErrors: [], ...extra };
}

const summary = (o: Outcome) => {
  const c = machineConditions(o);
  const r = readyCondition(c);
  return [r, ...c].map((x) => `${x.type}=${x.status}/${x.reason}`).join(" ");
};

const cases: Array<{ name: string; outcome: Outcome; want: string; message?: RegExp }> = [
  {
    name: "everything in place, every peer handshaking",
    outcome: converged(
      obs([
        ["b", NOW - 5],
        ["h", NOW - 30],
      ]),
    ),
    want: "Ready=True/Converged Reachable=True/Connected DockerReady=True/DockerRunning WireGuardReady=True/InterfaceUp NetworkConfigured=True/Configured PeersConnected=True/AllConnected",
  },
  {
    name: "a peer without a handshake holds Ready back and says where it should connect",
    outcome: converged(
      obs([
        ["b", NOW - 5],
        ["h", 0],
      ]),
    ),
    want: "Ready=False/HandshakePending Reachable=True/Connected DockerReady=True/DockerRunning WireGuardReady=True/InterfaceUp NetworkConfigured=True/Configured PeersConnected=False/HandshakePending",
    message: /1\/2 connected; waiting for h \(no handshake yet, it connects in\)/,
  },
  {
    name: "a stale handshake (over 3 minutes) is not connected",
    outcome: converged(
      obs([
        ["b", NOW - 200],
        ["h", NOW - 1],
      ]),
    ),
    want: "Ready=False/HandshakePending Reachable=True/Connected DockerReady=True/DockerRunning WireGuardReady=True/InterfaceUp NetworkConfigured=True/Configured PeersConnected=False/HandshakePending",
    message: /b \(handshake is stale, endpoint 203\.0\.113\.11:51820\)/,
  },
  {
    name: "a peer the controller cannot reach is listed but not held against us",
    outcome: converged(
      obs([
        ["b", NOW - 5],
        ["h", 0],
      ]),
      {
        peers: peerReports(
          [net],
          obs([
            ["b", NOW - 5],
            ["h", 0],
          ]),
          NOW,
          new Set(["h"]),
        ),
      },
    ),
    want: "Ready=True/Converged Reachable=True/Connected DockerReady=True/DockerRunning WireGuardReady=True/InterfaceUp NetworkConfigured=True/Configured PeersConnected=True/AllConnected",
    message: /not counted: h \(the controller cannot reach it\)/,
  },
  {
    name: "members without a key yet keep PeersConnected False",
    outcome: converged(
      obs([
        ["b", NOW - 5],
        ["h", NOW - 5],
      ]),
      { pendingPeers: ["c"] },
    ),
    want: "Ready=False/PeersPending Reachable=True/Connected DockerReady=True/DockerRunning WireGuardReady=True/InterfaceUp NetworkConfigured=True/Configured PeersConnected=False/PeersPending",
  },
  {
    name: "a held MTU change is reported on NetworkConfigured",
    outcome: converged(
      obs([
        ["b", NOW - 5],
        ["h", NOW - 5],
      ]),
      { mtuPending: ["MeshNetwork mesh: the MTU should be 1380 but …"] },
    ),
    want: "Ready=False/MtuChangePending Reachable=True/Connected DockerReady=True/DockerRunning WireGuardReady=True/InterfaceUp NetworkConfigured=False/MtuChangePending PeersConnected=True/AllConnected",
  },
  {
    name: "waiting for a subnet is a spec-side wait, not a host problem",
    outcome: { kind: "setup", problem: { condition: "NetworkConfigured", reason: "WaitingForSubnet", message: "MeshNetwork mesh has not allocated a subnet" } },
    want: "Ready=False/WaitingForSubnet Reachable=Unknown/NotContacted DockerReady=Unknown/NotObserved WireGuardReady=Unknown/NotObserved NetworkConfigured=False/WaitingForSubnet PeersConnected=Unknown/NotObserved",
  },
  {
    name: "a missing Secret is a Reachable problem",
    outcome: { kind: "setup", problem: { condition: "Reachable", reason: "SecretNotFound", message: "spec.ssh.privateKeySecretRef: Secret default/ssh not found" } },
    want: "Ready=False/SecretNotFound Reachable=False/SecretNotFound DockerReady=Unknown/NotObserved WireGuardReady=Unknown/NotObserved NetworkConfigured=Unknown/NotObserved PeersConnected=Unknown/NotObserved",
  },
  {
    name: "Docker not running is a DockerReady problem once SSH works",
    outcome: { kind: "hostError", reason: "DockerNotRunning", message: "Docker is not running", stage: "preflight" },
    want: "Ready=False/DockerNotRunning Reachable=True/Connected DockerReady=False/DockerNotRunning WireGuardReady=Unknown/NotObserved NetworkConfigured=Unknown/NotObserved PeersConnected=Unknown/NotObserved",
  },
  {
    name: "a downed interface is WireGuardReady=False InterfaceDown",
    outcome: converged({
      ...obs([
        ["b", NOW - 5],
        ["h", NOW - 5],
      ]),
      links: new Map([["dm0", { name: "dm0", up: false, mtu: 1420 }]]),
    }),
    want: "Ready=False/InterfaceDown Reachable=True/Connected DockerReady=True/DockerRunning WireGuardReady=False/InterfaceDown NetworkConfigured=True/Configured PeersConnected=True/AllConnected",
  },
];
// Issue 12 §4: the columns never contradict each other. "PEERS 0/2, READY True" (two peers the
// controller could not reach, not counted by PeersConnected but counted by status.peers) and
// "PEERS 2/2" left standing under Ready=False HostKeyMismatch (the host was not observed).
cases.push(
  {
    name: "peers the controller cannot reach and that do not handshake are counted by neither PeersConnected nor PEERS",
    outcome: converged(
      obs([
        ["b", 0],
        ["h", NOW - 500],
      ]),
      {
        peers: peerReports(
          [net],
          obs([
            ["b", 0],
            ["h", NOW - 500],
          ]),
          NOW,
          new Set(["b", "h"]),
        ),
      },
    ),
    want: "Ready=True/Converged Reachable=True/Connected DockerReady=True/DockerRunning WireGuardReady=True/InterfaceUp NetworkConfigured=True/Configured PeersConnected=True/AllConnected",
    message: /0\/0 peers connected; not counted: b, h \(the controller cannot reach them\)/,
  },
  {
    name: "a peer the controller cannot reach is left out of both counts even while it handshakes",
    outcome: converged(
      obs([
        ["b", NOW - 5],
        ["h", NOW - 5],
      ]),
      {
        peers: peerReports(
          [net],
          obs([
            ["b", NOW - 5],
            ["h", NOW - 5],
          ]),
          NOW,
          new Set(["h"]),
        ),
      },
    ),
    want: "Ready=True/Converged Reachable=True/Connected DockerReady=True/DockerRunning WireGuardReady=True/InterfaceUp NetworkConfigured=True/Configured PeersConnected=True/AllConnected",
    message: /"1\/1 peers connected"/,
  },
  {
    name: "a host key mismatch is a connect failure: nothing observed",
    outcome: { kind: "hostError", reason: "HostKeyMismatch", message: "ssh root@a:22: host key changed", stage: "connect" },
    want: "Ready=False/HostKeyMismatch Reachable=False/HostKeyMismatch DockerReady=Unknown/NotObserved WireGuardReady=Unknown/NotObserved NetworkConfigured=Unknown/NotObserved PeersConnected=Unknown/NotObserved",
  },
  {
    name: "a host that went away",
    outcome: { kind: "hostError", reason: "Unreachable", message: "ssh root@a:22: connection refused", stage: "connect" },
    want: "Ready=False/Unreachable Reachable=False/Unreachable DockerReady=Unknown/NotObserved WireGuardReady=Unknown/NotObserved NetworkConfigured=Unknown/NotObserved PeersConnected=Unknown/NotObserved",
  },
);

/** The PEERS column as status.peers shows it for an outcome ("" when removed). */
const PEERS: Record<string, string> = {
  "everything in place, every peer handshaking": "2/2",
  "a peer without a handshake holds Ready back and says where it should connect": "1/2",
  "a stale handshake (over 3 minutes) is not connected": "1/2",
  "a peer the controller cannot reach is listed but not held against us": "1/1",
  "members without a key yet keep PeersConnected False": "2/3",
  "peers the controller cannot reach and that do not handshake are counted by neither PeersConnected nor PEERS": "0/0",
  "a peer the controller cannot reach is left out of both counts even while it handshakes": "1/1",
  "a host key mismatch is a connect failure: nothing observed": "",
  "a host that went away": "",
  "a missing Secret is a Reachable problem": "",
  "Docker not running is a DockerReady problem once SSH works": "",
};

for (const c of cases) {
  test(`columns agree: ${c.name}`, () => {
    const conds = machineConditions(c.outcome);
    const ready = readyCondition(conds);
    const peers = peersColumn(c.outcome) ?? "";
    if (c.name in PEERS) assert.equal(peers, PEERS[c.name]);
    // PEERS is shown only from an observation of the host, and Ready=True means all of them connected.
    if (c.outcome.kind !== "converged") assert.equal(peers, "", "no PEERS without an observation");
    if (ready.status === "True") {
      const [good, all] = peers.split("/");
      assert.equal(good, all, `Ready=True with PEERS ${peers}`);
    }
    const pc = conds.find((x) => x.type === "PeersConnected")!;
    if (peers) assert.ok(pc.message.startsWith(peers), `PeersConnected "${pc.message}" counts as PEERS ${peers}`);
  });
}

for (const c of cases) {
  test(`conditions: ${c.name}`, () => {
    assert.equal(summary(c.outcome), c.want);
    if (c.message) assert.match(JSON.stringify(machineConditions(c.outcome)), c.message);
  });
}

test("conditions: NAT<->NAT with no relay is NoRelay on the Machine and on the MeshNetwork", () => {
  const machines = [nat("x"), nat("y")];
  const { hosts, meshes } = planAll(
    [mesh("mesh", { interface: "dm0" })],
    machines,
    new Map([
      ["x", "X".repeat(43) + "="],
      ["y", "Y".repeat(43) + "="],
    ]),
  );
  const x = hosts.find((h) => h.machine === "x")!.networks[0]!;
  const o = { ...obs([]), wg: new Map([["dm0", { publicKey: "x", listenPort: 51820, peers: [] }]]) };
  const out: Outcome = { kind: "converged", result: { networks: [x], observation: o, applied: [], blockers: [], remaining: [] }, connectedVia: "ssh", peers: peerReports([x], o, NOW), planErrors: [] };
  const peers = machineConditions(out).find((c) => c.type === "PeersConnected")!;
  assert.equal(peers.reason, "NoRelay");
  assert.match(peers.message, /y cannot be reached: both behind NAT and no machine in the mesh has an endpoint to relay through; give one machine spec\.endpoint/);
  const status = meshStatus(meshes[0]!, new Map(machines.map((m) => [m.metadata.name!, m])));
  assert.equal(status.ready.reason, "NoRelay");
  assert.deepEqual(status.fields.unreachablePairs, ["x<->y"]);
});

const ready = (extra: Partial<Record<string, "True" | "False">> = {}): Condition[] =>
  Object.entries({ Reachable: "True", WireGuardReady: "True", PeersConnected: "True", ...extra }).map(([type, status]) => ({
    type,
    status: status as "True",
    reason: "X",
    message: "",
    lastTransitionTime: "2026-01-01T00:00:00Z",
  }));

for (const c of [
  { name: "a healthy public machine", m: { ...pub("r", 0), status: { conditions: ready(), peers: "2/2" } }, want: true },
  { name: "a machine behind NAT", m: { ...nat("r"), status: { conditions: ready() } }, want: false },
  { name: "the controller cannot reach it", m: { ...pub("r", 0), status: { conditions: ready({ Reachable: "False" }) } }, want: false },
  { name: "its WireGuard is down", m: { ...pub("r", 0), status: { conditions: ready({ WireGuardReady: "False" }) } }, want: false },
  { name: "it handshakes with none of its peers", m: { ...pub("r", 0), status: { conditions: ready({ PeersConnected: "False" }), peers: "0/3" } }, want: false },
  { name: "some peers missing is not isolation", m: { ...pub("r", 0), status: { conditions: ready({ PeersConnected: "False" }), peers: "1/3" } }, want: true },
  { name: "not observed yet (a new machine)", m: pub("r", 0), want: true },
  { name: "being deleted", m: { ...pub("r", 0), metadata: { ...pub("r", 0).metadata, deletionTimestamp: new Date() } }, want: false },
]) {
  test(`relays: ${c.name} → ${c.want ? "may relay" : "may not relay"}`, () => assert.equal(canRelay(c.m), c.want));
}

test("mesh status: counts, allocations sorted, Ready names the machines that are not", () => {
  const machines = [pub("a", 0), pub("b", 1), machine("c")];
  machines[0]!.status = { conditions: ready() };
  machines[0]!.status.conditions!.push({ type: "Ready", status: "True", reason: "Converged", message: "", lastTransitionTime: "2026-01-01T00:00:00Z" });
  machines[1]!.status = { conditions: [{ type: "Ready", status: "False", reason: "AuthFailed", message: "", lastTransitionTime: "2026-01-01T00:00:00Z" }] };
  const plan = planMesh(resolveMesh(mesh("mesh")).mesh!, machines);
  const s = meshStatus(plan, new Map(machines.map((m) => [m.metadata.name!, m])));
  assert.equal(s.fields.machines, "1/3");
  assert.deepEqual(
    s.fields.allocations!.map((a) => a.machine),
    ["a", "b", "c"],
  );
  assert.equal(s.ready.reason, "MachinesNotReady");
  assert.match(s.ready.message, /not ready: b \(AuthFailed\), c \(NotObserved\)/);
});

test("mesh plan: a machine being deleted keeps its subnet reserved but is no member", () => {
  const machines = [pub("a", 0), { ...pub("b", 1), metadata: { ...pub("b", 1).metadata, deletionTimestamp: new Date() } }, pub("c", 2)];
  const plan = planMesh(resolveMesh(mesh("mesh")).mesh!, machines, {
    existing: [
      { machine: "a", subnet: "10.210.0.0/24" },
      { machine: "b", subnet: "10.210.1.0/24" },
    ],
  });
  assert.deepEqual(plan.members, ["a", "c"]);
  assert.deepEqual(plan.allocations, [
    { machine: "a", subnet: "10.210.0.0/24" },
    { machine: "b", subnet: "10.210.1.0/24" },
    { machine: "c", subnet: "10.210.2.0/24" },
  ]);
});

// Issue 12: the NoMachines message named spec.machineSelector for a mesh that has none.
for (const c of [
  { name: "no selector", spec: {}, want: /^no Machine in namespace default; spec\.machineSelector is not set, so every Machine created in it joins$/ },
  { name: "an empty selector", spec: { machineSelector: {} }, want: /^no Machine in namespace default; spec\.machineSelector is not set/ },
  { name: "a selector", spec: { machineSelector: { matchLabels: { zone: "a" } } }, want: /^no Machine in namespace default matches spec\.machineSelector$/ },
]) {
  test(`mesh status: NoMachines with ${c.name} says why`, () => {
    const m = mesh("mesh");
    const s = meshStatus(planMesh(resolveMesh({ ...m, spec: { ...m.spec, ...c.spec } }).mesh!, []), new Map());
    assert.equal(s.ready.reason, "NoMachines");
    assert.match(s.ready.message, c.want);
  });
}
