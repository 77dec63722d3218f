import { test } from "node:test";
import assert from "node:assert/strict";
import { INTERN_MAX_LENGTH, StringTable, forCache } from "../../runtime/cache-transform.js";

test("forCache: managedFields dropped, everything else kept as it was (values, nesting, non-strings)", () => {
  const object = {
    apiVersion: "dockmesh.io/v1alpha1",
    metadata: { name: "m1", managedFields: [{ manager: "dockmesh" }], labels: { a: "b" } },
    status: { networks: [{ peers: [{ machine: "m2", publicKey: "k".repeat(44), state: "Connected" }], mtu: 1420, dns: null }], ok: true },
    long: "x".repeat(INTERN_MAX_LENGTH + 1),
  };
  const expected = structuredClone(object) as Record<string, unknown> & { metadata: Record<string, unknown> };
  delete expected.metadata.managedFields;
  assert.deepEqual(forCache(object, new StringTable()), expected);
});

test("StringTable: keeps short strings once each, not long ones; starts over when full", () => {
  const table = new StringTable(3, 8);
  const cases: Array<{ value: unknown; size: number }> = [
    { value: { a: "one", b: ["one", "two"] }, size: 2 },
    { value: { c: "0123456789" }, size: 2 }, // longer than 8: not kept
    { value: [{ d: "two" }, "three"], size: 3 },
    { value: { e: "four" }, size: 1 }, // the table was full: it started over with "four"
  ];
  for (const { value, size } of cases) {
    const before = structuredClone(value);
    table.internAll(value);
    assert.deepEqual(value, before);
    assert.equal(table.size, size, JSON.stringify(value));
  }
});

test("StringTable: a deeply nested value is walked only so far (no stack overflow on hostile depth)", () => {
  let deep: Record<string, unknown> = { s: "leaf" };
  for (let i = 0; i < 10_000; i++) deep = { n: deep, s: "x" };
  const table = new StringTable();
  table.internAll(deep);
  assert.equal(table.size, 1); // "x" from the levels walked; "leaf" lies deeper
});

test("forCache: a Secret's data is never put in the shared table (it would outlive the Secret)", () => {
  const table = new StringTable();
  forCache({ kind: "Secret", metadata: { name: "wg" }, type: "Opaque", data: { privateKey: "c2VjcmV0" }, stringData: { k: "secret" } }, table);
  const kept = new StringTable();
  kept.internAll(["Secret", "wg", "Opaque"]);
  assert.equal(table.size, kept.size); // the three outside data and stringData, nothing else
});
