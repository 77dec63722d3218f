import { test } from "node:test";
import assert from "node:assert/strict";
import { planAll, type HostPlan, type NetworkPlan } from "../../mesh/plan.js";
import { chooseRelay } from "../../mesh/relays.js";
import type { MeshNetworkSpecMachineSelector } from "../../api/types.generated.js";
import { mesh, machine, pub, nat } from "../support/fixtures.js";

const host = (hosts: HostPlan[], name: string): HostPlan => hosts.find((h) => h.machine === name)!;
const net = (hosts: HostPlan[], name: string, meshName = "mesh"): NetworkPlan => host(hosts, name).networks.find((n) => n.meshNetwork === meshName)!;
const peer = (n: NetworkPlan, name: string) => n.wireguard.peers.find((p) => p.machine === name);

test("plan: three public machines form a full mesh with endpoints and no keepalive", () => {
  const { hosts, errors } = planAll([mesh("mesh", { dns: { enabled: false } })], [pub("a", 0), pub("b", 1), pub("c", 2)]);
  assert.deepEqual(errors, []);
  const a = net(hosts, "a");
  assert.equal(a.subnet, "10.210.0.0/24");
  assert.deepEqual(
    a.wireguard.peers.map((p) => [p.machine, p.allowedIPs.join(","), p.endpoint, p.persistentKeepalive]),
    [
      ["b", "10.210.1.0/24", "203.0.113.11:51820", undefined],
      ["c", "10.210.2.0/24", "203.0.113.12:51820", undefined],
    ],
  );
  assert.deepEqual(a.routes, [
    { destination: "10.210.1.0/24", dev: "dm-mesh" },
    { destination: "10.210.2.0/24", dev: "dm-mesh" },
  ]);
  assert.deepEqual(a.docker, {
    name: "mesh",
    subnet: "10.210.0.0/24",
    bridge: "br-dm-mesh",
    mtu: 1420,
    options: {
      "com.docker.network.bridge.name": "br-dm-mesh",
      "com.docker.network.bridge.trusted_host_interfaces": "dm-mesh",
      "com.docker.network.driver.mtu": "1420",
    },
    labels: { "dockmesh.io/interface": "dm-mesh" },
  });
  assert.deepEqual(a.rules, [
    { table: "filter", chain: "DOCKER-USER", args: ["-i", "dm-mesh", "-o", "br-dm-mesh", "-m", "comment", "--comment", "dockmesh:dm-mesh", "-j", "ACCEPT"] },
    { table: "nat", chain: "POSTROUTING", args: ["-s", "10.210.0.0/24", "-o", "dm-mesh", "-m", "comment", "--comment", "dockmesh:dm-mesh", "-j", "RETURN"] },
  ]);
  assert.equal(a.unit.dropInPath, "/etc/systemd/system/wg-quick@dm-mesh.service.d/dockmesh.conf");
  assert.match(a.unit.dropInContent, /^After=docker\.service$/m);
  assert.match(a.unit.dropInContent, /^Requires=docker\.service$/m);
  assert.equal(a.relay, false);
});

test("plan: a NAT'd machine connects out with keepalive; public peers have no endpoint for it", () => {
  const { hosts } = planAll([mesh("mesh", { persistentKeepalive: 15 })], [pub("a", 0), pub("b", 1), nat("h")]);
  const h = net(hosts, "h");
  assert.deepEqual(
    h.wireguard.peers.map((p) => [p.machine, p.endpoint, p.persistentKeepalive]),
    [
      ["a", "203.0.113.10:51820", 15],
      ["b", "203.0.113.11:51820", 15],
    ],
  );
  const toH = peer(net(hosts, "a"), "h")!;
  assert.equal(toH.endpoint, undefined);
  assert.equal(toH.persistentKeepalive, 15);
  assert.equal(peer(net(hosts, "a"), "b")!.persistentKeepalive, undefined);
});

test("plan: persistentKeepalive 0 turns keepalives off", () => {
  const { hosts } = planAll([mesh("mesh", { persistentKeepalive: 0 })], [pub("a", 0), nat("h")]);
  assert.equal(peer(net(hosts, "h"), "a")!.persistentKeepalive, undefined);
});

