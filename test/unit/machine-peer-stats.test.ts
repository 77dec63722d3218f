// Issue 15: what the Machine reconciler leaves for the per-peer metrics. A converge (the
// observe) records every peer of the machine; a Ready check between resyncs records again with
// the byte counters it now reads (`wg show all transfer`); a deleted Machine's numbers go.
// Hosts are simulated (bench/sim) behind a real ssh2 server on loopback; nothing leaves it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { PeerStats } from "../../controllers/peer-stats.js";
import { FakeClock } from "../../runtime/clock.js";
import { SimulatedMesh, machineReconciler, type Harness } from "../support/reconciler-harness.js";

const sim = new SimulatedMesh(["m0", "m1", "m2"], "peer-stats");
const NAMES = sim.names;
const clock = new FakeClock(Date.now());

before(() => sim.start({ nowS: () => Math.floor(clock.now() / 1000) }));
after(() => sim.close());
const ready = (h: Harness, n: string) => h.machines.informer.get(`default/${n}`)?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
const exists = { machine: () => true, mesh: () => true };

test("converge and Ready check record each peer (named from the plan) with its bytes; a deleted Machine is forgotten", async () => {
  const stats = new PeerStats();
  const h = machineReconciler(sim.machines(), [sim.mesh], sim.secrets(), { clock, readyCheckMs: 30_000, peerStats: stats });
  for (let round = 0; round < 4 && !NAMES.every((n) => ready(h, n)); round++) for (const n of NAMES) await h.reconciler.reconcile(`default/${n}`);
  assert.ok(
    NAMES.every((n) => ready(h, n)),
    "all Ready",
  );
  const m0 = () => stats.exported(1000, exists).machines.find((m) => m.machine === "m0")!;
  assert.deepEqual(
    stats
      .stored("default/m0")
      ?.map((p) => [p.mesh, p.peer, p.relayed, p.latestHandshake > 0])
      .sort(),
    [
      ["mesh", "m1", false, true],
      ["mesh", "m2", false, true],
    ],
  );
  // The export (kept for a scrape's duration) holds each machine's totals, not its stored pairs.
  assert.deepEqual(Object.keys(m0()).sort(), ["machine", "namespace", "pairs", "rxBytes", "txBytes"]);
  const before = m0().rxBytes;

  // Traffic on the host, then a Ready check (not an observe): the bytes it read are recorded.
  for (const p of sim.fleet.get("m0")!.host.wg.get("dm0")!.peers.values()) p.rx += 1_000_000;
  const observes = sim.fleet.get("m0")!.counters.observes;
  clock.advance(30_000);
  await h.reconciler.reconcile("default/m0");
  assert.equal(sim.fleet.get("m0")!.counters.observes, observes, "a Ready check, not an observe");
  assert.ok(m0().rxBytes - before >= 2_000_000, `rx grew by ${m0().rxBytes - before}`);

  h.machines.delete("default/m0");
  await h.reconciler.reconcile("default/m0");
  assert.equal(
    stats.exported(1000, exists).machines.some((m) => m.machine === "m0"),
    false,
    "m0 forgotten",
  );
});
