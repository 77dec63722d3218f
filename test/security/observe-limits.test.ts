// The output bounds of observe and apply are sized to their largest real answers: a simulated
// host (bench/sim) with 1,000 peers, configured by the real planner, diff and apply script, answers
// far under them, and every one of its values passes the checks parseObservation makes (a real
// answer loses nothing to them).
import { test } from "node:test";
import assert from "node:assert/strict";
import { planAll } from "../../mesh/plan.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { diffHost } from "../../hosts/diff.js";
import { OBSERVE_LIMITS, parseObservation } from "../../hosts/observe.js";
import { APPLY_LIMITS, chunkSteps } from "../../hosts/apply.js";
import { renderScript, SCRIPT_PRELUDE } from "../../hosts/steps.js";
import { SimulatedHost } from "../../bench/sim/simulated-host.js";
import { renderObservation } from "../../bench/sim/simulated-observe.js";
import { runApplyScript } from "../../bench/sim/simulated-apply.js";
import { mesh, pub } from "../support/fixtures.js";

const PEERS = 1000;

test(`observe and apply of a host with ${PEERS} peers stay far under their bounds, and keep every value`, () => {
  const names = Array.from({ length: PEERS + 1 }, (_, i) => `m${i}`);
  const keys = new Map(names.map((n) => [n, generateKeyPair()]));
  const machines = names.map((n, i) => pub(n, 0, { endpoint: `203.0.${113 + (i >> 8)}.${i & 255}:51820` }));
  const plan = planAll([mesh("mesh", { interface: "dm0", dockerNetwork: "apps", cidr: "10.0.0.0/8" })], machines, new Map([...keys].map(([k, v]) => [k, v.publicKey])), new Map()).hosts.find(
    (h) => h.machine === "m0",
  )!.networks;
  const host = new SimulatedHost({ name: "m0" });
  const observe = () => renderObservation(host, ["dm0", "--", "apps"], "", 1_800_000_000, { counterpart: () => undefined });
  const steps = diffHost({ networks: plan, privateKey: keys.get("m0")!.privateKey, publicKey: keys.get("m0")!.publicKey, previous: [] }, parseObservation(observe())).steps;
  let applyOut = 0;
  for (const chunk of chunkSteps(steps)) {
    const { script, input } = renderScript(chunk);
    const run = runApplyScript(host, script.slice(SCRIPT_PRELUDE.length), input);
    assert.equal(run.code, 0, run.stderr);
    applyOut = Math.max(applyOut, run.stdout.length);
  }
  const text = observe();
  const obs = parseObservation(text);
  console.log(
    `# ${PEERS} peers: observe answers ${(text.length / 1024).toFixed(0)} KiB (bound ${OBSERVE_LIMITS.maxStdoutBytes / 1024 / 1024} MiB), apply ${applyOut} bytes (bound ${APPLY_LIMITS.maxStdoutBytes / 1024 / 1024} MiB)`,
  );
  assert.ok(text.length * 32 < OBSERVE_LIMITS.maxStdoutBytes, `observe: ${text.length} bytes`);
  assert.ok(applyOut * 32 < APPLY_LIMITS.maxStdoutBytes, `apply: ${applyOut} bytes`);
  assert.equal(obs.wg.get("dm0")?.peers.length, PEERS, "every peer passes the checks");
  assert.ok(obs.wg.get("dm0")!.peers.every((p) => p.endpoint && p.allowedIPs.length === 1));
  assert.equal(obs.routes.filter((r) => r.dev === "dm0").length, PEERS, "every route passes the checks");
  assert.ok(obs.networks.get("apps")?.subnet);
  assert.equal(
    diffHost({ networks: plan, privateKey: keys.get("m0")!.privateKey, publicKey: keys.get("m0")!.publicKey, previous: [] }, obs).steps.length,
    0,
    "converged: nothing dropped makes the diff repeat",
  );
});
