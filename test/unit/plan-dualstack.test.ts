// Issue 17: a dual-stack mesh (spec.cidrV6) in the plan: both subnets allocated per machine, both
// routed through the tunnel, the Docker network made dual-stack, ip6tables mirroring the IPv4 rules;
// and an IPv4-only mesh planned exactly as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { planAll, planMesh } from "../../mesh/plan.js";
import { resolveMesh } from "../../mesh/defaults.js";
import { checkAllocations } from "../../mesh/allocations.js";
import { networkCreateArgs } from "../../mesh/commands.js";
import { renderWgConfig } from "../../mesh/render.js";
import { mesh, pub, nat } from "../support/fixtures.js";

const dual = (extra = {}) => mesh("m", { cidr: "10.230.0.0/16", cidrV6: "fd42:d0c::/48", interface: "dm0", ...extra });

test("dual-stack: every member gets an IPv4 and an IPv6 subnet, in name order, recorded together", () => {
  const p = planAll([dual()], [pub("b", 1), pub("a", 0), nat("c")]);
  assert.deepEqual(p.errors, []);
  assert.deepEqual(p.meshes[0]!.allocations, [
    { machine: "a", subnet: "10.230.0.0/24", subnetV6: "fd42:d0c::/64" },
    { machine: "b", subnet: "10.230.1.0/24", subnetV6: "fd42:d0c:0:1::/64" },
    { machine: "c", subnet: "10.230.2.0/24", subnetV6: "fd42:d0c:0:2::/64" },
  ]);
});

test("dual-stack: recorded allocations stay; a mesh that gains cidrV6 keeps every IPv4 subnet", () => {
  const r = resolveMesh(dual()).mesh!;
  const machines = [pub("a", 0), pub("b", 1)];
  const plan = planMesh(r, machines, {
    existing: [
      { machine: "a", subnet: "10.230.7.0/24" },
      { machine: "b", subnet: "10.230.3.0/24", subnetV6: "fd42:d0c:0:9::/64" },
    ],
  });
  assert.deepEqual(plan.allocations, [
    { machine: "a", subnet: "10.230.7.0/24", subnetV6: "fd42:d0c::/64" },
    { machine: "b", subnet: "10.230.3.0/24", subnetV6: "fd42:d0c:0:9::/64" },
  ]);
});

