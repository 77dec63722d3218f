import { test } from "node:test";
import assert from "node:assert/strict";
import type { Condition } from "../../api/meta.js";
import { conditionsEqual, findCondition, formatTime, isFalse, isTrue, removeCondition, setCondition, setConditions, sortConditions } from "../../runtime/conditions.js";

const T0 = "2025-01-01T00:00:00Z";
const T1 = new Date("2025-01-01T00:05:00.789Z");
const ORDER = ["Ready", "Reachable", "DockerReady", "WireGuardReady", "NetworkConfigured", "PeersConnected"];

const cond = (type: string, status: Condition["status"], extra: Partial<Condition> = {}): Condition => ({
  type,
  status,
  observedGeneration: 1,
  lastTransitionTime: T0,
  reason: "R",
  message: "m",
  ...extra,
});

test("setCondition: lastTransitionTime moves only when status changes", () => {
  const cases: Array<{ name: string; before: Condition[] | undefined; set: Parameters<typeof setCondition>[1]; wantTime: string }> = [
    { name: "new condition gets now", before: undefined, set: { type: "Reachable", status: "True", reason: "Connected", message: "" }, wantTime: "2025-01-01T00:05:00Z" },
    {
      name: "same status, same reason keeps it",
      before: [cond("Reachable", "True", { reason: "Connected" })],
      set: { type: "Reachable", status: "True", reason: "Connected", message: "m" },
      wantTime: T0,
    },
    {
      name: "same status, new reason and message keeps it",
      before: [cond("Reachable", "False", { reason: "Timeout" })],
      set: { type: "Reachable", status: "False", reason: "AuthFailed", message: "key rejected" },
      wantTime: T0,
    },
    { name: "status change moves it", before: [cond("Reachable", "False")], set: { type: "Reachable", status: "True", reason: "Connected", message: "" }, wantTime: "2025-01-01T00:05:00Z" },
    { name: "Unknown to False moves it", before: [cond("Reachable", "Unknown")], set: { type: "Reachable", status: "False", reason: "Timeout", message: "" }, wantTime: "2025-01-01T00:05:00Z" },
  ];
  for (const c of cases) {
    const before = c.before ? structuredClone(c.before) : undefined;
    const out = setCondition(c.before, c.set, 7, T1, ORDER);
    const got = findCondition(out, c.set.type);
    assert.equal(got?.lastTransitionTime, c.wantTime, c.name);
    assert.equal(got?.observedGeneration, 7, `${c.name}: observedGeneration always set`);
    assert.equal(got?.reason, c.set.reason, c.name);
    assert.equal(got?.message, c.set.message, c.name);
    assert.deepEqual(c.before, before, `${c.name}: input not mutated`);
  }
});

test("setCondition keeps the caller's order, then sorts unknown types by name", () => {
  let list: Condition[] = [];
  for (const type of ["Zeta", "PeersConnected", "Alpha", "Ready", "Reachable"]) {
    list = setCondition(list, { type, status: "True", reason: "R", message: "" }, 1, T1, ORDER);
  }
  assert.deepEqual(
    list.map((c) => c.type),
    ["Ready", "Reachable", "PeersConnected", "Alpha", "Zeta"],
  );
  assert.deepEqual(
    sortConditions(list).map((c) => c.type),
    ["Alpha", "PeersConnected", "Reachable", "Ready", "Zeta"],
  );
});

test("setConditions applied twice with the same inputs gives an equal list (a resync writes nothing)", () => {
  const inputs = [
    { type: "Reachable", status: "True" as const, reason: "Connected", message: "" },
    { type: "Ready", status: "False" as const, reason: "PeersDisconnected", message: "1/2 peers connected" },
  ];
  const first = setConditions(undefined, inputs, 3, T1, ORDER);
  const second = setConditions(first, inputs, 3, new Date("2025-06-01T00:00:00Z"), ORDER);
  assert.deepEqual(second, first);
  assert.ok(conditionsEqual(first, second));
  assert.deepEqual(
    first.map((c) => c.type),
    ["Ready", "Reachable"],
  );
});

test("conditionsEqual compares every field, type by type", () => {
  const a = [cond("Ready", "True"), cond("Reachable", "True")];
  const cases: Array<{ name: string; b: Condition[] | undefined; want: boolean; ignoreTime?: boolean }> = [
    { name: "same, other order", b: [cond("Reachable", "True"), cond("Ready", "True")], want: true },
    { name: "one missing", b: [cond("Ready", "True")], want: false },
    { name: "status differs", b: [cond("Ready", "False"), cond("Reachable", "True")], want: false },
    { name: "message differs", b: [cond("Ready", "True", { message: "x" }), cond("Reachable", "True")], want: false },
    { name: "observedGeneration differs", b: [cond("Ready", "True", { observedGeneration: 2 }), cond("Reachable", "True")], want: false },
    { name: "time differs", b: [cond("Ready", "True", { lastTransitionTime: "2025-02-01T00:00:00Z" }), cond("Reachable", "True")], want: false },
    { name: "time differs, ignored", b: [cond("Ready", "True", { lastTransitionTime: "2025-02-01T00:00:00Z" }), cond("Reachable", "True")], want: true, ignoreTime: true },
    { name: "undefined vs empty", b: undefined, want: false },
  ];
  for (const c of cases) assert.equal(conditionsEqual(a, c.b, { ignoreTransitionTime: c.ignoreTime ?? false }), c.want, c.name);
  assert.ok(conditionsEqual(undefined, []));
});

test("isTrue / isFalse / removeCondition / formatTime", () => {
  const list = [cond("Ready", "True"), cond("Reachable", "False"), cond("DockerReady", "Unknown")];
  assert.equal(isTrue(list, "Ready"), true);
  assert.equal(isTrue(list, "Reachable"), false);
  assert.equal(isTrue(list, "Missing"), false);
  assert.equal(isTrue(undefined, "Ready"), false);
  assert.equal(isFalse(list, "Reachable"), true);
  assert.equal(isFalse(list, "DockerReady"), false);
  assert.deepEqual(
    removeCondition(list, "Reachable").map((c) => c.type),
    ["Ready", "DockerReady"],
  );
  assert.equal(formatTime(new Date("2025-03-04T05:06:07.891Z")), "2025-03-04T05:06:07Z");
  assert.equal(formatTime(Date.UTC(2025, 0, 1)), "2025-01-01T00:00:00Z");
  assert.throws(() => formatTime("yesterday"), /not a time/);
});
