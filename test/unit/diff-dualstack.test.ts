// Issue 17: what a host needs for a dual-stack mesh, and what it loses when spec.cidrV6 goes. The
// host's IPv6 half is read from ip6tables' sections ("filter6/…"), IPv6 routes and the Docker
// network's IPv6 subnet; a Docker network with containers keeps its IPv6 as it is (Docker cannot
// change it in place) while every other piece is added or removed at once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { planAll, type HostFacts, type NetworkPlan } from "../../mesh/plan.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { diffHost } from "../../hosts/diff.js";
import { namesOf } from "../../hosts/converge.js";
import { observeArgs, type HostObservation } from "../../hosts/observe.js";
import { assumedFreshHost, freshApply, DEFAULT_FRESH_FACTS } from "../../hosts/fresh.js";
import { ipv6HeldText } from "../../controllers/machine-conditions.js";
import { mesh, pub } from "../support/fixtures.js";
import { convergedOnto, observation } from "../support/observations.js";

const keys = new Map(["a", "b", "c"].map((n, i) => [n, generateKeyPair((len) => new Uint8Array(len).fill(i + 7))]));
const pubs = new Map([...keys].map(([k, v]) => [k, v.publicKey]));
const machines = [pub("a", 0), pub("b", 1), pub("c", 2)];

function planFor(dual: boolean, facts: HostFacts = { rawTable: true }): NetworkPlan {
  const m = mesh("mesh", { interface: "dm0", dockerNetwork: "apps", dns: { enabled: false }, ...(dual ? { cidrV6: "fd42:d0c::/48" } : {}) });
  return planAll([m], machines, pubs, new Map([["default/a", facts]])).hosts.find((h) => h.machine === "a")!.networks[0]!;
}

const input = (net: NetworkPlan) => ({ networks: [net], privateKey: keys.get("a")!.privateKey, publicKey: keys.get("a")!.publicKey });

/** Docker's chains in both families, nothing of ours. */
function dockerHost(): HostObservation {
  const chains = ["filter/DOCKER-USER", "nat/POSTROUTING", "filter/INPUT", "raw/PREROUTING", "filter6/DOCKER-USER", "nat6/POSTROUTING", "filter6/INPUT", "raw6/PREROUTING"];
  return observation({ links: new Map([["eth0", { name: "eth0", up: true, mtu: 1500 }]]), iptables: new Map(chains.map((k) => [k, []])) });
}

/** The host exactly as `net` wants it; `containers` attached to its Docker network. */
const convergedHost = (net: NetworkPlan, containers = 0): HostObservation => convergedOnto(dockerHost(), net, keys.get("a")!, containers);

const shown = (net: NetworkPlan, obs: HostObservation) => diffHost(input(net), obs).steps.map((s) => s.display);

test("dual-stack: a host as planned needs nothing; the observe is asked for IPv6", () => {
  const net = planFor(true);
  assert.deepEqual(diffHost(input(net), convergedHost(net)), { steps: [], blockers: [] });
  assert.deepEqual(observeArgs(namesOf([net], [])), ["--ipv6", "dm0", "--", "apps"]);
  assert.deepEqual(observeArgs(namesOf([planFor(false)], [])), ["dm0", "--", "apps"], "an IPv4-only mesh's observe is as before");
});

test("dual-stack: a fresh host gets the network with --ipv6 and the config whose PostUp adds the ip6tables rules, in one round trip", () => {
  const net = planFor(true);
  const fresh = freshApply([net], keys.get("a")!.privateKey, keys.get("a")!.publicKey, DEFAULT_FRESH_FACTS)!;
  assert.ok(fresh, "the one-round-trip first converge is taken");
  assert.match(fresh.steps[0]!.display, /^docker network create --driver bridge --subnet 10\.210\.0\.0\/24 --ipv6 --subnet fd42:d0c::\/64 /);
  assert.ok(diffHost(input(net), assumedFreshHost(DEFAULT_FRESH_FACTS, [net])).blockers.length === 0);
});

test("dual-stack: missing IPv6 pieces are added one by one (rule, route), with ip6tables", () => {
  const net = planFor(true);
  const obs = convergedHost(net);
  obs.iptables.set("nat6/POSTROUTING", []);
  obs.routes = obs.routes.filter((r) => r.dst !== "fd42:d0c:0:1::/64");
  assert.deepEqual(shown(net, obs), ["ip route replace fd42:d0c:0:1::/64 dev dm0", "ip6tables -t nat -I POSTROUTING -s fd42:d0c::/64 -o dm0 -m comment --comment dockmesh:dm0 -j RETURN"]);
  const step = diffHost(input(net), obs).steps.find((s) => s.op === "ensure_rule")!;
  assert.deepEqual(step.args.slice(0, 2), ["nat6", "POSTROUTING"], "the apply prelude's ipt reads the family from the table");
});

