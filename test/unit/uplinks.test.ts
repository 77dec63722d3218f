// Issue 17: IPv6 endpoints. A machine's uplink families come from its endpoints (spec.endpoint,
// spec.endpointV6); a pair whose uplinks share no family talks through a relay with an endpoint in
// both, as a NAT'd pair does through one with an endpoint; an IPv4-only mesh is planned as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bothBehindNat, endpointFor, hasFamilyGap, isDirect, uplinkFamilies, type Reach } from "../../mesh/uplinks.js";
import { endpointIn } from "../../mesh/endpoints.js";
import { planAll } from "../../mesh/plan.js";
import { machine, mesh, nat, pub } from "../support/fixtures.js";

const V4: Reach = { endpoint: "203.0.113.1:51820" };
const NAME: Reach = { endpoint: "wg.example.com:51820" };
const V6: Reach = { endpoint: "[2001:db8::6]:51820" };
const DUAL: Reach = { endpoint: "203.0.113.2:51820", endpointV6: "[2001:db8::2]:51820" };
const NAT: Reach = {};

test("uplink families come from the endpoints; a DNS name and NAT count as IPv4", () => {
  const cases: Array<[string, Reach, number[]]> = [
    ["IPv4 endpoint", V4, [4]],
    ["DNS name", NAME, [4]],
    ["IPv6 endpoint", V6, [6]],
    ["both", DUAL, [4, 6]],
    ["behind NAT", NAT, [4]],
    ["endpointV6 beside an IPv6 endpoint is ignored", { endpoint: "[2001:db8::7]:51820", endpointV6: "[2001:db8::8]:51820" }, [6]],
  ];
  for (const [what, r, want] of cases) assert.deepEqual(uplinkFamilies(r), want, what);
});

test("which endpoint a machine configures for another, and which pairs are direct", () => {
  const cases: Array<[string, Reach, Reach, string | undefined, boolean]> = [
    // from, to, endpoint from uses for to, direct
    ["v4 → v4", V4, NAME, NAME.endpoint, true],
    ["nat → v4", NAT, V4, V4.endpoint, true],
    ["v4 → nat", V4, NAT, undefined, true],
    ["nat → nat", NAT, NAT, undefined, false],
    ["v4 → v6", V4, V6, undefined, false],
    ["v6 → v4", V6, V4, undefined, false],
    ["nat → v6", NAT, V6, undefined, false],
    ["v6 → v6", V6, { endpoint: "[2001:db8::9]:51820" }, "[2001:db8::9]:51820", true],
    ["v6 → dual: its IPv6 endpoint", V6, DUAL, DUAL.endpointV6, true],
    ["v4 → dual: its IPv4 endpoint", V4, DUAL, DUAL.endpoint, true],
    ["nat → dual", NAT, DUAL, DUAL.endpoint, true],
    ["dual → v6", DUAL, V6, V6.endpoint, true],
    ["dual → dual: the primary", DUAL, { endpoint: "203.0.113.3:51820", endpointV6: "[2001:db8::3]:51820" }, "203.0.113.3:51820", true],
  ];
  for (const [what, from, to, endpoint, direct] of cases) {
    assert.equal(endpointFor(from, to), endpoint, `${what}: endpoint`);
    assert.equal(isDirect(from, to), direct, `${what}: direct`);
    assert.equal(isDirect(to, from), direct, `${what}: symmetric`);
  }
  assert.equal(bothBehindNat(NAT, NAT), true);
  assert.equal(bothBehindNat(NAT, V6), false);
});

test("a family gap exists only when an IPv6-only uplink meets an IPv4-only one", () => {
  const cases: Array<[string, Reach[], boolean]> = [
    ["IPv4 and NAT", [V4, NAT, NAT, NAME], false],
    ["IPv6 only", [V6, V6], false],
    ["dual and either", [DUAL, V4, NAT], false],
    ["v6 and v4", [V6, V4], true],
    ["v6 and NAT", [V6, DUAL, NAT], true],
    ["one machine", [V6], false],
  ];
  for (const [what, members, want] of cases) assert.equal(hasFamilyGap(members), want, what);
});

