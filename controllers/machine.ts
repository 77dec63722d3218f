// The Machine reconciler: level-triggered. Each call re-reads the Machine, its meshes and its
// own Secrets from the informers' caches (SSH key Secrets by name), plans, and converges the
// host over one SSH session.
import { createHash } from "node:crypto";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { planHost, type HostFacts, type MeshView, type NetworkPlan } from "../mesh/plan.js";
import type { HostSession, SshEndpoint, SshTarget } from "../hosts/ssh.js";
import { SessionPool } from "../hosts/ssh-pool.js";
import { type ConvergeResult } from "../hosts/converge.js";
import { HostConverge, type ConvergeStart } from "./machine-converge.js";
import { finalizeMachine } from "./machine-teardown.js";
import { HostError } from "../hosts/errors.js";
import { hostFacts, forStatus, type Probe } from "../hosts/observe.js";
import { DEFAULT_FRESH_FACTS } from "../hosts/fresh.js";
import { checkLiveness, type Liveness } from "../hosts/liveness.js";
import { findCondition } from "../runtime/conditions.js";
import { type Informer, type SecretObject } from "../runtime/informer.js";
import type { ApiClient } from "../runtime/client.js";
import type { EventRecorder } from "../runtime/events.js";
import type { Logger } from "../runtime/log.js";
import type { Semaphore } from "../runtime/semaphore.js";
import type { StatusClient } from "../runtime/status.js";
import type { ReconcileResult } from "../runtime/workqueue.js";
import type { Clock } from "../runtime/clock.js";
import { ensureMachineKey, type MachineKey } from "./keys.js";
import { gatewayOf } from "../mesh/ipv4.js";
import { ambiguousForward } from "../mesh/endpoints.js";
import { ipv6ForwardingText, ipv6HeldText, machineConditions, mtuHeldText, peerReports, readyCondition, type ConditionInput, type Outcome, type PeerReport } from "./machine-conditions.js";
import { FINALIZER, hasFinalizer, isDeleting, keySecretName, setFinalizers } from "./resources.js";
import { isProblem, sshTargetFor, type ResolvedTarget, type SecretReader } from "./ssh-target.js";
import { type HostKeyRecords } from "./host-keys.js";
import { peerSamples, type PeerStats } from "./peer-stats.js";
import { DNS_CONDITION, resolverVerdict, type ResolverVerdict } from "./dns-condition.js";
import type { DnsHostState } from "./dns.js";
import { DEFAULT_READY_CHECK_MS } from "./machine-defaults.js";
import { NatPaths, PROBE_POLL_MS, natPathViews } from "./nat-paths.js";
import { MachineViews, type Snapshot } from "./machine-views.js";
import { MachineWriter } from "./machine-writer.js";
import { dnsOnlyStatus, dnsReadyCondition, outcomeStatus } from "./machine-status.js";
import type { WgInterfaceState } from "../hosts/observe.js";

export interface MachineControllerDeps {
  api: ApiClient;
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
  /** SSH connections shared with mesh DNS's (hosts/ssh-pool.ts); a pool of its own when absent. */
  sessions?: SessionPool;
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

/**
 * How long a quieted machine's next look waits for its peers' first converges (secondLookWait):
 * while they go on arriving, up to SECOND_LOOK_MAX_WAIT_MS; once no machine of its namespace had
 * a first converge for SECOND_LOOK_STALL_MS, no longer (a peer that is not coming). How often it checks.
 */
const SECOND_LOOK_MAX_WAIT_MS = 120_000;
const SECOND_LOOK_STALL_MS = 15_000;
const SECOND_LOOK_POLL_MS = 1_000;

/** Peers' states as status shows them, to compare one look at the host with the last. */
const peerState = (peers: readonly PeerReport[]): string =>
  createHash("sha256")
    .update(JSON.stringify(peers.map((p) => [p.machine, p.state, Boolean(p.unmanaged)])))
    .digest("hex");

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
  /** Its writes: status, Events, host key records (machine-writer.ts). */
  private readonly w: MachineWriter;
  /** key → plan hash of the last converge that left nothing to do. */
  private readonly converged = new Map<string, Converged>();
  /** key → what the last converge found of the mesh DNS resolvers (for DNSReady between converges). */
  private readonly resolvers = new Map<string, ResolverVerdict | undefined>();
  /** What reconciles plan from (the caches' snapshot, memoized per namespace). */
  private readonly views: MachineViews;
  /** key → when its first outcome was left unwritten (quietFirstWait). */
  private readonly quieted = new Map<string, number>();
  /** namespace → when a machine of it was last left quieted: the mesh is still arriving (secondLookWait). */
  private readonly arriving = new Map<string, number>();
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

