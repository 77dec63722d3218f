// Pure pieces of the store, table-driven: structural-schema validation, JSONPath, selectors,
// patches, HumanDuration.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { JSONSchemaProps } from "../../api/crd-schema.js";
import { evalJsonPath } from "../../store/jsonpath.js";
import { applyMergePatch, applyStrategicMergePatch, applyJsonPatch } from "../../store/patch.js";
import { matchLabels, parseLabelSelector } from "../../store/selectors.js";
import { humanDuration } from "../../store/table.js";
import { applySchema, validateObjectMeta, type SchemaResult } from "../../store/validation.js";

const schema: JSONSchemaProps = {
  type: "object",
  required: ["host"],
  properties: {
    host: { type: "string", minLength: 1, pattern: "^[a-z.]+$" },
    port: { type: "integer", minimum: 1, maximum: 65535, default: 22 },
    mode: { type: "string", enum: ["kernel", "userspace"] },
    name: { type: "string", maxLength: 3 },
    mtu: {
      "x-kubernetes-int-or-string": true,
      anyOf: [
        { type: "integer", minimum: 1280, maximum: 9000 },
        { type: "string", enum: ["auto"] },
      ],
    },
    note: { type: "string", nullable: true },
    when: { type: "string", format: "date-time" },
    tags: { type: "array", maxItems: 2, items: { type: "string" } },
    extra: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
    labels: { type: "object", additionalProperties: { type: "string" } },
    list: { type: "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"], items: { type: "object", properties: { type: { type: "string" } } } },
  },
};

function check(value: Record<string, unknown>): { value: unknown; res: SchemaResult } {
  const res: SchemaResult = { causes: [], unknown: [] };
  const v = applySchema(schema, structuredClone(value), "spec", res);
  return { value: v, res };
}

describe("structural schema", () => {
  const cases: Array<{ name: string; in: Record<string, unknown>; causes?: string[]; unknown?: string[]; out?: Record<string, unknown> }> = [
    { name: "valid, with default", in: { host: "a.b" }, causes: [], out: { host: "a.b", port: 22 } },
    { name: "required", in: {}, causes: ["spec.host: Required value"] },
    { name: "type", in: { host: "a", port: "22" }, causes: ['spec.port: Invalid value: "string": spec.port in body must be of type integer: "string"'] },
    { name: "maximum", in: { host: "a", port: 70000 }, causes: ["spec.port: Invalid value: 70000: spec.port in body should be less than or equal to 65535"] },
    { name: "minimum", in: { host: "a", port: 0 }, causes: ["spec.port: Invalid value: 0: spec.port in body should be greater than or equal to 1"] },
    { name: "pattern", in: { host: "A B" }, causes: [`spec.host: Invalid value: "A B": spec.host in body should match '^[a-z.]+$'`] },
    {
      name: "minLength",
      in: { host: "" },
      causes: ['spec.host: Invalid value: "": spec.host in body should be at least 1 chars long', `spec.host: Invalid value: "": spec.host in body should match '^[a-z.]+$'`],
    },
    { name: "maxLength", in: { host: "a", name: "abcd" }, causes: ["spec.name: Too long: may not be longer than 3"] },
    { name: "enum", in: { host: "a", mode: "fast" }, causes: ['spec.mode: Unsupported value: "fast": supported values: "kernel", "userspace"'] },
    { name: "int-or-string int", in: { host: "a", mtu: 1400 }, causes: [] },
    { name: "int-or-string string", in: { host: "a", mtu: "auto" }, causes: [] },
    { name: "int-or-string bad", in: { host: "a", mtu: 100 }, causes: ["spec.mtu: Invalid value: 100: spec.mtu in body should be greater than or equal to 1280"] },
    { name: "int-or-string type", in: { host: "a", mtu: true }, causes: ['spec.mtu: Invalid value: "boolean": spec.mtu in body must be of type integer,string: "boolean"'] },
    { name: "nullable", in: { host: "a", note: null }, causes: [] },
    { name: "not nullable", in: { host: null }, causes: ['spec.host: Invalid value: "null": spec.host in body must be of type string: "null"'] },
    { name: "format date-time", in: { host: "a", when: "yesterday" }, causes: ['spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"'] },
    { name: "maxItems", in: { host: "a", tags: ["x", "y", "z"] }, causes: ["spec.tags: Too many: 3: must have at most 2 items"] },
    { name: "pruning", in: { host: "a", colour: "blue", extra: { any: { thing: 1 } } }, causes: [], unknown: ["spec.colour"], out: { host: "a", port: 22, extra: { any: { thing: 1 } } } },
    { name: "map values", in: { host: "a", labels: { a: "b", c: 1 } }, causes: ['spec.labels.c: Invalid value: "integer": spec.labels.c in body must be of type string: "integer"'] },
    { name: "list-type map duplicates", in: { host: "a", list: [{ type: "Ready" }, { type: "Ready" }] }, causes: ['spec.list[1]: Duplicate value: {"type":"Ready"}'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { value, res } = check(c.in);
      assert.deepEqual(
        res.causes.map((x) => `${x.field}: ${x.message}`),
        c.causes ?? [],
      );
      if (c.unknown) assert.deepEqual(res.unknown, c.unknown);
      if (c.out) assert.deepEqual(value, c.out);
    });
  }

  it("object metadata: names and labels", () => {
    const causes = validateObjectMeta({ name: "Bad_Name", labels: { "ok/key": "v", "bad key": "v", k: "bad value!" } }, "subdomain", true);
    const fields = causes.map((c) => `${c.field}: ${c.message.split(":")[0]}`);
    assert.deepEqual(fields, ["metadata.name: Invalid value", "metadata.namespace: Required value", "metadata.labels: Invalid value", "metadata.labels: Invalid value"]);
    assert.match(causes[0]?.message ?? "", /a lowercase RFC 1123 subdomain must consist of/);
  });
});

