// Wires informers to work queues and reconcilers: watch events only put keys on queues;
// the reconcilers re-read everything they need (level-triggered).
import { NatPaths } from "./nat-paths.js";
import type { Subscription } from "rxjs";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import type { ApiClient } from "../runtime/client.js";
import { customResourceInformer, enqueue, keysOf, objectKey, secretInformer, type Informer, type SecretObject, type WatchEvent } from "../runtime/informer.js";
import { WorkQueue } from "../runtime/workqueue.js";
import { SessionPool } from "../hosts/ssh-pool.js";
import { Semaphore } from "../runtime/semaphore.js";
import { customResourceStatusClient } from "../runtime/status.js";
import { eventRecorder } from "../runtime/events.js";
import { realClock, type Clock } from "../runtime/clock.js";
import { rootLogger, type Logger } from "../runtime/log.js";
import { MachineReconciler } from "./machine.js";
import { MeshNetworkReconciler } from "./meshnetwork.js";
import { MACHINES, MESHNETWORKS, OWNED_SECRETS_SELECTOR, keySecretName } from "./resources.js";
import { apiSecretReader, hostKeyRecordNamesOf } from "./ssh-target.js";
import { HOST_KEY_LABEL, apiHostKeyRecords } from "./host-keys.js";
import { findCondition } from "../runtime/conditions.js";
import { FanOut } from "./fanout.js";
import { PeerStats } from "./peer-stats.js";
import { DnsController, type DnsTimings } from "./dns.js";
import { sshConnector } from "./dns-link.js";

export interface ControllerOptions {
  api: ApiClient;
  logger?: Logger;
  clock?: Clock;
  /** Periodic drift check per machine (default 5 minutes). */
  resyncMs?: number;
  /** Re-check interval while peers have not handshaken (default 5 s). */
  pendingRequeueMs?: number;
  /** Ready check of a Ready machine's host between resyncs (default 30 s; 0: off). */
  readyCheckMs?: number;
  /** Machines reconciled at once (default 8). */
  concurrency?: number;
  /** SSH sessions open at once (default: concurrency). */
  sshConcurrency?: number;
  /** First retry after a missing SSH key Secret (default 10 s, doubling to 30 s). */
  secretRetryMs?: number;
  /** Mesh DNS records: timings (controllers/dns.ts DEFAULT_DNS_TIMINGS). */
  dnsTimings?: Partial<DnsTimings>;
}

export interface RunningControllers {
  machines: Informer<Machine>;
  meshes: Informer<MeshNetwork>;
  machineQueue: WorkQueue;
  meshQueue: WorkQueue;
  /** Per-peer numbers of each machine's last look at its host, for /metrics. */
  peerStats: PeerStats;
  /** Mesh DNS records (issue 13): per-host state for the DNSReady condition. */
  dns: DnsController;
  stop(): Promise<void>;
}