test("plan: NAT<->NAT pairs go through one relay, the same on both sides", () => {
  const machines = [pub("r1", 0), pub("r2", 1), nat("x"), nat("y")];
  const { hosts, meshes } = planAll([mesh("mesh")], machines);
  const via = chooseRelay("mesh", "x", "y", ["r1", "r2"])!;
  const other = via === "r1" ? "r2" : "r1";
  const x = net(hosts, "x");
  const y = net(hosts, "y");
  assert.deepEqual(x.relayed, [{ machine: "y", via }]);
  assert.deepEqual(y.relayed, [{ machine: "x", via }]);
  assert.equal(peer(x, "y"), undefined, "no direct peer between two NAT'd machines");
  assert.deepEqual(peer(x, via)!.allowedIPs, [net(hosts, via).subnet === "10.210.0.0/24" ? "10.210.0.0/24" : "10.210.1.0/24", y.subnet]);
  assert.deepEqual(peer(x, via)!.relayFor, ["y"]);
  assert.deepEqual(peer(x, other)!.allowedIPs.length, 1);
  assert.ok(x.routes.some((r) => r.destination === y.subnet));
  for (const r of ["r1", "r2"]) {
    const n = net(hosts, r);
    assert.equal(n.relay, true);
    assert.ok(n.rules.some((rule) => rule.args.join(" ") === "-s 10.210.0.0/16 -d 10.210.0.0/16 -i dm-mesh -o dm-mesh -m comment --comment dockmesh:dm-mesh -j ACCEPT"));
  }
  assert.deepEqual(meshes[0]!.relays, [{ machines: ["x", "y"], via }]);
});

test("plan: hosts share a peer's entry where they have it alike; a relay's entry is the host's own copy", () => {
  const machines = [pub("r1", 0), pub("r2", 1), nat("x"), nat("y"), nat("z")];
  const first = planAll([mesh("mesh")], machines).hosts;
  const { hosts } = planAll([mesh("mesh")], machines);
  const [x, y, z] = [net(hosts, "x"), net(hosts, "y"), net(hosts, "z")];
  // r2 is a plain peer of x, y and z alike when it relays for none of them: one object for all.
  const plain = ["r1", "r2"].find((r) => [x, y, z].every((n) => peer(n, r)!.relayFor.length === 0));
  if (plain) assert.equal(peer(x, plain), peer(y, plain), "the same entry, not a copy per host");
  // Each host's relay entry carries the subnets it relays for that host, and no other host's.
  for (const [n, self] of [
    [x, "x"],
    [y, "y"],
    [z, "z"],
  ] as const) {
    const others = ["x", "y", "z"].filter((o) => o !== self);
    for (const r of ["r1", "r2"]) {
      const e = peer(n, r)!;
      assert.deepEqual(e.relayFor, others.filter((o) => chooseRelay("mesh", self, o, ["r1", "r2"]) === r).sort(), `${self}'s entry for ${r}`);
      assert.equal(e.allowedIPs.length, 1 + e.relayFor.length, `${self}'s entry for ${r}: ${e.allowedIPs.join(",")}`);
      assert.ok(!e.allowedIPs.includes(n.subnet), `${self}'s own subnet is not routed to ${r}`);
    }
    assert.deepEqual(n.routes.map((r) => r.destination).sort(), n.wireguard.peers.flatMap((p) => p.allowedIPs).sort(), `${self}: a route per allowed IP`);
  }
  assert.deepEqual(hosts, first, "planning again gives the same plans (nothing accumulated in shared entries)");
});

test("plan: no public machine → NAT<->NAT pairs are reported unreachable, not silently dropped", () => {
  const { hosts, meshes } = planAll([mesh("mesh")], [nat("x"), nat("y"), nat("z")]);
  assert.deepEqual(net(hosts, "x").unreachable, ["y", "z"]);
  assert.deepEqual(net(hosts, "x").wireguard.peers, []);
  assert.deepEqual(meshes[0]!.unreachablePairs, ["x<->y", "x<->z", "y<->z"]);
});

