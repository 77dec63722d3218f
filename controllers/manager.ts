// Wires informers to work queues and reconcilers: watch events only put keys on queues;
// the reconcilers re-read everything they need (level-triggered).
import type { KubeConfig } from "@kubernetes/client-node";
import type { Subscription } from "rxjs";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { customResourceInformer, enqueue, keysOf, objectKey, secretInformer, type Informer, type SecretObject, type WatchEvent } from "../runtime/informer.js";
import { WorkQueue } from "../runtime/workqueue.js";
import { Semaphore } from "../runtime/semaphore.js";
import { customResourceStatusClient } from "../runtime/status.js";
import { eventRecorder } from "../runtime/events.js";
import { realClock, type Clock } from "../runtime/clock.js";
import { rootLogger, type Logger } from "../runtime/log.js";
import { findCondition } from "../runtime/conditions.js";
import { MachineReconciler } from "./machine.js";
import { MeshNetworkReconciler } from "./meshnetwork.js";
import { MACHINES, MESHNETWORKS, keySecretName } from "./resources.js";
import { canRelay } from "./relays.js";

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  logger?: Logger;
  clock?: Clock;
  /** Periodic drift check per machine (default 5 minutes). */
  resyncMs?: number;
  /** Re-check interval while peers have not handshaken (default 5 s). */
  pendingRequeueMs?: number;
  /** Machines reconciled at once (default 8). */
  concurrency?: number;
  /** SSH sessions open at once (default: concurrency). */
  sshConcurrency?: number;
}

export interface RunningControllers {
  machines: Informer<Machine>;
  meshes: Informer<MeshNetwork>;
  machineQueue: WorkQueue;
  meshQueue: WorkQueue;
  stop(): Promise<void>;
}

/** What about a Machine its peers and meshes depend on; a change here re-plans them. */
function peerFacts(m: Machine): string {
  return JSON.stringify([
    m.spec.endpoint ?? "",
    m.metadata.labels ?? {},
    m.status?.publicKey ?? "",
    Boolean(m.metadata.deletionTimestamp),
    canRelay(m),
    findCondition(m.status?.conditions, "Ready")?.status ?? "",
    findCondition(m.status?.conditions, "Reachable")?.status ?? "",
  ]);
}

export async function startControllers(opts: ControllerOptions): Promise<RunningControllers> {
  const kc = opts.kubeConfig;
  const log = opts.logger ?? rootLogger();
  const clock = opts.clock ?? realClock;
  const concurrency = opts.concurrency ?? 8;
  const common = { logger: log, clock };

  const machines = customResourceInformer<Machine>(kc, MACHINES, common);
  const meshes = customResourceInformer<MeshNetwork>(kc, MESHNETWORKS, common);
  const secrets = secretInformer(kc, common);
  const events = eventRecorder(kc, { logger: log, clock });

  const machineQueue = new WorkQueue({ name: "machine", concurrency, clock, logger: log });
  const meshQueue = new WorkQueue({ name: "meshnetwork", concurrency: 2, clock, logger: log });

  const machineReconciler = new MachineReconciler({
    kubeConfig: kc,
    machines,
    meshes,
    secrets,
    status: customResourceStatusClient<Machine>(kc, MACHINES),
    events,
    sshSlots: new Semaphore(opts.sshConcurrency ?? concurrency),
    clock,
    log,
    resyncMs: opts.resyncMs ?? 5 * 60_000,
    pendingRequeueMs: opts.pendingRequeueMs ?? 5_000,
  });
  const meshReconciler = new MeshNetworkReconciler({ machines, meshes, status: customResourceStatusClient<MeshNetwork>(kc, MESHNETWORKS), events, clock, log });

  const machinesIn = (ns: string | undefined) => machines.list(ns).map(objectKey);
  const meshesIn = (ns: string | undefined) => meshes.list(ns).map(objectKey);
  const facts = new Map<string, string>();

  const subs: Subscription[] = [
    // A Machine: itself; its namespace's meshes (membership, counts); and, when something its
    // peers plan with changed, the other machines of the namespace.
    enqueue(
      keysOf(machines.events$, (e: WatchEvent<Machine>) => {
        const key = objectKey(e.object);
        const f = e.type === "DELETED" ? "" : peerFacts(e.object);
        const changed = facts.get(key) !== f;
        if (e.type === "DELETED") facts.delete(key);
        else facts.set(key, f);
        if (changed) for (const k of meshesIn(e.object.metadata?.namespace)) meshQueue.add(k);
        return changed ? [key, ...machinesIn(e.object.metadata?.namespace)] : [key];
      }),
      machineQueue,
    ),
    enqueue(keysOf(meshes.events$), meshQueue),
    // A MeshNetwork's spec or allocations: every machine of its namespace re-plans.
    enqueue(
      keysOf(meshes.events$, (e) => machinesIn(e.object.metadata?.namespace)),
      machineQueue,
    ),
    // A Secret: the machines that log in with it or keep their WireGuard key in it.
    enqueue(
      keysOf(secrets.events$, (e: WatchEvent<SecretObject>) => {
        const ns = e.object.metadata?.namespace;
        const name = e.object.metadata?.name ?? "";
        return machines
          .list(ns)
          .filter((m) => m.spec.ssh.privateKeySecretRef.name === name || m.spec.ssh.bastion?.privateKeySecretRef.name === name || keySecretName(m.metadata.name ?? "") === name)
          .map(objectKey);
      }),
      machineQueue,
    ),
  ];

  for (const inf of [machines, meshes, secrets]) inf.start();
  await Promise.all([machines.synced(), meshes.synced(), secrets.synced()]);
  machineQueue.start((key) => machineReconciler.reconcile(key));
  meshQueue.start((key) => meshReconciler.reconcile(key));
  log.info("controllers running", { machines: machines.list().length, meshNetworks: meshes.list().length });

  return {
    machines,
    meshes,
    machineQueue,
    meshQueue,
    async stop() {
      for (const s of subs) s.unsubscribe();
      await Promise.all([machineQueue.shutdown(), meshQueue.shutdown()]);
      for (const inf of [machines, meshes, secrets]) inf.stop();
      await events.flush();
    },
  };
}
