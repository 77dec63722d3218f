// controllers/nat-paths.ts: the per-pair state machine of NAT↔NAT direct paths, on a clock of its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { NatPaths, PROBE_BOUND_MS, PROBE_START_BOUND_MS, mappingOf } from "../../controllers/nat-paths.js";
import type { WgPeerState } from "../../hosts/observe.js";

const NS = "default";
const MESH = "mesh";
const T0 = 1_800_000_000_000;
const s = (ms: number) => Math.floor(ms / 1000);

const live = (endpoint: string, handshakeMs: number, allowedIPs: string[] = []): WgPeerState => ({
  publicKey: "k",
  endpoint,
  allowedIPs,
  latestHandshake: handshakeMs ? s(handshakeMs) : 0,
  rxBytes: 0,
  txBytes: 0,
});

/** p1 (public) sees a and b at these endpoints, with fresh handshakes. */
function seen(nat: NatPaths, at: Record<string, string>, now = T0, observer = "p1"): void {
  nat.observed(
    NS,
    MESH,
    observer,
    Object.entries(at).map(([machine, e]) => ({ machine, live: live(e, now) })),
    s(now),
    () => Object.keys(at),
  );
}

test("mappingOf: an IPv4 host:port that may be sent to; anything else is refused", () => {
  const cases: Array<[string | undefined, string | undefined]> = [
    ["198.51.100.7:51820", "198.51.100.7:51820"],
    ["10.0.0.1:1", "10.0.0.1:1"],
    ["127.0.0.1:51820", undefined],
    ["0.0.0.0:51820", undefined],
    ["169.254.1.1:51820", undefined],
    ["224.0.0.1:51820", undefined],
    ["255.255.255.255:1", undefined],
    ["198.51.100.7:0", undefined],
    ["198.51.100.7:65536", undefined],
    ["198.51.100.777:1", undefined],
    ["host.example:51820", undefined],
    ["[2001:db8::1]:51820", undefined],
    ["198.51.100.7:51820; rm -rf /", undefined],
    [undefined, undefined],
  ];
  for (const [input, want] of cases) assert.equal(mappingOf(input), want, String(input));
});

test("a pair probes once both mappings are known, goes direct on a handshake, and both sides agree", () => {
  const nat = new NatPaths();
  const told: string[] = [];
  nat.onChange((_ns, names) => told.push(...names));
  // Nothing seen yet: relayed, and why.
  const d0 = nat.decide(NS, MESH, "a", "b", undefined, T0, true);
  assert.equal(d0.path, "Relayed");
  assert.match(d0.reason, /no NAT mapping of a and b known yet/);
  seen(nat, { a: "198.51.100.1:51820", b: "198.51.100.2:51820" });
  assert.deepEqual([...new Set(told)].sort(), ["a", "b"], "the NAT'd members are told of the mappings");
  const d1 = nat.decide(NS, MESH, "a", "b", undefined, T0 + 10, true);
  assert.deepEqual({ path: d1.path, endpoint: d1.endpoint }, { path: "Probing", endpoint: "198.51.100.2:51820" });
  const e1 = nat.decide(NS, MESH, "b", "a", undefined, T0 + 20, true);
  assert.deepEqual({ path: e1.path, endpoint: e1.endpoint, since: e1.since }, { path: "Probing", endpoint: "198.51.100.1:51820", since: d1.since }, "one record for the pair");
  // a's host has the probe and a handshake since: Direct, and b is told.
  told.length = 0;
  const d2 = nat.decide(NS, MESH, "a", "b", live("198.51.100.2:51820", T0 + 1500), T0 + 2000, true);
  assert.equal(d2.path, "Direct");
  assert.equal(d2.endpoint, "198.51.100.2:51820");
  assert.deepEqual(told, ["b"]);
  // b follows at once, even before its own host shows the handshake.
  const e2 = nat.decide(NS, MESH, "b", "a", live("198.51.100.1:51820", 0), T0 + 2100, true);
  assert.deepEqual({ path: e2.path, endpoint: e2.endpoint, reason: e2.reason }, { path: "Direct", endpoint: "198.51.100.1:51820", reason: d2.reason });
  // Looks that find the same keep the same decision (nothing to write).
  assert.deepEqual(nat.decide(NS, MESH, "a", "b", live("198.51.100.2:51820", T0 + 1500, ["10.0.2.0/24"]), T0 + 30_000, true), d2);
});

