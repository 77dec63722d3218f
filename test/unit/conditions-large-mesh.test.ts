// Condition messages in a mesh of a thousand machines stay a line long: they name a few peers
// and count the rest. (Listing all 999 made a PeersConnected message over the API's 32 KiB limit:
// every status write of a machine waiting for its peers failed with 422 and it never got Ready.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { machineConditions, readyCondition, peerReports, listed, listedPeers, MAX_LISTED_PEERS, NAMES_IN_MESSAGE, type Outcome } from "../../controllers/machine-conditions.js";
import type { ConvergeResult } from "../../hosts/converge.js";
import type { HostObservation } from "../../hosts/observe.js";
import { planAll } from "../../mesh/plan.js";
import { setCondition, MAX_CONDITION_MESSAGE } from "../../runtime/conditions.js";
import { mesh, pub } from "../support/fixtures.js";
import { observation } from "../support/observations.js";

const N = 1000;
const names = Array.from({ length: N }, (_, i) => `machine-${String(i).padStart(4, "0")}`);
const pubs = new Map(names.map((n, i) => [n, `${String(i).padStart(4, "0")}${"A".repeat(39)}=`]));
const machines = names.map((n, i) => pub(n, i % 200));
const net = planAll([mesh("mesh", { interface: "dm0", cidr: "10.0.0.0/12" })], machines, pubs).hosts.find((h) => h.machine === names[0])!.networks[0]!;
const NOW = 1_800_000_000;

function obs(handshake: (i: number) => number): HostObservation {
  return observation({
    wireguardImplementation: "kernel",
    dockerVersion: "27.5.1",
    links: new Map([["dm0", { name: "dm0", up: true, mtu: 1420 }]]),
    wg: new Map([
      ["dm0", { publicKey: "x", listenPort: 51820, peers: names.slice(1).map((n, i) => ({ publicKey: pubs.get(n)!, allowedIPs: [], latestHandshake: handshake(i), rxBytes: 0, txBytes: 0 })) }],
    ]),
  });
}

function outcome(o: HostObservation, extra: Partial<Extract<Outcome, { kind: "converged" }>> = {}): Outcome {
  const result: ConvergeResult = { networks: [net], observation: o, applied: [], blockers: [], remaining: [] };
  return { kind: "converged", result, connectedVia: "ssh root@a:22", peers: peerReports([net], o, NOW), planErrors: [], ...extra };
}

const longest = (o: Outcome) => Math.max(...[readyCondition(machineConditions(o)), ...machineConditions(o)].map((c) => c.message.length));

test("large mesh: 999 peers without a handshake are named five at a time", () => {
  const o = outcome(obs(() => 0));
  const peers = machineConditions(o).find((c) => c.type === "PeersConnected")!;
  assert.equal(peers.reason, "HandshakePending");
  assert.match(peers.message, /^0\/999 connected; waiting for machine-0001 \(no handshake yet, endpoint 203\.0\.113\.11:51820\), .* and 994 more; check that UDP/);
  assert.ok(longest(o) < 1000, `a message of ${longest(o)} characters`);
});

test("large mesh: peers without keys, unmanaged peers and leftover steps are counted, not listed", () => {
  const pending = outcome(
    obs(() => NOW - 5),
    { pendingPeers: names.slice(1) },
  );
  assert.match(machineConditions(pending).find((c) => c.type === "PeersConnected")!.message, /machine-0005 and 994 more have no WireGuard key yet/);
  assert.ok(longest(pending) < 1000);
  const drift: Outcome = outcome(obs(() => NOW - 5));
  if (drift.kind === "converged") {
    drift.result.remaining = names.map((n, i) => ({ op: "route_replace", args: [], display: `ip route replace 10.0.${i}.0/24 dev dm0`, area: "routes", meshNetwork: "mesh" }));
  }
  const configured = machineConditions(drift).find((c) => c.type === "NetworkConfigured")!;
  assert.equal(configured.reason, "Drift");
  assert.match(configured.message, /and 995 more$/);
});

test("listed: up to the limit everything is named, beyond it the rest is counted", () => {
  assert.equal(listed(["a", "b"]), "a, b");
  assert.equal(listed(["a", "b", "c", "d", "e"]), "a, b, c, d, e");
  assert.equal(listed(["a", "b", "c", "d", "e", "f", "g"], "; "), "a; b; c; d; e and 2 more");
  assert.equal(NAMES_IN_MESSAGE, 5);
});

test("setCondition cuts a message the API would refuse", () => {
  const [c] = setCondition([], { type: "Ready", status: "False", reason: "X", message: "y".repeat(40_000) }, 1, 0);
  assert.equal(c!.message.length, MAX_CONDITION_MESSAGE);
  assert.match(c!.message, /… \(truncated\)$/);
  const [short] = setCondition([], { type: "Ready", status: "False", reason: "X", message: "fine" }, 1, 0);
  assert.equal(short!.message, "fine");
});

test("status lists at most 50 peers of a large mesh: those not connected first, sorted by machine", () => {
  const o = outcome(obs((i) => (i % 100 === 7 ? 0 : NOW - 5)));
  const all = o.kind === "converged" ? o.peers : [];
  assert.equal(all.length, 999);
  const shown = listedPeers(all);
  assert.equal(shown.length, MAX_LISTED_PEERS);
  const waiting = all.filter((p) => p.state === "NoHandshake").map((p) => p.machine);
  assert.equal(waiting.length, 10);
  assert.ok(
    waiting.every((m) => shown.some((p) => p.machine === m)),
    "every peer without a handshake is listed",
  );
  assert.deepEqual(
    shown.map((p) => p.machine),
    [...shown.map((p) => p.machine)].sort(),
    "sorted by machine",
  );
  assert.deepEqual(
    shown.filter((p) => p.state === "Connected").map((p) => p.machine),
    all
      .filter((p) => p.state === "Connected")
      .slice(0, 40)
      .map((p) => p.machine),
    "then the first connected ones by name",
  );
  assert.deepEqual(listedPeers(all), shown, "the same peers every time (a resync writes nothing)");
  assert.deepEqual(listedPeers(all.slice(0, 3)), all.slice(0, 3), "a small mesh lists every peer");
});
