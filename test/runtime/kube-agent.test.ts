// reuseConnections (runtime/kube-client.ts): API calls share kept-alive connections. Without it,
// @kubernetes/client-node 1.x opened a TCP and TLS connection for every request. Counted at
// https.Agent's createConnection, against the real embedded API server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { MAX_FREE_SOCKETS, MAX_SOCKETS, reuseConnections } from "../../runtime/kube-client.js";
import { startTestServer, type TestServer } from "./store.js";

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.dispose());

/** Sockets opened while `work` runs. */
async function socketsOpened(work: () => Promise<void>): Promise<number> {
  let n = 0;
  const proto = https.Agent.prototype as unknown as { createConnection: (...args: unknown[]) => unknown };
  const original = proto.createConnection;
  proto.createConnection = function (this: unknown, ...args: unknown[]) {
    n++;
    return original.apply(this, args);
  };
  try {
    await work();
  } finally {
    proto.createConnection = original;
  }
  return n;
}

const rows: Array<{ name: string; reuse: boolean; atMost: number; atLeast: number }> = [
  { name: "client-node as it comes: a connection per request", reuse: false, atMost: 20, atLeast: 20 },
  { name: "reuseConnections: 20 requests in a row over one connection", reuse: true, atMost: 1, atLeast: 1 },
];
for (const row of rows) {
  test(row.name, async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(server.handle.kubeconfigPath);
    if (row.reuse) reuseConnections(kc);
    const n = await socketsOpened(async () => {
      for (let i = 0; i < 20; i++) {
        // A new API client each time, as the controllers make them.
        const list = await kc.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: "default" });
        assert.ok(Array.isArray(list.items));
      }
    });
    assert.ok(n >= row.atLeast && n <= row.atMost, `${n} sockets opened for 20 requests`);
  });
}

test("a changed client certificate gets a new agent; the same one keeps its agent", () => {
  const kc = reuseConnections(new KubeConfig());
  const create = (kc as unknown as { createAgent: (c: unknown, o: Record<string, unknown>) => object }).createAgent;
  const cluster = { server: "https://127.0.0.1:1", name: "c", skipTLSVerify: false };
  const a = create(cluster, { cert: Buffer.from("one"), key: Buffer.from("k") });
  assert.equal(create(cluster, { cert: Buffer.from("one"), key: Buffer.from("k") }), a);
  assert.notEqual(create(cluster, { cert: Buffer.from("two"), key: Buffer.from("k") }), a);
  assert.notEqual(create({ ...cluster, server: "https://127.0.0.1:2" }, { cert: Buffer.from("one"), key: Buffer.from("k") }), a);
});

test("a burst of 200 requests at once opens at most MAX_SOCKETS connections and keeps at most MAX_FREE_SOCKETS idle", async () => {
  const kc = reuseConnections(new KubeConfig());
  kc.loadFromFile(server.handle.kubeconfigPath);
  // The agent the client gets (reuseConnections' shared one): seen as it is handed out.
  const target = kc as unknown as { createAgent: (c: unknown, o: Record<string, unknown>) => https.Agent };
  const shared = target.createAgent.bind(kc);
  const agents = new Set<https.Agent>();
  target.createAgent = (c, o) => {
    const a = shared(c, o);
    agents.add(a);
    return a;
  };
  const api = kc.makeApiClient(CoreV1Api);
  const n = await socketsOpened(async () => {
    await Promise.all(Array.from({ length: 200 }, () => api.listNamespacedConfigMap({ namespace: "default" })));
  });
  assert.ok(n >= 2 && n <= MAX_SOCKETS, `${n} sockets opened for 200 requests at once (at most ${MAX_SOCKETS})`);
  assert.equal(agents.size, 1, "one shared agent");
  const idle = [...agents].flatMap((a) => Object.values(a.freeSockets).flat()).length;
  assert.ok(idle >= 1 && idle <= MAX_FREE_SOCKETS, `${idle} idle connections kept (at most ${MAX_FREE_SOCKETS})`);
  for (const a of agents) a.destroy();
});
