// Acceptance: @kubernetes/client-node 1.x informers, watches and leases against the store.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, makeInformer, V1MicroTime, type KubernetesObject, type V1Lease } from "@kubernetes/client-node";
import { machine, startTestStore, waitFor, sleep, type TestStore } from "./helpers.js";

const group = "dockmesh.io";
const version = "v1alpha1";
const plural = "machines";
const path = "/apis/dockmesh.io/v1alpha1/namespaces/default/machines";

interface Seen {
  type: "add" | "update" | "delete";
  name: string;
  rv: string;
}

function rvOf(o: unknown): string {
  return String((o as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion ?? "");
}

describe("client-node against the store", () => {
  let s: TestStore;
  let custom: CustomObjectsApi;

  before(async () => {
    s = await startTestStore();
    custom = s.kc().makeApiClient(CustomObjectsApi);
  });
  after(async () => {
    await s.dispose();
  });

  it("an informer survives the server closing its watch, with no missed or repeated events", async () => {
    let lists = 0;
    const listFn = async () => {
      lists++;
      return (await custom.listNamespacedCustomObject({ group, version, namespace: "default", plural })) as { metadata: { resourceVersion: string }; items: KubernetesObject[] };
    };
    const informer = makeInformer(s.kc(), path, listFn as never);
    const seen: Seen[] = [];
    const errors: unknown[] = [];
    informer.on("add", (o) => seen.push({ type: "add", name: o.metadata?.name ?? "", rv: rvOf(o) }));
    informer.on("update", (o) => seen.push({ type: "update", name: o.metadata?.name ?? "", rv: rvOf(o) }));
    informer.on("delete", (o) => seen.push({ type: "delete", name: o.metadata?.name ?? "", rv: rvOf(o) }));
    informer.on("error", (e) => errors.push(e));
    await informer.start();
    try {
      const written: Seen[] = [];
      for (let i = 0; i < 60; i++) {
        const name = `inf-${i % 10}`;
        let res: unknown;
        if (i < 10) {
          res = await custom.createNamespacedCustomObject({ group, version, namespace: "default", plural, body: machine(name) });
          written.push({ type: "add", name, rv: rvOf(res) });
        } else if (i < 50) {
          res = await custom.patchNamespacedCustomObject({ group, version, namespace: "default", plural, name, body: [{ op: "replace", path: "/spec/ssh/host", value: `h${i}.example` }] });
          written.push({ type: "update", name, rv: rvOf(res) });
        } else {
          await custom.deleteNamespacedCustomObject({ group, version, namespace: "default", plural, name });
          // A deletion answers with a Status; the DELETED event carries the deletion's own resourceVersion.
          written.push({ type: "delete", name, rv: "" });
        }
        // The server drops every watch now and then; the informer must re-watch from its last RV.
        if (i % 7 === 3) s.closeWatches();
        if (i % 13 === 5) await sleep(20);
      }
      await waitFor("the informer to see the last write", () => seen.some((e) => e.type === "delete" && e.name === "inf-9"), 15_000);
      await sleep(300); // anything repeated would arrive now
      assert.deepEqual(errors, []);
      const key = (e: Seen) => `${e.type} ${e.name} ${e.type === "delete" ? "" : e.rv}`;
      assert.deepEqual(seen.map(key), written.map(key));
      const rvs = seen.map((e) => Number(e.rv));
      assert.ok(
        rvs.every((rv, i) => i === 0 || rv > (rvs[i - 1] ?? 0)),
        `resourceVersions not increasing: ${rvs.join(",")}`,
      );
      assert.equal(lists, 1, "a closed watch must resume from the last resourceVersion, not relist");
    } finally {
      await informer.stop();
    }
  });

  it("a watch from a resourceVersion older than the history gets 410 Expired, and the informer relists", async () => {
    const small = await startTestStore({ history: { events: 20, seconds: 0 } });
    try {
      const c = small.kc().makeApiClient(CustomObjectsApi);
      const core = small.kc().makeApiClient(CoreV1Api);
      let lists = 0;
      const listFn = async () => {
        lists++;
        return (await c.listNamespacedCustomObject({ group, version, namespace: "default", plural })) as { metadata: { resourceVersion: string }; items: KubernetesObject[] };
      };
      const informer = makeInformer(small.kc(), path, listFn as never);
      const names = new Set<string>();
      informer.on("add", (o) => names.add(o.metadata?.name ?? ""));
      informer.on("delete", (o) => names.delete(o.metadata?.name ?? ""));
      await c.createNamespacedCustomObject({ group, version, namespace: "default", plural, body: machine("before") });
      await informer.start();
      try {
        await waitFor("the first list", () => names.has("before"));
        // Writes to another kind move the history past the informer's last resourceVersion.
        for (let i = 0; i < 60; i++) await core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: `filler-${i}` }, data: { i: String(i) } } });
        const raw = await small.http("GET", `${path}?watch=true&resourceVersion=2`);
        assert.equal(raw.status, 200);
        const ev = JSON.parse(raw.text.trim().split("\n")[0] ?? "{}") as { type: string; object: { code: number; reason: string; message: string } };
        assert.equal(ev.type, "ERROR");
        assert.equal(ev.object.code, 410);
        assert.equal(ev.object.reason, "Expired");
        assert.match(ev.object.message, /too old resource version/);
        small.closeWatches();
        await waitFor("a relist", () => lists >= 2, 10_000);
        await c.createNamespacedCustomObject({ group, version, namespace: "default", plural, body: machine("after") });
        await waitFor("the informer to work after the relist", () => names.has("after"), 10_000);
        assert.deepEqual([...names].sort(), ["after", "before"]);
      } finally {
        await informer.stop();
      }
    } finally {
      await small.dispose();
    }
  });

  it("two contenders for one Lease: exactly one leader", async () => {
    const apis = [s.kc().makeApiClient(CoordinationV1Api), s.kc().makeApiClient(CoordinationV1Api)];
    const ns = "kube-system";
    const name = "dockmesh-controller";
    // One round of client-go's leader election: take the lease if it is free or expired.
    const tryAcquire = async (api: CoordinationV1Api, id: string): Promise<boolean> => {
      const now = new V1MicroTime();
      let cur: V1Lease | undefined;
      try {
        cur = await api.readNamespacedLease({ name, namespace: ns });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
      }
      try {
        if (!cur) {
          await api.createNamespacedLease({
            namespace: ns,
            body: { metadata: { name, namespace: ns }, spec: { holderIdentity: id, leaseDurationSeconds: 15, acquireTime: now, renewTime: now, leaseTransitions: 0 } },
          });
          return true;
        }
        const spec = cur.spec ?? {};
        const expired = !spec.renewTime || Date.now() - new Date(spec.renewTime).getTime() > (spec.leaseDurationSeconds ?? 15) * 1000;
        if (spec.holderIdentity !== id && !expired) return false;
        const next: V1Lease = { ...cur, spec: { ...spec, holderIdentity: id, renewTime: now, acquireTime: spec.holderIdentity === id ? spec.acquireTime : now } };
        await api.replaceNamespacedLease({ name, namespace: ns, body: next });
        return true;
      } catch (err) {
        if ((err as { code?: number }).code === 409) return false;
        throw err;
      }
    };
    const leaderRounds: Array<[boolean, boolean]> = [];
    for (let round = 0; round < 10; round++) {
      const r = await Promise.all([tryAcquire(apis[0] as CoordinationV1Api, "a"), tryAcquire(apis[1] as CoordinationV1Api, "b")]);
      leaderRounds.push(r);
    }
    for (const [a, b] of leaderRounds) assert.ok(!(a && b), "both contenders believed they led");
    const lease = await (apis[0] as CoordinationV1Api).readNamespacedLease({ name, namespace: ns });
    const leader = lease.spec?.holderIdentity;
    assert.ok(leader === "a" || leader === "b");
    const leaderIdx = leader === "a" ? 0 : 1;
    assert.ok(
      leaderRounds.every((r) => r[leaderIdx] && !r[1 - leaderIdx]),
      `the leader changed hands: ${JSON.stringify(leaderRounds)}`,
    );
    assert.match(
      String(
        (await s.http("GET", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${name}`)).json.spec &&
          JSON.stringify((await s.http("GET", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${name}`)).json.spec),
      ),
      /"renewTime":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"/,
    );
  });

  it("a Lease time with 3 fractional digits is rejected like a real server does", async () => {
    const api = s.kc().makeApiClient(CoordinationV1Api);
    await assert.rejects(
      api.createNamespacedLease({ namespace: "default", body: { metadata: { name: "millis" }, spec: { holderIdentity: "x", renewTime: new Date() } } }),
      (err: { code?: number; body?: unknown }) => {
        const body = (typeof err.body === "string" ? JSON.parse(err.body) : err.body) as { message?: string; reason?: string };
        return err.code === 400 && body.reason === "BadRequest" && /cannot be handled as a Lease: parsing time ".*" as "2006-01-02T15:04:05\.000000Z07:00"/.test(body.message ?? "");
      },
    );
  });
});