test("dual-stack: a bad IPv6 pin refuses the machine both subnets, naming spec.subnetV6", () => {
  const p = planAll([dual()], [pub("a", 0, { spec: { subnetV6: "fd43::/64" } }), pub("b", 1)]);
  assert.deepEqual(
    p.meshes[0]!.allocations.map((a) => a.machine),
    ["b"],
  );
  const e = p.errors.find((x) => x.name === "a")!;
  assert.equal(e.field, "spec.subnetV6");
  assert.match(e.message, /outside the mesh's pool fd42:d0c::\/48/);
  assert.deepEqual(p.hosts.find((h) => h.machine === "a")!.networks, [], "nothing planned for a");
});

test("dual-stack: peers, routes, Docker network and rules carry both families", () => {
  const p = planAll(
    [dual()],
    [pub("a", 0), pub("b", 1), nat("c")],
    new Map([
      ["a", "A".repeat(43) + "="],
      ["b", "B".repeat(42) + "A="],
      ["c", "C".repeat(42) + "A="],
    ]),
  );
  const net = p.hosts.find((h) => h.machine === "a")!.networks[0]!;
  assert.equal(net.subnetV6, "fd42:d0c::/64");
  assert.deepEqual(
    net.wireguard.peers.map((x) => [x.machine, x.allowedIPs]),
    [
      ["b", ["10.230.1.0/24", "fd42:d0c:0:1::/64"]],
      ["c", ["10.230.2.0/24", "fd42:d0c:0:2::/64"]],
    ],
  );
  assert.deepEqual(
    net.routes.map((r) => r.destination),
    ["10.230.1.0/24", "10.230.2.0/24", "fd42:d0c:0:1::/64", "fd42:d0c:0:2::/64"],
  );
  assert.deepEqual(networkCreateArgs(net).slice(0, 7), ["--driver", "bridge", "--subnet", "10.230.0.0/24", "--ipv6", "--subnet", "fd42:d0c::/64"]);
  const six = net.rules.filter((r) => r.family === 6).map((r) => `${r.table} ${r.chain} ${r.args.join(" ")}`);
  assert.deepEqual(six, ["filter DOCKER-USER -i dm0 -o br-dm0 -m comment --comment dockmesh:dm0 -j ACCEPT", "nat POSTROUTING -s fd42:d0c::/64 -o dm0 -m comment --comment dockmesh:dm0 -j RETURN"]);
  const conf = renderWgConfig(net, undefined);
  assert.match(conf, /^AllowedIPs = 10\.230\.1\.0\/24, fd42:d0c:0:1::\/64$/m);
  assert.match(conf, /^PostUp = ip6tables -t nat -C POSTROUTING -s fd42:d0c::\/64 -o dm0 -m comment --comment dockmesh:dm0 -j RETURN \|\| ip6tables -t nat -I POSTROUTING/m);
  assert.match(conf, /^PostDown = ip6tables -t filter -D DOCKER-USER -i dm0 -o br-dm0/m);
});

test("the IPv6 tunnel rule's PostUp picks ip6tables' chain on the host: one config for Docker 20.10 (FORWARD) and 23+ (DOCKER-USER)", () => {
  const confOf = (dockerUserV6: boolean) => {
    const p = planAll([dual()], [pub("a", 0), pub("b", 1)], new Map([["b", "B".repeat(42) + "A="]]), new Map([["default/a", { dockerUserV6 }]]));
    const net = p.hosts.find((h) => h.machine === "a")!.networks[0]!;
    return { net, conf: renderWgConfig(net, undefined) };
  };
  const [old, cur] = [confOf(false), confOf(true)];
  assert.equal(old.conf, cur.conf, "the same file whatever the host's Docker");
  assert.equal(old.net.rules.find((r) => r.userOrForward)?.chain, "FORWARD", "diffs still go by the observed facts");
  assert.equal(cur.net.rules.find((r) => r.userOrForward)?.chain, "DOCKER-USER");
  const line = cur.conf.split("\n").find((l) => l.startsWith("PostUp = if ip6tables"))!;
  assert.ok(line, cur.conf);
  // Run as wg-quick does (bash eval), with ip6tables stubbed: which chain gets the rule.
  for (const [has, chain] of [
    ["yes", "DOCKER-USER"],
    ["no", "FORWARD"],
  ] as const) {
    const stub = `ip6tables() { if [ "$3" = -S ]; then [ "$HAS" = yes ]; return; fi; if [ "$3" = -C ]; then return 1; fi; echo "$*"; }`;
    const r = spawnSync("bash", ["-c", `${stub}\neval "$LINE"`], { env: { HAS: has, LINE: line.slice("PostUp = ".length), PATH: process.env.PATH ?? "" }, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `-t filter -I ${chain} -i dm0 -o br-dm0 -m comment --comment dockmesh:dm0 -j ACCEPT\n`, `DOCKER-USER there: ${has}`);
  }
  assert.match(cur.conf, /^PostDown = ip6tables -t filter -D DOCKER-USER -i dm0 .* 2>\/dev\/null \|\| ip6tables -t filter -D FORWARD -i dm0 .* \|\| true$/m);
});

test("an IPv4-only mesh: no IPv6 anywhere in its plan", () => {
  const p = planAll([mesh("m", { cidr: "10.230.0.0/16", interface: "dm0" })], [pub("a", 0), pub("b", 1)], new Map([["b", "B".repeat(42) + "A="]]));
  const net = p.hosts.find((h) => h.machine === "a")!.networks[0]!;
  assert.equal(net.subnetV6, undefined);
  assert.equal(net.docker.subnetV6, undefined);
  assert.ok(!networkCreateArgs(net).includes("--ipv6"));
  assert.ok(net.rules.every((r) => r.family === undefined));
  assert.doesNotMatch(renderWgConfig(net, undefined), /ip6tables/);
  assert.deepEqual(p.meshes[0]!.allocations[0], { machine: "a", subnet: "10.230.0.0/24" });
});

const refusals: Array<[string, object, string, RegExp]> = [
  ["not IPv6", { cidrV6: "10.0.0.0/8" }, "spec.cidrV6", /is not an IPv6 CIDR; write it like fd42:d0c::\/48/],
  ["host bits", { cidrV6: "fd42:d0c::1/48" }, "spec.cidrV6", /host bits set; the pool's network address is fd42:d0c::\/48/],
  ["not unique local", { cidrV6: "2001:db8::/32" }, "spec.cidrV6", /not a unique local pool/],
  ["prefix shorter than the pool", { cidrV6: "fd42:d0c::/48", subnetPrefixLengthV6: 40 }, "spec.subnetPrefixLengthV6", /use a prefix length of at least 48/],
  ["a prefix length without a pool", { subnetPrefixLengthV6: 64 }, "spec.subnetPrefixLengthV6", /set spec.cidrV6/],
];
for (const [name, spec, field, message] of refusals) {
  test(`spec.cidrV6 refused: ${name}`, () => {
    const r = resolveMesh(mesh("m", { cidr: "10.230.0.0/16", ...spec }));
    assert.equal(r.mesh, undefined);
    assert.deepEqual(
      r.errors.map((e) => e.field),
      [field],
    );
    assert.match(r.errors[0]!.message, message);
  });
}

test("spec.cidrV6 is written one way (RFC 5952) wherever the plan uses it", () => {
  assert.equal(resolveMesh(dual({ cidrV6: "FD42:0D0C:0000::/48" })).mesh!.cidrV6, "fd42:d0c::/48");
});

test("status.allocations[].subnetV6 is checked where it is read", () => {
  const r = resolveMesh(dual()).mesh!;
  const got = checkAllocations(r, [
    { machine: "a", subnet: "10.230.0.0/24", subnetV6: "fd42:d0c::/64" },
    { machine: "b", subnet: "10.230.1.0/24", subnetV6: "fd99::/64" },
    { machine: "c", subnet: "10.230.2.0/24", subnetV6: "fd42:d0c::/64" },
    { machine: "d", subnet: "10.230.3.0/24", subnetV6: "FD42:D0C:0:3::/64" },
    { machine: "e", subnet: "10.230.4.0/24" },
  ]);
  assert.deepEqual(got.valid, [{ machine: "e", subnet: "10.230.4.0/24" }]);
  assert.deepEqual(
    got.refused.map((x) => x.replace(/:.*/, "")),
    ["MeshNetwork m status.allocations[1].subnetV6", "MeshNetwork m status.allocations[3].subnetV6", "MeshNetwork m status.allocations[0].subnetV6", "MeshNetwork m status.allocations[2].subnetV6"],
  );
  // An IPv4-only mesh does not use a recorded IPv6 subnet.
  const v4 = resolveMesh(mesh("m", { cidr: "10.230.0.0/16" })).mesh!;
  assert.deepEqual(checkAllocations(v4, [{ machine: "a", subnet: "10.230.0.0/24", subnetV6: "fd42:d0c::/64" }]).valid, [{ machine: "a", subnet: "10.230.0.0/24" }]);
});

test("two meshes on one machine with overlapping IPv6 pools: the later one is refused, naming spec.cidrV6", () => {
  const p = planAll(
    [mesh("one", { cidr: "10.230.0.0/16", cidrV6: "fd00::/8", interface: "dm1" }), mesh("two", { cidr: "10.231.0.0/16", cidrV6: "fd42:d0c::/48", interface: "dm2", listenPort: 51822 })],
    [pub("a", 0)],
  );
  const e = p.errors.find((x) => x.name === "two")!;
  assert.equal(e.field, "spec.cidrV6");
  assert.match(e.message, /IPv6 pool fd42:d0c::\/48 overlaps the IPv6 pool fd00::\/8 of MeshNetwork one/);
});
