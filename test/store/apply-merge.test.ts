// Server-side apply's merge and field ownership (store/apply.ts, managed-fields.ts), table-driven,
// on a small schema with every list and map type: what kube-apiserver's structured-merge-diff does.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { JSONSchemaProps } from "../../api/crd-schema.js";
import { mergeApplied, planApply, updateManagers, type FieldContext } from "../../store/apply.js";
import type { KObject } from "../../store/db.js";
import { ApiError } from "../../store/errors.js";
import { objectMetaTypes } from "../../store/field-types.js";
import { decodeFields, decodeManagedFields, encodeFields, encodeManagedFields, parsePath, renderPath, trackedFields } from "../../store/managed-fields.js";

const str: JSONSchemaProps = { type: "string" };
const schema: JSONSchemaProps = {
  type: "object",
  properties: {
    apiVersion: str,
    kind: str,
    metadata: objectMetaTypes,
    spec: {
      type: "object",
      properties: {
        a: str,
        b: str,
        nested: { type: "object", properties: { x: str, y: str } },
        atomicList: { type: "array", items: str },
        set: { type: "array", "x-kubernetes-list-type": "set", items: str },
        ports: {
          type: "array",
          "x-kubernetes-list-type": "map",
          "x-kubernetes-list-map-keys": ["name"],
          items: { type: "object", properties: { name: str, port: { type: "integer" }, proto: str } },
        },
        atomicMap: { type: "object", "x-kubernetes-map-type": "atomic", properties: { p: str, q: str } },
        data: { type: "object", additionalProperties: str },
        free: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
      },
    },
    status: {
      type: "object",
      properties: {
        conditions: {
          type: "array",
          "x-kubernetes-list-type": "map",
          "x-kubernetes-list-map-keys": ["type"],
          items: { type: "object", properties: { type: str, status: str } },
        },
      },
    },
  },
};

describe("server-side apply: merge by list and map type", () => {
  const rows: Array<{ name: string; live: unknown; config: unknown; want: unknown }> = [
    { name: "struct fields merge; live fields the configuration leaves out stay", live: { a: "1", b: "2" }, config: { a: "x" }, want: { a: "x", b: "2" } },
    { name: "nested structs merge field by field", live: { nested: { x: "1", y: "2" } }, config: { nested: { y: "3" } }, want: { nested: { x: "1", y: "3" } } },
    { name: "a list without a list type is atomic: replaced", live: { atomicList: ["a", "b"] }, config: { atomicList: ["c"] }, want: { atomicList: ["c"] } },
    { name: "a set is a union; live-only items keep their place after the applied ones they follow", live: { set: ["a", "b"] }, config: { set: ["c", "a"] }, want: { set: ["c", "a", "b"] } },
    {
      name: "a keyed list merges items by key and fields inside items",
      live: {
        ports: [
          { name: "http", port: 80, proto: "TCP" },
          { name: "dns", port: 53 },
        ],
      },
      config: {
        ports: [
          { name: "dns", port: 5353 },
          { name: "ssh", port: 22 },
        ],
      },
      want: {
        ports: [
          { name: "http", port: 80, proto: "TCP" },
          { name: "dns", port: 5353 },
          { name: "ssh", port: 22 },
        ],
      },
    },
    { name: "an atomic map is replaced whole", live: { atomicMap: { p: "1", q: "2" } }, config: { atomicMap: { p: "3" } }, want: { atomicMap: { p: "3" } } },
    { name: "a granular map (additionalProperties) merges by key", live: { data: { k1: "a", k2: "b" } }, config: { data: { k2: "c", k3: "d" } }, want: { data: { k1: "a", k2: "c", k3: "d" } } },
    {
      name: "preserve-unknown-fields: objects merge, lists inside are atomic",
      live: { free: { m: { u: 1 }, l: [1, 2] } },
      config: { free: { m: { v: 2 }, l: [3] } },
      want: { free: { m: { u: 1, v: 2 }, l: [3] } },
    },
    { name: "null in the configuration removes the field", live: { a: "1", b: "2" }, config: { a: null }, want: { b: "2" } },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const spec = (schema.properties as Record<string, JSONSchemaProps>).spec as JSONSchemaProps;
      assert.deepEqual(mergeApplied(spec, structuredClone(r.live), structuredClone(r.config)), r.want);
    });
  }
});

const now = "2025-01-01T00:00:00Z";

function ctx(manager: string, subresource?: "status"): FieldContext {
  return { root: schema, tracked: trackedFields(true, subresource), manager, apiVersion: "example.io/v1", subresource };
}

function obj(spec: Record<string, unknown>, status?: Record<string, unknown>, labels?: Record<string, string>): KObject {
  return { apiVersion: "example.io/v1", kind: "Thing", metadata: { name: "t", namespace: "default", ...(labels ? { labels } : {}) }, spec, ...(status ? { status } : {}) };
}

