// The informer's events carry the cached object before them (client-go's oldObj): for changes
// seen live, and for those a relist finds after a 410 Gone (the cache before the disconnection).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { FakeClock } from "../../runtime/clock.js";
import { silentLogger } from "../../runtime/log.js";
import { customResourceInformer, objectKey, type WatchEvent } from "../../runtime/informer.js";
import type { ApiClient } from "../../runtime/client.js";
import { kubeApiClient } from "../../runtime/kube-client.js";
import { until } from "./helpers.js";
import { MACHINES, createMachine, deleteMachine, setEndpoint, startTestServer } from "./store.js";

interface Machine extends KubernetesObject {
  spec: { endpoint?: string };
}

const line = (e: WatchEvent<Machine>) => `${e.type} ${objectKey(e.object)} ${e.old?.spec.endpoint ?? "-"} → ${e.object.spec.endpoint ?? "-"}${e.old ? "" : " (no old)"}`;

test("informer: MODIFIED and DELETED carry the object before them, live and after a relist; ADDED none", async () => {
  const tiny = { history: { events: 1, seconds: 0, maxEvents: 1 } };
  const s = await startTestServer(tiny);
  try {
    await createMachine(s, "g1");
    await createMachine(s, "g2");
    const clock = new FakeClock();
    const api = kubeApiClient(s.kubeConfig);
    let lists = 0;
    const counting: ApiClient = { ...api, list: (r, o) => (lists++, api.list(r, o)) };
    const inf = customResourceInformer<Machine>(counting, MACHINES, { logger: silentLogger(), clock });
    const seen: string[] = [];
    inf.events$.subscribe((e) => seen.push(line(e)));
    inf.start();
    await inf.synced();
    await setEndpoint(s, "g1", "198.51.100.1:51820");
    await deleteMachine(s, "g2");
    await until(() => seen.length === 4, "two changes");
    assert.deepEqual(seen.sort(), ["ADDED default/g1 - → - (no old)", "ADDED default/g2 - → - (no old)", "DELETED default/g2 - → -", "MODIFIED default/g1 - → 198.51.100.1:51820"]);

    // Away long enough for the history to be gone: the relist reports what changed meanwhile.
    seen.length = 0;
    await s.stop();
    await until(() => inf.restarts === 1, "restart scheduled", { ms: 15_000 });
    await s.restart(tiny);
    await createMachine(s, "g3");
    await createMachine(s, "g4");
    await setEndpoint(s, "g1", "198.51.100.2:51820");
    clock.advance(clock.pendingDelays()[0] ?? 0);
    await until(() => seen.length === 3, "relist differences", { ms: 15_000 });
    assert.deepEqual(seen.sort(), ["ADDED default/g3 - → - (no old)", "ADDED default/g4 - → - (no old)", "MODIFIED default/g1 198.51.100.1:51820 → 198.51.100.2:51820"]);
    assert.equal(lists, 2, "relisted");

    // A late subscriber gets the cache as ADDED, without old.
    const late: string[] = [];
    inf.events$.subscribe((e) => late.push(line(e))).unsubscribe();
    assert.deepEqual(late.sort(), ["ADDED default/g1 - → 198.51.100.2:51820 (no old)", "ADDED default/g3 - → - (no old)", "ADDED default/g4 - → - (no old)"]);
    await inf.stop();
  } finally {
    await s.dispose();
  }
});
