import { test } from "node:test";
import assert from "node:assert/strict";
import { allocateSubnets, type IpamMember } from "../../mesh/ipam.js";
import { IPV6 } from "../../mesh/ip-family.js";

interface Case {
  name: string;
  pool: string;
  prefix: number;
  members: IpamMember[];
  want?: Record<string, string>;
  /** machine → substring of its error message */
  errors?: Record<string, string>;
}

const m = (name: string, extra: Partial<IpamMember> = {}): IpamMember => ({ name, ...extra });
const names = (n: number, p = "m") => Array.from({ length: n }, (_, i) => m(`${p}${String(i).padStart(3, "0")}`));

const cases: Case[] = [
  { name: "first machine gets the first subnet", pool: "10.210.0.0/16", prefix: 24, members: [m("a")], want: { a: "10.210.0.0/24" } },
  {
    name: "allocation follows name order, not input order",
    pool: "10.210.0.0/16",
    prefix: 24,
    members: [m("c"), m("a"), m("b")],
    want: { a: "10.210.0.0/24", b: "10.210.1.0/24", c: "10.210.2.0/24" },
  },
  { name: "/16 with /24 holds 256 machines", pool: "10.0.0.0/16", prefix: 24, members: names(256), want: { m000: "10.0.0.0/24", m255: "10.0.255.0/24" } },
  { name: "/16 with /24 refuses the 257th", pool: "10.0.0.0/16", prefix: 24, members: names(257), errors: { m256: "no free /24 left" } },
  { name: "/20 with /26 holds 64 machines", pool: "172.20.16.0/20", prefix: 26, members: names(64), want: { m000: "172.20.16.0/26", m001: "172.20.16.64/26", m063: "172.20.31.192/26" } },
  { name: "/20 with /26 refuses the 65th, naming it", pool: "172.20.16.0/20", prefix: 26, members: names(65), errors: { m064: "pool 172.20.16.0/20 has no free /26 left for m064" } },
  { name: "exhaustion: /30 pool with /31 subnets", pool: "10.1.0.0/30", prefix: 31, members: names(3), want: { m000: "10.1.0.0/31", m001: "10.1.0.2/31" }, errors: { m002: "widen" } },
  { name: "pin honoured", pool: "10.210.0.0/16", prefix: 24, members: [m("a"), m("b", { pin: "10.210.0.0/24" })], want: { a: "10.210.1.0/24", b: "10.210.0.0/24" } },
  { name: "pin outside the pool refused", pool: "10.210.0.0/16", prefix: 24, members: [m("a", { pin: "10.99.0.0/24" })], errors: { a: "outside the mesh's pool 10.210.0.0/16" } },
  { name: "pin with the wrong prefix refused", pool: "10.210.0.0/16", prefix: 24, members: [m("a", { pin: "10.210.4.0/23" })], errors: { a: "is a /23 but the mesh allocates /24" } },
  { name: "pin with host bits refused with the fix", pool: "10.210.0.0/16", prefix: 24, members: [m("a", { pin: "10.210.4.7/24" })], errors: { a: "use 10.210.4.0/24" } },
  { name: "pin that is not a CIDR refused", pool: "10.210.0.0/16", prefix: 24, members: [m("a", { pin: "10.210.4.0" })], errors: { a: "not an IPv4 CIDR" } },
  {
    name: "overlapping new pins: both refused, each naming the other",
    pool: "10.210.0.0/16",
    prefix: 24,
    members: [m("a", { pin: "10.210.5.0/24" }), m("b", { pin: "10.210.5.0/24" }), m("c")],
    want: { c: "10.210.0.0/24" },
    errors: { a: "also pinned by b", b: "also pinned by a" },
  },
  {
    name: "overlapping pins: the holder keeps it",
    pool: "10.210.0.0/16",
    prefix: 24,
    members: [m("a", { pin: "10.210.5.0/24" }), m("b", { pin: "10.210.5.0/24", existing: "10.210.5.0/24" })],
    want: { b: "10.210.5.0/24" },
    errors: { a: "also pinned by b (which holds it)" },
  },
  {
    name: "a new pin cannot take a subnet allocated to a running machine",
    pool: "10.210.0.0/16",
    prefix: 24,
    members: [m("a", { existing: "10.210.0.0/24" }), m("b", { pin: "10.210.0.0/24" })],
    want: { a: "10.210.0.0/24" },
    errors: { b: "already allocated to a" },
  },
  {
    name: "existing allocations never move",
    pool: "10.210.0.0/16",
    prefix: 24,
    members: [m("a", { existing: "10.210.7.0/24" }), m("b", { existing: "10.210.3.0/24" }), m("c")],
    want: { a: "10.210.7.0/24", b: "10.210.3.0/24", c: "10.210.0.0/24" },
  },
  {
    name: "stability: one machine leaves, another joins and takes the freed subnet; the rest stay",
    pool: "10.210.0.0/16",
    prefix: 24,
    members: [m("a", { existing: "10.210.0.0/24" }), m("c", { existing: "10.210.2.0/24" }), m("z")],
    want: { a: "10.210.0.0/24", c: "10.210.2.0/24", z: "10.210.1.0/24" },
  },
  {
    name: "a pin moves its own machine",
    pool: "10.210.0.0/16",
    prefix: 24,
    members: [m("a", { existing: "10.210.0.0/24", pin: "10.210.9.0/24" }), m("b")],
    want: { a: "10.210.9.0/24", b: "10.210.0.0/24" },
  },
  {
    name: "an existing allocation outside a changed pool is re-allocated",
    pool: "10.220.0.0/16",
    prefix: 24,
    members: [m("a", { existing: "10.210.0.0/24" })],
    want: { a: "10.220.0.0/24" },
  },
  {
    name: "an existing allocation of another prefix length is re-allocated",
    pool: "10.210.0.0/16",
    prefix: 25,
    members: [m("a", { existing: "10.210.0.0/24" }), m("b", { existing: "10.210.1.0/24" })],
    want: { a: "10.210.0.0/25", b: "10.210.0.128/25" },
  },
  {
    name: "two machines recorded with one subnet (a corrupted status): the first by name keeps it",
    pool: "10.210.0.0/16",
    prefix: 24,
    members: [m("a", { existing: "10.210.1.0/24" }), m("b", { existing: "10.210.1.0/24" })],
    want: { a: "10.210.1.0/24", b: "10.210.0.0/24" },
  },
  { name: "a /32 per machine from a /30", pool: "192.168.77.0/30", prefix: 32, members: names(4), want: { m000: "192.168.77.0/32", m003: "192.168.77.3/32" } },
];