/** An apply as the store makes it: plan, then ownership on the object to store (status kept from live, as the main endpoint does). */
function apply(live: KObject | undefined, manager: string, config: KObject, force = false): KObject {
  const plan = planApply(ctx(manager), live ? structuredClone(live) : undefined, structuredClone(config), force, now);
  const next = plan.merged;
  if (live?.status) next.status = structuredClone(live.status);
  else delete next.status;
  const mf = plan.track(live, next);
  if (mf && mf.length > 0) next.metadata.managedFields = mf;
  else delete next.metadata.managedFields;
  return next;
}

/** An update (PUT or a non-apply patch) by manager, optionally through /status. */
function update(live: KObject, manager: string, change: (o: KObject) => void, subresource?: "status"): KObject {
  const next = structuredClone(live);
  change(next);
  const start = decodeManagedFields(live.metadata.managedFields);
  const managers = updateManagers(ctx(manager, subresource), start, live, next, now);
  next.metadata.managedFields = encodeManagedFields(managers);
  return next;
}

/** manager → sorted owned paths, as printed in conflicts. */
function owners(o: KObject): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const m of decodeManagedFields(o.metadata.managedFields).values()) {
    out[`${m.manager}/${m.operation}${m.subresource ? "/" + m.subresource : ""}`] = [...m.fields].map((p) => renderPath(parsePath(p))).sort();
  }
  return out;
}

function conflictOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  assert.fail("expected a conflict");
}