test("no handshake within the bound once both sides have the probe: relayed, with the reason, until a mapping changes", () => {
  const nat = new NatPaths();
  seen(nat, { a: "198.51.100.1:51820", b: "198.51.100.2:51820" });
  nat.decide(NS, MESH, "a", "b", undefined, T0, true);
  nat.decide(NS, MESH, "a", "b", live("198.51.100.2:51820", 0), T0 + 500, true); // a has it
  nat.decide(NS, MESH, "b", "a", live("198.51.100.1:51820", 0), T0 + 1000, true); // b has it
  assert.equal(nat.decide(NS, MESH, "a", "b", live("198.51.100.2:51820", 0), T0 + 1000 + PROBE_BOUND_MS, true).path, "Probing", "within the bound");
  const failed = nat.decide(NS, MESH, "a", "b", live("198.51.100.2:51820", 0), T0 + 1001 + PROBE_BOUND_MS, true);
  assert.equal(failed.path, "Relayed");
  assert.equal(failed.reason, "no handshake within 5 s between 198.51.100.1:51820 and 198.51.100.2:51820: a NAT maps per destination or filters");
  assert.equal(nat.decide(NS, MESH, "b", "a", undefined, T0 + 60_000, true).reason, failed.reason, "the other side agrees, word for word");
  assert.equal(nat.decide(NS, MESH, "a", "b", undefined, T0 + 600_000, true).path, "Relayed", "not tried again with the same mappings");
  // b's NAT rebinds: a new probe.
  seen(nat, { a: "198.51.100.1:51820", b: "198.51.100.2:40000" }, T0 + 600_000);
  const again = nat.decide(NS, MESH, "a", "b", undefined, T0 + 600_001, true);
  assert.deepEqual({ path: again.path, endpoint: again.endpoint }, { path: "Probing", endpoint: "198.51.100.2:40000" });
});

test("a side that never takes up the probe: relayed after the start bound, naming it", () => {
  const nat = new NatPaths();
  seen(nat, { a: "198.51.100.1:51820", b: "198.51.100.2:51820" });
  nat.decide(NS, MESH, "a", "b", live("198.51.100.2:51820", 0), T0, true);
  const d = nat.decide(NS, MESH, "a", "b", live("198.51.100.2:51820", 0), T0 + PROBE_START_BOUND_MS + 1, true);
  assert.deepEqual({ path: d.path, reason: d.reason }, { path: "Relayed", reason: "b did not take up the probe within 30 s" });
});

test("a NAT that maps per destination (two public peers see two ports): relayed at once, and why; switched off: relayed", () => {
  const nat = new NatPaths();
  seen(nat, { a: "198.51.100.1:51820", b: "198.51.100.2:1024" }, T0, "p1");
  seen(nat, { a: "198.51.100.1:51820", b: "198.51.100.2:61000" }, T0, "p2");
  const d = nat.decide(NS, MESH, "a", "b", undefined, T0, true);
  assert.equal(d.path, "Relayed");
  assert.equal(d.reason, "the NAT in front of b maps per destination: public peers see it at 198.51.100.2:1024, 198.51.100.2:61000");
  assert.equal(nat.decide(NS, MESH, "b", "a", undefined, T0 + 1, true).reason, d.reason);
  const off = nat.decide(NS, MESH, "a", "b", undefined, T0 + 2, false);
  assert.deepEqual({ path: off.path, reason: off.reason }, { path: "Relayed", reason: "spec.natTraversal of the MeshNetwork is Relay" });
  assert.equal(nat.decide(NS, MESH, "a", "b", undefined, T0 + 5000, false).since, off.since, "since stays: nothing to write");
});

test("a direct path loses its handshake: relayed; after a restart, a pair the host shows direct stays direct", () => {
  const nat = new NatPaths();
  seen(nat, { a: "198.51.100.1:51820", b: "198.51.100.2:51820" });
  nat.decide(NS, MESH, "a", "b", undefined, T0, true);
  assert.equal(nat.decide(NS, MESH, "a", "b", live("198.51.100.2:51820", T0 + 100), T0 + 200, true).path, "Direct");
  const lost = nat.decide(NS, MESH, "a", "b", live("198.51.100.2:51820", T0 + 100, ["10.0.2.0/24"]), T0 + 400_000, true);
  assert.equal(lost.path, "Relayed");
  assert.match(lost.reason, /lost its handshake/);
  // A new controller: nothing known, but a's host has b direct with a fresh handshake.
  const fresh = new NatPaths();
  const kept = fresh.decide(NS, MESH, "a", "b", live("198.51.100.2:51820", T0 + 1000, ["10.0.2.0/24"]), T0 + 2000, true);
  assert.deepEqual({ path: kept.path, endpoint: kept.endpoint }, { path: "Direct", endpoint: "198.51.100.2:51820" });
});

