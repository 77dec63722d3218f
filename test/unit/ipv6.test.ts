import { test } from "node:test";
import assert from "node:assert/strict";
import { isIPv6 } from "node:net";
import { contains6, formatCidr6, formatIp6, gatewayOf6, isAligned6, isUniqueLocal6, overlaps6, parseCidr6, parseIp6 } from "../../mesh/ipv6.js";

// text in → RFC 5952 text out (undefined: refused).
const addresses: Array<[string, string | undefined]> = [
  ["fd42::1", "fd42::1"],
  ["FD42:0000:0000:0000:0000:0000:0000:0001", "fd42::1"],
  ["::", "::"],
  ["::1", "::1"],
  ["2001:db8::", "2001:db8::"],
  ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of two equal runs
  ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // one zero group is not shortened
  ["fd00:1:2:3:4:5:6:7", "fd00:1:2:3:4:5:6:7"],
  ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
  ["fd42:::1", undefined],
  ["fd42::1::2", undefined],
  ["1:2:3:4:5:6:7:8:9", undefined],
  ["1:2:3:4:5:6:7", undefined],
  ["12345::", undefined],
  ["fd42::g", undefined],
  ["::ffff:10.0.0.1", undefined], // embedded IPv4 is not a mesh address
  ["fe80::1%eth0", undefined],
  [" fd42::1", undefined],
  ["", undefined],
];

for (const [text, want] of addresses) {
  test(`ipv6: ${JSON.stringify(text)} → ${want ?? "refused"}`, () => {
    const n = parseIp6(text);
    assert.equal(n === undefined ? undefined : formatIp6(n), want);
    if (want !== undefined) assert.ok(isIPv6(want), "Node reads the text written as IPv6");
  });
}

test("ipv6: CIDRs, alignment, containment and overlap", () => {
  const pool = parseCidr6("fd42:d0c:0::/48")!;
  assert.equal(formatCidr6(pool), "fd42:d0c::/48");
  assert.ok(isAligned6(pool));
  assert.ok(!isAligned6(parseCidr6("fd42:d0c::1/64")!));
  assert.ok(contains6(pool, parseCidr6("fd42:d0c:0:7::/64")!));
  assert.ok(!contains6(pool, parseCidr6("fd42:d0d::/64")!));
  assert.ok(overlaps6(pool, parseCidr6("fd00::/8")!));
  assert.ok(!overlaps6(pool, parseCidr6("fd42::/32")!));
  assert.ok(!overlaps6(pool, parseCidr6("fd43::/48")!));
  assert.equal(parseCidr6("fd42::/129"), undefined);
  assert.equal(parseCidr6("fd42::"), undefined);
  assert.equal(gatewayOf6("fd42:d0c:0:7::/64"), "fd42:d0c:0:7::1");
  assert.ok(isUniqueLocal6(pool));
  assert.ok(!isUniqueLocal6(parseCidr6("2001:db8::/32")!));
});
