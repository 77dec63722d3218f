// Per-peer metrics (issue 15) without hosts: samples from a plan and `wg show` output, the
// series /metrics renders from them, the cap and its dropped count, series of deleted
// machines, peers and meshes disappearing, labels only from the plan, and the Ready check's
// byte counters. The lab side is test/ops/lab-peer-metrics.test.ts.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import type { NetworkPlan } from "../../mesh/plan.js";
import { ControllerMetrics } from "../../controllers/metrics.js";
import { MAX_STORED_PER_MACHINE, PeerStats, peerSamples } from "../../controllers/peer-stats.js";
import { parseLiveness } from "../../hosts/liveness.js";
import { peerMetricsMaxPairs } from "../../cli/controller.js";
import { metric, metricSum } from "./controller-process.js";

const NOW = 1_800_000_000;
const key = (c: string) => c.repeat(42) + "A=";

const machine = (name: string): Machine => ({ apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", metadata: { name, namespace: "default" }, spec: {} }) as unknown as Machine;
const mesh = (name: string): MeshNetwork => ({ apiVersion: "dockmesh.io/v1alpha1", kind: "MeshNetwork", metadata: { name, namespace: "default" }, spec: {} }) as unknown as MeshNetwork;

function plan(meshName: string, iface: string, peers: Array<[string, string]>, relayed: Array<[string, string]> = [], unreachable: string[] = []): NetworkPlan {
  return {
    meshNetwork: meshName,
    wireguard: { interface: iface, peers: peers.map(([machine, publicKey]) => ({ machine, publicKey })) },
    relayed: relayed.map(([machine, via]) => ({ machine, via })),
    unreachable,
  } as unknown as NetworkPlan;
}

const wg = (iface: string, peers: Array<[string, number, number, number]>) =>
  new Map([[iface, { peers: peers.map(([publicKey, latestHandshake, rxBytes, txBytes]) => ({ publicKey, latestHandshake, rxBytes, txBytes })) }]]);

function setup(maxPeerPairs?: number) {
  const stats = new PeerStats();
  const metrics = new ControllerMetrics({ processMetrics: false, nowS: () => NOW, ...(maxPeerPairs !== undefined ? { maxPeerPairs } : {}) });
  let machines = ["a", "b", "c", "d"];
  let meshes = ["m1"];
  metrics.setMachines(() => machines.map(machine));
  metrics.setPeerStats(stats, () => meshes.map(mesh));
  return {
    stats,
    metrics,
    setMachines: (x: string[]) => (machines = x),
    setMeshes: (x: string[]) => (meshes = x),
    // A fresh render each time (the per-scrape cache is for one scrape only).
    render: async () => {
      metrics.setPeerStats(stats, () => meshes.map(mesh));
      return metrics.render();
    },
  };
}

describe("per-peer metrics", () => {
  test("samples come from the plan; the host's output only gives numbers, matched by the planned key", () => {
    const nets = [
      plan(
        "m1",
        "dm0",
        [
          ["b", key("B")],
          ["c", key("C")],
        ],
        [["d", "b"]],
        ["e"],
      ),
    ];
    // The host also prints a peer the plan does not know (with a label-like key): ignored.
    const live = wg("dm0", [
      [key("B"), NOW - 10, 1000, 2000],
      [key("X"), NOW, 5, 5],
    ]);
    assert.deepEqual(peerSamples(nets, live), [
      { mesh: "m1", peer: "b", relayed: false, latestHandshake: NOW - 10, rxBytes: 1000, txBytes: 2000 },
      { mesh: "m1", peer: "c", relayed: false, latestHandshake: 0 },
      { mesh: "m1", peer: "d", relayed: true, latestHandshake: NOW - 10 },
      { mesh: "m1", peer: "e", relayed: false, latestHandshake: 0 },
    ]);
  });

  test("handshake age, stale flag, bytes, relayed and machine totals on /metrics", async () => {
    const env = setup();
    env.stats.record(
      "default",
      "a",
      peerSamples(
        [
          plan(
            "m1",
            "dm0",
            [
              ["b", key("B")],
              ["c", key("C")],
            ],
            [["d", "b"]],
          ),
        ],
        wg("dm0", [
          [key("B"), NOW - 10, 1000, 2000],
          [key("C"), NOW - 600, 7, 9],
        ]),
      ),
    );
    const text = await env.render();
    const l = (peer: string) => ({ namespace: "default", mesh: "m1", machine: "a", peer });
    const table: Array<[string, string, number | undefined]> = [
      ["dockmesh_peer_last_handshake_age_seconds", "b", 10],
      ["dockmesh_peer_last_handshake_age_seconds", "c", 600],
      ["dockmesh_peer_last_handshake_age_seconds", "d", 10],
      ["dockmesh_peer_handshake_stale", "b", 0],
      ["dockmesh_peer_handshake_stale", "c", 1],
      ["dockmesh_peer_handshake_stale", "d", 0],
      ["dockmesh_peer_relayed", "b", 0],
      ["dockmesh_peer_relayed", "d", 1],
      ["dockmesh_peer_receive_bytes_total", "b", 1000],
      ["dockmesh_peer_transmit_bytes_total", "b", 2000],
      ["dockmesh_peer_receive_bytes_total", "d", undefined],
    ];
    for (const [name, peer, want] of table) assert.equal(metric(text, name, l(peer)), want, `${name}{peer=${peer}}`);
    assert.equal(metric(text, "dockmesh_machine_peer_receive_bytes_total", { namespace: "default", machine: "a" }), 1007);
    assert.equal(metric(text, "dockmesh_machine_peer_transmit_bytes_total", { namespace: "default", machine: "a" }), 2009);
    assert.equal(metric(text, "dockmesh_peer_pairs_dropped"), 0);
    env.metrics.stop();
  });

  test("a peer that never handshook is stale and has no age", async () => {
    const env = setup();
    env.stats.record("default", "a", peerSamples([plan("m1", "dm0", [["b", key("B")]])], wg("dm0", [[key("B"), 0, 0, 0]])));
    const text = await env.render();
    assert.equal(metric(text, "dockmesh_peer_last_handshake_age_seconds", { peer: "b" }), undefined);
    assert.equal(metric(text, "dockmesh_peer_handshake_stale", { peer: "b" }), 1);
    env.metrics.stop();
  });

  test("the cap keeps the worst handshakes and counts the rest; 0 keeps only machine totals", async () => {
    for (const [cap, peers, dropped] of [
      [2, ["c", "d"], 2],
      [10, ["b", "c", "d", "e"], 0],
      [0, [], 4],
    ] as const) {
      const env = setup(cap);
      // b: fresh, c: never, d: 10 min old, e: 1 min old → worst first: c, d, e, b.
      const ages: Array<[string, number]> = [
        ["b", NOW - 5],
        ["c", 0],
        ["d", NOW - 600],
        ["e", NOW - 60],
      ];
      env.stats.record(
        "default",
        "a",
        peerSamples(
          [
            plan(
              "m1",
              "dm0",
              ages.map(([p]) => [p, key(p.toUpperCase())]),
            ),
          ],
          wg(
            "dm0",
            ages.map(([p, t]) => [key(p.toUpperCase()), t, 1, 1]),
          ),
        ),
      );
      env.setMachines(["a", "b", "c", "d", "e"]);
      const text = await env.render();
      const shown = ["b", "c", "d", "e"].filter((p) => metric(text, "dockmesh_peer_handshake_stale", { peer: p }) !== undefined);
      assert.deepEqual(shown, peers, `cap ${cap}`);
      assert.equal(metric(text, "dockmesh_peer_pairs_dropped"), dropped, `cap ${cap}`);
      assert.equal(metric(text, "dockmesh_machine_peer_receive_bytes_total", { machine: "a" }), 4, "totals are never capped");
      env.metrics.stop();
    }
  });

  test("each machine stores its 64 worst pairs only (memory N·64, not N²); the others count as dropped", async () => {
    const env = setup(1_000_000);
    const names = Array.from({ length: 200 }, (_, i) => `p${String(i).padStart(3, "0")}`);
    env.setMachines(["a", ...names]);
    env.stats.record(
      "default",
      "a",
      names.map((peer, i) => ({ mesh: "m1", peer, relayed: false, latestHandshake: NOW - i, rxBytes: 1, txBytes: 1 })),
    );
    const text = await env.render();
    const shown = names.filter((p) => metric(text, "dockmesh_peer_handshake_stale", { peer: p }) !== undefined);
    assert.equal(shown.length, MAX_STORED_PER_MACHINE);
    assert.equal(shown[0], names[200 - MAX_STORED_PER_MACHINE], "the oldest handshakes are kept");
    assert.equal(metric(text, "dockmesh_peer_pairs_dropped"), 200 - MAX_STORED_PER_MACHINE);
    assert.equal(metric(text, "dockmesh_machine_peer_receive_bytes_total", { machine: "a" }), 200);
    env.metrics.stop();
  });

  test("series of a deleted machine, peer or mesh disappear", async () => {
    const env = setup();
    const samples = peerSamples(
      [
        plan("m1", "dm0", [
          ["b", key("B")],
          ["c", key("C")],
        ]),
        plan("m2", "dm1", [["b", key("B")]]),
      ],
      new Map([
        ...wg("dm0", [
          [key("B"), NOW - 1, 1, 1],
          [key("C"), NOW - 1, 1, 1],
        ]),
        ...wg("dm1", [[key("B"), NOW - 1, 1, 1]]),
      ]),
    );
    env.stats.record("default", "a", samples);
    env.stats.record("default", "b", [{ mesh: "m1", peer: "a", relayed: false, latestHandshake: NOW - 1 }]);
    env.setMeshes(["m1", "m2"]);
    const count = async () => {
      const text = await env.render();
      return metricSum(text, "dockmesh_peer_relayed") + [...text.matchAll(/^dockmesh_peer_relayed\{/gm)].length;
    };
    assert.equal(await count(), 4, "a→b (m1), a→c, a→b (m2), b→a");
    env.setMeshes(["m1"]);
    assert.equal(await count(), 3, "mesh m2 deleted");
    env.setMachines(["a", "b", "d"]);
    assert.equal(await count(), 2, "peer c deleted");
    env.setMachines(["a", "d"]);
    const text = await env.render();
    assert.equal(metric(text, "dockmesh_machine_peer_receive_bytes_total", { machine: "b" }), undefined, "machine b deleted: its totals too");
    assert.equal([...text.matchAll(/^dockmesh_peer_relayed\{/gm)].length, 0);
    env.stats.forget("default/a");
    assert.equal(env.stats.size, 0);
    env.metrics.stop();
  });

  test("the Ready check reads handshakes and byte counters from the wg dump; lines that are not valid are dropped", () => {
    const peer = (k: string, t: string, rx: string, tx: string) => ["dm0", k, "(none)", "(none)", "10.0.1.0/24", t, rx, tx, "off"].join("\t");
    const out = [
      "@@wg",
      ["dm0", "(hidden)", key("A"), "51820", "off"].join("\t"),
      peer(key("B"), String(NOW), "123", "456"),
      ["wg9", key("Z"), "(none)", "(none)", "(none)", "1", "9", "9", "off"].join("\t"),
      peer(`${key("B")}x`, "bad", "1", "1"),
      "@@links",
      "@@end",
      "",
    ].join("\n");
    const live = parseLiveness(out);
    assert.deepEqual(
      live.wg.get("dm0")?.peers.map((p) => [p.publicKey, p.latestHandshake, p.rxBytes, p.txBytes]),
      [[key("B"), NOW, 123, 456]],
    );
  });

  test("--peer-metrics-max-pairs", () => {
    assert.equal(peerMetricsMaxPairs(undefined), 1000);
    assert.equal(peerMetricsMaxPairs("0"), 0);
    assert.equal(peerMetricsMaxPairs("5000"), 5000);
    for (const bad of ["-1", "1.5", "many", "", "2000000"]) assert.throws(() => peerMetricsMaxPairs(bad), /--peer-metrics-max-pairs: .* must be a whole number from 0 to 1000000/);
  });
});