test("spec.endpointV6: each mesh's port by spec.endpoint's rule; refused where it cannot apply, naming the field", () => {
  const ONE = { name: "one", listenPort: 51820 };
  const TWO = { name: "two", listenPort: 51822 };
  const m = (spec: Record<string, unknown>) => machine("a", { spec });
  const cases: Array<[string, Record<string, unknown>, { name: string; listenPort: number }, string | undefined, RegExp | undefined]> = [
    ["its own port", { endpoint: "203.0.113.1:51820", endpointV6: "[2001:db8::1]:51820" }, ONE, "[2001:db8::1]:51820", undefined],
    ["the second mesh's listenPort", { endpoint: "203.0.113.1:51820", endpointV6: "[2001:db8::1]:51820" }, TWO, "[2001:db8::1]:51822", undefined],
    ["a port forward stays", { endpoint: "203.0.113.1:40000", endpointV6: "[2001:db8::1]:40001" }, ONE, "[2001:db8::1]:40001", undefined],
    [
      "endpointPorts are spec.endpoint's only",
      { endpoint: "203.0.113.1:51820", endpointV6: "[2001:db8::1]:51820", endpointPorts: [{ meshNetwork: "one", port: 40000 }] },
      ONE,
      "[2001:db8::1]:51820",
      undefined,
    ],
    ["not IPv6", { endpoint: "203.0.113.1:51820", endpointV6: "203.0.113.9:51820" }, ONE, undefined, /spec\.endpointV6: "203\.0\.113\.9:51820" is not \[IPv6\]:port; ignored/],
    ["not an address", { endpoint: "203.0.113.1:51820", endpointV6: "[1:2:3:4:5:6:7:8:9]:51820" }, ONE, undefined, /spec\.endpointV6: .* is not \[IPv6\]:port/],
    [
      "a line break after it (hostile input; the CRD pattern refuses it too)",
      { endpoint: "203.0.113.1:51820", endpointV6: "[2001:db8::1]:51820\nPostUp = touch /tmp/x" },
      ONE,
      undefined,
      /spec\.endpointV6: .* is not \[IPv6\]:port/,
    ],
    ["beside an IPv6 endpoint", { endpoint: "[2001:db8::5]:51820", endpointV6: "[2001:db8::1]:51820" }, ONE, undefined, /spec\.endpointV6: ignored, spec\.endpoint is IPv6 already/],
    ["without spec.endpoint", { endpointV6: "[2001:db8::1]:51820" }, ONE, undefined, /spec\.endpointV6: ignored without spec\.endpoint; .* gives its \[IPv6\]:port in spec\.endpoint/],
  ];
  for (const [what, spec, meshPort, want, refusal] of cases) {
    const r = endpointIn(m(spec), meshPort, [ONE, TWO]);
    assert.equal(r.endpointV6, want, what);
    if (refusal) assert.match(r.refused.join("; "), refusal, what);
    else assert.deepEqual(r.refused, [], what);
  }
});

const KEYS = new Map(["r", "c", "a", "n", "d"].map((x, i) => [x, String.fromCharCode(65 + i).repeat(43) + "="]));
const dual = mesh("m", { cidr: "10.230.0.0/16", cidrV6: "fd42:d0c::/48", interface: "dm0" });
const rDual = pub("r", 0, { spec: { endpointV6: "[2001:db8::10]:51820" } });
const cV4 = pub("c", 1);
const aV6 = machine("a", { endpoint: "[2001:db8::12]:51820" });
const nNat = nat("n");