  /** SSH connections, shared with mesh DNS's when the manager passes one pool to both. */
  private readonly sessions: SessionPool;

  constructor(private readonly d: MachineControllerDeps) {
    this.sessions = d.sessions ?? new SessionPool();
    this.nat = d.natPaths ?? new NatPaths();
    this.views = new MachineViews(d);
    this.w = new MachineWriter(d);
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    this.inFlight.add(key);
    try {
      return await this.reconcileMachine(key);
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** The Machine informer cached this version of key (manager.ts): this controller's own write, if it is that, need not be kept. */
  cached(key: string, resourceVersion: string | undefined): void {
    this.w.own.cached(key, resourceVersion);
  }

  private async reconcileMachine(key: string): Promise<ReconcileResult | void> {
    const tStart = performance.now();
    const inCache = this.d.machines.get(key);
    if (!inCache) {
      this.w.own.forget(key);
      this.converged.delete(key);
      this.resolvers.delete(key);
      this.secretMisses.delete(key);
      this.views.forget(key);
      this.quieted.delete(key);
      this.natProbing.delete(key);
      this.nat.forgetMachine(key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1));
      this.d.peerStats?.forget(key);
      return;
    }
    // The Machine as last written by this reconcile: each status write moves its resourceVersion on.
    // It starts from this controller's last write if the cache is still older than that.
    let m: Machine = this.w.own.fresh(key, inCache);
    if (isDeleting(m)) {
      this.converged.delete(key);
      this.secretMisses.delete(key);
      this.d.peerStats?.forget(key);
      return finalizeMachine(this.d, this.w, m, key);
    }
    if (!hasFinalizer(m)) {
      // Go on with the object as patched: its key and first contact need not wait for the watch.
      const patched = await setFinalizers(this.d.api, m, [...(m.metadata.finalizers ?? []), FINALIZER]);
      this.w.own.wrote(key, m.metadata.resourceVersion, patched);
      if (!patched || !hasFinalizer(patched)) return; // changed meanwhile: its next event reconciles again
      m = patched;
    }
    const waitLeft = this.views.settleWaitLeft(key, m);
    if (waitLeft > 0) return { requeueAfter: waitLeft };

    const ns = m.metadata.namespace ?? "default";
    const name = m.metadata.name ?? "";
    // Peers take the key from its Secret (never from status): status.publicKey is written with the
    // first outcome, not in a write of its own.
    const machineKey = await ensureMachineKey(this.d.api, m, this.d.secrets.get(`${ns}/${keySecretName(name)}`));
    const settle = this.views.settleFirstContact(m, key, this.converged.has(key));
    if (settle !== undefined) return { requeueAfter: settle };
    const resolved = await sshTargetFor(m, this.d.readSecret, this.d.hostKeys);
    const wasFresh = !m.status?.networks?.length;
    let snap = this.views.snapshot(m, machineKey);

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
    const peersPending = this.secondLookWait(m, key, snap);
    if (peersPending !== undefined) return { requeueAfter: peersPending };
    const targetHash = targetIdentity(target);
    const hashOf = (x: Snapshot) =>
      createHash("sha256")
        .update(
          JSON.stringify({
            views: x.viewDigests,
            previous: x.previous,
            pub: machineKey.publicKey,
            name,
            target: targetHash,
            gen: m.metadata.generation,
            waiting: x.waiting,
            pending: x.pending,
            refused: x.refused,
            nat: m.spec.endpoint ? 0 : this.nat.version(ns),
          }),
        )
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
      if (last.unmanaged === this.views.unmanagedOf(m, snap.views)) {
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
    let freshPlan: ConvergeStart["freshPlan"];
    try {
      try {
        session = await this.sessions.lease(target);
        // A host with nothing recorded gets its first converge in one round trip (hosts/fresh.ts):
        // the networks it is about to get go on record (status.networks, for teardown) meanwhile.
        if (fresh) {
          freshPlan = { hash: hashOf(snap), networks: planHost(ns, name, snap.views, fresh).networks };
          const intended = this.w.intended(m, freshPlan.networks).then((x) => {
            if (x) m = x;
          });
          await Promise.all([this.w.hostKeys(m, resolved.hostKeys, session), intended]);
        } else {
          await this.w.hostKeys(m, resolved.hostKeys, session);
        }
      } catch (err) {
        if (!(err instanceof HostError)) throw err;
        this.converged.delete(key);
        await this.writeOutcome(m, { kind: "hostError", reason: err.reason, message: err.message, stage: "connect" }, undefined, machineKey);
        throw new Error(`machine ${key}: ${err.message}`, { cause: err });
      }
      const tConnected = performance.now();
      const wasReady = findCondition(m.status?.conditions, "Ready")?.status === "True";
      let result: ConvergeResult;
      const services = {
        views: this.views,
        writer: this.w,
        events: this.d.events,
        log: this.d.log,
        natPaths: this.natPathsOf,
        probes: (nets: readonly NetworkPlan[], settle: boolean) => this.probes(nets, settle ? ns : undefined, machineKey.publicKey),
      };
      const hc = new HostConverge(services, { m, machineKey, snap, hashOf, readyHash: wasReady ? last?.hash : undefined, fresh, ...(freshPlan ? { freshPlan } : {}) });
      try {
        ({ result, m, snap } = await hc.run(session));
        this.factsGuess = hostFacts(result.observation);
      } catch (err) {
        if (!(err instanceof HostError)) throw err;
        m = hc.machine;
        this.converged.delete(key);
        const stage = err.reason === "MissingTools" || err.reason === "DockerNotRunning" ? "preflight" : "connect";
        await this.writeOutcome(m, { kind: "hostError", reason: err.reason, message: err.message, stage }, session, machineKey);
        throw new Error(`machine ${key}: ${err.message}`, { cause: err });
      }
      const tConverged = performance.now();
      const unmanaged = this.views.unmanaged(ns);
      const peers = peerReports(result.networks, result.observation, Math.floor(this.d.clock.now() / 1000), unmanaged);
      this.d.peerStats?.record(ns, name, peerSamples(result.networks, result.observation.wg));
      // The peers' dump is summed up in `peers` now: the status write waits with the rest.
      result = { ...result, observation: forStatus(result.observation) };
      const via = `${target.user}@${target.host}:${target.port}${target.bastion ? ` via bastion ${target.bastion.host}` : ""}`;
      const outcome: Outcome = {
        kind: "converged",
        result,
        connectedVia: `ssh ${via}`,
        peers,
        planErrors: snap.waiting,
        ...(snap.conflict ? { planErrorReason: "MeshConflict" } : {}),
        pendingPeers: snap.pending,
        mtuPending: mtuHeldText(result.networks),
        ipv6Pending: ipv6HeldText(result.networks),
        ipv6Forwarding: ipv6ForwardingText(result.networks),
        refusedValues: snap.refused,
      };
      // Events are recorded on the side (the recorder never rejects): not on the way to the next reconcile.
      const applied = result.applied;
      const configured = () =>
        applied.length && void this.d.events.event(m, "Normal", "Configured", `applied ${applied.length} change(s): ${[...new Set(applied.map((s) => s.display))].slice(0, 8).join("; ")}`);
      if (this.quietFirstWait(m, key, outcome)) {
        configured();
        this.d.log.debug("configured; peers' handshakes pending, status written at the next look", { machine: key, applied: result.applied.length, roundTrips: (result.timings ?? []).join(", ") });
        return { requeueAfter: this.d.pendingRequeueMs };
      }
      const ready = await this.writeOutcome(m, outcome, session, machineKey, snap.keep);
      const ambiguous = ambiguousForward(
        m,
        snap.views.map((v) => v.mesh),
      );
      if (ambiguous) void this.d.events.event(m, "Warning", "EndpointPortAmbiguous", ambiguous);
      configured();
      const ms = (a: number, b: number) => Math.round(b - a);
      this.d.log.debug("reconciled", {
        machine: key,
        ready,
        applied: result.applied.length,
        prepareMs: ms(tStart, t0),
        slotWaitMs: ms(t0, tSlot),
        connectMs: ms(tSlot, tConnected),
        convergeMs: ms(tConnected, tConverged),
        roundTrips: (result.timings ?? []).join(", "),
        statusMs: ms(tConverged, performance.now()),
      });
      if (result.applyError) throw new Error(`machine ${key}: ${result.applyError.message}`, { cause: result.applyError });
      const probing = result.networks.some((n) => n.natPaths?.some((p) => p.path === "Probing"));
      if (probing) this.natProbing.add(key);
      else this.natProbing.delete(key);
      if (ready) {
        const at = this.d.clock.now();
        this.converged.set(key, { hash: hashOf(snap), at, checkedAt: at, peers: peerState(peers), unmanaged: this.views.unmanagedOf(m, snap.views) });
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
    if (this.arriving.size >= 10_000) this.arriving.clear();
    const now = this.d.clock.now();
    this.quieted.set(key, now);
    this.arriving.set(m.metadata.namespace ?? "default", now);
    return true;
  }

  /**
   * The look that writes a quieted machine's first outcome waits until every member of its meshes
   * had its own first converge, or a status saying why not: a look before that finds their
   * handshakes missing, writes Ready=False and must look once more (300 machines created at once:
   * 14–22 such looks and status writes, a host looked at 4 times instead of 3; docs/benchmarks.md).
   * It waits while the namespace's machines go on having first converges (1,000 at once take about
   * a minute), SECOND_LOOK_STALL_MS after the last, SECOND_LOOK_MAX_WAIT_MS in all. No SSH while
   * waiting: requeued every SECOND_LOOK_POLL_MS.
   */
  private secondLookWait(m: Machine, key: string, snap: Snapshot): number | undefined {
    const since = this.quieted.get(key);
    const ns = m.metadata.namespace ?? "default";
    const now = this.d.clock.now();
    if (since === undefined || findCondition(m.status?.conditions, "Ready") || now - since >= SECOND_LOOK_MAX_WAIT_MS) return undefined;
    if (now - Math.max(since, this.arriving.get(ns) ?? since) >= SECOND_LOOK_STALL_MS) return undefined;
    const configured = (peer: string) => {
      const k = `${ns}/${peer}`;
      return this.quieted.has(k) || this.converged.has(k) || findCondition(this.d.machines.get(k)?.status?.conditions, "Ready") !== undefined;
    };
    return snap.views.some((v) => v.members.some((x) => x.name !== m.metadata.name && !configured(x.name))) ? SECOND_LOOK_POLL_MS : undefined;
  }

  /** The peers' states with these handshakes, as peerState writes them. */
  private peerStates(m: Machine, networks: readonly NetworkPlan[], wg: Liveness["wg"]): string {
    return peerState(peerReports(networks, { wg }, Math.floor(this.d.clock.now() / 1000), this.views.unmanaged(m.metadata.namespace ?? "default")));
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
        session = await this.sessions.lease(resolved.target);
        await this.w.hostKeys(m, resolved.hostKeys, session);
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
      if (m.spec.endpoint && this.views.namespaceViews(ns).meshes.some((x) => x.natMembers >= 2)) this.natPathsOf(m, this.views.meshViews(m, machineKey).views, live.wg);
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

  /** The views with NAT↔NAT paths decided from what the host shows (nat-paths.ts natPathViews). */
  private readonly natPathsOf = (m: Machine, views: readonly MeshView[], wg: ReadonlyMap<string, Pick<WgInterfaceState, "peers">>): MeshView[] =>
    natPathViews(this.nat, m, views, wg, this.d.clock.now());

  /** The plan as of the last status, so the first observation already looks at the right names. */
  private guessPlan(m: Machine, views: readonly MeshView[]): NetworkPlan[] {
    return planHost(m.metadata.namespace ?? "default", m.metadata.name ?? "", views, {}).networks;
  }

  /**
   * The peers to probe. `settleIn` (the namespace, after changes): peers being reconciled right
   * now are waited for a moment (Probe.wait): their interfaces come up within seconds, and a
   * handshake seen now saves looking again once they are Ready. Of each such pair, the end with
   * the lower key (`ownKey`) initiates again while the handshake has not come (Probe.retry).
   */
  private probes(nets: readonly NetworkPlan[], settleIn?: string, ownKey?: string): Probe[] {
    return nets.flatMap((n) => {
      const source = gatewayOf(n.subnet);
      return n.wireguard.peers
        .filter((p) => p.publicKey && p.allowedIPs.length)
        .map((p) => {
          const wait = settleIn !== undefined && this.inFlight.has(`${settleIn}/${p.machine}`);
          return {
            iface: n.wireguard.interface,
            source,
            publicKey: p.publicKey!,
            address: gatewayOf(p.allowedIPs[0]!),
            ...(wait ? { wait: true, ...(ownKey !== undefined && ownKey < p.publicKey! ? { retry: true } : {}) } : {}),
          };
        });
    });
  }

  /** DNSReady as the last converge's verdict and the records half's view give it now. */
  private desiredDns(m: Machine, key: string): ConditionInput | undefined {
    const ns = m.metadata.namespace ?? "default";
    return dnsReadyCondition(m, { known: this.resolvers.has(key), value: this.resolvers.get(key) }, this.d.dns?.hostState(ns, m.metadata.name ?? ""), this.d.meshes.list(ns));
  }

  /** Writes DNSReady alone when it differs from status (the records half's view changed). */
  private async refreshDnsCondition(m: Machine, key: string): Promise<void> {
    const want = this.desiredDns(m, key);
    const have = findCondition(m.status?.conditions, DNS_CONDITION);
    if (!want ? !have : have && have.status === want.status && have.reason === want.reason && have.message === want.message) return;
    await this.w.status(m, (cur) => dnsOnlyStatus(cur, m, want, this.d.clock.now()));
  }

  /** Writes status for an outcome (machine-status.ts outcomeStatus); returns whether the machine is Ready. */
  private async writeOutcome(m: Machine, outcome: Outcome, session: HostSession | undefined, key: MachineKey, keep: ReadonlySet<string> = new Set()): Promise<boolean> {
    const conditions = machineConditions(outcome);
    const machineKey = `${m.metadata.namespace ?? "default"}/${m.metadata.name ?? ""}`;
    if (outcome.kind === "converged") this.resolvers.set(machineKey, resolverVerdict(outcome.result.networks, outcome.result.observation, outcome.result.remaining));
    const input = { m, outcome, conditions, dns: this.desiredDns(m, machineKey), session, key, keep, now: this.d.clock.now() };
    const ready = readyCondition(conditions);
    const res = await this.w.status(m, (cur) => outcomeStatus(cur, input));
    if (res.outcome === "written") {
      const before = findCondition(m.status?.conditions, "Ready");
      if (before?.status !== ready.status || before?.reason !== ready.reason) {
        void this.d.events.event(m, ready.status === "True" ? "Normal" : "Warning", ready.reason, ready.message);
      }
    }
    return ready.status === "True";
  }
}
