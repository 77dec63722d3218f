import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Condition } from "../../api/meta.js";
import { setCondition } from "../../runtime/conditions.js";
import type { StatusClient, StatusObject } from "../../runtime/status.js";
import { customResourceStatusClient, jsonEqual, writeStatus } from "../../runtime/status.js";
import { kubeApiClient } from "../../runtime/kube-client.js";
import { captureLogger, flush } from "./helpers.js";
import type { TestServer } from "./store.js";
import { MACHINES, createMachine, startTestServer } from "./store.js";

interface MStatus {
  observedGeneration?: number;
  peers?: string;
  conditions?: Condition[];
  networks?: Array<{ meshNetwork: string; subnet?: string }>;
}
type M = StatusObject<MStatus>;

test("jsonEqual: key order free, array order matters, undefined is absent, nothing else ignored", () => {
  const cases: Array<{ name: string; a: unknown; b: unknown; want: boolean }> = [
    { name: "same object, other key order", a: { x: 1, y: { p: "a", q: [1, 2] } }, b: { y: { q: [1, 2], p: "a" }, x: 1 }, want: true },
    { name: "array order", a: { l: [1, 2] }, b: { l: [2, 1] }, want: false },
    { name: "undefined property = absent", a: { x: 1, y: undefined }, b: { x: 1 }, want: true },
    { name: "null is not absent", a: { x: null }, b: {}, want: false },
    { name: "number vs string", a: { x: 1 }, b: { x: "1" }, want: false },
    { name: "extra nested key", a: { s: { c: [{ t: "Ready" }] } }, b: { s: { c: [{ t: "Ready", m: "" }] } }, want: false },
    { name: "array vs object", a: [], b: {}, want: false },
    { name: "undefined vs empty object", a: undefined, b: {}, want: false },
    { name: "both undefined", a: undefined, b: undefined, want: true },
  ];
  for (const c of cases) {
    assert.equal(jsonEqual(c.a, c.b), c.want, c.name);
    assert.equal(jsonEqual(c.b, c.a), c.want, `${c.name} (swapped)`);
  }
});

/** A StatusClient double: an in-memory object with resourceVersion checks, and a script of failures. */
function memoryClient(initial: M, script: Array<number | "concurrent"> = []) {
  let stored = structuredClone(initial);
  const calls: string[] = [];
  const client: StatusClient<M> = {
    get() {
      calls.push("get");
      return Promise.resolve(structuredClone(stored));
    },
    replaceStatus(obj) {
      calls.push("put");
      const step = script.shift();
      if (step === "concurrent") {
        // Someone else wrote first: a new resourceVersion and their status.
        stored = { ...stored, metadata: { ...stored.metadata, resourceVersion: String(Number(stored.metadata?.resourceVersion) + 1) }, status: { ...stored.status, peers: "9/9" } };
      } else if (typeof step === "number") {
        return Promise.reject(Object.assign(new Error(`HTTP ${step}`), { code: step }));
      }
      if (obj.metadata?.resourceVersion !== stored.metadata?.resourceVersion) return Promise.reject(Object.assign(new Error("Conflict"), { code: 409 }));
      stored = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(Number(obj.metadata?.resourceVersion) + 1) } };
      return Promise.resolve(structuredClone(stored));
    },
  };
  return { client, calls, stored: () => stored };
}

const base: M = {
  apiVersion: "dockmesh.io/v1alpha1",
  kind: "Machine",
  metadata: { name: "m1", namespace: "default", resourceVersion: "10", generation: 2 },
  status: { observedGeneration: 2, peers: "1/2" },
};

test("writeStatus: equal status → no API call; changed → one write with the object's resourceVersion", async () => {
  const same = memoryClient(base);
  const r1 = await writeStatus(same.client, base, { peers: "1/2", observedGeneration: 2 });
  assert.equal(r1.outcome, "unchanged");
  assert.equal(r1.writes, 0);
  assert.deepEqual(same.calls, []);

  const changed = memoryClient(base);
  const r2 = await writeStatus(changed.client, base, { observedGeneration: 2, peers: "2/2" });
  assert.equal(r2.outcome, "written");
  assert.equal(r2.writes, 1);
  assert.deepEqual(changed.calls, ["put"]);
  assert.equal(r2.object?.metadata?.resourceVersion, "11");
  assert.deepEqual(changed.stored().status, { observedGeneration: 2, peers: "2/2" });
});