test("an IPv6-only host and IPv4-only hosts reach each other through the machine with both endpoints", () => {
  const p = planAll([dual], [rDual, cV4, aV6, nNat], KEYS);
  assert.deepEqual(p.errors, []);
  const host = (name: string) => p.hosts.find((h) => h.machine === name)!.networks[0]!;
  const peers = (name: string) => Object.fromEntries(host(name).wireguard.peers.map((x) => [x.machine, { endpoint: x.endpoint, allowedIPs: x.allowedIPs, keepalive: x.persistentKeepalive }]));

  // a (IPv6 only): one peer, r over IPv6, carrying c's and n's subnets.
  assert.deepEqual(peers("a"), {
    r: { endpoint: "[2001:db8::10]:51820", allowedIPs: ["10.230.3.0/24", "fd42:d0c:0:3::/64", "10.230.1.0/24", "fd42:d0c:0:1::/64", "10.230.2.0/24", "fd42:d0c:0:2::/64"], keepalive: undefined },
  });
  assert.deepEqual(host("a").relayed, [
    { machine: "c", via: "r" },
    { machine: "n", via: "r" },
  ]);
  assert.deepEqual(host("a").unreachable, []);
  // c (IPv4): r over IPv4 carrying a; n direct (it connects in); no peer for a.
  assert.deepEqual(Object.keys(peers("c")).sort(), ["n", "r"]);
  assert.equal(peers("c").r!.endpoint, "203.0.113.10:51820");
  assert.ok(peers("c").r!.allowedIPs.includes("fd42:d0c::/64") && peers("c").r!.allowedIPs.includes("10.230.0.0/24"), "a's subnets go to r");
  assert.deepEqual(host("c").relayed, [{ machine: "a", via: "r" }]);
  // n (NAT): r carries a; c direct.
  assert.deepEqual(host("n").relayed, [{ machine: "a", via: "r" }]);
  // r: a direct over IPv6, the others over IPv4; it relays (the forward rule between the tunnels, both families).
  assert.equal(peers("r").a!.endpoint, "[2001:db8::12]:51820");
  assert.equal(peers("r").c!.endpoint, "203.0.113.11:51820");
  assert.equal(host("r").relay, true);
  const relayRules = host("r").rules.filter((x) => x.args.includes("-o") && x.args[x.args.indexOf("-o") + 1] === "dm0" && x.args.includes("-i") && x.args[x.args.indexOf("-i") + 1] === "dm0");
  assert.deepEqual(
    relayRules.map((x) => x.family ?? 4),
    [4, 6],
  );
  assert.equal(host("c").relay, false, "an IPv4-only machine cannot relay for an IPv6-only one");
  // The mesh lists the relayed pairs.
  assert.deepEqual(p.meshes[0]!.relays, [
    { machines: ["a", "c"], via: "r" },
    { machines: ["a", "n"], via: "r" },
  ]);
  assert.deepEqual(p.meshes[0]!.unreachablePairs, []);
});

test("without a machine with both endpoints, the gap pairs are unreachable and said so, apart from NAT'd pairs", () => {
  const p = planAll([dual], [cV4, aV6, nNat, nat("d")], KEYS);
  const a = p.hosts.find((h) => h.machine === "a")!.networks[0]!;
  assert.deepEqual(a.unreachable, ["c", "d", "n"]);
  assert.deepEqual(a.noSharedFamily, ["c", "d", "n"]);
  const n = p.hosts.find((h) => h.machine === "n")!.networks[0]!;
  assert.deepEqual(n.relayed, [{ machine: "d", via: "c" }], "the NAT'd pair still relays through c");
  assert.deepEqual(n.unreachable, ["a"]);
  assert.deepEqual(p.meshes[0]!.unreachablePairs, ["a<->c", "a<->d", "a<->n"]);
  assert.deepEqual(p.meshes[0]!.noSharedFamily, ["a<->c", "a<->d", "a<->n"]);
  assert.deepEqual(p.meshes[0]!.relays, [{ machines: ["d", "n"], via: "c" }]);
});

