// SSH key Secrets are no longer watched (finding 7, issue 11): the reconciler reads the named
// Secret at every reconcile. So a Machine whose Secret is missing (or lacks the key) is looked at
// again soon — 10 s, 20 s, then every 30 s — rather than at the 5-minute resync; and a changed key
// is used at the next reconcile although the plan's converged hash would otherwise skip the host.
// The reconciler on in-memory caches (test/support/reconciler-harness.ts) and a simulated host
// behind a real ssh2 server on 127.0.0.1.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine } from "../../api/types.generated.js";
import { FINALIZER } from "../../controllers/resources.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { pub } from "../support/fixtures.js";
import { b64, machineReconciler, secret } from "../support/reconciler-harness.js";

const sshKey = generateEd25519("ssh-secret-lookup");
const wg = generateKeyPair();
let fleet: SimulatedHostFleet;

before(async () => {
  fleet = await SimulatedHostFleet.start({ names: ["m0"], authorizedKey: sshKey.publicKey, addressPrefix: "127.0" });
});
after(() => fleet.close());

function m0(): Machine {
  const host = fleet.get("m0")!;
  const base = pub("m0", 0, { spec: { ssh: { host: host.sshHost, port: host.sshPort, privateKeySecretRef: { name: "ssh" } } } });
  return { ...base, metadata: { name: "m0", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "1" }, status: { publicKey: wg.publicKey } };
}

const reachable = (m: Machine | undefined) => m?.status?.conditions?.find((c) => c.type === "Reachable");
const sshSecret = (key: string, field = "ssh-privatekey") => secret("ssh", { [field]: b64(key) });

test("a missing SSH key Secret or key is retried after 10 s, 20 s, then every 30 s; once there, the next reconcile connects", async () => {
  const h = machineReconciler([m0()], [], [secret("m0-wireguard", { privateKey: b64(wg.privateKey), publicKey: b64(wg.publicKey) })], { secretRetryMs: 10_000 });
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) delays.push((await h.reconciler.reconcile("default/m0"))?.requeueAfter ?? 0);
  assert.deepEqual(delays, [10_000, 20_000, 30_000, 30_000]);
  assert.equal(reachable(h.machines.informer.get("default/m0"))?.reason, "SecretNotFound");

  h.secrets.set("default/ssh", sshSecret(sshKey.privateKey, "id_ed25519"));
  assert.equal((await h.reconciler.reconcile("default/m0"))?.requeueAfter, 30_000, "still counting: the key is missing");
  assert.equal(reachable(h.machines.informer.get("default/m0"))?.reason, "SecretKeyMissing");

  h.secrets.set("default/ssh", sshSecret(sshKey.privateKey));
  await h.reconciler.reconcile("default/m0");
  assert.equal(reachable(h.machines.informer.get("default/m0"))?.status, "True");

  // The count starts again after a success.
  h.secrets.delete("default/ssh");
  assert.equal((await h.reconciler.reconcile("default/m0"))?.requeueAfter, 10_000);
});

test("a changed SSH key is used at the next reconcile, although nothing else changed", async () => {
  const h = machineReconciler([m0()], [], [sshSecret(sshKey.privateKey), secret("m0-wireguard", { privateKey: b64(wg.privateKey), publicKey: b64(wg.publicKey) })]);
  await h.reconciler.reconcile("default/m0");
  assert.equal(reachable(h.machines.informer.get("default/m0"))?.status, "True");
  const sessions = fleet.get("m0")!.counters.sessions;
  await h.reconciler.reconcile("default/m0");
  assert.equal(fleet.get("m0")!.counters.sessions, sessions, "converged: not contacted again");

  // A key that is not one: the reconcile uses the Secret as it is now, and says so.
  h.secrets.set("default/ssh", sshSecret("not a key"));
  await assert.rejects(h.reconciler.reconcile("default/m0"), /is not a usable SSH private key/);
  assert.equal(reachable(h.machines.informer.get("default/m0"))?.reason, "KeyInvalid", "the new key was used");
  // And back to the right key: connected again (the hash changed with the key's digest).
  h.secrets.set("default/ssh", sshSecret(sshKey.privateKey));
  await h.reconciler.reconcile("default/m0");
  assert.equal(reachable(h.machines.informer.get("default/m0"))?.status, "True");
  assert.equal(fleet.get("m0")!.counters.sessions, sessions + 1);
});