test("writeStatus: a conflict re-reads, recomputes from the fresh status and retries, logging nothing above debug", async () => {
  const { logger, lines } = captureLogger();
  const m = memoryClient(base, ["concurrent"]);
  const seenCurrent: Array<string | undefined> = [];
  const r = await writeStatus(
    m.client,
    base,
    (current) => {
      seenCurrent.push(current?.peers);
      return { ...current, observedGeneration: 3 };
    },
    { logger },
  );
  assert.equal(r.outcome, "written");
  assert.deepEqual(m.calls, ["put", "get", "put"]);
  assert.deepEqual(seenCurrent, ["1/2", "9/9"], "desired recomputed from the re-read object");
  assert.deepEqual(m.stored().status, { observedGeneration: 3, peers: "9/9" });
  await flush();
  assert.deepEqual(
    lines.map((l) => l.level),
    ["debug"],
  );
});

test("writeStatus: after a conflict the fresh status may already be what we want → no second write", async () => {
  const m = memoryClient(base, ["concurrent"]);
  const r = await writeStatus(m.client, base, (current) => ({ ...current, peers: "9/9" }));
  assert.equal(r.outcome, "unchanged");
  assert.equal(r.writes, 1);
  assert.deepEqual(m.calls, ["put", "get"]);
});

test("writeStatus: bounded retries on conflicts; 404 means gone; other errors are wrapped, not retried", async () => {
  const cases: Array<{ name: string; script: Array<number | "concurrent">; maxAttempts?: number; want: "written" | "gone" | RegExp; calls: string[] }> = [
    {
      name: "conflicts forever",
      script: ["concurrent", "concurrent", "concurrent"],
      maxAttempts: 3,
      want: /Machine default\/m1: still conflicting after 3 attempts/,
      calls: ["put", "get", "put", "get", "put"],
    },
    { name: "two conflicts then success", script: ["concurrent", "concurrent"], maxAttempts: 3, want: "written", calls: ["put", "get", "put", "get", "put"] },
    { name: "deleted meanwhile", script: [404], want: "gone", calls: ["put"] },
    { name: "server error", script: [500], want: /write status of Machine default\/m1: HTTP 500/, calls: ["put"] },
  ];
  for (const c of cases) {
    const m = memoryClient(base, c.script);
    const run = writeStatus(m.client, base, (cur) => ({ ...cur, peers: "2/2" }), { maxAttempts: c.maxAttempts ?? 5 });
    if (c.want instanceof RegExp) await assert.rejects(run, c.want, c.name);
    else assert.equal((await run).outcome, c.want, c.name);
    assert.deepEqual(m.calls, c.calls, c.name);
  }
});

// --- against the embedded API server ---------------------------------------------------

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.dispose();
});

test("writeStatus against the API server: first write lands, a resync writes nothing, a stale copy conflicts and is retried", async () => {
  const created = (await createMachine(server, "s1")) as M;
  const real = customResourceStatusClient<M>(kubeApiClient(server.kubeConfig), MACHINES);
  let puts = 0;
  const client: StatusClient<M> = {
    get: (ns, name) => real.get(ns, name),
    replaceStatus: (o) => {
      puts++;
      return real.replaceStatus(o);
    },
  };
  const now = "2025-01-01T00:00:00Z";
  const desired = (cur: MStatus | undefined): MStatus => ({
    observedGeneration: 1,
    peers: "0/0",
    conditions: setCondition(cur?.conditions, { type: "Ready", status: "False", reason: "Connecting", message: "ssh s1.example.test: not tried yet" }, 1, now, ["Ready"]),
  });
  const first = await writeStatus(client, created, desired);
  assert.equal(first.outcome, "written");
  assert.equal(puts, 1);

  // A resync an hour later computes the same status: nothing is sent.
  const fresh = await real.get("default", "s1");
  const later = (cur: MStatus | undefined): MStatus => ({
    ...desired(cur),
    conditions: setCondition(cur?.conditions, { type: "Ready", status: "False", reason: "Connecting", message: "ssh s1.example.test: not tried yet" }, 1, "2025-01-01T01:00:00Z", ["Ready"]),
  });
  const second = await writeStatus(client, fresh, later);
  assert.equal(second.outcome, "unchanged");
  assert.equal(puts, 1);

  // Writing from the stale `created` copy: 409 from the server, re-read, and the condition's
  // lastTransitionTime survives because desired is recomputed from the fresh status.
  const third = await writeStatus(client, created, (cur) => ({ ...later(cur), peers: "1/1" }));
  assert.equal(third.outcome, "written");
  assert.equal(puts, 3);
  const final = await real.get("default", "s1");
  assert.equal(final.status?.peers, "1/1");
  assert.equal(final.status?.conditions?.[0]?.lastTransitionTime, now);
  assert.equal(final.metadata?.resourceVersion, third.object?.metadata?.resourceVersion);
});