test("relays: consistent hashing spreads pairs and moves only the removed relay's pairs", () => {
  const cands = ["r1", "r2", "r3", "r4"];
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < 40; i++) for (let j = i + 1; j < 40; j++) pairs.push([`n${i}`, `n${j}`]);
  const before = pairs.map(([a, b]) => chooseRelay("mesh", a, b, cands)!);
  const load = new Map<string, number>();
  for (const r of before) load.set(r, (load.get(r) ?? 0) + 1);
  for (const c of cands) assert.ok((load.get(c) ?? 0) > pairs.length / 8, `relay ${c} carries ${load.get(c)} of ${pairs.length} pairs`);
  const after = pairs.map(([a, b]) => chooseRelay("mesh", a, b, ["r1", "r2", "r4"])!);
  pairs.forEach((_, i) => {
    if (before[i] !== "r3") assert.equal(after[i], before[i], "a pair whose relay stayed must not move");
    else assert.notEqual(after[i], "r3");
  });
  assert.equal(chooseRelay("mesh", "a", "b", cands), chooseRelay("mesh", "b", "a", cands), "symmetric");
  assert.equal(chooseRelay("mesh", "a", "b", []), undefined);
});

test("relays: 20 relays for 4,950 pairs each carry a share near 1/20; a new relay takes pairs only for itself", () => {
  const cands = Array.from({ length: 20 }, (_, i) => `pub-${i}`);
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < 100; i++) for (let j = i + 1; j < 100; j++) pairs.push([`nat-${i}`, `nat-${j}`]);
  const before = pairs.map(([a, b]) => chooseRelay("mesh", a, b, cands)!);
  const load = new Map<string, number>();
  for (const r of before) load.set(r, (load.get(r) ?? 0) + 1);
  const mean = pairs.length / cands.length;
  for (const c of cands) {
    const l = load.get(c) ?? 0;
    assert.ok(l > mean * 0.5 && l < mean * 1.6, `relay ${c} carries ${l} pairs, mean ${mean}`);
  }
  const grown = [...cands, "pub-new"];
  const after = pairs.map(([a, b]) => chooseRelay("mesh", a, b, grown)!);
  const moved = after.filter((r, i) => r !== before[i]);
  assert.ok(moved.length > 0 && moved.every((r) => r === "pub-new"), "pairs move only onto the new relay");
  assert.equal(chooseRelay("mesh", "nat-1", "nat-2", ["nat-1", "nat-2"]), undefined, "a pair never relays through itself");
  assert.equal(chooseRelay("mesh", "nat-1", "nat-2", ["nat-2", "pub-0", "nat-1"]), "pub-0");
});

test("plan: relayCandidates (healthy relays) steer the choice away from a failed relay", async () => {
  const { planMesh, membersOf, planHost } = await import("../../mesh/plan.js");
  const { resolveMesh } = await import("../../mesh/defaults.js");
  const m = resolveMesh(mesh("mesh")).mesh!;
  const machines = [pub("r1", 0), pub("r2", 1), nat("x"), nat("y")];
  const first = chooseRelay("mesh", "x", "y", ["r1", "r2"])!;
  const healthy = ["r1", "r2"].filter((r) => r !== first);
  const mp = planMesh(m, machines, { relayCandidates: healthy });
  assert.deepEqual(mp.relays, [{ machines: ["x", "y"], via: healthy[0] }]);
  const hp = planHost("default", "x", [{ mesh: m, members: membersOf(mp, machines, new Map()), relayCandidates: healthy }]);
  assert.deepEqual(hp.networks[0]!.relayed, [{ machine: "y", via: healthy[0] }]);
});

test("plan: a machine in two meshes gets a network, interface and port for each", () => {
  const meshes = [
    mesh("blue", { cidr: "10.1.0.0/16", interface: "wg-blue", listenPort: 51820, machineSelector: { matchLabels: { blue: "yes" } } }),
    mesh("red", { cidr: "10.2.0.0/16", interface: "wg-red", listenPort: 51821, machineSelector: { matchExpressions: [{ key: "red", operator: "Exists" }] } }),
  ];
  const machines = [pub("a", 0, { labels: { blue: "yes", red: "" } }), pub("b", 1, { labels: { blue: "yes" } }), pub("c", 2, { labels: { red: "1" } })];
  const { hosts, errors } = planAll(meshes, machines);
  assert.deepEqual(errors, []);
  assert.deepEqual(
    host(hosts, "a").networks.map((n) => [n.meshNetwork, n.subnet, n.wireguard.interface, n.wireguard.listenPort, n.wireguard.peers.map((p) => p.machine).join()]),
    [
      ["blue", "10.1.0.0/24", "wg-blue", 51820, "b"],
      ["red", "10.2.0.0/24", "wg-red", 51821, "c"],
    ],
  );
  assert.deepEqual(
    host(hosts, "b").networks.map((n) => n.meshNetwork),
    ["blue"],
  );
});