test("an IPv6-only relay never carries a NAT'd pair; a mesh of IPv4 endpoints and NAT plans as before", () => {
  const v4 = mesh("m", { cidr: "10.230.0.0/16", interface: "dm0" });
  const withV6 = planAll([v4], [aV6, nNat, nat("d")], KEYS);
  const n = withV6.hosts.find((h) => h.machine === "n")!.networks[0]!;
  assert.deepEqual(n.relayed, []);
  assert.deepEqual(n.unreachable, ["a", "d"]);
  assert.deepEqual(n.noSharedFamily, ["a"], "d is NAT'd like n");
  // IPv4 endpoints only: the NAT'd pair relays through the public machine, no gap fields appear.
  const plain = planAll([v4], [cV4, nNat, nat("d")], KEYS);
  assert.deepEqual(plain.meshes[0]!.relays, [{ machines: ["d", "n"], via: "c" }]);
  assert.equal("noSharedFamily" in plain.meshes[0]!, false);
  for (const h of plain.hosts) assert.equal("noSharedFamily" in h.networks[0]!, false, h.machine);
});

test("a firewalled host reached over IPv6 opens its WireGuard port in ip6tables too; the shared chain goes when no mesh needs it", async () => {
  const { parseObservation, hostFacts } = await import("../../hosts/observe.js");
  const { diffHost } = await import("../../hosts/diff.js");
  const { renderWgConfig } = await import("../../mesh/render.js");
  const { observation } = await import("../support/observations.js");
  const v4mesh = mesh("m", { cidr: "10.230.0.0/16", interface: "dm0" });
  // ip6tables' INPUT as the observe prints it: policy DROP.
  const obs = parseObservation(["@@dockmesh iptables filter6:INPUT", "-P INPUT DROP", "rc=0", "@@dockmesh iptables filter:INPUT", "-P INPUT ACCEPT", "rc=0", "@@dockmesh end"].join("\n"));
  const facts = hostFacts(obs);
  assert.equal(facts.inputDropsV6, true);
  assert.equal(facts.inputDrops, false);
  const planFor = (m: ReturnType<typeof machine>) => planAll([v4mesh], [m, pub("b", 1)], KEYS, new Map([["default/a", facts]])).hosts.find((h) => h.machine === "a")!.networks[0]!;
  const net = planFor(machine("a", { endpoint: "[2001:db8::12]:51820" }));
  assert.equal(net.uplinkV6, true);
  assert.deepEqual(
    net.rules.filter((r) => r.family === 6).map((r) => `${r.chain} ${r.args.join(" ")}`),
    ["DOCKMESH-INPUT -p udp -m udp --dport 51820 -m comment --comment dockmesh:dm0 -j ACCEPT", "INPUT -m comment --comment dockmesh -j DOCKMESH-INPUT"],
  );
  const conf = renderWgConfig(net, undefined);
  assert.match(conf, /^PostUp = ip6tables -t filter -N DOCKMESH-INPUT 2>\/dev\/null \|\| true$/m);
  assert.doesNotMatch(conf, /^PostUp = iptables -t filter -N DOCKMESH-INPUT/m, "IPv4's INPUT accepts: nothing opened there");
  // An IPv4 endpoint: ip6tables is not this machine's business.
  assert.equal(
    planFor(pub("a", 0)).rules.some((r) => r.family === 6),
    false,
  );
  // The chain and jump left in ip6tables once no mesh opens a port there: both removed, with ip6tables.
  const left = observation();
  left.iptables.set("filter6/INPUT", ["-A INPUT -m comment --comment dockmesh -j DOCKMESH-INPUT"]);
  left.iptables.set("filter6/DOCKMESH-INPUT", []);
  const d = diffHost({ networks: [], privateKey: "k", publicKey: "p" }, left);
  assert.deepEqual(
    d.steps.map((s) => `${s.op} ${s.args.slice(0, 2).join(" ")}`),
    ["delete_rule filter6 INPUT", "drop_chain filter6 DOCKMESH-INPUT"],
  );
  assert.match(d.steps[1]!.display, /^ip6tables -F DOCKMESH-INPUT/);
});
