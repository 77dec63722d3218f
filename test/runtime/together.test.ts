// The runtime pieces composed as a controller uses them — informer → keys → queue →
// reconcile → status writer — against the embedded API server: the controller's own status
// write comes back as a watch event, and the reconcile it triggers writes nothing.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Condition } from "../../api/meta.js";
import { FakeClock } from "../../runtime/clock.js";
import { setCondition } from "../../runtime/conditions.js";
import { customResourceInformer, enqueue, keysOf } from "../../runtime/informer.js";
import { silentLogger } from "../../runtime/log.js";
import { kubeApiClient } from "../../runtime/kube-client.js";
import type { StatusClient } from "../../runtime/status.js";
import { customResourceStatusClient, writeStatus } from "../../runtime/status.js";
import { WorkQueue } from "../../runtime/workqueue.js";
import { flush, until } from "./helpers.js";
import type { TestServer } from "./store.js";
import { MACHINES, createMachine, setEndpoint, startTestServer } from "./store.js";

interface Machine extends KubernetesObject {
  spec: { ssh: { host: string }; endpoint?: string };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.dispose();
});

test("informer + queue + status writer: one write per real change, none per resync or own-write echo", async () => {
  const clock = new FakeClock(Date.UTC(2025, 0, 1));
  const logger = silentLogger();
  const machines = customResourceInformer<Machine>(kubeApiClient(server.kubeConfig), MACHINES, { namespace: "default", logger, clock });
  const queue = new WorkQueue({ name: "machine", concurrency: 4, clock, logger });
  const real = customResourceStatusClient<Machine>(kubeApiClient(server.kubeConfig), MACHINES);
  let writes = 0;
  const status: StatusClient<Machine> = { get: (ns, name) => real.get(ns, name), replaceStatus: (o) => (writes++, real.replaceStatus(o)) };
  const reconciled: string[] = [];

  const sub = enqueue(keysOf(machines.events$), queue);
  machines.start();
  await machines.synced();
  queue.start(async (key) => {
    reconciled.push(key);
    const m = machines.get(key);
    if (!m) return;
    const generation = m.metadata?.generation ?? 0;
    const reachable = m.spec.endpoint !== undefined;
    await writeStatus(status, m, (cur) => ({
      ...cur,
      observedGeneration: generation,
      conditions: setCondition(cur?.conditions, { type: "Ready", status: reachable ? "True" : "False", reason: reachable ? "Converged" : "NoEndpoint", message: "" }, generation, clock.now()),
    }));
    return { requeueAfter: 60_000 };
  });

  /** Waits until the cache has seen the object at the API server's current resourceVersion and the queue is idle. */
  const settle = async () => {
    const latest = (await real.get("default", "t1")).metadata?.resourceVersion;
    await until(() => machines.get("default/t1")?.metadata?.resourceVersion === latest, "cache caught up");
    await flush();
    await queue.whenIdle();
  };

  await createMachine(server, "t1");
  await until(() => writes === 1, "first status write");
  await settle();
  assert.equal(writes, 1);
  assert.deepEqual(reconciled, ["default/t1", "default/t1"], "created, then the echo of our own status write");
  assert.equal(machines.get("default/t1")?.status?.conditions?.[0]?.reason, "NoEndpoint");

  // Periodic resync: reconciled, nothing written.
  clock.advance(60_000);
  await settle();
  assert.equal(reconciled.length, 3);
  assert.equal(writes, 1);

  // A spec change: generation 2, Ready flips, written once more.
  await setEndpoint(server, "t1", "198.51.100.7:51820");
  await until(() => writes === 2, "second status write");
  await settle();
  assert.equal(writes, 2);
  const m = machines.get("default/t1");
  assert.equal(m?.status?.observedGeneration, 2);
  assert.deepEqual(
    m?.status?.conditions?.map((c) => [c.type, c.status, c.reason, c.observedGeneration]),
    [["Ready", "True", "Converged", 2]],
  );

  sub.unsubscribe();
  await queue.shutdown();
  await machines.stop();
});
