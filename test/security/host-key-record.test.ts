// Finding 4 (issue 11): trust on first use lived in user-writable status. Whoever could patch
// machines/status could remove status.hostKeyFingerprint, and the controller then trusted
// whatever key the host presented next (so did re-creating the Machine from Git): it would log
// in to an impostor with its SSH key and hand it the Machine's WireGuard private key.
// Now the first-seen key is recorded in a controller-owned Secret per SSH endpoint, enforced on
// every later connection; status only displays it. On a real lab host (sshd in its namespace,
// `dockmesh up` in the lab's controller namespace, kubectl from the test):
// - first contact records the key and an Event asks to verify and pin it;
// - (b) the record deleted while the Machine has connected before: HostKeyUnknown, no login,
//   through a resync; a pin in spec brings it back and the record follows the pin;
// - (a) the host's sshd key replaced (an impostor at its address) and the attacker's status
//   patch removing the fingerprint and the conditions: HostKeyMismatch, no login;
// - (c) the Machine deleted and re-created from the same manifest: still HostKeyMismatch.
// "No login" is counted in the lab sshd's own log (Accepted publickey): the impostor accepts the
// lab's key, so any authentication would show there.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Machine } from "../../api/types.generated.js";
import { pinFingerprint } from "../../hosts/ssh.js";
import { generateEd25519 } from "../../lab/keys.js";
import { MeshEnv, eventually, sleep, startMeshEnv } from "../../lab/mesh-env.js";
import { sshLogins } from "../../lab/lab-checks.js";

const PREFIX = "dmsecs";
const LABNET = "198.18.53.0/24";
const PORT = 16473;
const RESYNC_S = 15;

interface SecretJson {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: unknown[] };
  data?: Record<string, string>;
}

let env: MeshEnv;
let original: string;

const machine = () => env.getJson<Machine>(["get", "machine", "h1"]);
const cond = (m: Machine | undefined, type: string) => m?.status?.conditions?.find((c) => c.type === type);
const logins = () => sshLogins(env.lab, "h1");
const records = async () => (await env.getJson<{ items: SecretJson[] }>(["get", "secrets", "-l", "dockmesh.io/host-key=true"])).items;
const fingerprintOf = (s: SecretJson) => Buffer.from(s.data?.fingerprint ?? "", "base64").toString("utf8");
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

async function waitReachable(reason: string, timeoutMs = 60_000): Promise<Machine> {
  return eventually(
    `h1 Reachable reason ${reason}`,
    async () => {
      const m = await machine();
      return cond(m, "Reachable")?.reason === reason ? m : undefined;
    },
    timeoutMs,
    300,
  );
}