for (const c of cases) {
  test(`ipam: ${c.name}`, () => {
    const res = allocateSubnets(c.pool, c.prefix, c.members);
    for (const [k, v] of Object.entries(c.want ?? {})) assert.equal(res.allocations.get(k), v, `allocation of ${k}`);
    const errs = new Map(res.errors.map((e) => [e.machine, e.message]));
    assert.deepEqual([...errs.keys()].sort(), Object.keys(c.errors ?? {}).sort(), `machines with errors: ${JSON.stringify(res.errors)}`);
    for (const [k, v] of Object.entries(c.errors ?? {})) assert.match(errs.get(k)!, new RegExp(v.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")), `error of ${k}`);
    // Invariants: no two machines share a subnet; nobody both allocated and refused.
    const subnets = [...res.allocations.values()];
    assert.equal(new Set(subnets).size, subnets.length, "duplicate allocation");
    for (const e of res.errors) assert.equal(res.allocations.has(e.machine), false, `${e.machine} both allocated and refused`);
  });
}

test("ipam: deterministic across input orders", () => {
  const members = [m("x"), m("b", { pin: "10.0.9.0/24" }), m("q", { existing: "10.0.3.0/24" }), m("a")];
  const a = allocateSubnets("10.0.0.0/16", 24, members);
  const b = allocateSubnets("10.0.0.0/16", 24, [...members].reverse());
  assert.deepEqual([...a.allocations], [...b.allocations]);
});

test("ipam: invalid pool is a programming error (callers validate the spec first)", () => {
  assert.throws(() => allocateSubnets("10.0.1.0/16", 24, []), /invalid pool/);
  assert.throws(() => allocateSubnets("10.0.0.0/16", 8, []), /does not fit/);
});

// The IPv6 pool (spec.cidrV6): the same IPAM, its own fields in messages.
const cases6: Case[] = [
  { name: "a /64 per machine from a ULA /48", pool: "fd42:d0c::/48", prefix: 64, members: names(3), want: { m000: "fd42:d0c::/64", m001: "fd42:d0c:0:1::/64", m002: "fd42:d0c:0:2::/64" } },
  {
    name: "the last /64 of a /48 can be pinned",
    pool: "fd42:d0c::/48",
    prefix: 64,
    members: [...names(1).map((x) => ({ ...x, pin: "fd42:d0c:0:ffff::/64" }))],
    want: { m000: "fd42:d0c:0:ffff::/64" },
  },
  { name: "pin in the pool honoured", pool: "fd42:d0c::/48", prefix: 64, members: [m("a"), m("b", { pin: "fd42:d0c:0:9::/64" })], want: { a: "fd42:d0c::/64", b: "fd42:d0c:0:9::/64" } },
  { name: "pin with host bits refused with the fix", pool: "fd42:d0c::/48", prefix: 64, members: [m("a", { pin: "fd42:d0c:0:9::1/64" })], errors: { a: "use fd42:d0c:0:9::/64" } },
  { name: "pin that is not an IPv6 CIDR refused", pool: "fd42:d0c::/48", prefix: 64, members: [m("a", { pin: "10.0.0.0/24" })], errors: { a: "not an IPv6 CIDR (e.g. fd42:0:0:3::/64)" } },
  { name: "pin outside refused, naming spec.subnetV6", pool: "fd42:d0c::/48", prefix: 64, members: [m("a", { pin: "fd43::/64" })], errors: { a: "remove spec.subnetV6" } },
  { name: "existing allocations never move", pool: "fd42:d0c::/48", prefix: 64, members: [m("a", { existing: "fd42:d0c:0:5::/64" }), m("b")], want: { a: "fd42:d0c:0:5::/64", b: "fd42:d0c::/64" } },
  {
    name: "a full pool names spec.cidrV6 and spec.subnetPrefixLengthV6",
    pool: "fd42:d0c::/126",
    prefix: 127,
    members: names(3),
    errors: { m002: "widen the MeshNetwork's spec.cidrV6 or lengthen spec.subnetPrefixLengthV6" },
  },
  { name: "a /8 pool of /64s (2^56 of them) allocates from its start", pool: "fd00::/8", prefix: 64, members: names(2), want: { m000: "fd00::/64", m001: "fd00:0:0:1::/64" } },
];

for (const c of cases6) {
  test(`ipam (IPv6): ${c.name}`, () => {
    const res = allocateSubnets(c.pool, c.prefix, c.members, IPV6);
    for (const [k, v] of Object.entries(c.want ?? {})) assert.equal(res.allocations.get(k), v, `allocation of ${k}`);
    const errs = new Map(res.errors.map((e) => [e.machine, e]));
    assert.deepEqual([...errs.keys()].sort(), Object.keys(c.errors ?? {}).sort(), `machines with errors: ${JSON.stringify(res.errors)}`);
    for (const [k, v] of Object.entries(c.errors ?? {})) assert.ok(errs.get(k)!.message.includes(v), `error of ${k}: ${errs.get(k)!.message}`);
    for (const e of res.errors) assert.match(e.field, /V6$/, "an IPv6 field is named");
  });
}
