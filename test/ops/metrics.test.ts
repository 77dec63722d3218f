// runtime/metrics.ts, controllers/fleet-metrics.ts and runtime/health.ts without a cluster:
// reconcile counters, errors and durations from a real WorkQueue, queue gauges, fleet gauges
// from Machines, SSH round trips, the leader gauge; the HTTP endpoint's /metrics, /healthz,
// /readyz and bind addresses.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine } from "../../api/types.generated.js";
import { ControllerMetrics } from "../../controllers/metrics.js";
import { machineConditionCounts } from "../../controllers/fleet-metrics.js";
import { parseBindAddress, startOpsServer } from "../../runtime/health.js";
import { TerminalError, WorkQueue } from "../../runtime/workqueue.js";
import { silentLogger } from "../../runtime/log.js";
import { metric } from "./controller-process.js";

function machine(name: string, ready: "True" | "False" | undefined, peers: string[] = []): Machine {
  return {
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "Machine",
    metadata: { name, namespace: "default", generation: 1 },
    spec: { ssh: { host: "203.0.113.1", privateKeySecretRef: { name: "ssh" } } },
    ...(ready
      ? {
          status: {
            observedGeneration: 1,
            conditions: [{ type: "Ready", status: ready, reason: ready === "True" ? "Converged" : "AuthFailed", message: "", lastTransitionTime: "2025-01-01T00:00:00Z", observedGeneration: 1 }],
            networks: [{ meshNetwork: "mesh", subnet: "10.210.0.0/24", interface: "dm0", peers: peers.map((state, i) => ({ machine: `p${i}`, state })) }],
          },
        }
      : {}),
  } as Machine;
}

describe("metrics", () => {
  test("reconciles by kind and outcome, errors, durations and queue gauges", async () => {
    const metrics = new ControllerMetrics({ processMetrics: false });
    const q = new WorkQueue({ name: "machine", concurrency: 2, logger: silentLogger(), backoff: { baseMs: 60_000 } });
    metrics.watchQueue(q);
    q.start((key) => {
      if (key === "default/bad") throw new Error("boom");
      if (key === "default/terminal") throw new TerminalError("invalid");
      return key === "default/resync" ? { requeueAfter: 60_000 } : undefined;
    });
    for (const k of ["default/a", "default/b", "default/bad", "default/terminal", "default/resync"]) q.add(k);
    await q.whenIdle();
    const text = await metrics.render();
    assert.equal(metric(text, "dockmesh_reconcile_total", { kind: "Machine", outcome: "success" }), 2);
    assert.equal(metric(text, "dockmesh_reconcile_total", { kind: "Machine", outcome: "error" }), 1);
    assert.equal(metric(text, "dockmesh_reconcile_total", { kind: "Machine", outcome: "terminal" }), 1);
    assert.equal(metric(text, "dockmesh_reconcile_total", { kind: "Machine", outcome: "requeue" }), 1);
    assert.equal(metric(text, "dockmesh_reconcile_total", { kind: "MeshNetwork", outcome: "success" }), 0, "every kind has series from the start");
    assert.equal(metric(text, "dockmesh_reconcile_errors_total", { kind: "Machine" }), 2);
    assert.equal(metric(text, "dockmesh_reconcile_duration_seconds_count", { kind: "Machine" }), 5);
    assert.equal(metric(text, "dockmesh_workqueue_delayed", { name: "machine" }), 2, "the failed key (backoff) and the resync wait for timers");
    assert.equal(metric(text, "dockmesh_workqueue_adds_total", { name: "machine" }), 5);
    assert.equal(metric(text, "dockmesh_workqueue_retries_total", { name: "machine" }), 1);
    assert.equal(metric(text, "dockmesh_workqueue_depth", { name: "machine" }), 0);
    await q.shutdown();
    metrics.stop();
  });

  test("machines by condition and peers with a recent handshake, from the cache at scrape time", async () => {
    const metrics = new ControllerMetrics({ processMetrics: false });
    let fleet: Machine[] = [machine("m1", "True", ["Connected", "Connected"]), machine("m2", "False", ["Connected", "Stale", "NoHandshake"]), machine("m3", undefined)];
    metrics.setMachines(() => fleet);
    let text = await metrics.render();
    assert.equal(metric(text, "dockmesh_machines", { condition: "Ready", status: "True" }), 1);
    assert.equal(metric(text, "dockmesh_machines", { condition: "Ready", status: "False" }), 1);
    assert.equal(metric(text, "dockmesh_machines", { condition: "Ready", status: "Unknown" }), 1, "no status yet counts as Unknown");
    assert.equal(metric(text, "dockmesh_machines", { condition: "PeersConnected", status: "Unknown" }), 3);
    assert.equal(metric(text, "dockmesh_peers_recent_handshake", { namespace: "default", machine: "m1" }), 2);
    assert.equal(metric(text, "dockmesh_peers_recent_handshake", { namespace: "default", machine: "m2" }), 1);
    assert.equal(metric(text, "dockmesh_peers", { namespace: "default", machine: "m2" }), 3);
    fleet = [machine("m1", "True", ["Connected"])];
    text = await metrics.render();
    assert.equal(metric(text, "dockmesh_machines", { condition: "Ready", status: "False" }), 0, "recomputed on every scrape");
    assert.equal(metric(text, "dockmesh_peers_recent_handshake", { namespace: "default", machine: "m2" }), undefined, "a deleted Machine's series goes away");
    const counts = machineConditionCounts([]);
    assert.equal(counts.get(JSON.stringify(["Ready", "True"])), 0);
  });

  test("SSH round trips and the leader gauge", async () => {
    const metrics = new ControllerMetrics({ processMetrics: false });
    metrics.observeSsh({ durationMs: 12, ok: true });
    metrics.observeSsh({ durationMs: 3000, ok: false });
    let leading = false;
    metrics.setLeaderElection("dockmesh-system/dockmesh-controller", () => leading);
    let text = await metrics.render();
    assert.equal(metric(text, "dockmesh_ssh_roundtrip_seconds_count", { outcome: "ok" }), 1);
    assert.equal(metric(text, "dockmesh_ssh_roundtrip_seconds_bucket", { outcome: "ok", le: "0.025" }), 1);
    assert.equal(metric(text, "dockmesh_ssh_roundtrip_seconds_count", { outcome: "error" }), 1);
    assert.equal(metric(text, "dockmesh_leader_election_is_leader", { lease: "dockmesh-system/dockmesh-controller" }), 0);
    leading = true;
    text = await metrics.render();
    assert.equal(metric(text, "dockmesh_leader_election_is_leader", { lease: "dockmesh-system/dockmesh-controller" }), 1);
  });
});

