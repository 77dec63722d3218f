// Issue 12 §3: a Machine that never connected could not be deleted without an annotation, and
// the advice left out -n <namespace>. Now: no host key record for its endpoint (made by the
// controller right after a handshake, before any command) and no sign of contact in status →
// nothing can have been applied: the finalizer goes at once. Anything else still tears down first,
// and the advice is a complete command. The finalizer is removed through a real API server (store/).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { KubeConfig, CustomObjectsApi } from "@kubernetes/client-node";
import type { Machine } from "../../api/types.generated.js";
import { FINALIZER, MACHINES } from "../../controllers/resources.js";
import { generateEd25519 } from "../../lab/keys.js";
import { startTestStore, type TestStore } from "../store/helpers.js";
import { b64, machineReconciler, secret } from "../support/reconciler-harness.js";

const sshKey = generateEd25519("delete");
let store: TestStore;
let kc: KubeConfig;
let api: CustomObjectsApi;
let deadPort: number;

before(async () => {
  store = await startTestStore();
  kc = new KubeConfig();
  kc.loadFromFile(store.kubeconfigPath);
  api = kc.makeApiClient(CustomObjectsApi);
  // A port nothing listens on: the host "never answers".
  deadPort = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 1));
    });
  });
});
after(() => store.close());

/** Creates the Machine with the finalizer, deletes it, and returns it as the informer would have it. */
async function deleted(name: string, status?: Machine["status"]): Promise<Machine> {
  const body: Machine = {
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "Machine",
    metadata: { name, namespace: "default", finalizers: [FINALIZER] },
    spec: { ssh: { host: "127.0.0.1", port: deadPort, privateKeySecretRef: { name: "ssh" } } },
  };
  await api.createNamespacedCustomObject({ ...MACHINES, namespace: "default", body });
  await api.deleteNamespacedCustomObject({ ...MACHINES, namespace: "default", name });
  const m = (await api.getNamespacedCustomObject({ ...MACHINES, namespace: "default", name })) as Machine;
  assert.ok(m.metadata.deletionTimestamp, "being deleted, held by the finalizer");
  return status ? { ...m, status } : m;
}

const exists = async (name: string) =>
  api.getNamespacedCustomObject({ ...MACHINES, namespace: "default", name }).then(
    () => true,
    (err: unknown) => {
      if ((err as { code?: number }).code === 404) return false;
      throw err;
    },
  );

const unreachable: Machine["status"] = {
  conditions: [{ type: "Reachable", status: "False", reason: "Unreachable", message: "connection refused", lastTransitionTime: "2026-01-01T00:00:00Z" }],
};

test("a Machine that never connected is released at once, without an annotation", async () => {
  const m = await deleted("never", unreachable);
  const h = machineReconciler([m], [], [secret("ssh", { "ssh-privatekey": b64(sshKey.privateKey) })], { kubeConfig: kc });
  await h.reconciler.reconcile("default/never");
  assert.equal(await exists("never"), false, "gone");
  const ev = h.events.find((e) => e.reason === "Released");
  assert.match(
    ev?.message ?? "",
    new RegExp(
      `^nothing to clean up: the controller never connected to ssh root@127\\.0\\.0\\.1:${deadPort} \\(no host key record Secret default/dockmesh-hostkey-[0-9a-f]{20}\\); released without contacting the host$`,
    ),
  );
});

test("a Machine whose SSH key Secret never existed is released at once too", async () => {
  const m = await deleted("nosecret", { conditions: [{ type: "Reachable", status: "False", reason: "SecretNotFound", message: "x", lastTransitionTime: "2026-01-01T00:00:00Z" }] });
  const h = machineReconciler([m], [], [], { kubeConfig: kc });
  await h.reconciler.reconcile("default/nosecret");
  assert.equal(await exists("nosecret"), false);
});

for (const c of [
  { name: "a host key record exists (the controller connected before)", record: true, status: unreachable },
  { name: "status shows a host key fingerprint (contacted before records existed)", record: false, status: { ...unreachable, hostKeyFingerprint: "SHA256:" + "A".repeat(43) } },
  { name: "status lists a configured network", record: false, status: { ...unreachable, networks: [{ meshNetwork: "mesh", interface: "dm0", dockerNetwork: "mesh" }] } },
]) {
  test(`not released while the host may carry something: ${c.name}; the advice is a complete command`, async () => {
    const name = `kept-${Math.random().toString(36).slice(2, 8)}`;
    const m = await deleted(name, c.status);
    const h = machineReconciler([m], [], [secret("ssh", { "ssh-privatekey": b64(sshKey.privateKey) })], { kubeConfig: kc });
    if (c.record) await h.hostKeys.create("default", `root@127.0.0.1:${deadPort}`, "SHA256:" + "B".repeat(43));
    await assert.rejects(h.reconciler.reconcile(`default/${name}`), new RegExp(`release it without cleanup: kubectl -n default annotate machine ${name} dockmesh\\.io/release-unreachable=true$`));
    assert.equal(await exists(name), true, "still held by the finalizer");
    const last = h.statuses.at(-1);
    assert.equal(last?.status?.conditions?.find((x) => x.type === "Ready")?.reason, "TeardownFailed");
  });
}
