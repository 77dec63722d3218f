// Issue 12: schema errors printed the raw regular expression ("spec.cidr in body should match
// '^((25[0-5]|2[0-4]…'"). The store now says what form is expected, for every pattern of the CRDs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { applySchema, type SchemaResult } from "../../store/validation.js";
import { PATTERN_DESCRIPTIONS } from "../../store/pattern-descriptions.js";
import type { JSONSchemaProps } from "../../api/crd-schema.js";

const crdDir = fileURLToPath(new URL("../../../crds/", import.meta.url));
const crds = readdirSync(crdDir).map(
  (f) => parseAllDocuments(readFileSync(join(crdDir, f), "utf8"))[0]!.toJS() as { spec: { names: { kind: string }; versions: Array<{ schema: { openAPIV3Schema: JSONSchemaProps } }> } },
);
const schemaOf = (kind: string) => crds.find((c) => c.spec.names.kind === kind)!.spec.versions[0]!.schema.openAPIV3Schema;

function patterns(s: JSONSchemaProps | undefined, out: Set<string>): Set<string> {
  if (!s) return out;
  if (s.pattern) out.add(s.pattern);
  for (const p of Object.values(s.properties ?? {})) patterns(p, out);
  if (s.items && !Array.isArray(s.items)) patterns(s.items, out);
  return out;
}

test("every pattern in crds/ has words for it", () => {
  const all = new Set<string>();
  for (const c of crds) patterns(c.spec.versions[0]!.schema.openAPIV3Schema, all);
  assert.ok(all.size >= 10, `found ${all.size} patterns`);
  for (const p of all) assert.ok(PATTERN_DESCRIPTIONS.has(p), `no description for pattern ${p}`);
});

for (const c of [
  { kind: "MeshNetwork", spec: { cidr: "10.210.0.0/33" }, field: "spec.cidr", want: 'spec.cidr: Invalid value: "10.210.0.0/33": spec.cidr in body should be an IPv4 CIDR such as 10.210.0.0/16' },
  {
    kind: "MeshNetwork",
    spec: { cidr: "10.210.0.0/16", interface: "wg+" },
    field: "spec.interface",
    want: /^spec\.interface: Invalid value: "wg\+": spec\.interface in body should be a network interface name: 1 to 15 letters/,
  },
  {
    kind: "Machine",
    spec: { ssh: { host: "h", privateKeySecretRef: { name: "s" } }, endpoint: "198.18.0.1" },
    field: "spec.endpoint",
    want: /^spec\.endpoint: Invalid value: "198\.18\.0\.1": spec\.endpoint in body should be host:port or \[IPv6\]:port/,
  },
]) {
  test(`${c.kind} ${c.field}: the error says what form is expected, not the regex`, () => {
    const out: SchemaResult = { causes: [], unknown: [] };
    applySchema(schemaOf(c.kind).properties!.spec!, structuredClone(c.spec), "spec", out);
    const messages = out.causes.map((x) => `${x.field}: ${x.message}`);
    assert.equal(messages.length, 1, messages.join("\n"));
    if (typeof c.want === "string") assert.equal(messages[0], c.want);
    else assert.match(messages[0]!, c.want);
    assert.doesNotMatch(messages[0]!, /should match|\^|\$'/);
  });
}
