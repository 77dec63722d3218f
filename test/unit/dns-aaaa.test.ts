// Issue 17: the mesh DNS answers AAAA beside A in a dual-stack mesh. A container's IPv6 address is
// published under the same names as its IPv4 one, only when it lies in its own machine's IPv6
// subnet (a host cannot claim another host's addresses, in either family).
import { test } from "node:test";
import assert from "node:assert/strict";
import { renderRecords, type ReportedContainer } from "../../mesh/dns-records.js";
import { parseInspect } from "../../hosts/dns-inspect.js";

const id = (n: number) => n.toString(16).padStart(64, "0");
const ctr = (n: number, name: string, ip: string, ipv6?: string): ReportedContainer => ({ id: id(n), name, ip, ...(ipv6 ? { ipv6 } : {}), aliases: [] });

test("AAAA: a dual-stack machine's gateway and containers get an IPv6 line beside each IPv4 one", () => {
  const r = renderRecords("mesh.internal", [
    { machine: "h1", subnet: "10.231.0.0/24", subnetV6: "fd42:d0c::/64", containers: [ctr(1, "/web", "10.231.0.2", "fd42:d0c::2")] },
    { machine: "h2", subnet: "10.231.1.0/24", containers: [ctr(2, "/db", "10.231.1.2")] },
  ]);
  assert.deepEqual(r.text.split("\n").slice(1, -1), [
    "10.231.1.2 db.h2.mesh.internal",
    "10.231.1.2 db.mesh.internal",
    "10.231.0.1 h1.mesh.internal",
    "fd42:d0c::1 h1.mesh.internal",
    "10.231.1.1 h2.mesh.internal",
    "10.231.0.2 web.h1.mesh.internal",
    "fd42:d0c::2 web.h1.mesh.internal",
    "10.231.0.2 web.mesh.internal",
    "fd42:d0c::2 web.mesh.internal",
  ]);
  assert.equal(r.records.get("h1"), 4);
  assert.deepEqual(r.skipped, []);
});

test("AAAA: an IPv6 address outside the machine's own IPv6 subnet (or its gateway) is not published; the A record stays", () => {
  for (const bad of ["fd42:d0c:0:1::2", "fd42:d0c::1", "fd42:d0c::", "not-an-address", "2001:db8::2"]) {
    const r = renderRecords("mesh.internal", [{ machine: "h1", subnet: "10.231.0.0/24", subnetV6: "fd42:d0c::/64", containers: [ctr(1, "/web", "10.231.0.2", bad)] }]);
    assert.ok(!r.text.includes(`${bad} web`), `${bad} published for web`);
    assert.match(r.text, /^10\.231\.0\.2 web\.h1\.mesh\.internal$/m);
    assert.equal(r.skipped[0]?.kind, "address");
    assert.match(r.skipped[0].reason, /no AAAA record/);
  }
});

test("AAAA: an IPv4-only mesh publishes no IPv6 line even if a host reports one", () => {
  const r = renderRecords("mesh.internal", [{ machine: "h1", subnet: "10.231.0.0/24", containers: [ctr(1, "/web", "10.231.0.2", "fd42:d0c::2")] }]);
  assert.doesNotMatch(r.text, /fd42/);
});

test("AAAA: the look at a host's containers reads each one's IPv6 address on the mesh network", () => {
  const c = { id: id(1), name: "/web", service: null, networks: { mesh: { IPAddress: "10.231.0.2", GlobalIPv6Address: "fd42:d0c::2", Aliases: null } } };
  const out = parseInspect(`net mesh ${id(1)}\n${JSON.stringify(c)}\n`, ["mesh"]);
  assert.equal(out.networks.get("mesh")?.[0]?.ipv6, "fd42:d0c::2");
  const long = { ...c, networks: { mesh: { IPAddress: "10.231.0.2", GlobalIPv6Address: "f".repeat(40), Aliases: null } } };
  assert.equal(parseInspect(`net mesh ${id(1)}\n${JSON.stringify(long)}\n`, ["mesh"]).networks.get("mesh")?.[0]?.ipv6, undefined);
});