describe("server-side apply: ownership, conflicts, removal", () => {
  const base = apply(undefined, "alice", obj({ a: "1", ports: [{ name: "http", port: 80 }] }, undefined, { team: "x" }));

  it("the applier owns exactly what it applied (metadata name/namespace are the server's)", () => {
    assert.deepEqual(owners(base), { "alice/Apply": [".metadata.labels.team", ".spec.a", '.spec.ports[name="http"]', '.spec.ports[name="http"].name', '.spec.ports[name="http"].port'] });
  });

  const rows: Array<{ name: string; run: () => KObject; spec?: unknown; labels?: unknown; owners?: Record<string, string[]> }> = [
    {
      name: "a second manager applying the same value co-owns it, no conflict",
      run: () => apply(base, "bob", obj({ a: "1" })),
      spec: { a: "1", ports: [{ name: "http", port: 80 }] },
      owners: { "alice/Apply": [".metadata.labels.team", ".spec.a", '.spec.ports[name="http"]', '.spec.ports[name="http"].name', '.spec.ports[name="http"].port'], "bob/Apply": [".spec.a"] },
    },
    {
      name: "forced: the second manager takes the field, the first loses it",
      run: () => apply(base, "bob", obj({ a: "2" }), true),
      spec: { a: "2", ports: [{ name: "http", port: 80 }] },
      owners: { "alice/Apply": [".metadata.labels.team", '.spec.ports[name="http"]', '.spec.ports[name="http"].name', '.spec.ports[name="http"].port'], "bob/Apply": [".spec.a"] },
    },
    {
      name: "a field the manager stops applying is removed when nobody else owns it",
      run: () => apply(base, "alice", obj({ ports: [{ name: "http", port: 80 }] })),
      spec: { ports: [{ name: "http", port: 80 }] },
      labels: undefined,
    },
    {
      name: "a keyed list item the manager stops applying is removed",
      run: () =>
        apply(
          apply(
            base,
            "alice",
            obj(
              {
                a: "1",
                ports: [
                  { name: "http", port: 80 },
                  { name: "dns", port: 53 },
                ],
              },
              undefined,
              { team: "x" },
            ),
          ),
          "alice",
          obj({ a: "1", ports: [{ name: "dns", port: 53 }] }, undefined, { team: "x" }),
        ),
      spec: { a: "1", ports: [{ name: "dns", port: 53 }] },
    },
    {
      name: "a field another manager co-owns stays when one stops applying it",
      run: () => apply(apply(base, "bob", obj({ a: "1" })), "alice", obj({ ports: [{ name: "http", port: 80 }] }, undefined, { team: "x" })),
      spec: { a: "1", ports: [{ name: "http", port: 80 }] },
      owners: { "alice/Apply": [".metadata.labels.team", '.spec.ports[name="http"]', '.spec.ports[name="http"].name', '.spec.ports[name="http"].port'], "bob/Apply": [".spec.a"] },
    },
    {
      name: "an update changing an applied field takes it without conflict (operation Update)",
      run: () => update(base, "kubectl-edit", (o) => ((o.spec as Record<string, unknown>).a = "9")),
      spec: { a: "9", ports: [{ name: "http", port: 80 }] },
      owners: { "alice/Apply": [".metadata.labels.team", '.spec.ports[name="http"]', '.spec.ports[name="http"].name', '.spec.ports[name="http"].port'], "kubectl-edit/Update": [".spec.a"] },
    },
    {
      name: "status written through /status is the controller's; a re-apply keeps it and does not conflict",
      run: () => {
        const withStatus = update(base, "controller", (o) => (o.status = { conditions: [{ type: "Ready", status: "True" }] }), "status");
        return apply(withStatus, "alice", obj({ a: "1", ports: [{ name: "http", port: 80 }] }, undefined, { team: "x" }));
      },
      spec: { a: "1", ports: [{ name: "http", port: 80 }] },
      owners: {
        "alice/Apply": [".metadata.labels.team", ".spec.a", '.spec.ports[name="http"]', '.spec.ports[name="http"].name', '.spec.ports[name="http"].port'],
        "controller/Update/status": ['.status.conditions[type="Ready"]', '.status.conditions[type="Ready"].status', '.status.conditions[type="Ready"].type'],
      },
    },
    {
      name: "an update that changes nothing records nothing",
      run: () => update(base, "noop", () => undefined),
      owners: { "alice/Apply": [".metadata.labels.team", ".spec.a", '.spec.ports[name="http"]', '.spec.ports[name="http"].name', '.spec.ports[name="http"].port'] },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const out = r.run();
      if (r.spec !== undefined) assert.deepEqual(out.spec, r.spec);
      if ("labels" in r) assert.deepEqual(out.metadata.labels, r.labels);
      if (r.owners) assert.deepEqual(owners(out), r.owners);
    });
  }

  const conflicts: Array<{ name: string; run: () => unknown; message: string; fields: string[] }> = [
    { name: "another manager's scalar", run: () => apply(base, "bob", obj({ a: "2" })), message: 'Apply failed with 1 conflict: conflict with "alice": .spec.a', fields: [".spec.a"] },
    {
      name: "a field inside another manager's keyed list item",
      run: () => apply(base, "bob", obj({ ports: [{ name: "http", port: 8080 }] })),
      message: 'Apply failed with 1 conflict: conflict with "alice": .spec.ports[name="http"].port',
      fields: ['.spec.ports[name="http"].port'],
    },
    {
      name: "a field an update took: named with operation, apiVersion and time",
      run: () =>
        apply(
          update(base, "kubectl-edit", (o) => ((o.spec as Record<string, unknown>).b = "z")),
          "bob",
          obj({ b: "y" }),
        ),
      message: `Apply failed with 1 conflict: conflict with "kubectl-edit" using example.io/v1 at ${now}: .spec.b`,
      fields: [".spec.b"],
    },
    {
      name: "an object made before tracking: the first apply conflicts with before-first-apply",
      run: () => apply({ ...obj({ a: "old" }) }, "alice", obj({ a: "new" })),
      message: `Apply failed with 1 conflict: conflict with "before-first-apply" using example.io/v1 at ${now}: .spec.a`,
      fields: [".spec.a"],
    },
  ];
  for (const c of conflicts) {
    it(`409 on ${c.name}`, () => {
      const err = conflictOf(c.run);
      assert.equal(err.code, 409);
      assert.equal(err.reason, "Conflict");
      assert.equal(err.message, c.message);
      assert.deepEqual(
        err.details?.causes?.map((x) => x.field),
        c.fields,
      );
      assert.ok(err.details?.causes?.every((x) => x.reason === "FieldManagerConflict"));
    });
  }
});

describe("FieldsV1", () => {
  const rows: Array<{ name: string; fields: Record<string, unknown> }> = [
    { name: "fields and map keys", fields: { "f:data": { "f:a": {}, "f:b": {} }, "f:metadata": { "f:labels": { "f:x": {} } } } },
    { name: "a keyed item that is a member and has children", fields: { "f:status": { "f:conditions": { 'k:{"type":"Ready"}': { ".": {}, "f:status": {}, "f:type": {} } } } } },
    { name: "set values", fields: { "f:metadata": { "f:finalizers": { 'v:"a"': {}, 'v:"b"': {} } } } },
  ];
  for (const r of rows) {
    it(`round-trips: ${r.name}`, () => {
      assert.deepEqual(encodeFields(decodeFields(r.fields)), r.fields);
      assert.deepEqual(JSON.stringify(encodeFields(decodeFields(r.fields))), JSON.stringify(r.fields), "key order as kube-apiserver's");
    });
  }
  it("refuses what is not FieldsV1", () => {
    assert.throws(() => decodeManagedFields([{ manager: "m", operation: "Delete", fieldsType: "FieldsV1", fieldsV1: {} }]), /operation must be Apply or Update/);
    assert.throws(() => decodeFields({ "x:y": {} }), /unknown path element/);
  });
});
