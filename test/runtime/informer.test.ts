import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { Subject, lastValueFrom, toArray } from "rxjs";
import { FakeClock } from "../../runtime/clock.js";
import { silentLogger } from "../../runtime/log.js";
import type { WatchEvent } from "../../runtime/informer.js";
import { Informer, customResourceInformer, enqueue, keysOf, objectKey, secretInformer, splitKey } from "../../runtime/informer.js";
import type { ApiClient } from "../../runtime/client.js";
import { kubeApiClient, toWire } from "../../runtime/kube-client.js";
import { WorkQueue } from "../../runtime/workqueue.js";
import { captureLogger, flush, until } from "./helpers.js";
import type { TestServer } from "./store.js";
import { MACHINES, createMachine, deleteMachine, setEndpoint, startTestServer } from "./store.js";

interface Machine extends KubernetesObject {
  spec: { ssh: { host: string; privateKeySecretRef: { name: string } }; endpoint?: string };
}

const summary = (events: Array<WatchEvent<KubernetesObject>>) => events.map((e) => `${e.type} ${objectKey(e.object)}`);

// --- pure helpers --------------------------------------------------------------------

test("objectKey / splitKey", () => {
  assert.equal(objectKey({ metadata: { name: "m1", namespace: "default" } }), "default/m1");
  assert.equal(objectKey({ metadata: { name: "crd" } }), "crd");
  assert.deepEqual(splitKey("default/m1"), { namespace: "default", name: "m1" });
  assert.deepEqual(splitKey("crd"), { name: "crd" });
});

test("keysOf: own key by default; a mapper fans out, dedupes, may return nothing; a throwing mapper loses one event only", async () => {
  const events = new Subject<WatchEvent<KubernetesObject>>();
  const secret = (name: string): KubernetesObject => ({ metadata: { name, namespace: "default" } });
  // Machines using each Secret, as a controller would look them up in the Machine cache.
  const users: Record<string, string[]> = { ssh: ["default/m1", "default/m2", "default/m1"], unused: [] };
  const { logger, lines } = captureLogger();
  const own = lastValueFrom(keysOf(events).pipe(toArray()));
  const mapped = lastValueFrom(
    keysOf(
      events,
      (e) => {
        const name = e.object.metadata?.name ?? "";
        if (name === "broken") throw new Error("cache not synced");
        return users[name];
      },
      { logger },
    ).pipe(toArray()),
  );
  for (const name of ["ssh", "unused", "broken", "other", "ssh"]) events.next({ type: "MODIFIED", object: secret(name) });
  events.complete();
  assert.deepEqual(await own, ["default/ssh", "default/unused", "default/broken", "default/other", "default/ssh"]);
  assert.deepEqual(await mapped, ["default/m1", "default/m2", "default/m1", "default/m2"]);
  await flush();
  assert.equal(lines.filter((l) => l.level === "warn").length, 1);
});

test("toWire turns client-node Dates back into API strings", () => {
  assert.deepEqual(toWire({ metadata: { creationTimestamp: new Date("2025-01-02T03:04:05Z"), skip: undefined }, data: { k: "dg==" }, list: [new Date(0)] }), {
    metadata: { creationTimestamp: "2025-01-02T03:04:05Z" },
    data: { k: "dg==" },
    list: ["1970-01-01T00:00:00Z"],
  });
});

// --- against the embedded API server (store/) ------------------------------------------

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.dispose();
});

/** Events recorded from an informer's stream. */
function record<T extends KubernetesObject>(inf: Informer<T>): Array<WatchEvent<T>> {
  const seen: Array<WatchEvent<T>> = [];
  inf.events$.subscribe((e) => seen.push(e));
  return seen;
}