test("dual-stack: Docker without ip6tables (no IPv6 DOCKER-USER) blocks the mesh with the fix", () => {
  const net = planFor(true);
  const obs = convergedHost(net);
  obs.iptables.set("filter6/DOCKER-USER", undefined);
  const d = diffHost(input(net), obs);
  assert.deepEqual(d.steps, []);
  assert.equal(d.blockers[0]!.reason, "ChainMissing");
  assert.match(d.blockers[0]!.message, /"ip6tables": true in \/etc\/docker\/daemon\.json, or remove the MeshNetwork's spec\.cidrV6/);
});

test("spec.cidrV6 removed: every IPv6 piece goes (rules, routes, AllowedIPs), the Docker network with containers keeps its IPv6 for now", () => {
  const before = planFor(true);
  const host = convergedHost(before, 2);
  // Planned again from this host: the network's IPv6 is held while containers are attached.
  const after = planFor(false, { rawTable: true, dockerNetworks: new Map([["apps", { containers: 2, subnetV6: "fd42:d0c::/64", label: "dm0" }]]) });
  assert.deepEqual(after.ipv6Held, { change: "remove", subnetV6: "fd42:d0c::/64", containers: 2 });
  assert.equal(after.docker.subnetV6, "fd42:d0c::/64");
  assert.ok(after.wireguard.peers.every((p) => p.allowedIPs.every((c) => !c.includes(":"))));
  const steps = shown(after, host);
  assert.deepEqual(
    steps.filter((s) => s.startsWith("docker")),
    [],
    "no network recreated under containers",
  );
  assert.deepEqual(steps.filter((s) => s.includes("ip6tables")).sort(), [
    "ip6tables -t filter -D DOCKER-USER -i dm0 -o br-dm0 -m comment --comment dockmesh:dm0 -j ACCEPT",
    "ip6tables -t nat -D POSTROUTING -s fd42:d0c::/64 -o dm0 -m comment --comment dockmesh:dm0 -j RETURN",
    "ip6tables -t raw -D PREROUTING -d fd42:d0c::/64 -i dm0 -m comment --comment dockmesh:dm0 -j ACCEPT",
  ]);
  assert.deepEqual(
    steps.filter((s) => s.startsWith("ip route del")),
    ["ip route del fd42:d0c:0:1::/64 dev dm0", "ip route del fd42:d0c:0:2::/64 dev dm0"],
  );
  assert.ok(steps.includes("write /etc/wireguard/dm0.conf (mode 0600)") && steps.some((s) => s.startsWith("wg syncconf dm0")), "the peers lose their IPv6 AllowedIPs without a restart");
  assert.ok(!steps.some((s) => /^(iptables|ip route del 10\.)/.test(s)), "nothing of IPv4 is touched");
  assert.match(ipv6HeldText([after])[0]!, /Docker network apps should lose its IPv6 \(fd42:d0c::\/64\).*2 container\(s\) attached/);
  // The observe still reads IPv6 while the network holds it.
  assert.equal(namesOf([after], []).ipv6, true);
});

test("spec.cidrV6 removed, no containers: the network is recreated IPv4 only", () => {
  const host = convergedHost(planFor(true), 0);
  const after = planFor(false, { rawTable: true, dockerNetworks: new Map([["apps", { containers: 0, subnetV6: "fd42:d0c::/64", label: "dm0" }]]) });
  assert.equal(after.ipv6Held, undefined);
  const steps = shown(after, host);
  assert.deepEqual(steps.filter((s) => s.startsWith("docker")).length, 2);
  assert.match(
    steps.find((s) => s.startsWith("docker network rm"))!,
    /IPv6 subnet fd42:d0c::\/64 instead of \(none\)/,
  );
});

test("spec.cidrV6 added under containers: the network keeps IPv4 only until they stop; the rest of IPv6 is configured", () => {
  const host = convergedHost(planFor(false), 3);
  const after = planFor(true, { rawTable: true, dockerNetworks: new Map([["apps", { containers: 3, label: "dm0" }]]) });
  assert.deepEqual(after.ipv6Held, { change: "add", subnetV6: "fd42:d0c::/64", containers: 3 });
  const steps = shown(after, host);
  assert.deepEqual(
    steps.filter((s) => s.startsWith("docker")),
    [],
  );
  assert.ok(steps.some((s) => s.startsWith("ip6tables -t filter -I DOCKER-USER")));
  assert.ok(steps.includes("ip route replace fd42:d0c:0:1::/64 dev dm0"));
});

test("dual-stack on Docker 20.10 with ip6tables (no IPv6 DOCKER-USER): the tunnel is let into the bridge in ip6tables' FORWARD", () => {
  const net = planFor(true, { rawTable: true, dockerUserV6: false });
  const six = net.rules.filter((r) => r.family === 6);
  assert.deepEqual(
    six.map((r) => `${r.table} ${r.chain}`),
    ["filter FORWARD", "nat POSTROUTING", "raw PREROUTING"],
  );
  const obs = convergedHost(planFor(false));
  obs.iptables.set("filter6/DOCKER-USER", undefined);
  obs.iptables.set("filter6/FORWARD", ["-A FORWARD -j DOCKER-ISOLATION-STAGE-1", "-A FORWARD -o br-dm0 -j DOCKER"]);
  const d = diffHost(input(net), obs);
  assert.deepEqual(d.blockers, []);
  assert.ok(d.steps.some((s) => s.display === "ip6tables -t filter -I FORWARD -i dm0 -o br-dm0 -m comment --comment dockmesh:dm0 -j ACCEPT"));
});
