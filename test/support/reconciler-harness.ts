// A MachineReconciler on in-memory caches, status and events, for tests that drive one
// reconcile at a time against simulated hosts (bench/sim) over real SSH.
import type { PeerStats } from "../../controllers/peer-stats.js";
import { KubeConfig } from "@kubernetes/client-node";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { MachineReconciler } from "../../controllers/machine.js";
import type { HostKeyRecords } from "../../controllers/host-keys.js";
import { realClock, type Clock } from "../../runtime/clock.js";
import type { EventRecorder } from "../../runtime/events.js";
import type { Informer, SecretObject } from "../../runtime/informer.js";
import { silentLogger } from "../../runtime/log.js";
import { kubeApiClient } from "../../runtime/kube-client.js";
import { Semaphore } from "../../runtime/semaphore.js";
import type { StatusClient } from "../../runtime/status.js";
import { FINALIZER } from "../../controllers/resources.js";
import { generateKeyPair, type KeyPair } from "../../mesh/keys.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet, type SimulatedHostFleetOptions } from "../../bench/sim/simulated-fleet.js";
import { mesh, pub } from "./fixtures.js";

type Named = { metadata?: { name?: string; namespace?: string } };
const keyOf = (o: Named) => `${o.metadata?.namespace ?? "default"}/${o.metadata?.name}`;

/** An informer as the reconciler reads it: get and list from a map, set to change it. */
export interface FakeInformer<T> {
  informer: Informer<T & Named>;
  set(o: T): void;
  delete(key: string): void;
}

export function fakeInformer<T extends Named>(objects: readonly T[]): FakeInformer<T> {
  const byKey = new Map(objects.map((o) => [keyOf(o), o]));
  const informer = {
    get: (key: string) => byKey.get(key),
    list: (ns?: string) => [...byKey.values()].filter((o) => ns === undefined || (o.metadata?.namespace ?? "default") === ns),
  } as unknown as Informer<T>;
  return { informer, set: (o) => byKey.set(keyOf(o), o), delete: (key) => byKey.delete(key) };
}

export const b64 = (s: string): string => Buffer.from(s).toString("base64");

export function secret(name: string, data: Record<string, string>, namespace = "default"): SecretObject {
  return { apiVersion: "v1", kind: "Secret", metadata: { name, namespace }, data };
}

/** Host key records in a map ("namespace endpoint" → fingerprint), for the reconciler on fakes. */
export function fakeHostKeyRecords(): HostKeyRecords & { map: Map<string, string> } {
  const map = new Map<string, string>();
  const k = (ns: string, id: string) => `${ns} ${id}`;
  return {
    map,
    get: async (ns, id) => map.get(k(ns, id)),
    create: async (ns, id, fp) => {
      if (!map.has(k(ns, id))) map.set(k(ns, id), fp);
      return map.get(k(ns, id))!;
    },
    put: async (ns, id, fp) => void map.set(k(ns, id), fp),
  };
}

export interface Harness {
  reconciler: MachineReconciler;
  /** The host key records the reconciler keeps. */
  hostKeys: ReturnType<typeof fakeHostKeyRecords>;
  /** SSH key Secrets as the reconciler reads them by name: change to add or remove one. */
  secrets: Map<string, SecretObject>;
  machines: FakeInformer<Machine>;
  /** The MeshNetworks as the reconciler's informer has them: set or delete one between reconciles. */
  meshes: FakeInformer<MeshNetwork>;
  /** The informer's cache of owned Secrets: a peer's key is published by setting its <machine>-wireguard Secret here. */
  keySecrets: FakeInformer<SecretObject>;
  /** Every status written, in order. */
  statuses: Machine[];
  /** Every Event recorded, in order. */
  events: Array<{ type: string; reason: string; message: string }>;
}

/**
 * The reconciler on fakes. Its API client points nowhere (unless given a kubeConfig): a test must give it what it would
 * otherwise create through the API (machines with the finalizer, key Secrets in `secrets`).
 */