export async function startControllers(opts: ControllerOptions): Promise<RunningControllers> {
  const api = opts.api;
  const log = opts.logger ?? rootLogger();
  const clock = opts.clock ?? realClock;
  const concurrency = opts.concurrency ?? 32;
  const common = { logger: log, clock };

  const machines = customResourceInformer<Machine>(api, MACHINES, common);
  const meshes = customResourceInformer<MeshNetwork>(api, MESHNETWORKS, common);
  // Only the Secrets the controller made (WireGuard keys, host key records): a label selector on
  // list and watch, so no other Secret of the cluster is ever sent to or cached by it. SSH key
  // Secrets are read by name when a reconcile needs them.
  const secrets = secretInformer(api, { ...common, labelSelector: OWNED_SECRETS_SELECTOR });
  const events = eventRecorder(api, { logger: log, clock });

  const machineQueue = new WorkQueue({ name: "machine", concurrency, clock, logger: log });
  const meshQueue = new WorkQueue({ name: "meshnetwork", concurrency: 2, clock, logger: log });

  const peerStats = new PeerStats();
  const readSecret = apiSecretReader(api);
  const hostKeys = apiHostKeyRecords(api, secrets);
  // One SSH connection per host, shared by mesh DNS's event stream and the Machine looks.
  const sessions = new SessionPool();
  // Mesh DNS records: its own long-lived connections, not the reconcilers' SSH slots.
  const dns = new DnsController({
    machines,
    meshes,
    connector: sshConnector(readSecret, hostKeys, sessions),
    events,
    clock,
    log: log.child({ component: "dns" }),
    ...(opts.dnsTimings ? { timings: opts.dnsTimings } : {}),
  });
  const natPaths = new NatPaths();
  const machineReconciler = new MachineReconciler({
    natPaths,
    peerStats,
    dns,
    api,
    machines,
    meshes,
    secrets,
    readSecret,
    hostKeys,
    status: customResourceStatusClient<Machine>(api, MACHINES),
    events,
    sshSlots: new Semaphore(opts.sshConcurrency ?? concurrency),
    sessions,
    clock,
    log,
    resyncMs: opts.resyncMs ?? 5 * 60_000,
    pendingRequeueMs: opts.pendingRequeueMs ?? 5_000,
    ...(opts.readyCheckMs !== undefined ? { readyCheckMs: opts.readyCheckMs } : {}),
    ...(opts.secretRetryMs !== undefined ? { secretRetryMs: opts.secretRetryMs } : {}),
  });
  const meshReconciler = new MeshNetworkReconciler({ machines, meshes, status: customResourceStatusClient<MeshNetwork>(api, MESHNETWORKS), events, clock, log });

  const meshesIn = (ns: string | undefined) => meshes.list(ns).map(objectKey);
  const fanOut = new FanOut();

  const subs: Subscription[] = [
    // The cache caught up with a write of ours: its answer need not be kept (runtime/own-writes.ts).
    machines.events$.subscribe((e) => {
      if (e.type !== "DELETED") machineReconciler.cached(objectKey(e.object), e.object.metadata?.resourceVersion);
    }),
    // A Machine: itself; its namespace's meshes when their status depends on what changed; and
    // the other machines that plan or wait with it (controllers/fanout.ts).
    enqueue(
      keysOf(machines.events$, (e: WatchEvent<Machine>) => {
        const ns = e.object.metadata?.namespace;
        const to = fanOut.onMachine(e, () => machines.list(ns));
        if (to.meshes) for (const k of meshesIn(ns)) meshQueue.add(k);
        return to.machines;
      }),
      machineQueue,
    ),
    // A MeshNetwork: itself; the namespace's other meshes when it may clash with them, or no longer.
    enqueue(
      keysOf(meshes.events$, (e: WatchEvent<MeshNetwork>) => fanOut.onMeshForMeshes(e, () => meshes.list(e.object.metadata?.namespace))),
      meshQueue,
    ),
    // A MeshNetwork's spec or allocations: every machine of its namespace re-plans.
    enqueue(
      keysOf(meshes.events$, (e: WatchEvent<MeshNetwork>) => fanOut.onMesh(e, () => machines.list(e.object.metadata?.namespace))),
      machineQueue,
    ),
    // One of our Secrets: the machine that keeps its WireGuard key in it, or the machines whose
    // host key it records (a deleted record makes them stop: HostKeyUnknown).
    enqueue(
      keysOf(secrets.events$, (e: WatchEvent<SecretObject>) => {
        const ns = e.object.metadata?.namespace;
        const name = e.object.metadata?.name ?? "";
        if (!e.object.metadata?.labels?.[HOST_KEY_LABEL])
          return machines
            .list(ns)
            .filter((m) => keySecretName(m.metadata.name ?? "") === name)
            .map(objectKey);
        // A record this controller just made (and the replay of all of them at start) needs no
        // reconcile, save for machines waiting for one; names are hashes, so filter on that first.
        const candidates = machines.list(ns).filter((m) => e.type !== "ADDED" || findCondition(m.status?.conditions, "Reachable")?.reason === "HostKeyUnknown");
        return candidates.filter((m) => hostKeyRecordNamesOf(m).includes(name)).map(objectKey);
      }),
      machineQueue,
    ),
    // A machine's key Secret whose key changed: the machines of its namespace, which configure it as a peer.
    enqueue(
      keysOf(secrets.events$, (e: WatchEvent<SecretObject>) => {
        const ns = e.object.metadata?.namespace;
        const isKeySecret = (secret: string) => secret.endsWith("-wireguard") && machines.list(ns).some((m) => keySecretName(m.metadata.name ?? "") === secret);
        return fanOut.onKeySecret(e, isKeySecret, () => machines.list(ns));
      }),
      machineQueue,
    ),
  ];

  for (const inf of [machines, meshes, secrets]) inf.start();
  await Promise.all([machines.synced(), meshes.synced(), secrets.synced()]);
  machineQueue.start((key) => machineReconciler.reconcile(key));
  meshQueue.start((key) => meshReconciler.reconcile(key));
  // A host's records stream going or coming back: its Machine's DNSReady says so.
  const offDnsState = dns.onStateChange((key) => machineQueue.add(key));
  // A NAT mapping seen, or a NAT↔NAT pair's path moved on: the machines of the pair look again.
  const offNat = natPaths.onChange((ns, names) => {
    for (const n of names) machineQueue.add(`${ns}/${n}`);
  });
  dns.start();
  log.info("controllers running", { machines: machines.list().length, meshNetworks: meshes.list().length });

  return {
    machines,
    meshes,
    machineQueue,
    meshQueue,
    peerStats,
    dns,
    async stop() {
      for (const s of subs) s.unsubscribe();
      offDnsState();
      offNat();
      await dns.stop();
      await Promise.all([machineQueue.shutdown(), meshQueue.shutdown()]);
      // Informer.stop() is async (it completes events$ after the watch is aborted): wait for it, and see its errors.
      await Promise.all([machines, meshes, secrets].map((inf) => inf.stop()));
      await events.flush();
    },
  };
}
