// The Machine reconciler plans from the caches as they are once the host is connected and
// observed: a peer whose key is published while the reconcile is connecting is configured in
// this apply (machines of a new mesh publish their keys at about the same time; planning from
// the start-of-reconcile view cost every host a second apply and a second handshake round).
// Real SSH (hosts/ssh.ts) to a simulated host; caches, status and events are in-memory fakes.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { MachineReconciler } from "../../controllers/machine.js";
import { FINALIZER } from "../../controllers/resources.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { generateEd25519 } from "../../lab/keys.js";
import { realClock } from "../../runtime/clock.js";
import type { EventRecorder } from "../../runtime/events.js";
import type { Informer, SecretObject } from "../../runtime/informer.js";
import { silentLogger } from "../../runtime/log.js";
import { Semaphore } from "../../runtime/semaphore.js";
import type { StatusClient } from "../../runtime/status.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { mesh, pub } from "../support/fixtures.js";

const sshKey = generateEd25519("reconciler-test");
const wg = { m0: generateKeyPair(), m1: generateKeyPair() };
let fleet: SimulatedHostFleet;

/** An informer as the reconciler reads it: get and list from a map. */
function fakeInformer<T extends { metadata?: { name?: string; namespace?: string } }>(objects: T[]): { informer: Informer<T>; set(o: T): void } {
  const byKey = new Map(objects.map((o) => [`${o.metadata?.namespace ?? "default"}/${o.metadata?.name}`, o]));
  const informer = {
    get: (key: string) => byKey.get(key),
    list: (ns?: string) => [...byKey.values()].filter((o) => ns === undefined || (o.metadata?.namespace ?? "default") === ns),
  } as unknown as Informer<T>;
  return { informer, set: (o) => byKey.set(`${o.metadata?.namespace ?? "default"}/${o.metadata?.name}`, o) };
}

const b64 = (s: string) => Buffer.from(s).toString("base64");
const secret = (name: string, data: Record<string, string>): SecretObject => ({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace: "default" }, data }) as SecretObject;

before(async () => {
  fleet = await SimulatedHostFleet.start({ names: ["m0", "m1"], authorizedKey: sshKey.publicKey, latencyMs: 150 });
});
after(() => fleet.close());

test("a peer key published while the reconcile connects is in the first apply", async () => {
  const host = fleet.get("m0")!;
  const m0: Machine = {
    ...pub("m0", 0, { spec: { ssh: { host: host.sshHost, port: host.sshPort, privateKeySecretRef: { name: "ssh" } } } }),
    metadata: { name: "m0", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "1" },
    status: { publicKey: wg.m0.publicKey },
  };
  const m1: Machine = { ...pub("m1", 1), metadata: { name: "m1", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "2" } };
  const meshObj: MeshNetwork = {
    ...mesh("mesh", { cidr: "10.0.0.0/16", interface: "dm0", dockerNetwork: "apps" }),
    status: { allocations: [{ machine: "m0", subnet: "10.0.0.0/24" }, { machine: "m1", subnet: "10.0.1.0/24" }] },
  };
  const machines = fakeInformer([m0, m1]);
  const statuses: Machine[] = [];
  const status: StatusClient<Machine> = {
    get: async (_ns, name) => machines.informer.get(`default/${name}`)!,
    replaceStatus: async (o) => {
      const written = { ...o, metadata: { ...o.metadata, resourceVersion: String(Number(o.metadata.resourceVersion ?? 0) + 10) } };
      statuses.push(written);
      return written;
    },
  };
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({ clusters: [{ name: "c", server: "https://127.0.0.1:1" }], users: [{ name: "u" }], contexts: [{ name: "x", cluster: "c", user: "u" }], currentContext: "x" });
  const reconciler = new MachineReconciler({
    kubeConfig, // not called: the key Secret is in the cache and the finalizer is set
    machines: machines.informer,
    meshes: fakeInformer([meshObj]).informer,
    secrets: fakeInformer([secret("ssh", { "ssh-privatekey": b64(sshKey.privateKey) }), secret("m0-wireguard", { privateKey: b64(wg.m0.privateKey), publicKey: b64(wg.m0.publicKey) })]).informer,
    status,
    events: { event: async () => undefined } as unknown as EventRecorder,
    sshSlots: new Semaphore(2),
    clock: realClock,
    log: silentLogger(),
    resyncMs: 60_000,
    pendingRequeueMs: 5_000,
  });

  const running = reconciler.reconcile("default/m0");
  // m1 publishes its key once m0's reconcile is connected (its observe answer takes 150 ms).
  for (let i = 0; i < 500 && host.counters.sessions === 0; i++) await new Promise((r) => setTimeout(r, 2));
  assert.equal(host.counters.sessions, 1, "the reconcile connected");
  assert.equal(host.counters.applies, 0, "nothing applied yet");
  machines.set({ ...m1, status: { publicKey: wg.m1.publicKey } });
  await running;

  const peers = [...(host.host.wg.get("dm0")?.peers.keys() ?? [])];
  assert.deepEqual(peers, [wg.m1.publicKey], "m1 is a peer after one reconcile");
  assert.equal(host.counters.applies, 1, "one apply");
  const last = statuses.at(-1)!;
  const pc = last.status?.conditions?.find((c) => c.type === "PeersConnected");
  assert.doesNotMatch(pc?.message ?? "", /no WireGuard key yet/, JSON.stringify(pc));
  assert.deepEqual(last.status?.networks?.[0]?.peers?.map((p) => p.machine), ["m1"]);
});
