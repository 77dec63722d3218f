import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { CoreV1Event, KubernetesObject } from "@kubernetes/client-node";
import { FakeClock } from "../../runtime/clock.js";
import type { EventSink } from "../../runtime/events.js";
import { EventRecorder, eventRecorder } from "../../runtime/events.js";
import { silentLogger } from "../../runtime/log.js";
import { kubeApiClient } from "../../runtime/kube-client.js";
import { captureLogger, flush } from "./helpers.js";
import type { TestServer } from "./store.js";
import { createMachine, startTestServer } from "./store.js";

const m1: KubernetesObject = { apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", metadata: { name: "m1", namespace: "default", uid: "u-1", resourceVersion: "7" } };

/** An EventSink double that records calls and can fail on demand. */
function memorySink() {
  const calls: Array<{ op: "create" | "patch"; namespace: string; name: string; body: unknown }> = [];
  const stored = new Map<string, CoreV1Event>();
  const failNext: number[] = [];
  const fail = (): void => {
    const code = failNext.shift();
    if (code !== undefined) throw Object.assign(new Error(`HTTP ${code}`), { code });
  };
  const sink: EventSink = {
    create(namespace, event) {
      calls.push({ op: "create", namespace, name: event.metadata.name ?? "", body: event });
      fail();
      stored.set(`${namespace}/${event.metadata.name}`, structuredClone(event));
      return Promise.resolve(event);
    },
    patch(namespace, name, ops) {
      calls.push({ op: "patch", namespace, name, body: ops });
      fail();
      return Promise.resolve({});
    },
  };
  return { sink, calls, stored, failNext };
}

function setup() {
  const clock = new FakeClock(Date.UTC(2025, 0, 1, 12, 0, 0));
  const mem = memorySink();
  const { logger, lines } = captureLogger();
  const rec = new EventRecorder({ sink: mem.sink, clock, logger, instance: "test-host" });
  return { clock, rec, lines, ...mem };
}

test("first event creates a core/v1 Event named <object>.<hex> with the object reference and reporting component", async () => {
  const { rec, calls } = setup();
  await rec.event(m1, "Warning", "AuthFailed", "ssh root@203.0.113.10: key in Secret default/ssh rejected");
  assert.equal(calls.length, 1);
  const c = calls[0];
  assert.equal(c?.op, "create");
  assert.equal(c?.namespace, "default");
  assert.match(c?.name ?? "", /^m1\.[0-9a-f]+$/);
  const ev = c?.body as CoreV1Event;
  assert.deepEqual(ev.involvedObject, { apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", name: "m1", namespace: "default", uid: "u-1", resourceVersion: "7" });
  assert.equal(ev.type, "Warning");
  assert.equal(ev.reason, "AuthFailed");
  assert.equal(ev.count, 1);
  assert.equal(ev.reportingComponent, "dockmesh-controller");
  assert.equal(ev.reportingInstance, "test-host");
  assert.deepEqual(ev.source, { component: "dockmesh-controller", host: "test-host" });
  assert.equal(ev.firstTimestamp?.toISOString(), "2025-01-01T12:00:00.000Z");
});

test("repeats within the window patch count and lastTimestamp; other messages, objects or a closed window create new Events", async () => {
  const { rec, calls, clock } = setup();
  await rec.event(m1, "Warning", "Unreachable", "ssh: connection refused");
  clock.advance(30_000);
  await rec.event(m1, "Warning", "Unreachable", "ssh: connection refused");
  clock.advance(30_000);
  await rec.event(m1, "Warning", "Unreachable", "ssh: connection refused");
  const first = calls[0]?.name;
  assert.deepEqual(
    calls.map((c) => [c.op, c.name]),
    [
      ["create", first],
      ["patch", first],
      ["patch", first],
    ],
  );
  assert.deepEqual(calls[2]?.body, [
    { op: "replace", path: "/count", value: 3 },
    { op: "replace", path: "/lastTimestamp", value: "2025-01-01T12:01:00Z" },
  ]);
  await rec.event(m1, "Warning", "Unreachable", "ssh: no route to host"); // other message
  await rec.event({ ...m1, metadata: { ...m1.metadata, name: "m2" } }, "Warning", "Unreachable", "ssh: connection refused"); // other object
  clock.advance(600_000); // window since the last occurrence closed
  await rec.event(m1, "Warning", "Unreachable", "ssh: connection refused");
  assert.deepEqual(
    calls.slice(3).map((c) => c.op),
    ["create", "create", "create"],
  );
  const names = calls.filter((c) => c.op === "create").map((c) => c.name);
  assert.equal(new Set(names).size, names.length, "names unique");
});

test("concurrent identical events, not awaited: one create, then patches with increasing counts", async () => {
  const { rec, calls } = setup();
  for (let i = 0; i < 4; i++) void rec.event(m1, "Normal", "Converged", "2/2 peers connected");
  await rec.flush();
  assert.deepEqual(
    calls.map((c) => c.op),
    ["create", "patch", "patch", "patch"],
  );
  assert.deepEqual(
    calls.slice(1).map((c) => (c.body as Array<{ value: unknown }>)[0]?.value),
    [2, 3, 4],
  );
});

test("failures never reach the caller: logged; an Event gone (404) is created anew", async () => {
  const { rec, calls, failNext, lines } = setup();
  failNext.push(500);
  await rec.event(m1, "Warning", "ApplyFailed", "iptables: permission denied"); // create fails
  await rec.event(m1, "Warning", "ApplyFailed", "iptables: permission denied"); // so this creates again
  failNext.push(404);
  await rec.event(m1, "Warning", "ApplyFailed", "iptables: permission denied"); // patch 404 → create
  failNext.push(403);
  await rec.event(m1, "Warning", "ApplyFailed", "iptables: permission denied"); // patch 403 → logged
  await rec.event({ metadata: {} }, "Normal", "X", "no name"); // unusable object
  assert.deepEqual(
    calls.map((c) => c.op),
    ["create", "create", "patch", "create", "patch"],
  );
  await flush();
  const warns = lines.filter((l) => l.level === "warn").map((l) => l.message);
  assert.deepEqual(warns, ["could not record event", "could not update event", "could not record event"]);
});

test("messages are redacted and bounded; cluster-scoped objects' Events go to default", async () => {
  const { rec, calls } = setup();
  await rec.event({ apiVersion: "v1", kind: "Node", metadata: { name: "n1" } }, "Normal", "Rendered", `PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk= ${"x".repeat(2000)}`);
  const ev = calls[0]?.body as CoreV1Event;
  assert.equal(calls[0]?.namespace, "default");
  assert.ok(ev.message?.startsWith("PrivateKey = [REDACTED] xxx"));
  assert.equal(ev.message?.length, 1024);
  assert.equal(ev.involvedObject.namespace, undefined);
});

// --- against the embedded API server ---------------------------------------------------

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.dispose();
});

test("against the API server: repeats aggregate on one Event that kubectl describe would list", async () => {
  const machine = (await createMachine(server, "ev1")) as KubernetesObject;
  const clock = new FakeClock(Date.UTC(2025, 0, 1, 12, 0, 0));
  const rec = eventRecorder(kubeApiClient(server.kubeConfig), { clock, logger: silentLogger() });
  await rec.event(machine, "Warning", "Unreachable", "ssh ev1.example.test: connection refused");
  clock.advance(5000);
  await rec.event(machine, "Warning", "Unreachable", "ssh ev1.example.test: connection refused");
  clock.advance(5000);
  await rec.event(machine, "Warning", "Unreachable", "ssh ev1.example.test: connection refused");
  await rec.event(machine, "Normal", "Converged", "0/0 peers");
  const list = await server.core.listNamespacedEvent({ namespace: "default", fieldSelector: `involvedObject.name=ev1,involvedObject.kind=Machine` });
  const byReason = new Map(list.items.map((e) => [e.reason, e]));
  assert.equal(list.items.length, 2);
  const unreachable = byReason.get("Unreachable");
  assert.equal(unreachable?.count, 3);
  assert.equal(unreachable?.type, "Warning");
  assert.equal(unreachable?.involvedObject.uid, machine.metadata?.uid);
  assert.equal(unreachable?.firstTimestamp?.toISOString(), "2025-01-01T12:00:00.000Z");
  assert.equal(unreachable?.lastTimestamp?.toISOString(), "2025-01-01T12:00:10.000Z");
  assert.equal(unreachable?.reportingComponent, "dockmesh-controller");
  assert.equal(byReason.get("Converged")?.count, 1);
});
