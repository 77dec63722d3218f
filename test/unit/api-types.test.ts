import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { generateApiTypes } from "../../tools/gen-api-types.js";
import { generateCrdData } from "../../tools/gen-crd-data.js";
import { CRDS } from "../../api/crds.generated.js";
import { loadCrds } from "../../api/crd-schema.js";
import { projectRoot } from "../support/golden.js";

test("api: types.generated.ts is what the CRDs generate (run `npm run gen` after editing crds/)", () => {
  assert.equal(readFileSync(`${projectRoot}api/types.generated.ts`, "utf8"), generateApiTypes());
});

test("api: crds.generated.ts is crds/*.yaml (run `npm run gen` after editing crds/)", () => {
  assert.equal(readFileSync(`${projectRoot}api/crds.generated.ts`, "utf8"), generateCrdData());
  assert.deepEqual(CRDS, loadCrds());
});

function walk(path: string, s: Record<string, unknown>, visit: (path: string, s: Record<string, unknown>) => void): void {
  visit(path, s);
  const props = (s.properties ?? {}) as Record<string, Record<string, unknown>>;
  for (const [k, v] of Object.entries(props)) walk(`${path}.${k}`, v, visit);
  if (s.items) walk(`${path}[]`, s.items as Record<string, unknown>, visit);
}

test("crds: every field under spec and status has a description (they feed kubectl explain)", () => {
  for (const crd of loadCrds()) {
    const schema = crd.spec.versions[0]!.schema.openAPIV3Schema as unknown as Record<string, unknown>;
    const missing: string[] = [];
    walk(crd.spec.names.kind, schema, (p, s) => {
      if (p.split(".").length > 1 && !p.endsWith(".metadata") && typeof s.description !== "string") missing.push(p);
    });
    assert.deepEqual(missing, [], `${crd.metadata.name}: fields without description`);
  }
});

test("crds: names, short names, categories and printer columns", () => {
  const [machines, meshes] = loadCrds();
  assert.equal(machines!.spec.names.plural, "machines");
  assert.ok(!machines!.spec.names.shortNames!.includes("ma"), "Cluster API's Machine owns the short name ma");
  assert.deepEqual(machines!.spec.names.categories, ["dockmesh"]);
  assert.deepEqual(meshes!.spec.names.categories, ["dockmesh"]);
  const cols = (i: 0 | 1) => [machines, meshes][i]!.spec.versions[0]!.additionalPrinterColumns!.filter((c) => !c.priority).map((c) => c.name);
  assert.deepEqual(cols(0), ["Host", "Subnet", "Peers", "Ready", "Reason", "DNS", "Age"]);
  assert.deepEqual(cols(1), ["CIDR", "Machines", "Ready", "Reason", "Age"]);
  for (const crd of [machines!, meshes!]) {
    assert.equal(crd.spec.scope, "Namespaced");
    assert.deepEqual(
      crd.spec.versions.map((v) => [v.name, v.served, v.storage, Boolean(v.subresources?.status)]),
      [["v1alpha1", true, true, true]],
    );
  }
});

interface PatternCase {
  field: string;
  ok: string[];
  bad: string[];
}

function schemaAt(kind: string, path: string): Record<string, unknown> {
  const crd = loadCrds().find((c) => c.spec.names.kind === kind)!;
  let s = crd.spec.versions[0]!.schema.openAPIV3Schema as unknown as Record<string, unknown>;
  for (const k of path.split(".")) s = (s.properties as Record<string, Record<string, unknown>>)[k]!;
  return s;
}

for (const c of [
  { field: "Machine:spec.ssh.host", ok: ["198.18.0.10", "host-1.example.com", "fe80::1", "a"], bad: ["a b", "$(reboot)", "-oProxyCommand=x", "host;id", ""] },
  { field: "Machine:spec.endpoint", ok: ["203.0.113.10:51820", "vpn.example.com:1", "[2001:db8::1]:65535"], bad: ["203.0.113.10", "x:0", "x:65536", "x:51820;id", "2001:db8::1:51820"] },
  { field: "Machine:spec.subnet", ok: ["10.0.0.0/24", "192.168.1.0/32"], bad: ["10.0.0.0", "10.0.0.256/24", "10.0.0.0/33", "10.0.0.0/24 "] },
  { field: "Machine:spec.ssh.user", ok: ["root", "deploy", "_svc", "a-b_c"], bad: ["Root", "a b", "-x", "a;b", "a$"] },
  {
    field: "Machine:spec.ssh.hostKey",
    ok: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", `SHA256:${"A".repeat(43)}`],
    bad: ["ssh-ed25519", "SHA256:short", "ssh-ed25519 AAAA; rm"],
  },
  { field: "MeshNetwork:spec.interface", ok: ["wg0", "dm-mesh", "a.b=c-d_e"], bad: ["0123456789abcdef", "wg 0", "wg/0", "$(x)", "+", "wg+", ".", "..", ".x"] },
  { field: "MeshNetwork:spec.dockerNetwork", ok: ["mesh", "my_net.1"], bad: ["-x", "a b", "a/b"] },
  { field: "MeshNetwork:spec.cidr", ok: ["10.210.0.0/16"], bad: ["10.210.0.0", "fd00::/8", "10.210.0.0/16,1"] },
] satisfies PatternCase[]) {
  test(`crds: pattern of ${c.field}`, () => {
    const [kind, path] = c.field.split(":") as [string, string];
    const s = schemaAt(kind, path);
    const re = new RegExp(String(s.pattern));
    for (const v of c.ok) assert.ok(re.test(v) && v.length <= Number(s.maxLength ?? Infinity), `${v} should be accepted`);
    for (const v of c.bad) assert.ok(!re.test(v) || v.length < Number(s.minLength ?? 0), `${v} should be refused`);
  });
}