describe("host keys are recorded where only the controller writes", { timeout: 420_000 }, () => {
  before(async () => {
    env = await startMeshEnv({ prefix: PREFIX, labnet: LABNET, natLans: { first: 112, last: 113 }, hosts: [{ name: "h1" }], port: PORT, resyncPeriod: `${RESYNC_S}s` });
    original = pinFingerprint(env.lab.host("h1").hostKey);
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("first contact: the key goes into a controller-owned Secret, not owned by the Machine; an Event asks to verify and pin it", async () => {
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + env.machineYaml(["h1"]));
    const m = await waitReachable("Connected");
    assert.equal(m.status?.hostKeyFingerprint, original);
    const recs = await records();
    assert.equal(recs.length, 1, "one record");
    const rec = recs[0]!;
    assert.equal(fingerprintOf(rec), original);
    assert.match(rec.metadata.name, /^dockmesh-hostkey-[0-9a-f]{20}$/);
    assert.equal(rec.metadata.labels?.["app.kubernetes.io/managed-by"], "dockmesh");
    assert.equal(rec.metadata.annotations?.["dockmesh.io/ssh-endpoint"], `root@${env.lab.host("h1").sshHost}:22`);
    assert.equal(rec.metadata.ownerReferences, undefined, "not owned by the Machine");
    const events = await env.getJson<{ items: Array<{ reason?: string; message?: string }> }>(["get", "events"]);
    const recorded = events.items.find((e) => e.reason === "HostKeyRecorded");
    assert.match(recorded?.message ?? "", new RegExp(`recorded its host key ${esc(original)}.*verify it out of band.*set spec\\.ssh\\.hostKey`));
  });

  test("(b) the record deleted while the Machine has connected before: HostKeyUnknown, no login through a resync; a pin brings it back", async () => {
    const [rec] = await records();
    await env.kubectlOk(["delete", "secret", rec!.metadata.name]);
    const m = await waitReachable("HostKeyUnknown");
    assert.match(cond(m, "Reachable")!.message, /no host key is recorded for ssh root@\S+:22 .*not connecting.*ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key\.pub.*set spec\.ssh\.hostKey$/);
    const before = logins();
    await sleep((RESYNC_S + 5) * 1000);
    assert.equal(cond(await machine(), "Reachable")?.reason, "HostKeyUnknown", "still refused after a resync");
    assert.equal(logins(), before, "h1 accepted no login");
    assert.equal((await records()).length, 0, "nothing re-recorded");

    // The remedy the message gives: pin the key (checked on the host). The record follows the pin.
    await env.kubectlOk(["patch", "machine", "h1", "--type=merge", "-p", JSON.stringify({ spec: { ssh: { hostKey: env.lab.host("h1").hostKey } } })]);
    await waitReachable("Connected");
    assert.deepEqual((await records()).map(fingerprintOf), [original]);
    // Unpinned again: the record is enforced, the host still matches.
    await env.kubectlOk(["patch", "machine", "h1", "--type=json", "-p", JSON.stringify([{ op: "remove", path: "/spec/ssh/hostKey" }])]);
    await eventually("h1 reconciled without the pin", async () => {
      const x = await machine();
      return x.status?.observedGeneration === x.metadata.generation && cond(x, "Reachable")?.reason === "Connected" ? true : undefined;
    });
  });

  test("(a) an impostor at the host's address, and status patched to forget the key: HostKeyMismatch, no login", async () => {
    // The impostor: h1's sshd with another host key (it accepts the lab's SSH key like h1 did).
    const impostor = generateEd25519("dmsecs-impostor");
    writeFileSync(join(env.lab.stateDir, "hosts", "h1", "ssh_host_ed25519_key"), impostor.privateKey, { mode: 0o600 });
    await env.lab.reboot("h1");
    const before = logins();
    // What a user allowed to patch machines/status can do: forget the fingerprint and the conditions.
    await env.kubectlOk([
      "patch",
      "machine",
      "h1",
      "--subresource=status",
      "--type=json",
      "-p",
      JSON.stringify([
        { op: "remove", path: "/status/hostKeyFingerprint" },
        { op: "remove", path: "/status/conditions" },
      ]),
    ]);
    const m = await waitReachable("HostKeyMismatch", (RESYNC_S + 45) * 1000);
    const msg = cond(m, "Reachable")!.message;
    assert.match(msg, new RegExp(`expected ${esc(original)} \\(recorded on first contact\\), got ${esc(pinFingerprint(impostor.publicKey))}; refusing to connect`));
    assert.match(
      msg,
      /check the new key on the host itself \(ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key\.pub\) and only then pin it: set spec\.ssh\.hostKey to SHA256:\S+; if you did not reinstall it, someone may be intercepting the connection/,
    );
    assert.equal(logins(), before, "the impostor accepted no login");
    assert.deepEqual((await records()).map(fingerprintOf), [original], "the record is unchanged");
  });

  test("(c) the Machine deleted and re-created from the same manifest: the record is still enforced", async () => {
    await env.kubectlOk(["annotate", "machine", "h1", "dockmesh.io/release-unreachable=true"]);
    await env.kubectlOk(["delete", "machine", "h1", "--timeout=60s"]);
    const before = logins();
    await env.kubectlOk(["apply", "-f", "-"], env.machineYaml(["h1"]));
    const m = await waitReachable("HostKeyMismatch");
    assert.match(cond(m, "Reachable")!.message, new RegExp(`expected ${esc(original)} \\(recorded on first contact\\)`));
    assert.equal(m.status?.hostKeyFingerprint, undefined, "nothing recorded in status");
    assert.equal(logins(), before, "the impostor accepted no login");
    assert.deepEqual((await records()).map(fingerprintOf), [original], "the record outlived the Machine");
  });
});
