// Issue 12 §1: a Machine in several MeshNetworks has one spec.endpoint but a WireGuard port per
// mesh. The rule (mesh/endpoints.ts, and the CRD's description of spec.endpoint): the port
// spec.endpointPorts gives for the mesh; else the endpoint's port if the mesh listens on it, or
// if none of the machine's meshes does (a port forward, as with one mesh); else the mesh's own
// listenPort. Table-driven; the `dockmesh plan` view (planAll) follows it too.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Machine } from "../../api/types.generated.js";
import { ambiguousForward, endpointIn } from "../../mesh/endpoints.js";
import { machine } from "../support/fixtures.js";

const ONE = { name: "one", listenPort: 51820 };
const TWO = { name: "two", listenPort: 51822 };
const ports = (p: Array<{ meshNetwork: string; port: number }>) => ({ endpointPorts: p });

const CASES: Array<{ what: string; m: Machine; meshes: Array<typeof ONE>; want: Record<string, string | undefined>; refused?: RegExp }> = [
  { what: "one mesh, host:51820 (as before)", m: machine("a", { endpoint: "198.51.100.1:51820" }), meshes: [ONE], want: { one: "198.51.100.1:51820" } },
  { what: "one mesh behind a port forward, host:40000 (as before)", m: machine("a", { endpoint: "gw.example.com:40000" }), meshes: [ONE], want: { one: "gw.example.com:40000" } },
  { what: "one mesh on 51822, host:51820: a forward (none listens on 51820), as before", m: machine("a", { endpoint: "198.51.100.1:51820" }), meshes: [TWO], want: { two: "198.51.100.1:51820" } },
  { what: "two meshes, host:51820: each on its own port", m: machine("a", { endpoint: "198.51.100.1:51820" }), meshes: [ONE, TWO], want: { one: "198.51.100.1:51820", two: "198.51.100.1:51822" } },
  { what: "two meshes, host:51822: each on its own port", m: machine("a", { endpoint: "198.51.100.1:51822" }), meshes: [ONE, TWO], want: { one: "198.51.100.1:51820", two: "198.51.100.1:51822" } },
  { what: "two meshes, IPv6 host", m: machine("a", { endpoint: "[2001:db8::1]:51820" }), meshes: [ONE, TWO], want: { one: "[2001:db8::1]:51820", two: "[2001:db8::1]:51822" } },
  {
    what: "two meshes behind port forwards: 40000 for the one not listed, endpointPorts for the other",
    m: machine("a", { endpoint: "gw.example.com:40000", spec: ports([{ meshNetwork: "two", port: 40002 }]) }),
    meshes: [ONE, TWO],
    want: { one: "gw.example.com:40000", two: "gw.example.com:40002" },
  },
  {
    what: "endpointPorts override even a matching port",
    m: machine("a", { endpoint: "198.51.100.1:51820", spec: ports([{ meshNetwork: "one", port: 1234 }]) }),
    meshes: [ONE, TWO],
    want: { one: "198.51.100.1:1234", two: "198.51.100.1:51822" },
  },
  {
    what: "an entry for a mesh the machine is not in changes nothing",
    m: machine("a", { endpoint: "198.51.100.1:51820", spec: ports([{ meshNetwork: "other", port: 9 }]) }),
    meshes: [ONE, TWO],
    want: { one: "198.51.100.1:51820", two: "198.51.100.1:51822" },
  },
  {
    what: "behind NAT: no endpoint in any mesh; endpointPorts ignored",
    m: machine("a", { spec: ports([{ meshNetwork: "two", port: 40002 }]) }),
    meshes: [ONE, TWO],
    want: { one: undefined, two: undefined },
  },
  {
    what: "a forged entry (port 0) is refused, naming the field; the rule goes on without it",
    m: machine("a", { endpoint: "198.51.100.1:51820", spec: ports([{ meshNetwork: "two", port: 0 }]) }),
    meshes: [ONE, TWO],
    want: { one: "198.51.100.1:51820", two: "198.51.100.1:51822" },
    refused: /Machine a spec\.endpointPorts\[0\]: .* is not \{meshNetwork, port 1-65535\}; ignored/,
  },
  {
    what: "an endpoint that is not host:port is refused: the machine is left out",
    m: machine("a", { endpoint: "198.51.100.1:51820\nPostUp = x" }),
    meshes: [ONE],
    want: { one: undefined },
    refused: /spec\.endpoint: .* is not host:port/,
  },
];

for (const c of CASES) {
  test(`endpoint per mesh: ${c.what}`, () => {
    for (const mesh of c.meshes) {
      const r = endpointIn(c.m, mesh, c.meshes);
      assert.equal(r.endpoint, c.want[mesh.name], mesh.name);
      if (c.refused && mesh.name === "two") assert.match(r.refused.join("\n"), c.refused);
      if (c.refused && c.meshes.length === 1) assert.match(r.refused.join("\n"), c.refused);
      if (!c.refused) assert.deepEqual(r.refused, []);
    }
  });
}

test("a forwarded port that two meshes without endpointPorts would share is reported, naming the fix", () => {
  const fwd = machine("a", { endpoint: "gw.example.com:40000" });
  assert.match(ambiguousForward(fwd, [ONE, TWO]) ?? "", /port 40000 is no listenPort .* the peers of one \(listenPort 51820\), two \(listenPort 51822\) all use it; .* spec\.endpointPorts/);
  for (const [what, m, meshes] of [
    ["one mesh", fwd, [ONE]],
    ["an entry for the other mesh", machine("a", { endpoint: "gw.example.com:40000", spec: ports([{ meshNetwork: "two", port: 40002 }]) }), [ONE, TWO]],
    ["a port a mesh listens on", machine("a", { endpoint: "198.51.100.1:51820" }), [ONE, TWO]],
    ["behind NAT", machine("a"), [ONE, TWO]],
  ] as const) {
    assert.equal(ambiguousForward(m, meshes), undefined, what);
  }
});
