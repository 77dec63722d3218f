// The Machine reconciler: level-triggered. Each call re-reads the Machine, its meshes and its
// own Secrets from the informers' caches (SSH key Secrets by name), plans, and converges the
// host over one SSH session.
import { createHash } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Machine, MachineStatus, MachineStatusNetwork, MeshNetwork } from "../api/types.generated.js";
import { resolveMesh, type ResolvedMesh } from "../mesh/defaults.js";
import { selectorMatches } from "../mesh/selector.js";
import { isMember, planHost, planMesh, type HostFacts, type Member, type MeshView, type NatPath, type NetworkPlan } from "../mesh/plan.js";
import { meshConflicts, meshKey } from "../mesh/conflicts.js";
import { connect, type HostSession, type SshEndpoint, type SshTarget } from "../hosts/ssh.js";
import { converge, teardown, type ConvergeInput, type ConvergeResult } from "../hosts/converge.js";
import { HostError } from "../hosts/errors.js";
import { hostFacts, type Probe } from "../hosts/observe.js";
import { DEFAULT_FRESH_FACTS } from "../hosts/fresh.js";
import { checkLiveness, type Liveness } from "../hosts/liveness.js";
import { containersDetached, describeDetached } from "../hosts/detach.js";
import type { PreviousNetwork } from "../hosts/diff.js";
import { findCondition, formatTime, setConditions } from "../runtime/conditions.js";
import { FactsSeen, objectKey, type Informer, type SecretObject } from "../runtime/informer.js";
import { meshPlanFacts, peerPlanFacts } from "./fanout.js";
import type { EventRecorder } from "../runtime/events.js";
import type { Logger } from "../runtime/log.js";
import type { Semaphore } from "../runtime/semaphore.js";
import type { StatusClient } from "../runtime/status.js";
import { STATUS_WRITE_FAILED, writeStatusVisibly } from "../runtime/status-failure.js";
import { OwnWrites } from "../runtime/own-writes.js";
import type { ReconcileResult } from "../runtime/workqueue.js";
import type { Clock } from "../runtime/clock.js";
import { ensureMachineKey, publicKeyFromSecret, type MachineKey } from "./keys.js";
import { checkAllocations } from "../mesh/allocations.js";
import { gatewayOf } from "../mesh/ipv4.js";
import { ambiguousForward, endpointIn } from "../mesh/endpoints.js";
import { previousFromStatus, recordedNetworks, withIntended } from "./previous-networks.js";
import { listed, listedPeers, machineConditions, peerReports, peersColumn, readyCondition, MACHINE_CONDITION_TYPES, type ConditionInput, type Outcome, type PeerReport } from "./machine-conditions.js";
import { FINALIZER, RELEASE_ANNOTATION, hasFinalizer, isDeleting, keySecretName, setFinalizers } from "./resources.js";
import { isProblem, recordHostKeys, sshEndpointIdOf, sshTargetFor, type HostKeyPlan, type ResolvedTarget, type SecretReader } from "./ssh-target.js";
import { hostKeyRecordName, type HostKeyRecords } from "./host-keys.js";
import { canRelay } from "./relays.js";
import { holdMtuUnderContainers } from "./mtu.js";
import { peerSamples, type PeerStats } from "./peer-stats.js";
import { DNS_CONDITION, dnsCondition, resolverVerdict, servingText, type ResolverVerdict } from "./dns-condition.js";
import type { DnsHostState } from "./dns.js";
import { DEFAULT_UNREACHABLE_GRACE_SECONDS } from "../mesh/defaults.js";
import { removeCondition } from "../runtime/conditions.js";
import { DEFAULT_READY_CHECK_MS } from "./machine-defaults.js";
import { NatPaths, PROBE_POLL_MS } from "./nat-paths.js";
import type { WgInterfaceState } from "../hosts/observe.js";

export interface MachineControllerDeps {
  kubeConfig: KubeConfig;
  machines: Informer<Machine>;
  meshes: Informer<MeshNetwork>;
  /** The Secrets the controller owns (labelled): WireGuard keys and host key records. */
  secrets: Informer<SecretObject>;
  /** Reads an SSH key Secret by name (those are not watched). */
  readSecret: SecretReader;
  /** SSH host keys recorded on first contact (controllers/host-keys.ts). */
  hostKeys: HostKeyRecords;
  status: StatusClient<Machine>;
  events: EventRecorder;
  sshSlots: Semaphore;
  clock: Clock;
  log: Logger;
  /** Periodic drift check (default 5 min). */
  resyncMs: number;
  /** Re-check sooner while peers have not handshaken yet. */
  pendingRequeueMs: number;
  /**
   * How often a Ready Machine's host is checked between resyncs (default 30 s; 0: never): one
   * light command over SSH (interfaces up, peers' handshakes). Ready=True is then at most this
   * plus the SSH connect timeout (10 s) old: a host that went away is Unreachable within 45 s.
   */
  readyCheckMs?: number;
  /**
   * First retry after an SSH key Secret was missing or lacked its key, doubling up to three
   * times this (default 10 s): no watch sees that Secret being created.
   */
  secretRetryMs?: number;
  /** Where each look at a host leaves its per-peer numbers, for /metrics (controllers/peer-stats.ts). */
  peerStats?: PeerStats;
  /** The mesh DNS records half (controllers/dns.ts): how it follows each host, for DNSReady. */
  dns?: { hostState(namespace: string, machine: string): DnsHostState | undefined };
  /** NAT↔NAT paths (controllers/nat-paths.ts), shared with the manager, which requeues the machines it names. */
  natPaths?: NatPaths;
}

/** What one reconcile plans from: the machine's meshes and peers as the caches have them. */
interface Snapshot {
  views: MeshView[];
  /** Why some meshes cannot be planned (invalid, or no subnet for this machine yet). */
  waiting: string[];
  /** Some of those are spec errors (not merely a subnet not allocated yet). */
  invalid: boolean;
  /** Some of those are meshes refused for clashing with another (mesh/conflicts.ts). */
  conflict: boolean;
  /** Meshes this machine belongs to. */
  keep: Set<string>;
  /** Digests of the views' shared parts (namespaceViews): with this machine's name and key, they stand for the views. */
  viewDigests: string[];
  /** Peers without a published key yet. */
  pending: string[];
  /** Networks recorded in status that are no longer wanted: torn down. */
  previous: PreviousNetwork[];
  /** Values refused where they were read (status, Secrets, spec), naming the field; left out of the plan. */
  refused: string[];
}

/** A valid mesh as every machine of its namespace plans with it (MachineReconciler.namespaceViews). */
interface MeshMemo {
  mesh: ResolvedMesh;
  obj: MeshNetwork;
  /** Why it is refused for clashing with another mesh (then nothing else is filled in). */
  refusal?: string;
  /** Machines with a valid allocation. */
  allocated: Set<string>;
  /** Members with a valid allocation, not being deleted, with their keys where known (from the cache). */
  members: Member[];
  /** Values refused in its allocations and its members' endpoints. */
  refused: string[];
  relayCandidates: string[];
  /** Members behind NAT (no endpoint). */
  natMembers: number;
  /** Digest of mesh, members and relay candidates. */
  digest: string;
}

interface NamespaceViews {
  version: number;
  all: ResolvedMesh[];
  meshes: MeshMemo[];
  invalid: Array<{ obj: MeshNetwork; message: string }>;
  /** Machines whose Reachable is False (a fact that moves inputsVersion: peerPlanFacts). */
  unmanaged: ReadonlySet<string>;
}

