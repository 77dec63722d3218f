// Issue 14: the first converge of a fresh host is one SSH round trip (guard, first apply and
// observe in one script, hosts/fresh.ts); the next converge of an unchanged host is one observe
// and changes nothing. Round trips are counted on the simulated hosts (bench/sim) behind a real
// ssh2 server on loopback, one per command the reconciler sends.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../runtime/clock.js";
import { SimulatedMesh, machineReconciler } from "../support/reconciler-harness.js";

const sim = new SimulatedMesh(["m0", "m1", "m2"], "fresh");
const clock = new FakeClock(Date.now());

// Jumbo frames on the uplink: not what a controller that has seen no host yet guesses (1500).
before(() => sim.start({ nowS: () => Math.floor(clock.now() / 1000), host: { uplinkMtu: 9001 } }));
after(() => sim.close());

/** Reconciles one machine; what its host saw meanwhile. */
async function reconcileCounted(h: ReturnType<typeof machineReconciler>, name: string) {
  const c0 = { ...sim.fleet.get(name)!.counters };
  await h.reconciler.reconcile(`default/${name}`);
  const c1 = sim.fleet.get(name)!.counters;
  return { sessions: c1.sessions - c0.sessions, roundTrips: c1.roundTrips - c0.roundTrips, applies: c1.applies - c0.applies, steps: c1.steps - c0.steps, failures: c1.failures - c0.failures };
}

test("fresh hosts: one round trip each once the fleet's facts are known; an unchanged host is one observe that changes nothing", async () => {
  const h = machineReconciler(sim.machines(), [sim.mesh], sim.secrets(), { clock });
  // The first host of a fresh controller: the default guess (uplink MTU 1500) is not this host's,
  // so the guard applies nothing and an ordinary pass follows.
  const first = await reconcileCounted(h, "m0");
  assert.deepEqual({ sessions: first.sessions, roundTrips: first.roundTrips, failures: first.failures }, { sessions: 1, roundTrips: 2, failures: 0 });
  assert.ok(first.steps > 0, "configured by the ordinary pass");

  // The rest of the fleet is guessed from m0's facts: one command each configures and observes.
  for (const n of ["m1", "m2"]) {
    const r = await reconcileCounted(h, n);
    assert.deepEqual({ sessions: r.sessions, roundTrips: r.roundTrips, applies: r.applies, failures: r.failures }, { sessions: 1, roundTrips: 1, applies: 1, failures: 0 }, n);
    assert.ok(r.steps >= 5, `${n}: the first apply ran (${r.steps} steps)`);
    const configured = h.events.filter((e) => e.reason === "Configured").at(-1);
    assert.match(configured?.message ?? "", /docker network create/);
  }

  // Past the resync: each host is looked at again; nothing changed, so one observe and no apply.
  clock.advance(61_000);
  for (const n of ["m0", "m1", "m2"]) {
    const r = await reconcileCounted(h, n);
    assert.deepEqual(r, { sessions: 1, roundTrips: 1, applies: 0, steps: 0, failures: 0 }, n);
  }
});