test("informer: initial sync fills the cache, then live changes arrive in order; a late subscriber gets the cache first", async () => {
  await createMachine(server, "a1");
  await createMachine(server, "a2");
  const inf = customResourceInformer<Machine>(kubeApiClient(server.kubeConfig), MACHINES, { logger: silentLogger(), namespace: "default" });
  const seen = record(inf);
  inf.start();
  await inf.synced();
  assert.equal(inf.hasSynced, true);
  assert.deepEqual(
    inf
      .keys()
      .filter((k) => k.includes("/a"))
      .sort(),
    ["default/a1", "default/a2"],
  );
  assert.equal(inf.get("default/a1")?.spec.ssh.host, "a1.example.test");
  await createMachine(server, "a3");
  await setEndpoint(server, "a1", "198.51.100.1:51820");
  await deleteMachine(server, "a2");
  await until(() => seen.some((e) => e.type === "DELETED"), "DELETED a2");
  assert.deepEqual(
    summary(seen).filter((s) => /a\d$/.test(s)),
    ["ADDED default/a1", "ADDED default/a2", "ADDED default/a3", "MODIFIED default/a1", "DELETED default/a2"],
  );
  assert.equal(inf.get("default/a1")?.spec.endpoint, "198.51.100.1:51820");
  assert.equal(inf.get("default/a2"), undefined);
  const late: string[] = [];
  inf.events$.subscribe((e) => late.push(`${e.type} ${objectKey(e.object)}`));
  assert.deepEqual(late.filter((s) => /a\d$/.test(s)).sort(), ["ADDED default/a1", "ADDED default/a3"]);
  await inf.stop();
  for (const n of ["a1", "a3"]) await deleteMachine(server, n);
});

test("informer: caches objects without metadata.managedFields, from the list and from the watch; a replace from the cache keeps the server's", async () => {
  await createMachine(server, "f1");
  const api = kubeApiClient(server.kubeConfig);
  const inf = customResourceInformer<Machine>(api, MACHINES, { logger: silentLogger(), namespace: "default" });
  inf.start();
  await inf.synced();
  const managers = async () => ((await api.get(MACHINES, "default", "f1")).metadata?.managedFields ?? []).map((f) => f.manager).sort();
  const before = await managers();
  assert.ok(before.length > 0, "the server records managedFields (else this test shows nothing)");
  const listed = inf.get("default/f1");
  assert.ok(listed, "f1 in the cache after the list");
  assert.equal(listed.metadata?.managedFields, undefined);
  await setEndpoint(server, "f1", "198.51.100.9:51820");
  await until(() => inf.get("default/f1")?.spec.endpoint === "198.51.100.9:51820", "the watch's MODIFIED f1");
  const watched = inf.get("default/f1")!;
  assert.equal(watched.metadata?.managedFields, undefined);
  // Writing a status onto what the cache holds (no managedFields in the request), as the
  // controller does, keeps the server's entries.
  await api.replaceStatus(MACHINES, { ...watched, status: { observedGeneration: 1 } } as Machine, { fieldManager: "dockmesh-test" });
  assert.deepEqual(await managers(), [...before, "dockmesh-test"].sort(), "managedFields kept (and the status writer added) after a write without them");
  await inf.stop();
  await deleteMachine(server, "f1");
});

test("informer: survives the server closing its watches (re-watches from its resourceVersion, no restart)", async () => {
  const clock = new FakeClock();
  const inf = customResourceInformer<Machine>(kubeApiClient(server.kubeConfig), MACHINES, { logger: silentLogger(), clock });
  const seen = record(inf);
  inf.start();
  await inf.synced();
  for (const name of ["b1", "b2", "b3"]) {
    server.handle.closeWatches();
    await createMachine(server, name);
    await until(() => inf.get(`default/${name}`) !== undefined, `${name} in the cache`);
  }
  assert.deepEqual(
    summary(seen).filter((s) => /b\d$/.test(s)),
    ["ADDED default/b1", "ADDED default/b2", "ADDED default/b3"],
  );
  assert.equal(inf.restarts, 0);
  assert.equal(clock.pending(), 0);
  await inf.stop();
  for (const n of ["b1", "b2", "b3"]) await deleteMachine(server, n);
});