describe("JSONPath", () => {
  const obj = {
    metadata: { name: "m1", creationTimestamp: "2025-01-01T00:00:00Z" },
    spec: { ssh: { host: "h" }, list: [1, 2, 3] },
    status: {
      conditions: [
        { type: "Reachable", status: "True" },
        { type: "Ready", status: "False", reason: "AuthFailed" },
      ],
    },
  };
  const cases: Array<[string, unknown[]]> = [
    [".spec.ssh.host", ["h"]],
    [".spec.ssh.missing", []],
    [".spec.list[1]", [2]],
    [".spec.list[-1]", [3]],
    [".spec.list[*]", [1, 2, 3]],
    [".spec.list[0:2]", [1, 2]],
    ['.status.conditions[?(@.type=="Ready")].status', ["False"]],
    ['.status.conditions[?(@.type=="Ready")].reason', ["AuthFailed"]],
    ['.status.conditions[?(@.type=="Nope")].status', []],
    ["{.metadata.name}", ["m1"]],
    [".status.conditions[*].type", ["Reachable", "Ready"]],
    ["..host", ["h"]],
  ];
  for (const [expr, want] of cases) it(expr, () => assert.deepEqual(evalJsonPath(expr, obj), want));
});

describe("label selectors", () => {
  const labels = { env: "lab", tier: "edge", gen: "3" };
  const cases: Array<[string, boolean]> = [
    ["", true],
    ["env=lab", true],
    ["env==lab", true],
    ["env!=lab", false],
    ["env=lab,tier=core", false],
    ["env in (lab, prod)", true],
    ["env notin (lab)", false],
    ["tier", true],
    ["!tier", false],
    ["!missing", true],
    ["missing!=x", true],
    ["gen>2", true],
    ["gen<2", false],
  ];
  for (const [sel, want] of cases) it(JSON.stringify(sel), () => assert.equal(matchLabels(parseLabelSelector(sel), labels), want));
  it("rejects garbage", () => assert.throws(() => parseLabelSelector("env in lab"), /unable to parse requirement/));
});

describe("patches", () => {
  it("merge patch: null deletes, arrays replace", () => {
    assert.deepEqual(applyMergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { a: null, b: { c: 5 }, l: [9] }), { b: { c: 5, d: 3 }, l: [9] });
  });
  it("json patch, and a failing test op is 422", () => {
    assert.deepEqual(applyJsonPatch({ metadata: {}, spec: { a: 1 } }, [{ op: "replace", path: "/spec/a", value: 2 }]), { metadata: {}, spec: { a: 2 } });
    assert.throws(
      () => applyJsonPatch({ metadata: {}, spec: { a: 1 } }, [{ op: "test", path: "/spec/a", value: 2 }]),
      (e: { code?: number }) => e.code === 422,
    );
  });
  it("strategic merge patch: maps merge, directives, merge-key lists", () => {
    const target = { metadata: { name: "x", finalizers: ["a"], ownerReferences: [{ uid: "1", name: "o1" }] }, data: { a: "1", b: "2" }, secrets: [{ name: "s1" }] };
    const out = applyStrategicMergePatch(target, {
      metadata: { finalizers: ["b"], ownerReferences: [{ uid: "2", name: "o2" }] },
      data: { a: null, c: "3" },
      secrets: [{ name: "s1", $patch: "delete" }, { name: "s2" }],
      $setElementOrder: "ignored",
    });
    assert.deepEqual(out, {
      metadata: {
        name: "x",
        finalizers: ["a", "b"],
        ownerReferences: [
          { uid: "1", name: "o1" },
          { uid: "2", name: "o2" },
        ],
      },
      data: { b: "2", c: "3" },
      secrets: [{ name: "s2" }],
      $setElementOrder: "ignored",
    });
    assert.deepEqual(applyStrategicMergePatch({ data: { a: "1" } }, { data: { $patch: "replace", z: "9" } }), { data: { z: "9" } });
    assert.deepEqual(applyStrategicMergePatch({ l: ["a", "b", "c"] }, { "$deleteFromPrimitiveList/l": ["b"] }), { l: ["a", "c"] });
  });
});

describe("HumanDuration", () => {
  const s = 1000;
  const cases: Array<[number, string]> = [
    [-5 * s, "<invalid>"],
    [5 * s, "5s"],
    [119 * s, "119s"],
    [150 * s, "2m30s"],
    [600 * s, "10m"],
    [3 * 3600 * s, "3h"],
    [(3 * 3600 + 120) * s, "3h2m"],
    [10 * 3600 * s, "10h"],
    [50 * 3600 * s, "2d2h"],
    [30 * 24 * 3600 * s, "30d"],
  ];
  for (const [ms, want] of cases) it(want, () => assert.equal(humanDuration(ms), want));
});