export function machineReconciler(
  machines: readonly Machine[],
  meshes: readonly MeshNetwork[],
  secrets: readonly SecretObject[],
  opts: { secretRetryMs?: number; readyCheckMs?: number; clock?: Clock; kubeConfig?: KubeConfig; peerStats?: PeerStats } = {},
): Harness {
  const m = fakeInformer(machines);
  const meshInformer = fakeInformer(meshes);
  const sec = fakeInformer(secrets);
  const byKey = new Map(secrets.map((s) => [keyOf(s), s]));
  const hostKeys = fakeHostKeyRecords();
  const statuses: Machine[] = [];
  const events: Harness["events"] = [];
  const status: StatusClient<Machine> = {
    get: async (ns, name) => m.informer.get(`${ns ?? "default"}/${name}`)!,
    replaceStatus: async (o) => {
      const written = { ...o, metadata: { ...o.metadata, resourceVersion: String(Number(o.metadata.resourceVersion ?? 0) + 1) } };
      statuses.push(written);
      m.set(written);
      return written;
    },
  };
  const kubeConfig = opts.kubeConfig ?? new KubeConfig();
  if (!opts.kubeConfig)
    kubeConfig.loadFromOptions({ clusters: [{ name: "c", server: "https://127.0.0.1:1" }], users: [{ name: "u" }], contexts: [{ name: "x", cluster: "c", user: "u" }], currentContext: "x" });
  const reconciler = new MachineReconciler({
    api: kubeApiClient(kubeConfig),
    machines: m.informer,
    meshes: meshInformer.informer,
    secrets: sec.informer,
    readSecret: async (ns, name) => byKey.get(`${ns}/${name}`),
    hostKeys,
    status,
    events: { event: async (_o: unknown, type: string, reason: string, message: string) => void events.push({ type, reason, message }) } as unknown as EventRecorder,
    sshSlots: new Semaphore(2),
    clock: opts.clock ?? realClock,
    log: silentLogger(),
    resyncMs: 60_000,
    pendingRequeueMs: 5_000,
    ...(opts.secretRetryMs !== undefined ? { secretRetryMs: opts.secretRetryMs } : {}),
    // Off unless asked for: tests that reconcile twice in a row expect no second contact.
    readyCheckMs: opts.readyCheckMs ?? 0,
    ...(opts.peerStats ? { peerStats: opts.peerStats } : {}),
  });
  return { reconciler, machines: m, meshes: meshInformer, keySecrets: sec, statuses, hostKeys, secrets: byKey, events };
}

/**
 * A mesh of public machines on simulated hosts, as the reconciler tests use it: each machine
 * with the finalizer and its WireGuard key published, the mesh with a /24 allocated to each, the
 * SSH key Secret and every key Secret. Start the fleet in `before`, close it in `after`.
 */
export class SimulatedMesh {
  readonly sshKey: ReturnType<typeof generateEd25519>;
  readonly wg: Map<string, KeyPair>;
  readonly mesh: MeshNetwork;
  private hosts: SimulatedHostFleet | undefined;

  constructor(
    readonly names: readonly string[],
    label: string,
  ) {
    this.sshKey = generateEd25519(label);
    this.wg = new Map(names.map((n) => [n, generateKeyPair()]));
    this.mesh = { ...mesh("mesh", { cidr: "10.0.0.0/16", interface: "dm0" }), status: { allocations: names.map((machine, i) => ({ machine, subnet: `10.0.${i}.0/24` })) } };
  }

  async start(opts: Omit<SimulatedHostFleetOptions, "names" | "authorizedKey"> = {}): Promise<void> {
    this.hosts = await SimulatedHostFleet.start({ names: [...this.names], authorizedKey: this.sshKey.publicKey, ...opts });
  }

  get fleet(): SimulatedHostFleet {
    if (!this.hosts) throw new Error("SimulatedMesh: start() it first");
    return this.hosts;
  }

  close(): Promise<void> {
    return this.hosts?.close() ?? Promise.resolve();
  }

  /** Every machine of the mesh, each reaching its simulated host. */
  machines(): Machine[] {
    return this.names.map((name, i) => {
      const host = this.fleet.get(name)!;
      const base = pub(name, i, { spec: { ssh: { host: host.sshHost, port: host.sshPort, privateKeySecretRef: { name: "ssh" } } } });
      return { ...base, metadata: { name, namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "1" }, status: { publicKey: this.wg.get(name)!.publicKey } };
    });
  }

  secrets(): SecretObject[] {
    return [
      secret("ssh", { "ssh-privatekey": b64(this.sshKey.privateKey) }),
      ...this.names.map((n) => secret(`${n}-wireguard`, { privateKey: b64(this.wg.get(n)!.privateKey), publicKey: b64(this.wg.get(n)!.publicKey) })),
    ];
  }
}