/** A Machine informer whose list calls are counted. */
function countingInformer(s: TestServer, clock: FakeClock, logger = silentLogger()) {
  const api = kubeApiClient(s.kubeConfig);
  let lists = 0;
  const counting: ApiClient = {
    ...api,
    list: (resource, opts) => {
      lists++;
      return api.list(resource, opts);
    },
  };
  const inf = customResourceInformer<Machine>(counting, MACHINES, {
    clock,
    logger,
    backoff: { baseMs: 1000, capMs: 8000 },
  });
  return { inf, lists: () => lists };
}

test("informer: a server restart makes it restart with backoff, then resume from its resourceVersion without missed events", async () => {
  const s = await startTestServer();
  try {
    await createMachine(s, "c1");
    await createMachine(s, "c2");
    const clock = new FakeClock();
    const { logger, lines } = captureLogger();
    const { inf, lists } = countingInformer(s, clock, logger);
    const seen = record(inf);
    inf.start();
    await inf.synced();
    seen.length = 0;

    await s.stop();
    await until(() => inf.restarts === 1, "first restart scheduled", { ms: 15_000 });
    assert.deepEqual(clock.pendingDelays(), [1000]);
    // Restarting while the server is still down fails again: the delay doubles.
    clock.advance(1000);
    await until(() => inf.restarts === 2, "second restart scheduled", { ms: 15_000 });
    assert.deepEqual(clock.pendingDelays(), [2000]);

    // While the informer is away: one create, one change, one delete.
    await s.restart();
    await createMachine(s, "c3");
    await setEndpoint(s, "c1", "198.51.100.1:51820");
    await deleteMachine(s, "c2");

    clock.advance(2000);
    await until(() => seen.length === 3, "the three missed changes", { ms: 15_000 });
    assert.deepEqual(summary(seen), ["ADDED default/c3", "MODIFIED default/c1", "DELETED default/c2"]);
    assert.equal(lists(), 1, "resumed from its resourceVersion, no relist");
    assert.deepEqual(inf.keys().sort(), ["default/c1", "default/c3"]);
    assert.equal(inf.restarts, 2);
    await flush();
    const warns = lines.filter((l) => l.level === "warn");
    assert.equal(warns.length, 2, "one line per restart");
    assert.deepEqual(
      warns.map((w) => w["restartInMs"]),
      [1000, 2000],
    );
    assert.ok(lines.some((l) => l.message === "watch restored"));
    // And it keeps watching.
    await createMachine(s, "c4");
    await until(() => inf.get("default/c4") !== undefined, "c4");
    await inf.stop();
  } finally {
    await s.dispose();
  }
});

test("informer: a 410 Gone (history compacted while it was away) leads to a relist that reports what changed", async () => {
  const tiny = { history: { events: 1, seconds: 0, maxEvents: 1 } };
  const s = await startTestServer(tiny);
  try {
    await createMachine(s, "d1");
    await createMachine(s, "d2");
    const clock = new FakeClock();
    const { inf, lists } = countingInformer(s, clock);
    const seen = record(inf);
    inf.start();
    await inf.synced();
    seen.length = 0;

    await s.stop();
    await until(() => inf.restarts === 1, "restart scheduled", { ms: 15_000 });
    await s.restart(tiny);
    await createMachine(s, "d3");
    await setEndpoint(s, "d1", "198.51.100.1:51820");
    await deleteMachine(s, "d2");

    clock.advance(clock.pendingDelays()[0] ?? 0);
    await until(() => seen.length === 3, "relist differences", { ms: 15_000 });
    assert.equal(lists(), 2, "relisted");
    assert.deepEqual(summary(seen).sort(), ["ADDED default/d3", "DELETED default/d2", "MODIFIED default/d1"]);
    assert.equal(inf.get("default/d1")?.spec.endpoint, "198.51.100.1:51820");
    assert.deepEqual(inf.keys().sort(), ["default/d1", "default/d3"]);
    await inf.stop();
  } finally {
    await s.dispose();
  }
});