test("the planner: Probing adds the peer at its mapping with no addresses (the relay keeps its subnet); Direct moves the subnet to it", async () => {
  const { planHost } = await import("../../mesh/plan.js");
  const { resolveMesh } = await import("../../mesh/defaults.js");
  const { renderWgConfig } = await import("../../mesh/render.js");
  const { mesh } = await import("../support/fixtures.js");
  const m = resolveMesh(mesh("mesh", { cidr: "10.230.0.0/16" })).mesh!;
  const key = (c: string) => `${c.repeat(42)}A=`;
  const members = [
    { name: "p1", endpoint: "198.51.100.10:51820", publicKey: key("p"), subnet: "10.230.0.0/24" },
    { name: "a", publicKey: key("a"), subnet: "10.230.1.0/24" },
    { name: "b", publicKey: key("b"), subnet: "10.230.2.0/24" },
  ];
  const at = (path: "Direct" | "Probing" | "Relayed") => {
    const natPaths = new Map([["b", { path, ...(path !== "Relayed" ? { endpoint: "198.51.100.2:51820" } : {}), reason: "r", since: "2026-12-03T00:00:00Z" }]]);
    return planHost("default", "a", [{ mesh: m, members, natPaths }]).networks[0]!;
  };
  const peersOf = (n: ReturnType<typeof at>) => n.wireguard.peers.map((p) => ({ machine: p.machine, allowedIPs: p.allowedIPs, endpoint: p.endpoint, path: p.path }));
  assert.deepEqual(peersOf(at("Relayed")), [{ machine: "p1", allowedIPs: ["10.230.0.0/24", "10.230.2.0/24"], endpoint: "198.51.100.10:51820", path: undefined }]);
  const probing = at("Probing");
  assert.deepEqual(peersOf(probing), [
    { machine: "p1", allowedIPs: ["10.230.0.0/24", "10.230.2.0/24"], endpoint: "198.51.100.10:51820", path: undefined },
    { machine: "b", allowedIPs: [], endpoint: "198.51.100.2:51820", path: "Probing" },
  ]);
  assert.deepEqual(probing.relayed, [{ machine: "b", via: "p1" }]);
  assert.equal(probing.wireguard.peers[1]!.persistentKeepalive, 25);
  const conf = renderWgConfig(probing, key("z"));
  assert.match(conf, /# b \(behind NAT: probing a direct path\)\nPublicKey = b+A=\nEndpoint = 198\.51\.100\.2:51820\nPersistentKeepalive = 25\n/, "no AllowedIPs line: wg refuses an empty one");
  const direct = at("Direct");
  assert.deepEqual(peersOf(direct), [
    { machine: "p1", allowedIPs: ["10.230.0.0/24"], endpoint: "198.51.100.10:51820", path: undefined },
    { machine: "b", allowedIPs: ["10.230.2.0/24"], endpoint: "198.51.100.2:51820", path: "Direct" },
  ]);
  assert.deepEqual(direct.relayed, []);
  assert.deepEqual(
    direct.routes.map((r) => r.destination),
    ["10.230.0.0/24", "10.230.2.0/24"],
    "the same routes either way: one interface",
  );
  assert.deepEqual(
    direct.natPaths?.map((p) => [p.machine, p.path]),
    [["b", "Direct"]],
  );
});

test("observers that disagree: per destination only when each has looked since the newest value appeared (a rebinding seen first by one, or a member that left, is not)", () => {
  const nat = new NatPaths();
  seen(nat, { b: "198.51.100.2:51820" }, T0, "p1");
  seen(nat, { b: "198.51.100.2:51820" }, T0, "p2");
  assert.deepEqual(nat.mapping(NS, MESH, "b"), { endpoint: "198.51.100.2:51820" });
  // b's NAT rebinds; p1 sees it first: p2 has not looked since, so the new value holds.
  seen(nat, { b: "198.51.100.2:40000" }, T0 + 10_000, "p1");
  assert.deepEqual(nat.mapping(NS, MESH, "b"), { endpoint: "198.51.100.2:40000" });
  // p2 looks again and sees the new value too: one mapping.
  seen(nat, { b: "198.51.100.2:40000" }, T0 + 20_000, "p2");
  assert.deepEqual(nat.mapping(NS, MESH, "b"), { endpoint: "198.51.100.2:40000" });
  // A NAT that maps per destination: each keeps seeing its own port, look after look.
  seen(nat, { c: "198.51.100.3:1024" }, T0, "p1");
  seen(nat, { c: "198.51.100.3:2048" }, T0 + 1000, "p2");
  seen(nat, { c: "198.51.100.3:1024" }, T0 + 2000, "p1");
  assert.deepEqual(nat.mapping(NS, MESH, "c"), { perDestination: ["198.51.100.3:1024", "198.51.100.3:2048"] });
});