interface Converged {
  hash: string;
  at: number;
  /** Last time the host was looked at (the converge, or a Ready check since). */
  checkedAt: number;
  /**
   * Digest of the peers' states as status shows them (peerState), to notice a change. Digests,
   * not the plan: kept for every Machine, they stay O(1) in the mesh's size.
   */
  peers: string;
  /** Which of its peers the controller could not reach (unmanagedOf). */
  unmanaged: string;
}

const ORDER = [...MACHINE_CONDITION_TYPES, DNS_CONDITION] as readonly string[];

/** Peers' states as status shows them, to compare one look at the host with the last. */
const peerState = (peers: readonly PeerReport[]): string =>
  createHash("sha256")
    .update(JSON.stringify(peers.map((p) => [p.machine, p.state, Boolean(p.unmanaged)])))
    .digest("hex");

/** A machine created this recently without a key or subnet yet is arriving (settleFirstContact). */
const ARRIVAL_WINDOW_MS = 60_000;
/** How long a namespace's arrivals are reused (settleFirstContact's looks are lookups). */
const ARRIVALS_TTL_MS = 250;
/** Longest wait of a first contact for arriving machines, and how often it looks again. */
const FIRST_CONTACT_SETTLE_MS = 15_000;
const SETTLE_POLL_MS = 1_000;

/** Converges in one reconcile: the first, and again while the plan changed under it. */
const MAX_CONVERGE_PASSES = 3;


/**
 * The SSH target as far as it bears on what a reconcile does, for the converged hash: keys as
 * digests, and without the host keys recorded on first contact. Recording them is this
 * controller's own status write; it changes nothing on the host and must not make the next
 * reconcile contact the host again (a pin in spec still counts).
 */
function targetIdentity(t: SshTarget): object {
  const digest = (s: string) => createHash("sha256").update(s).digest("hex");
  const strip = ({ recordedFingerprint: _recorded, privateKey, ...rest }: SshEndpoint) => ({ ...rest, privateKey: digest(privateKey) });
  return { ...strip(t), ...(t.bastion ? { bastion: strip(t.bastion) } : {}) };
}

export class MachineReconciler {
  /** This controller's own Machine writes, until the informer cache has them (runtime/own-writes.ts). */
  private readonly own = new OwnWrites<Machine>();
  /** key → plan hash of the last converge that left nothing to do. */
  private readonly converged = new Map<string, Converged>();
  /** key → what the last converge found of the mesh DNS resolvers (for DNSReady between converges). */
  private readonly resolvers = new Map<string, ResolverVerdict | undefined>();
  /** Namespace → what its machines plan with, valid while inputsVersion is unchanged. */
  private readonly viewsMemo = new Map<string, NamespaceViews>();
  /**
   * Counts changes of what plans are made from (a Machine's spec, labels, deletion, relay ability;
   * a MeshNetwork's spec and allocations; our Secrets). Undefined without watch events (test fakes):
   * nothing is memoized then.
   */
  private inputsVersion: number | undefined;
  /** Machines whose first outcome was left unwritten (quietFirstWait). */
  private readonly quieted = new Set<string>();
  /** key → when its first contact began waiting for machines created with it (settleFirstContact). */
  private readonly settling = new Map<string, { since: number; next: number }>();
  /** Namespace → its meshes' arriving machines (arrivals), and when that was computed. */
  private readonly arrivalsMemo = new Map<string, { at: number; meshes: Array<{ mesh: ResolvedMesh; names: Set<string> }> }>();
  /** key → reconciles in a row that found its SSH key Secret missing or without the key. */
  private readonly secretMisses = new Map<string, number>();
  /** Ready checks made (stillReady), for tests and benchmarks. */
  readyChecks = 0;
  /** Machines being reconciled right now (for Probe.wait: their hosts may come up within seconds). */
  private readonly inFlight = new Set<string>();
  /** The facts of the host converged last: a fresh host's are guessed alike (fleets are). */
  private factsGuess: HostFacts | undefined;
  private readonly nat: NatPaths;
  /** Machines with a NAT↔NAT pair being probed: looked at every PROBE_POLL_MS, never by the Ready check alone. */
  private readonly natProbing = new Set<string>();

  constructor(private readonly d: MachineControllerDeps) {
    this.nat = d.natPaths ?? new NatPaths();
    const machines$ = (d.machines as Partial<Informer<Machine>>).events$;
    const meshes$ = (d.meshes as Partial<Informer<MeshNetwork>>).events$;
    const secrets$ = (d.secrets as Partial<Informer<SecretObject>>).events$;
    if (!machines$ || !meshes$ || !secrets$) return;
    this.inputsVersion = 0;
    const bump = () => void (this.inputsVersion = (this.inputsVersion ?? 0) + 1);
    // Subscribed before the manager's: the version moves before any reconcile the event asks for.
    const machineFacts = new FactsSeen();
    const meshFacts = new FactsSeen();
    machines$.subscribe((e) => {
      if (machineFacts.changed(e, (m) => JSON.stringify([peerPlanFacts(m), canRelay(m), m.metadata?.uid]))) bump();
    });
    meshes$.subscribe((e) => {
      if (meshFacts.changed(e, meshPlanFacts)) bump();
    });
    secrets$.subscribe(bump);
  }

  private secret = (ns: string, name: string) => this.d.secrets.get(`${ns}/${name}`);