test("plan: a Machine's subnet pin applies to the mesh whose pool holds it", () => {
  const meshes = [mesh("blue", { cidr: "10.1.0.0/16", interface: "wg-blue" }), mesh("red", { cidr: "10.2.0.0/16", interface: "wg-red", listenPort: 51821 })];
  const { hosts, errors } = planAll(meshes, [pub("a", 0, { subnet: "10.2.7.0/24" }), pub("b", 1)]);
  assert.deepEqual(errors, []);
  assert.deepEqual(
    host(hosts, "a").networks.map((n) => n.subnet),
    ["10.1.0.0/24", "10.2.7.0/24"],
  );
  const bad = planAll(meshes, [pub("a", 0, { subnet: "10.9.0.0/24" })]);
  assert.deepEqual(
    bad.errors.map((e) => [e.name, e.field]),
    [
      ["a", "spec.subnet"],
      ["a", "spec.subnet"],
    ],
  );
});

test("plan: two meshes clashing on a machine: the second is refused with an error naming both", () => {
  const meshes = [mesh("blue", { cidr: "10.1.0.0/16", interface: "wg0" }), mesh("red", { cidr: "10.2.0.0/16", interface: "wg0" })];
  const { hosts, errors } = planAll(meshes, [pub("a", 0)]);
  assert.deepEqual(
    host(hosts, "a").networks.map((n) => n.meshNetwork),
    ["blue"],
  );
  assert.equal(errors.length, 1);
  assert.match(
    errors[0]!.message,
    /^interface wg0 is also the interface of MeshNetwork blue, which came first .* shares machine a with it: nothing of red is allocated or configured; give it a different spec\.interface/,
  );
  const ports = planAll([mesh("blue", { cidr: "10.1.0.0/16", interface: "b" }), mesh("red", { cidr: "10.1.128.0/17", interface: "r", listenPort: 1 })], [pub("a", 0)]);
  assert.match(ports.errors[0]!.message, /^pool 10\.1\.128\.0\/17 overlaps the pool 10\.1\.0\.0\/16 of MeshNetwork blue/);
});

interface MtuCase {
  mtu: number | "auto" | undefined;
  uplink: number | undefined;
  want: number;
}
for (const c of [
  { mtu: undefined, uplink: undefined, want: 1420 },
  { mtu: "auto", uplink: 1450, want: 1370 },
  { mtu: "auto", uplink: 9001, want: 8921 },
  { mtu: 1380, uplink: 1450, want: 1380 },
] satisfies MtuCase[]) {
  test(`plan: mtu ${c.mtu ?? "(default)"} with uplink ${c.uplink ?? "(unknown)"} → tunnel and Docker network ${c.want}`, () => {
    const m = mesh("mesh", c.mtu === undefined ? {} : { mtu: c.mtu });
    const facts = new Map(c.uplink ? [["default/a", { uplinkMtu: c.uplink }]] : []);
    const n = net(planAll([m], [pub("a", 0)], new Map(), facts).hosts, "a");
    assert.equal(n.wireguard.mtu, c.want);
    assert.equal(n.docker.mtu, c.want);
    assert.equal(n.docker.options["com.docker.network.driver.mtu"], String(c.want));
  });
}