describe("the ops HTTP endpoint", () => {
  test("bind addresses: :8080, host:port, [v6]:port, 0/off; nonsense refused", () => {
    assert.deepEqual(parseBindAddress(":8080"), { port: 8080 });
    assert.deepEqual(parseBindAddress("127.0.0.1:9090"), { host: "127.0.0.1", port: 9090 });
    assert.deepEqual(parseBindAddress("[::1]:9090"), { host: "::1", port: 9090 });
    assert.deepEqual(parseBindAddress("8080"), { port: 8080 });
    assert.equal(parseBindAddress("0"), undefined);
    assert.equal(parseBindAddress("off"), undefined);
    assert.throws(() => parseBindAddress("localhost:http"), /--metrics-bind-address: "localhost:http" is not an address/);
    assert.throws(() => parseBindAddress(":70000"), /not an address/);
  });

  test("/metrics in Prometheus text, /healthz, /readyz naming the failing check, 404 elsewhere", async () => {
    const metrics = new ControllerMetrics({ processMetrics: true });
    let synced = false;
    const server = await startOpsServer({
      bind: "127.0.0.1:0",
      metrics,
      live: { ping: () => ({ ok: true }) },
      ready: { informers: () => ({ ok: synced, message: synced ? "caches synced" : "caches not synced yet" }) },
      logger: silentLogger(),
    });
    assert.ok(server);
    try {
      const base = `http://${server.address}`;
      const m = await fetch(`${base}/metrics`);
      assert.equal(m.status, 200);
      assert.match(m.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const body = await m.text();
      assert.match(body, /^# HELP dockmesh_reconcile_total /m);
      assert.match(body, /^process_resident_memory_bytes /m, "process metrics");
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      let r = await fetch(`${base}/readyz`);
      assert.equal(r.status, 500);
      assert.match(await r.text(), /\[-\]informers failed: caches not synced yet/);
      synced = true;
      r = await fetch(`${base}/readyz`);
      assert.equal(r.status, 200);
      assert.equal(await r.text(), "ok");
      assert.match(await (await fetch(`${base}/readyz?verbose`)).text(), /\[\+\]informers ok: caches synced/);
      assert.equal((await fetch(`${base}/nope`)).status, 404);
      assert.equal((await fetch(`${base}/metrics`, { method: "POST" })).status, 405);
    } finally {
      await server.close();
    }
  });

  test("a port in use is reported with the flag's purpose", async () => {
    const first = await startOpsServer({ bind: "127.0.0.1:0", logger: silentLogger() });
    try {
      await assert.rejects(startOpsServer({ bind: `127.0.0.1:${first!.port}`, logger: silentLogger() }), /cannot listen on 127\.0\.0\.1:\d+ for \/metrics and the health probes/);
    } finally {
      await first!.close();
    }
  });
});
