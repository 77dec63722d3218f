// A MachineReconciler on in-memory caches, status and events, for tests that drive one
// reconcile at a time against simulated hosts (bench/sim) over real SSH.
import { KubeConfig } from "@kubernetes/client-node";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { MachineReconciler } from "../../controllers/machine.js";
import { realClock } from "../../runtime/clock.js";
import type { EventRecorder } from "../../runtime/events.js";
import type { Informer, SecretObject } from "../../runtime/informer.js";
import { silentLogger } from "../../runtime/log.js";
import { Semaphore } from "../../runtime/semaphore.js";
import type { StatusClient } from "../../runtime/status.js";

type Named = { metadata?: { name?: string; namespace?: string } };
const keyOf = (o: Named) => `${o.metadata?.namespace ?? "default"}/${o.metadata?.name}`;

/** An informer as the reconciler reads it: get and list from a map, set to change it. */
export interface FakeInformer<T> {
  informer: Informer<T & Named>;
  set(o: T): void;
}

export function fakeInformer<T extends Named>(objects: readonly T[]): FakeInformer<T> {
  const byKey = new Map(objects.map((o) => [keyOf(o), o]));
  const informer = {
    get: (key: string) => byKey.get(key),
    list: (ns?: string) => [...byKey.values()].filter((o) => ns === undefined || (o.metadata?.namespace ?? "default") === ns),
  } as unknown as Informer<T>;
  return { informer, set: (o) => byKey.set(keyOf(o), o) };
}

export const b64 = (s: string): string => Buffer.from(s).toString("base64");

export function secret(name: string, data: Record<string, string>, namespace = "default"): SecretObject {
  return { apiVersion: "v1", kind: "Secret", metadata: { name, namespace }, data } as SecretObject;
}

export interface Harness {
  reconciler: MachineReconciler;
  machines: FakeInformer<Machine>;
  /** The Secrets cache: a peer's key is published by setting its <machine>-wireguard Secret here. */
  secrets: FakeInformer<SecretObject>;
  /** Every status written, in order. */
  statuses: Machine[];
}

/**
 * The reconciler on fakes. Its kubeConfig points nowhere: a test must give it what it would
 * otherwise create through the API (machines with the finalizer, key Secrets in `secrets`).
 */
export function machineReconciler(machines: readonly Machine[], meshes: readonly MeshNetwork[], secrets: readonly SecretObject[]): Harness {
  const m = fakeInformer(machines);
  const sec = fakeInformer(secrets);
  const statuses: Machine[] = [];
  const status: StatusClient<Machine> = {
    get: async (ns, name) => m.informer.get(`${ns ?? "default"}/${name}`)!,
    replaceStatus: async (o) => {
      const written = { ...o, metadata: { ...o.metadata, resourceVersion: String(Number(o.metadata.resourceVersion ?? 0) + 1) } };
      statuses.push(written);
      m.set(written);
      return written;
    },
  };
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({ clusters: [{ name: "c", server: "https://127.0.0.1:1" }], users: [{ name: "u" }], contexts: [{ name: "x", cluster: "c", user: "u" }], currentContext: "x" });
  const reconciler = new MachineReconciler({
    kubeConfig,
    machines: m.informer,
    meshes: fakeInformer(meshes).informer,
    secrets: sec.informer,
    status,
    events: { event: async () => undefined } as unknown as EventRecorder,
    sshSlots: new Semaphore(2),
    clock: realClock,
    log: silentLogger(),
    resyncMs: 60_000,
    pendingRequeueMs: 5_000,
  });
  return { reconciler, machines: m, secrets: sec, statuses };
}