for (const c of [
  { spec: { cidr: "10.210.1.0/16" }, field: "spec.cidr", msg: "the pool's network address is 10.210.0.0/16" },
  { spec: { cidr: "10.210.0.0/24", subnetPrefixLength: 16 }, field: "spec.subnetPrefixLength", msg: "at least 24" },
  { spec: { cidr: "not-a-cidr" }, field: "spec.cidr", msg: "not an IPv4 CIDR" },
]) {
  test(`plan: invalid mesh spec ${JSON.stringify(c.spec)} names ${c.field}`, () => {
    const { errors, hosts } = planAll([mesh("mesh", c.spec)], [pub("a", 0)]);
    assert.equal(errors[0]!.field, c.field);
    assert.match(errors[0]!.message, new RegExp(c.msg.replace(/[./]/g, "\\$&")));
    assert.deepEqual(host(hosts, "a").networks, [], "nothing is configured from an invalid mesh");
  });
}

test("plan: a default interface name longer than 15 characters asks for spec.interface", () => {
  const { errors } = planAll([mesh("a-rather-long-mesh-name")], []);
  assert.deepEqual(
    errors.map((e) => e.field),
    ["spec.interface"],
  );
});

test("plan: machines in another namespace or not selected are not members", () => {
  const { meshes } = planAll(
    [mesh("mesh", { machineSelector: { matchLabels: { mesh: "on" } } })],
    [pub("a", 0, { labels: { mesh: "on" } }), pub("b", 1, { labels: { mesh: "off" } }), pub("c", 2, { labels: { mesh: "on" }, namespace: "other" })],
  );
  assert.deepEqual(meshes[0]!.members, ["a"]);
});

test("plan: a member without a subnet (pool exhausted) is left out of everyone's peers", () => {
  const { hosts, errors } = planAll([mesh("mesh", { cidr: "10.0.0.0/24", subnetPrefixLength: 25 })], [pub("a", 0), pub("b", 1), pub("c", 2)]);
  assert.deepEqual(
    errors.map((e) => [e.kind, e.field]),
    [["MeshNetwork", "spec.cidr"]],
  );
  assert.deepEqual(
    net(hosts, "a").wireguard.peers.map((p) => p.machine),
    ["b"],
  );
  assert.deepEqual(host(hosts, "c").networks, []);
});

test("plan: output is identical whatever the input order", () => {
  const ms = [pub("a", 0), nat("x"), pub("b", 1), nat("y"), machine("z", { labels: { k: "v" } })];
  const one = planAll([mesh("mesh"), mesh("other", { cidr: "10.9.0.0/16", interface: "o", listenPort: 2 })], ms);
  const two = planAll([mesh("other", { cidr: "10.9.0.0/16", interface: "o", listenPort: 2 }), mesh("mesh")], [...ms].reverse());
  assert.deepEqual(JSON.stringify(one), JSON.stringify(two));
});

const selectorCases: Array<{ sel: MeshNetworkSpecMachineSelector; labels: Record<string, string>; want: boolean }> = [
  { sel: { matchLabels: { site: "cloud" } }, labels: { site: "cloud" }, want: true },
  { sel: { matchLabels: { site: "cloud" } }, labels: { site: "home" }, want: false },
  { sel: { matchExpressions: [{ key: "site", operator: "In" as const, values: ["a", "b"] }] }, labels: { site: "b" }, want: true },
  { sel: { matchExpressions: [{ key: "site", operator: "NotIn" as const, values: ["a"] }] }, labels: {}, want: true },
  { sel: { matchExpressions: [{ key: "site", operator: "NotIn" as const, values: ["a"] }] }, labels: { site: "a" }, want: false },
  { sel: { matchExpressions: [{ key: "gpu", operator: "Exists" as const }] }, labels: { gpu: "" }, want: true },
  { sel: { matchExpressions: [{ key: "gpu", operator: "DoesNotExist" as const }] }, labels: { gpu: "1" }, want: false },
  { sel: { matchLabels: { a: "1" }, matchExpressions: [{ key: "b", operator: "Exists" as const }] }, labels: { a: "1" }, want: false },
  { sel: {}, labels: {}, want: true },
];
for (const c of selectorCases) {
  test(`selector: ${JSON.stringify(c.sel)} on ${JSON.stringify(c.labels)} → ${c.want}`, async () => {
    const { selectorMatches } = await import("../../mesh/selector.js");
    assert.equal(selectorMatches(c.sel, c.labels), c.want);
  });
}