  async reconcile(key: string): Promise<ReconcileResult | void> {
    this.inFlight.add(key);
    try {
      return await this.reconcileMachine(key);
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async reconcileMachine(key: string): Promise<ReconcileResult | void> {
    const tStart = performance.now();
    const inCache = this.d.machines.get(key);
    if (!inCache) {
      this.own.forget(key);
      this.converged.delete(key);
      this.resolvers.delete(key);
      this.secretMisses.delete(key);
      this.settling.delete(key);
      this.quieted.delete(key);
      this.natProbing.delete(key);
      this.nat.forgetMachine(key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1));
      this.d.peerStats?.forget(key);
      return;
    }
    // The Machine as last written by this reconcile: each status write moves its resourceVersion on.
    // It starts from this controller's last write if the cache is still older than that.
    let m: Machine = this.own.fresh(key, inCache);
    if (isDeleting(m)) return this.finalize(m, key);
    if (!hasFinalizer(m)) {
      // Go on with the object as patched: its key and first contact need not wait for the watch.
      const patched = await setFinalizers(this.d.kubeConfig, m, [...(m.metadata.finalizers ?? []), FINALIZER]);
      this.own.wrote(key, m.metadata.resourceVersion, patched);
      if (!patched || !hasFinalizer(patched)) return; // changed meanwhile: its next event reconciles again
      m = patched;
    }
    const waitLeft = this.settleWaitLeft(key);
    if (waitLeft > 0) return { requeueAfter: waitLeft };

    const ns = m.metadata.namespace ?? "default";
    const name = m.metadata.name ?? "";
    // Peers take the key from its Secret (never from status): status.publicKey is written with the
    // first outcome, not in a write of its own.
    const machineKey = await ensureMachineKey(this.d.kubeConfig, m, this.secret(ns, keySecretName(name)));
    const settle = this.settleFirstContact(m, key);
    if (settle !== undefined) return { requeueAfter: settle };
    const resolved = await sshTargetFor(m, this.d.readSecret, this.d.hostKeys);
    const wasFresh = !m.status?.networks?.length;
    let snap = this.snapshot(m, machineKey);

    if (isProblem(resolved)) {
      this.converged.delete(key);
      await this.writeOutcome(m, { kind: "setup", problem: resolved }, undefined, machineKey);
      return { requeueAfter: this.problemRetry(key, resolved.reason) };
    }
    this.secretMisses.delete(key);
    const target = resolved.target;
    if (snap.views.length === 0 && snap.waiting.length > 0 && snap.previous.length === 0) {
      // Nothing to configure (its meshes are invalid or have no subnet for it yet) and nothing to
      // tear down: the host is not contacted; the condition says what is missing.
      const problem = { condition: "NetworkConfigured" as const, reason: snap.conflict ? "MeshConflict" : snap.invalid ? "InvalidSpec" : "WaitingForSubnet", message: snap.waiting.join("; ") };
      await this.writeOutcome(m, { kind: "setup", problem }, undefined, machineKey);
      return { requeueAfter: this.d.resyncMs };
    }
    const targetHash = targetIdentity(target);
    const hashOf = (x: Snapshot) =>
      createHash("sha256")
        .update(JSON.stringify({ views: x.viewDigests, previous: x.previous, pub: machineKey.publicKey, name, target: targetHash, gen: m.metadata.generation, waiting: x.waiting, pending: x.pending, refused: x.refused, nat: m.spec.endpoint ? 0 : this.nat.version(ns) }))
        .digest("hex");
    const last = this.converged.get(key);
    const now = this.d.clock.now();
    // Claimed Ready only while the object says so too: a status that says otherwise (written by
    // anyone, or a write of ours the claim outlived) is corrected by converging, not trusted.
    if (last && last.hash === hashOf(snap) && now - last.at < this.d.resyncMs && findCondition(m.status?.conditions, "Ready")?.status === "True" && !this.natProbing.has(key)) {
      const toResync = this.d.resyncMs - (now - last.at);
      const every = this.d.readyCheckMs ?? DEFAULT_READY_CHECK_MS;
      if (!(every > 0)) return { requeueAfter: toResync };
      const due = last.checkedAt + every - now;
      // Unless a peer's Machine turned Reachable=False or back (its state counts differently now),
      // Ready is claimed: once due, check it still holds (the host answers, interfaces up, peers
      // handshaking). Otherwise converge below and write what it finds.
      if (last.unmanaged === this.unmanagedOf(m, snap.views)) {
        // The records half saw the host's stream go or come back: DNSReady says so, nothing else changes.
        await this.refreshDnsCondition(m, key);
        if (due > 0) return { requeueAfter: Math.min(due, toResync) };
        // The plan is the one converged (same hash); its MTU aside, which peer reports do not use.
        if (await this.stillReady(m, key, resolved, last, machineKey, this.guessPlan(m, snap.views))) return { requeueAfter: Math.min(every, toResync) };
      }
    }

    // Nothing recorded for the host and nothing of it planned before: it most likely has nothing
    // of ours, so its first converge can be one round trip (hosts/fresh.ts), with these facts.
    const fresh = wasFresh && snap.previous.length === 0 && !last ? (this.factsGuess ?? DEFAULT_FRESH_FACTS) : undefined;
    const t0 = performance.now();
    await this.d.sshSlots.acquire();
    const tSlot = performance.now();
    let session: HostSession | undefined;
    try {
      try {
        session = await connect(target);
        // A host with nothing recorded gets its first converge in one round trip (hosts/fresh.ts):
        // the networks it is about to get go on record (status.networks, for teardown) meanwhile.
        if (fresh) {
          const intended = this.recordIntended(m, planHost(ns, name, snap.views, fresh).networks).then((x) => {
            if (x) m = x;
          });
          await Promise.all([this.recordHostKeys(m, resolved.hostKeys, session), intended]);
        } else {
          await this.recordHostKeys(m, resolved.hostKeys, session);
        }
      } catch (err) {
        if (!(err instanceof HostError)) throw err;
        this.converged.delete(key);
        await this.writeOutcome(m, { kind: "hostError", reason: err.reason, message: err.message, stage: "connect" }, undefined, machineKey);
        throw new Error(`machine ${key}: ${err.message}`, { cause: err });
      }
      const tConnected = performance.now();
      const wasReady = findCondition(m.status?.conditions, "Ready")?.status === "True";
      let mtuPending: string[] = [];
      let result: ConvergeResult;
      const input: ConvergeInput = {
        plan: (obs) => {
          // Plan from the caches as they are now, once connected and observed: the keys peers
          // published meanwhile (all machines of a new mesh publish theirs at about the same
          // time) go into this apply rather than into another reconcile's.
          snap = this.refreshed(m, machineKey, snap);
          const views = this.withNatPaths(m, snap.views, obs.wg);
          const held = holdMtuUnderContainers(planHost(ns, name, views, hostFacts(obs)).networks, obs);
          mtuPending = held.pending;
          return held.networks;
        },
        // A first converge planned from guessed facts (hosts/fresh.ts): no containers to hold an MTU for yet.
        planWith: (facts) => {
          snap = this.refreshed(m, machineKey, snap);
          return planHost(ns, name, snap.views, facts).networks;
        },
        privateKey: machineKey.privateKey,
        publicKey: machineKey.publicKey,
        previous: snap.previous,
        probes: (nets, o) => this.probes(nets, o?.settle ? ns : undefined),
        log: (line) => this.d.log.info(line, { machine: key }),
        beforeApply: async (steps, networks, obs) => {
          // On record before the host has it: a new mesh's names go into status first.
          m = (await this.recordIntended(m, networks)) ?? m;
          // A mesh this machine left (deleted, or its labels no longer match): its Docker network
          // goes, and containers on it are disconnected first. Say which.
          const detached = containersDetached(steps, obs);
          if (detached.length) {
            await this.d.events.event(m, "Warning", "ContainersDetached", `leaving a MeshNetwork: ${describeDetached(detached)}; they keep running without that network`);
          }
          // Drift on a host that was converged for the same plan: say so before repairing it.
          if (wasReady && last?.hash === hashOf(snap)) {
            const what = [...new Set(steps.map((s) => s.display))].sort();
            this.d.log.warn("drift found; repairing", { machine: key, changes: what });
            await this.d.events.event(m, "Warning", "DriftDetected", `the host drifted from the plan; repairing: ${listed(what, "; ")}`);
            m = (await this.writeDrift(m, what)) ?? m;
          }
        },
      };
      try {
        result = await converge(session, input, this.guessPlan(m, snap.views), fresh ? { fresh } : {});
        this.factsGuess = hostFacts(result.observation);
        // Keys peers published while this converge ran (machines created together publish theirs
        // within a second or so): apply them now on this session, rather than in another
        // reconcile after a status write, a new connection and its observe. Bounded.
        for (let pass = 1; pass < MAX_CONVERGE_PASSES && !result.applyError && hashOf(this.refreshed(m, machineKey, snap)) !== hashOf(snap); pass++) {
          const { applied, timings } = result;
          // The host as the last pass left it, observed on this session: planned again without looking again.
          result = await converge(session, input, result.networks, { observation: result.observation });
          result = { ...result, applied: [...applied, ...result.applied], timings: [...(timings ?? []), ...(result.timings ?? [])] };
        }
      } catch (err) {
        if (!(err instanceof HostError)) throw err;
        this.converged.delete(key);
        const stage = err.reason === "MissingTools" || err.reason === "DockerNotRunning" ? "preflight" : "connect";
        await this.writeOutcome(m, { kind: "hostError", reason: err.reason, message: err.message, stage }, session, machineKey);
        throw new Error(`machine ${key}: ${err.message}`, { cause: err });
      }
      const tConverged = performance.now();
      const unmanaged = this.unmanaged(ns);
      const peers = peerReports(result.networks, result.observation, Math.floor(this.d.clock.now() / 1000), unmanaged);
      this.d.peerStats?.record(ns, name, peerSamples(result.networks, result.observation.wg));
      const via = `${target.user}@${target.host}:${target.port}${target.bastion ? ` via bastion ${target.bastion.host}` : ""}`;
      const outcome: Outcome = { kind: "converged", result, connectedVia: `ssh ${via}`, peers, planErrors: snap.waiting, ...(snap.conflict ? { planErrorReason: "MeshConflict" } : {}), pendingPeers: snap.pending, mtuPending, refusedValues: snap.refused };
      if (this.quietFirstWait(m, key, outcome)) {
        if (result.applied.length) void this.d.events.event(m, "Normal", "Configured", `applied ${result.applied.length} change(s): ${[...new Set(result.applied.map((s) => s.display))].slice(0, 8).join("; ")}`);
        this.d.log.debug("configured; peers' handshakes pending, status written at the next look", { machine: key, applied: result.applied.length });
        return { requeueAfter: this.d.pendingRequeueMs };
      }
      const ready = await this.writeOutcome(m, outcome, session, machineKey, snap.keep);
      const ambiguous = ambiguousForward(m, snap.views.map((v) => v.mesh));
      // Events are recorded on the side (the recorder never rejects): not on the way to the next reconcile.
      if (ambiguous) void this.d.events.event(m, "Warning", "EndpointPortAmbiguous", ambiguous);
      if (result.applied.length) {
        void this.d.events.event(m, "Normal", "Configured", `applied ${result.applied.length} change(s): ${[...new Set(result.applied.map((s) => s.display))].slice(0, 8).join("; ")}`);
      }
      const ms = (a: number, b: number) => Math.round(b - a);
      this.d.log.debug("reconciled", { machine: key, ready, applied: result.applied.length, prepareMs: ms(tStart, t0), slotWaitMs: ms(t0, tSlot), connectMs: ms(tSlot, tConnected), convergeMs: ms(tConnected, tConverged), roundTrips: (result.timings ?? []).join(", "), statusMs: ms(tConverged, performance.now()) });
      if (result.applyError) throw new Error(`machine ${key}: ${result.applyError.message}`, { cause: result.applyError });
      const probing = result.networks.some((n) => n.natPaths?.some((p) => p.path === "Probing"));
      if (probing) this.natProbing.add(key);
      else this.natProbing.delete(key);
      if (ready) {
        const at = this.d.clock.now();
        this.converged.set(key, { hash: hashOf(snap), at, checkedAt: at, peers: peerState(peers), unmanaged: this.unmanagedOf(m, snap.views) });
        const every = this.d.readyCheckMs ?? DEFAULT_READY_CHECK_MS;
        if (probing) return { requeueAfter: PROBE_POLL_MS };
        return { requeueAfter: every > 0 ? Math.min(every, this.d.resyncMs) : this.d.resyncMs };
      }
      this.converged.delete(key);
      return { requeueAfter: probing ? Math.min(PROBE_POLL_MS, this.d.pendingRequeueMs) : this.d.pendingRequeueMs };
    } finally {
      session?.close();
      this.d.sshSlots.release();
    }
  }

  /**
   * The first outcome of a host configured just now, when all that keeps it from Ready is peers'
   * handshakes (they are being configured at the same moment): not written. The next look, a
   * pending period later, writes what it finds. Saved a status write and a Warning Event per
   * machine of a mesh created at once, for a state that lasts seconds. Once per machine.
   */
  private quietFirstWait(m: Machine, key: string, outcome: Outcome): boolean {
    if (outcome.kind !== "converged" || !outcome.result.applied.length || findCondition(m.status?.conditions, "Ready") || this.quieted.has(key)) return false;
    const ready = readyCondition(machineConditions(outcome));
    if (ready.status === "True" || ready.reason !== "HandshakePending") return false;
    if (this.quieted.size >= 100_000) this.quieted.clear();
    this.quieted.add(key);
    return true;
  }

  /** Peers whose own Machine says the controller cannot reach them (not held against this one). */
  private unmanaged(ns: string): ReadonlySet<string> {
    return this.namespaceViews(ns).unmanaged;
  }

  /** The peers' states with these handshakes, as peerState writes them. */
  private peerStates(m: Machine, networks: readonly NetworkPlan[], wg: Liveness["wg"]): string {
    return peerState(peerReports(networks, { wg }, Math.floor(this.d.clock.now() / 1000), this.unmanaged(m.metadata.namespace ?? "default")));
  }

  /** The members of these meshes the controller cannot reach now, sorted. */
  private unmanagedOf(m: Machine, views: readonly MeshView[]): string {
    const out = this.unmanaged(m.metadata.namespace ?? "default");
    return JSON.stringify([...new Set(views.flatMap((v) => v.members.map((x) => x.name)).filter((x) => out.has(x)))].sort());
  }

  /**
   * The Ready check of a converged Machine: one SSH connection and one light command. True: it
   * still holds, nothing to write. False: something changed (an interface gone or down, a peer's
   * state): the caller converges and writes what it finds. A host that cannot be reached is
   * written as such at once (Ready=False), and retried with backoff.
   */
  private async stillReady(m: Machine, key: string, resolved: ResolvedTarget, last: Converged, machineKey: MachineKey, networks: readonly NetworkPlan[]): Promise<boolean> {
    this.readyChecks++;
    await this.d.sshSlots.acquire();
    let session: HostSession | undefined;
    try {
      let live: Liveness;
      try {
        session = await connect(resolved.target);
        await this.recordHostKeys(m, resolved.hostKeys, session);
        live = await checkLiveness(
          session,
          networks.map((n) => n.wireguard.interface),
          this.probes(networks),
        );
      } catch (err) {
        if (!(err instanceof HostError)) throw err;
        this.converged.delete(key);
        await this.writeOutcome(m, { kind: "hostError", reason: err.reason, message: err.message, stage: "connect" }, undefined, machineKey);
        throw new Error(`machine ${key}: ${err.message}`, { cause: err });
      }
      this.d.peerStats?.record(m.metadata.namespace ?? "default", m.metadata.name ?? "", peerSamples(networks, live.wg));
      // A public member's look tells its NAT'd peers' mappings (a NAT rebinding is seen here first).
      const ns = m.metadata.namespace ?? "default";
      if (m.spec.endpoint && this.namespaceViews(ns).meshes.some((x) => x.natMembers >= 2)) this.withNatPaths(m, this.meshViews(m, machineKey).views, live.wg);
      // An interface without peers prints no handshake line: "up" is the link's state.
      const up = networks.every((n) => live.links.get(n.wireguard.interface) === true);
      const same = up && this.peerStates(m, networks, live.wg) === last.peers;
      if (same) last.checkedAt = this.d.clock.now();
      else this.converged.delete(key);
      return same;
    } finally {
      session?.close();
      this.d.sshSlots.release();
    }
  }

  /** When to look again at a Machine with a setup problem: soon for a missing SSH key Secret. */
  private problemRetry(key: string, reason: string): number {
    if (reason !== "SecretNotFound" && reason !== "SecretKeyMissing") return this.d.resyncMs;
    const base = this.d.secretRetryMs ?? 10_000;
    const n = this.secretMisses.get(key) ?? 0;
    this.secretMisses.set(key, n + 1);
    return Math.min(base * 2 ** n, 3 * base, this.d.resyncMs);
  }

  /** Records host keys seen on first contact (and follows pins) before anything is sent to the host. */
  private async recordHostKeys(m: Machine, plans: readonly HostKeyPlan[], session: HostSession): Promise<void> {
    for (const r of await recordHostKeys(m, plans, session, this.d.hostKeys)) {
      this.d.log.info("host key recorded on first contact", { machine: `${m.metadata.namespace}/${m.metadata.name}`, endpoint: r.id, fingerprint: r.fingerprint });
      void this.d.events.event(
        m,
        "Normal",
        "HostKeyRecorded",
        `first contact with ssh ${r.id}: recorded its host key ${r.fingerprint}, enforced from now on; verify it out of band (on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and pin it: set ${r.field}.hostKey`,
      );
    }
  }

  private snapshot(m: Machine, key: MachineKey): Snapshot {
    const v = this.meshViews(m, key);
    const prev = previousFromStatus(m, v.keep);
    return { ...v, previous: prev.previous, refused: [...v.refused, ...prev.refused].sort() };
  }

  /** The snapshot taken again; kept as it was if the set of meshes changed (teardown was decided on it). */
  private refreshed(m: Machine, key: MachineKey, before: Snapshot): Snapshot {
    const now = this.snapshot(m, key);
    const same = now.keep.size === before.keep.size && [...now.keep].every((k) => before.keep.has(k));
    return same ? now : before;
  }

  /**
   * What every machine of a namespace plans with, computed once per change of the caches' plan
   * inputs (planInputs): the meshes resolved, their clashes and, per valid mesh, its members with
   * keys and endpoints and a digest of them. Recomputed per reconcile, this was O(N) per machine
   * (a key check, an endpoint check and a JSON digest per member) several times per reconcile:
   * the bulk of the controller's CPU at 300 simulated machines.
   */
  private namespaceViews(ns: string): NamespaceViews {
    const memo = this.viewsMemo.get(ns);
    if (memo && this.inputsVersion !== undefined && memo.version === this.inputsVersion) return memo;
    const all: ResolvedMesh[] = [];
    const valid: Array<{ mesh: ResolvedMesh; obj: MeshNetwork }> = [];
    const invalid: NamespaceViews["invalid"] = [];
    for (const obj of this.d.meshes.list(ns)) {
      if (obj.metadata.deletionTimestamp) continue;
      const r = resolveMesh(obj);
      if (r.mesh) {
        all.push(r.mesh);
        valid.push({ mesh: r.mesh, obj });
      } else invalid.push({ obj, message: `MeshNetwork ${obj.metadata.name} is invalid: ${r.errors.map((e) => `${e.field}: ${e.message}`).join("; ")}` });
    }
    // Meshes that clash on a machine with one that came first: the decision `dockmesh plan` makes.
    const conflicts = valid.length ? meshConflicts(all, this.d.machines.list(ns)) : new Map<string, never>();
    const meshes: MeshMemo[] = [];
    for (const { mesh, obj } of valid.sort((a, b) => (a.mesh.name < b.mesh.name ? -1 : 1))) {
      const refusal = conflicts.get(meshKey(mesh));
      if (refusal) {
        meshes.push({ mesh, obj, refusal: `MeshNetwork ${mesh.name}: ${refusal.field}: ${refusal.message}`, allocated: new Set(), members: [], refused: [], relayCandidates: [], natMembers: 0, digest: "" });
        continue;
      }
      const checked = checkAllocations(mesh, obj.status?.allocations ?? []);
      const refused = [...checked.refused];
      const members: Member[] = [];
      for (const a of checked.valid) {
        const peer = this.d.machines.get(`${ns}/${a.machine}`);
        if (!peer || isDeleting(peer)) continue;
        // The peer's key from the Secret the controller generated for it, never from its status.
        const publicKey = publicKeyFromSecret(this.secret(ns, keySecretName(a.machine)), peer);
        // Each mesh's own port on the peer's one endpoint (mesh/endpoints.ts has the rule).
        const written = peer.spec.endpoint;
        const { endpoint, refused: bad } = endpointIn(peer, mesh, all.filter((x) => isMember(x, peer)));
        refused.push(...bad);
        if (written && !endpoint) continue;
        members.push({ name: a.machine, subnet: a.subnet, ...(endpoint ? { endpoint } : {}), ...(publicKey ? { publicKey } : {}) });
      }
      // Relays matter only where two members are behind NAT (a pair to relay). Elsewhere the list is
      // left empty, so peers' status changing (which decides who can relay) leaves this plan, and
      // its hash, as they are: no re-converge of every host when the others turn Ready.
      const natMembers = members.filter((x) => !x.endpoint).length;
      const relayCandidates = natMembers >= 2 ? members.filter((x) => canRelay(this.d.machines.get(`${ns}/${x.name}`))).map((x) => x.name) : [];
      const digest = createHash("sha256").update(JSON.stringify({ mesh, members, relayCandidates })).digest("hex");
      meshes.push({ mesh, obj, allocated: new Set(checked.valid.map((a) => a.machine)), members, refused, relayCandidates, natMembers, digest });
    }
    const unmanaged = new Set(this.d.machines.list(ns).filter((x) => findCondition(x.status?.conditions, "Reachable")?.status === "False").map((x) => x.metadata.name ?? ""));
    const views: NamespaceViews = { version: this.inputsVersion ?? -1, all, meshes, invalid, unmanaged };
    if (this.inputsVersion !== undefined) {
      if (this.viewsMemo.size > 1_000) this.viewsMemo.clear();
      this.viewsMemo.set(ns, views);
    }
    return views;
  }

  /** The meshes this machine belongs to, as planHost needs them; and why some cannot be planned yet. */
  private meshViews(m: Machine, key: MachineKey): Omit<Snapshot, "previous"> {
    const name = m.metadata.name ?? "";
    const nsViews = this.namespaceViews(m.metadata.namespace ?? "default");
    const views: MeshView[] = [];
    const digests: string[] = [];
    const waiting: string[] = [];
    const keep = new Set<string>();
    const pending = new Set<string>();
    const refused: string[] = [];
    let invalid = false;
    let conflict = false;
    for (const { obj, message } of nsViews.invalid) {
      // An invalid MeshNetwork this machine belongs to: nothing is planned for it, and what the
      // host has for it stays as it is (a typo in a spec tears nothing down). The machine says why.
      if (!selectorMatches(obj.spec.machineSelector, m.metadata.labels)) continue;
      keep.add(obj.metadata.name ?? "");
      invalid = true;
      waiting.push(message);
    }
    for (const x of nsViews.meshes) {
      if (!isMember(x.mesh, m)) continue;
      keep.add(x.mesh.name);
      if (x.refusal) {
        // Like an invalid spec: nothing planned for it, and nothing of it torn down (kept).
        invalid = conflict = true;
        waiting.push(x.refusal);
        continue;
      }
      refused.push(...x.refused);
      if (!x.allocated.has(name)) {
        const why = this.refusals(x.mesh, x.obj, name, nsViews.all);
        if (why.length) invalid = true;
        waiting.push(why.length ? `MeshNetwork ${x.mesh.name} refuses this machine a subnet: ${why.join("; ")}` : `MeshNetwork ${x.mesh.name} has not allocated a subnet to this machine yet`);
        continue;
      }
      // Its own key as this reconcile holds it (its Secret may not be in the cache yet).
      const members = x.members.map((p) => (p.name === name ? { ...p, publicKey: key.publicKey } : p));
      // Peers whose key is not known yet are left out until their first reconcile publishes it.
      for (const p of members) if (!p.publicKey) pending.add(p.name);
      views.push({ mesh: x.mesh, members: members.filter((p) => p.publicKey), relayCandidates: x.relayCandidates });
      digests.push(x.digest);
    }
    return { views, viewDigests: digests, waiting: waiting.sort(), invalid, conflict, keep, pending: [...pending].sort(), refused };
  }

  /**
   * Per mesh of a namespace, the members created within ARRIVAL_WINDOW_MS that have no subnet or
   * no key yet: machines created together, whose keys and subnets come within seconds. Computed
   * once per ARRIVALS_TTL_MS for the namespace (a wait's look is then a lookup, not a re-plan).
   */
  private arrivals(ns: string): Array<{ mesh: ResolvedMesh; names: Set<string> }> {
    const now = this.d.clock.now();
    const memo = this.arrivalsMemo.get(ns);
    if (memo && now - memo.at < ARRIVALS_TTL_MS) return memo.meshes;
    const recent = (x: Machine) => {
      const created = x.metadata.creationTimestamp;
      const t = created ? new Date(created).getTime() : NaN;
      return Number.isFinite(t) && now - t < ARRIVAL_WINDOW_MS;
    };
    const young = this.d.machines.list(ns).filter((x) => recent(x) && !isDeleting(x));
    const meshes: Array<{ mesh: ResolvedMesh; names: Set<string> }> = [];
    for (const obj of young.length ? this.d.meshes.list(ns) : []) {
      const mesh = obj.metadata.deletionTimestamp ? undefined : resolveMesh(obj).mesh;
      if (!mesh) continue;
      const allocated = new Set((obj.status?.allocations ?? []).map((a) => a.machine));
      const names = new Set(
        young
          .filter((x) => isMember(mesh, x))
          .map((x) => ({ x, name: x.metadata.name ?? "" }))
          .filter(({ x, name }) => !allocated.has(name) || !publicKeyFromSecret(this.secret(ns, keySecretName(name)), x))
          .map(({ name }) => name),
      );
      if (names.size) meshes.push({ mesh, names });
    }
    if (this.arrivalsMemo.size > 1_000) this.arrivalsMemo.clear();
    this.arrivalsMemo.set(ns, { at: now, meshes });
    return meshes;
  }

  /**
   * Before the first contact with a host that has nothing of ours yet: while machines created with
   * it (in one of its meshes) still lack a key or a subnet, wait (a second at a time,
   * FIRST_CONTACT_SETTLE_MS at most) so that its first converge configures them all. Converging at
   * once and again for each arrival cost a mesh created at once ~4 converges and ~10 round trips
   * per host. The wait writes nothing. Returns the requeue delay, or undefined to go on.
   */
  private settleFirstContact(m: Machine, key: string): number | undefined {
    // Its own key is there by now: it is among them only while its own subnet is not.
    const waitFor = () => this.arrivals(m.metadata.namespace ?? "default").some((a) => isMember(a.mesh, m));
    if (this.converged.has(key) || (m.status?.networks?.length ?? 0) > 0 || !waitFor()) {
      this.settling.delete(key);
      return undefined;
    }
    const now = this.d.clock.now();
    const since = this.settling.get(key)?.since ?? now;
    if (now - since >= FIRST_CONTACT_SETTLE_MS) return undefined;
    this.settling.set(key, { since, next: now + SETTLE_POLL_MS });
    return SETTLE_POLL_MS;
  }

  /**
   * While a first contact waits, the events of every arriving key Secret and subnet requeue it:
   * it looks again only once a poll period has passed.
   */
  private settleWaitLeft(key: string): number {
    const s = this.settling.get(key);
    return s ? s.next - this.d.clock.now() : 0;
  }

  /**
   * Why a mesh refuses this machine a subnet (a pin outside the pool, taken, of the wrong size; a
   * full pool): the errors the MeshNetwork controller's own plan gives for it, from the same caches.
   */
  private refusals(mesh: ResolvedMesh, obj: MeshNetwork, name: string, all: readonly ResolvedMesh[]): string[] {
    const plan = planMesh(mesh, this.d.machines.list(mesh.namespace), { existing: obj.status?.allocations ?? [], allMeshes: all });
    return plan.errors
      .filter((e) => (e.kind === "Machine" && e.name === name) || (e.field === "spec.cidr" && e.message.includes(` left for ${name} (`)))
      .map((e) => `${e.field}: ${e.message.replace(`MeshNetwork ${mesh.name}: `, "")}`);
  }

  /**
   * NAT↔NAT paths (controllers/nat-paths.ts) from what the host shows. A public member tells
   * where its NAT'd peers' packets come from (their NAT mappings); a NAT'd member gets, per other
   * NAT'd member, the path decided for the pair. Views of meshes with fewer than two NAT'd
   * members are returned as they are.
   */
  private withNatPaths(m: Machine, views: readonly MeshView[], wg: ReadonlyMap<string, Pick<WgInterfaceState, "peers">>): MeshView[] {
    const ns = m.metadata.namespace ?? "default";
    const self = m.metadata.name ?? "";
    const now = this.d.clock.now();
    return views.map((v) => {
      const me = v.members.find((x) => x.name === self);
      const nat = v.members.filter((x) => !x.endpoint && x.subnet);
      if (!me || nat.length < 2) return v;
      const byKey = new Map((wg.get(v.mesh.interface)?.peers ?? []).map((p) => [p.publicKey, p]));
      const liveOf = (x: Member) => (x.publicKey ? byKey.get(x.publicKey) : undefined);
      if (me.endpoint) {
        // Mappings matter only where pairs may go direct: a Relay mesh's would only requeue its NAT'd members.
        if (v.mesh.natTraversal !== "Relay") this.nat.observed(ns, v.mesh.name, self, nat.map((x) => ({ machine: x.name, live: liveOf(x) })), Math.floor(now / 1000), () => nat.map((x) => x.name));
        return v;
      }
      const natPaths = new Map<string, NatPath>();
      for (const p of nat) {
        if (p.name === self) continue;
        const d = this.nat.decide(ns, v.mesh.name, self, p.name, liveOf(p), now, v.mesh.natTraversal !== "Relay");
        natPaths.set(p.name, { path: d.path, ...(d.endpoint ? { endpoint: d.endpoint } : {}), reason: d.reason, since: formatTime(d.since) });
      }
      return { ...v, natPaths };
    });
  }

  /** The plan as of the last status, so the first observation already looks at the right names. */
  private guessPlan(m: Machine, views: readonly MeshView[]): NetworkPlan[] {
    return planHost(m.metadata.namespace ?? "default", m.metadata.name ?? "", views, {}).networks;
  }

  /**
   * The peers to probe. `settleIn` (the namespace, after changes): peers being reconciled right
   * now are waited for a moment (Probe.wait): their interfaces come up within seconds, and a
   * handshake seen now saves looking again once they are Ready.
   */
  private probes(nets: readonly NetworkPlan[], settleIn?: string): Probe[] {
    return nets.flatMap((n) =>
      n.wireguard.peers
        .filter((p) => p.publicKey && p.allowedIPs.length)
        .map((p) => ({
          iface: n.wireguard.interface,
          source: gatewayOf(n.subnet),
          publicKey: p.publicKey!,
          address: gatewayOf(p.allowedIPs[0]!),
          ...(settleIn !== undefined && this.inFlight.has(`${settleIn}/${p.machine}`) ? { wait: true } : {}),
        })),
    );
  }

  /** Returns the Machine as written (later writes start from its resourceVersion, not a stale one). */
  private async writeDrift(m: Machine, what: readonly string[]): Promise<Machine | undefined> {
    const gen = m.metadata.generation ?? 0;
    const drift: ConditionInput[] = [{ type: "NetworkConfigured", status: "False", reason: "DriftDetected", message: `repairing: ${listed(what, "; ")}` }];
    const conditions = setConditions(m.status?.conditions, [...drift, readyCondition([...drift])], gen, this.d.clock.now(), ORDER);
    return (await this.writeStatus(m, (cur) => ({ ...cur, conditions }))).object;
  }

  /**
   * Records the planned networks status does not list yet (controllers/previous-networks.ts
   * withIntended); returns the Machine as written, if it was.
   */
  private async recordIntended(m: Machine, networks: readonly NetworkPlan[]): Promise<Machine | undefined> {
    if (!withIntended(m.status?.networks ?? [], networks)) return undefined;
    const res = await this.writeStatus(m, (cur) => {
      const next = withIntended(cur?.networks ?? [], networks);
      return next ? { ...cur, networks: next } : { ...cur };
    });
    return res.object;
  }

  /**
   * Every status write of this controller. One the API server refuses is not only a log line:
   * a Warning Event, and Ready False (StatusWriteFailed) on the status as the server last took it.
   */
  private writeStatus(m: Machine, desired: (cur: MachineStatus | undefined) => MachineStatus) {
    const failed = (cur: MachineStatus | undefined, problem: string): MachineStatus["conditions"] => {
      const message = `the controller could not write this Machine's status, so the rest of it is out of date: ${problem}`;
      const cond: ConditionInput = { type: "Ready", status: "False", reason: STATUS_WRITE_FAILED, message };
      return setConditions(cur?.conditions, [cond], m.metadata.generation ?? 0, this.d.clock.now(), ORDER);
    };
    // The status as stored, with Ready saying so; failing that, only what teardown needs (the
    // networks' names, checked), the key peers use and the last key rotation done.
    const fallbacks = [
      (cur: MachineStatus | undefined, problem: string): MachineStatus => ({ ...cur, conditions: failed(cur, problem) }),
      (cur: MachineStatus | undefined, problem: string): MachineStatus => {
        const { previous } = previousFromStatus({ ...m, status: cur }, new Set());
        const networks = previous.map((p) => ({ meshNetwork: p.meshNetwork, interface: p.interface, ...(p.dockerNetwork ? { dockerNetwork: p.dockerNetwork } : {}) }));
        const kept = { ...(cur?.publicKey ? { publicKey: cur.publicKey } : {}), ...(cur?.keyRotation !== undefined ? { keyRotation: cur.keyRotation } : {}) };
        return { ...kept, ...(networks.length ? { networks } : {}), conditions: failed(undefined, problem) };
      },
    ];
    return writeStatusVisibly(this.d.status, m, desired, { events: this.d.events, logger: this.d.log, fallbacks }).then((res) => {
      if (res.outcome === "written") this.own.wrote(objectKey(m), res.replaced, res.object);
      return res;
    });
  }

  /**
   * Writes status for an outcome; returns whether the machine is Ready. `keep`: the machine's
   * meshes; one of them not planned (invalid, or refused for a clash) keeps its entry in
   * status.networks, as the host keeps what it has of it: it is torn down when the mesh goes.
   */
  /** The grace of the machine's meshes with DNS (the longest), for messages. */
  private dnsGrace(m: Machine): number {
    const graces = this.d.meshes
      .list(m.metadata.namespace ?? "default")
      .flatMap((x) => resolveMesh(x).mesh ?? [])
      .filter((x) => x.dns && isMember(x, m))
      .map((x) => x.dns!.unreachableGraceSeconds);
    return graces.length ? Math.max(...graces) : DEFAULT_UNREACHABLE_GRACE_SECONDS;
  }

  /** DNSReady as the last converge's verdict and the records half's view give it now. */
  private desiredDns(m: Machine, key: string): ConditionInput | undefined {
    let verdict = this.resolvers.get(key);
    if (!this.resolvers.has(key)) {
      // Not converged since the controller started: what status recorded (a host unreachable since).
      const recorded = (m.status?.networks ?? []).filter((n) => n.dns?.zone && n.dns.address);
      verdict = recorded.length ? { serving: recorded.map((n) => servingText(n.dns!.zone!, n.dns!.address!, n.dns!.containers ?? "none")).sort() } : undefined;
    }
    return dnsCondition(verdict, this.d.dns?.hostState(m.metadata.namespace ?? "default", m.metadata.name ?? ""), this.dnsGrace(m));
  }

  /** Writes DNSReady alone when it differs from status (the records half's view changed). */
  private async refreshDnsCondition(m: Machine, key: string): Promise<void> {
    const want = this.desiredDns(m, key);
    const have = findCondition(m.status?.conditions, DNS_CONDITION);
    if (!want ? !have : have && have.status === want.status && have.reason === want.reason && have.message === want.message) return;
    await this.writeStatus(m, (cur) => ({
      ...cur,
      conditions: want ? setConditions(cur?.conditions, [want], m.metadata.generation ?? 0, this.d.clock.now(), ORDER) : removeCondition(cur?.conditions, DNS_CONDITION),
    }));
  }

  private async writeOutcome(m: Machine, outcome: Outcome, session: HostSession | undefined, key: MachineKey, keep: ReadonlySet<string> = new Set()): Promise<boolean> {
    const gen = m.metadata.generation ?? 0;
    const conds = machineConditions(outcome);
    const machineKey = `${m.metadata.namespace ?? "default"}/${m.metadata.name ?? ""}`;
    if (outcome.kind === "converged") this.resolvers.set(machineKey, resolverVerdict(outcome.result.networks, outcome.result.observation, outcome.result.remaining));
    const dnsCond = this.desiredDns(m, machineKey);
    const ready = readyCondition(conds);
    const now = this.d.clock.now();
    const desired = (cur: MachineStatus | undefined): MachineStatus => {
      const next: MachineStatus = { ...cur, observedGeneration: gen, publicKey: key.publicKey };
      if (key.rotatedFor !== undefined) next.keyRotation = key.rotatedFor;
      if (session) {
        next.hostKeyFingerprint = session.fingerprint;
        if (session.bastionFingerprint) next.bastionHostKeyFingerprint = session.bastionFingerprint;
      }
      if (outcome.kind === "converged") {
        const obs = outcome.result.observation;
        if (obs.dockerVersion) next.dockerVersion = obs.dockerVersion;
        next.wireguardImplementation = obs.wireguardImplementation;
        const leftovers = new Set(outcome.result.remaining.filter((s) => s.area === "teardown").map((s) => s.meshNetwork));
        next.networks = recordedNetworks(networkStatus(outcome.result.networks, outcome.peers, cur?.networks ?? []), cur?.networks ?? [], keep, leftovers);
        next.subnet = outcome.result.networks.map((n) => n.subnet).join(",");
        next.dns = outcome.result.networks.flatMap((n) => (n.dns ? [`${n.dns.address} ${n.dns.zone}`] : [])).join(", ");
        if (!next.networks.length) delete next.networks;
        if (!next.subnet) delete next.subnet;
        if (!next.dns) delete next.dns;
      }
      // The same counts as PeersConnected; none when the host was not observed.
      const peers = peersColumn(outcome);
      if (peers === undefined) delete next.peers;
      else next.peers = peers;
      next.conditions = setConditions(dnsCond ? cur?.conditions : removeCondition(cur?.conditions, DNS_CONDITION), [ready, ...conds, ...(dnsCond ? [dnsCond] : [])], gen, now, ORDER);
      return next;
    };
    const res = await this.writeStatus(m, (cur) => desired(cur));
    if (res.outcome === "written") {
      const before = findCondition(m.status?.conditions, "Ready");
      if (before?.status !== ready.status || before?.reason !== ready.reason) {
        void this.d.events.event(m, ready.status === "True" ? "Normal" : "Warning", ready.reason, ready.message);
      }
    }
    return ready.status === "True";
  }

  /** Deletion: tear the host down, then let the Machine go. */
  private async finalize(m: Machine, key: string): Promise<ReconcileResult | void> {
    this.converged.delete(key);
    this.secretMisses.delete(key);
    this.d.peerStats?.forget(key);
    if (!hasFinalizer(m)) return;
    const release = m.metadata.annotations?.[RELEASE_ANNOTATION] === "true";
    const never = release ? undefined : await this.neverContacted(m);
    if (never) {
      await this.d.events.event(m, "Normal", "Released", `nothing to clean up: ${never}; released without contacting the host`);
    } else if (!release) {
      const { previous } = previousFromStatus(m, new Set());
      try {
        const resolved = await sshTargetFor(m, this.d.readSecret, this.d.hostKeys);
        if (isProblem(resolved)) throw new HostError("Unreachable", resolved.message);
        await this.d.sshSlots.use(async () => {
          const session = await connect(resolved.target);
          try {
            await this.recordHostKeys(m, resolved.hostKeys, session);
            const left = await teardown(
              session,
              previous,
              (line) => this.d.log.info(line, { machine: key }),
              async (steps, obs) => {
                const detached = containersDetached(steps, obs);
                if (detached.length) await this.d.events.event(m, "Warning", "ContainersDetached", `deleting the Machine: ${describeDetached(detached)}; they keep running without that network`);
              },
            );
            if (left.length) throw new HostError("ApplyFailed", `still on the host after teardown: ${left.map((s) => s.display).join("; ")}`);
          } finally {
            session.close();
          }
        });
      } catch (err) {
        const message = `deleting: cannot clean up the host: ${err instanceof Error ? err.message : String(err)}; once it is reachable this finishes by itself, or release it without cleanup: kubectl -n ${m.metadata.namespace ?? "default"} annotate machine ${m.metadata.name} ${RELEASE_ANNOTATION}=true`;
        const cond: ConditionInput = { type: "Ready", status: "False", reason: "TeardownFailed", message };
        // The host was not observed: no PEERS count next to Ready=False.
        const failed = (cur: MachineStatus | undefined): MachineStatus => {
          const { peers: _peers, ...rest } = cur ?? {};
          return { ...rest, conditions: setConditions(cur?.conditions, [cond], m.metadata.generation ?? 0, this.d.clock.now(), ORDER) };
        };
        await this.writeStatus(m, failed);
        throw new Error(`machine ${key}: ${message}`, { cause: err });
      }
      await this.d.events.event(m, "Normal", "TornDown", `removed ${previous.map((p) => p.interface).join(", ") || "nothing (no network was configured)"} from the host`);
    } else {
      await this.d.events.event(m, "Warning", "Released", `released without cleaning up the host (annotation ${RELEASE_ANNOTATION}=true); remove dockmesh's interfaces and rules from it by hand`);
    }
    // The WireGuard key Secret is owned by the Machine: the garbage collector removes it with
    // the Machine, so the controller needs no right to delete Secrets.
    await setFinalizers(this.d.kubeConfig, m, (m.metadata.finalizers ?? []).filter((f) => f !== FINALIZER));
    this.d.log.info(release || never ? "released" : "torn down; finalizer removed", { machine: key, error: undefined });
  }

  /**
   * Why nothing can have been applied to the host, or undefined. The evidence is what only the
   * controller writes: no host key record for the endpoint means no SSH handshake with it ever
   * completed (the record is made right after the handshake, before any command). Status is a
   * hint that can only keep the finalizer: a fingerprint, networks or Reachable=True there (an
   * object contacted before records existed) mean a teardown is tried.
   */
  private async neverContacted(m: Machine): Promise<string | undefined> {
    const s = m.status;
    if (s?.hostKeyFingerprint || s?.networks?.length || findCondition(s?.conditions, "Reachable")?.status === "True") return undefined;
    const ns = m.metadata.namespace ?? "default";
    const id = sshEndpointIdOf(m);
    try {
      if ((await this.d.hostKeys.get(ns, id)) !== undefined) return undefined;
    } catch (err) {
      this.d.log.warn("cannot read the host key record; tearing down as usual", { machine: `${ns}/${m.metadata.name}`, error: String(err) });
      return undefined;
    }
    return `the controller never connected to ssh ${id} (no host key record Secret ${ns}/${hostKeyRecordName(id)})`;
  }
}

function networkStatus(networks: readonly NetworkPlan[], peers: readonly PeerReport[], prev: readonly MachineStatusNetwork[]): MachineStatusNetwork[] {
  return networks.map((n) => {
    const before = new Map((prev.find((p) => p.meshNetwork === n.meshNetwork)?.peers ?? []).map((p) => [p.machine, p]));
    // This mesh's reports only: a peer in two meshes with this machine has a report in each, and
    // taking both made peers[] list it twice (the API server refuses the write: 422 Duplicate value).
    const mine = new Set([...n.wireguard.peers.map((p) => p.machine), ...n.relayed.map((r) => r.machine), ...n.unreachable]);
    const reports = peers.filter((p) => (p.meshNetwork === undefined || p.meshNetwork === n.meshNetwork) && mine.has(p.machine));
    return {
      meshNetwork: n.meshNetwork,
      subnet: n.subnet,
      dockerNetwork: n.docker.name,
      interface: n.wireguard.interface,
      bridge: n.docker.bridge,
      listenPort: n.wireguard.listenPort,
      mtu: n.wireguard.mtu,
      ...(n.dns ? { dns: { zone: n.dns.zone, address: n.dns.address, containers: n.dns.mode.mode, reason: n.dns.mode.reason } } : {}),
      peers: listedPeers(reports).map((p) => {
        const old = before.get(p.machine);
        // The handshake time is refreshed only when the state changes: a resync writes nothing.
        const time = old && old.state === p.state ? old.lastHandshakeTime : p.latestHandshake ? formatTime(p.latestHandshake * 1000) : undefined;
        return {
          machine: p.machine,
          ...(p.publicKey ? { publicKey: p.publicKey } : {}),
          ...(p.endpoint ? { endpoint: p.endpoint } : {}),
          ...(p.via ? { via: p.via } : {}),
          state: p.state,
          ...(time ? { lastHandshakeTime: time } : {}),
          ...(p.path ? { path: p.path, ...(p.pathReason ? { pathReason: p.pathReason.slice(0, 512) } : {}), ...(p.pathSince ? { pathSince: p.pathSince } : {}) } : {}),
        };
      }),
    };
  });
}