test("secret informer: listed and watched Secrets look alike; a Secret change maps to the Machines that use it", async () => {
  const machines = customResourceInformer<Machine>(kubeApiClient(server.kubeConfig), MACHINES, { logger: silentLogger(), namespace: "default" });
  const secrets = secretInformer(kubeApiClient(server.kubeConfig), { logger: silentLogger(), namespace: "default" });
  await server.core.createNamespacedSecret({ namespace: "default", body: { metadata: { name: "ssh-e" }, stringData: { "ssh-privatekey": "k1" } } });
  await server.custom.createNamespacedCustomObject({
    ...MACHINES,
    namespace: "default",
    body: { apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", metadata: { name: "e1" }, spec: { ssh: { host: "e1", privateKeySecretRef: { name: "ssh-e" } } } },
  });
  await createMachine(server, "e2"); // uses Secret "ssh"
  machines.start();
  secrets.start();
  await Promise.all([machines.synced(), secrets.synced()]);

  const listed = secrets.get("default/ssh-e");
  assert.equal(listed?.kind, "Secret");
  assert.equal(listed?.apiVersion, "v1");
  assert.equal(typeof listed?.metadata?.creationTimestamp, "string");
  assert.equal(Buffer.from(listed?.data?.["ssh-privatekey"] ?? "", "base64").toString(), "k1");

  const queue = new WorkQueue({ name: "machine", logger: silentLogger() });
  const reconciled: string[] = [];
  queue.start((key) => {
    reconciled.push(key);
  });
  const usersOf = (secretKey: string) =>
    machines
      .list()
      .filter((m) => `${m.metadata?.namespace}/${m.spec.ssh.privateKeySecretRef.name}` === secretKey)
      .map(objectKey);
  const sub = enqueue(
    keysOf(secrets.events$, (e) => (e.type === "ADDED" ? [] : usersOf(objectKey(e.object)))),
    queue,
  );
  await server.core.patchNamespacedSecret({ namespace: "default", name: "ssh-e", body: [{ op: "replace", path: "/data/ssh-privatekey", value: Buffer.from("k2").toString("base64") }] });
  await until(() => reconciled.length > 0, "a reconcile for e1");
  await queue.whenIdle();
  assert.deepEqual(reconciled, ["default/e1"]);
  const watched = secrets.get("default/ssh-e");
  assert.equal(Buffer.from(watched?.data?.["ssh-privatekey"] ?? "", "base64").toString(), "k2");
  assert.equal(typeof watched?.metadata?.creationTimestamp, "string");
  assert.equal(watched?.metadata?.creationTimestamp, listed?.metadata?.creationTimestamp);

  sub.unsubscribe();
  await queue.shutdown();
  await Promise.all([machines.stop(), secrets.stop()]);
});

test("informer: stop() completes the stream and does not restart", async () => {
  const clock = new FakeClock();
  const inf = customResourceInformer<Machine>(kubeApiClient(server.kubeConfig), MACHINES, { logger: silentLogger(), clock });
  let completed = false;
  inf.events$.subscribe({ complete: () => (completed = true) });
  inf.start();
  await inf.synced();
  await inf.stop();
  await flush();
  assert.equal(completed, true);
  assert.equal(inf.restarts, 0);
  assert.equal(clock.pending(), 0);
});

test("informer: started while the API server is down, it keeps retrying and syncs once the server is up", async () => {
  const s = await startTestServer();
  try {
    await createMachine(s, "f1");
    await s.stop();
    const clock = new FakeClock();
    const { inf, lists } = countingInformer(s, clock);
    inf.start();
    await until(() => inf.restarts === 1, "failed first list", { ms: 15_000 });
    assert.equal(inf.hasSynced, false);
    await s.restart();
    clock.advance(clock.pendingDelays()[0] ?? 0);
    await inf.synced();
    assert.equal(lists(), 2);
    assert.deepEqual(inf.keys(), ["default/f1"]);
    await inf.stop();
  } finally {
    await s.dispose();
  }
});
