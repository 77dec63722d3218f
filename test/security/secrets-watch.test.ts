// Finding 7 (issue 11): the controller cached every Secret of the cluster. It now lists and
// watches only the Secrets it made (label app.kubernetes.io/managed-by=dockmesh) and reads a
// Machine's SSH key Secret by name when a reconcile needs it. Checked on the API server's side:
// the embedded store logs every request; the controllers run against it (real HTTP, real
// client-node), kubectl creates the objects, and the host is a simulated one behind a real SSH
// server on loopback (bench/sim). An unrelated, unlabelled Secret is there from the start: the
// controller never asks for it, and no list or watch of Secrets goes out without the selector.
// A deleted Machine's WireGuard key Secret goes by garbage collection: the controller deletes no
// Secret. And since no watch sees an SSH key Secret being created any more, a Machine made before its
// Secret is looked at again within seconds (10 s, then 20 s), not at the 5-minute resync.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IncomingMessage } from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import type { Machine } from "../../api/types.generated.js";
import { startStore, type StoreHandle } from "../../store/server.js";
import { startControllers, type RunningControllers } from "../../controllers/manager.js";
import { silentLogger } from "../../runtime/log.js";
import { kubeApiClient } from "../../runtime/kube-client.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { kubectlOk } from "../store/helpers.js";
import { eventually } from "../../lab/mesh-env.js";

interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  agent: string;
}

const sshKey = generateEd25519("secrets-watch");
const requests: Request[] = [];
let stateDir: string;
let store: StoreHandle;
let fleet: SimulatedHostFleet;
let controllers: RunningControllers | undefined;

const kubectl = (args: readonly string[], input = "") => kubectlOk(store.kubeconfigPath, [...args], input);

const doc = (o: unknown) => `---\n${stringify(o)}`;
const secretDoc = (name: string, data: Record<string, string>) => doc({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace: "default" }, stringData: data });

const reachable = async () => {
  const m = JSON.parse(await kubectl(["get", "machine", "m0", "-o", "json"])) as Machine;
  return m.status?.conditions?.find((c) => c.type === "Reachable");
};

before(async () => {
  // 127.0.0.x: nothing the controller is pointed at leaves loopback.
  fleet = await SimulatedHostFleet.start({ names: ["m0"], authorizedKey: sshKey.publicKey, addressPrefix: "127.0" });
  stateDir = mkdtempSync(join(tmpdir(), "dockmesh-secrets-watch-"));
  store = await startStore({
    stateDir,
    listen: "127.0.0.1:0",
    onRequest: (req: IncomingMessage) => {
      const url = new URL(req.url ?? "", "https://x");
      requests.push({ method: req.method ?? "", path: url.pathname, query: url.searchParams, agent: req.headers["user-agent"] ?? "" });
    },
  });
});

after(async () => {
  await controllers?.stop();
  await store?.close();
  await fleet?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

test("the controller lists and watches only its own Secrets, never reads an unrelated one, and finds an SSH key Secret created after the Machine within seconds", { timeout: 120_000 }, async () => {
  const host = fleet.get("m0")!;
  // An unrelated Secret (somebody else's credentials) and a Machine whose SSH key Secret does not exist yet.
  await kubectl(["create", "-f", "-"], secretDoc("unrelated", { password: "not-for-dockmesh" }));
  await kubectl(
    ["create", "-f", "-"],
    doc({
      apiVersion: "dockmesh.io/v1alpha1",
      kind: "Machine",
      metadata: { name: "m0", namespace: "default" },
      spec: { ssh: { host: host.sshHost, port: host.sshPort, privateKeySecretRef: { name: "ssh" } } },
    }),
  );

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(store.kubeconfigPath);
  controllers = await startControllers({ api: kubeApiClient(kubeConfig), logger: silentLogger(), resyncMs: 5 * 60_000 });

  const missing = await eventually("Reachable=False SecretNotFound", async () => ((await reachable())?.reason === "SecretNotFound" ? true : undefined), 30_000);
  assert.ok(missing);
  const created = Date.now();
  await kubectl(["create", "-f", "-"], secretDoc("ssh", { "ssh-privatekey": sshKey.privateKey }));
  await eventually("Reachable=True once the Secret exists", async () => ((await reachable())?.status === "True" ? true : undefined), 40_000);
  const tookMs = Date.now() - created;
  console.log(`# SSH key Secret created after the Machine: Reachable=True ${(tookMs / 1000).toFixed(1)} s later (resync is 300 s)`);
  assert.ok(tookMs < 35_000, `took ${tookMs} ms`);

  const fromController = requests.filter((r) => !r.agent.startsWith("kubectl"));
  const secrets = fromController.filter((r) => /^\/api\/v1\/(namespaces\/[^/]+\/)?secrets(\/|$)/.test(r.path));
  const collection = secrets.filter((r) => r.method === "GET" && /\/secrets$/.test(r.path));
  const show = (rs: readonly Request[]) => rs.map((r) => `${r.method} ${r.path}?${r.query.toString()}`);
  console.log(`# the controller's Secret requests: ${[...new Set(show(secrets))].join(", ")}`);
  assert.ok(collection.length > 0, "the informer listed (and watched) Secrets");
  assert.deepEqual(show(collection.filter((r) => r.query.get("labelSelector") !== "app.kubernetes.io/managed-by=dockmesh")), [], "every list/watch of Secrets carries the label selector");
  assert.deepEqual(show(secrets.filter((r) => r.path.endsWith("/secrets/unrelated"))), [], "the unrelated Secret is never requested");
  assert.ok(
    secrets.some((r) => r.method === "GET" && r.path === "/api/v1/namespaces/default/secrets/ssh"),
    "the SSH key Secret is read by name",
  );
  // Only names the controller knows are read: its SSH key Secret, its own Secrets.
  const names = new Set(secrets.filter((r) => !/\/secrets$/.test(r.path)).map((r) => r.path.split("/").at(-1)!));
  for (const n of names) assert.match(n, /^(ssh|m0-wireguard|dockmesh-hostkey-[0-9a-f]{20})$/, `read or wrote Secret ${n}`);
  // What it lists: its own Secrets: its WireGuard key and the host key record.
  const owned = JSON.parse(await kubectl(["get", "secrets", "-l", "app.kubernetes.io/managed-by=dockmesh", "-o", "json"])) as { items: Array<{ metadata: { name: string } }> };
  assert.deepEqual(
    owned.items.map((s) => s.metadata.name).filter((n) => !n.startsWith("dockmesh-hostkey-")),
    ["m0-wireguard"],
  );
  assert.equal(owned.items.filter((s) => s.metadata.name.startsWith("dockmesh-hostkey-")).length, 1, "one host key record");

  // The Machine deleted (released: the simulated host is not torn down): its WireGuard key Secret
  // goes with it by garbage collection, not by a delete from the controller (it has no such
  // right); the host key record stays.
  await kubectl(["annotate", "machine", "m0", "dockmesh.io/release-unreachable=true"]);
  await kubectl(["delete", "machine", "m0", "--timeout=60s"]);
  const left = JSON.parse(await kubectl(["get", "secrets", "-o", "json"])) as { items: Array<{ metadata: { name: string } }> };
  assert.deepEqual(left.items.map((s) => s.metadata.name.replace(/-[0-9a-f]{20}$/, "-…")).sort(), ["dockmesh-hostkey-…", "ssh", "unrelated"]);
  assert.deepEqual(show(requests.filter((r) => !r.agent.startsWith("kubectl") && r.method === "DELETE" && r.path.includes("/secrets"))), [], "the controller deletes no Secret");
});
