// The records half of mesh DNS (issue 13): learns which containers run where and keeps every
// member host's records file current. Nothing of dockmesh runs on the hosts: one SSH connection per
// host carries Docker's event stream; an event (debounced) triggers one look at the host's
// containers over the same connection; a change re-renders the host's meshes (coalesced) and
// writes each member host whose file changed: one command per host per batch, single flight per
// host (latest wins), a global cap on writes at once, unchanged content skipped by hash.
// A full look follows every (re)connect and runs periodically (Docker keeps a short event history);
// it also reads the digests of the host's records files, so only a file that differs is written.
//
// Degrades predictably: the files stay on the hosts when the controller stops; an unreachable
// host's records stay for its mesh's unreachableGraceSeconds, then go; a Machine deleted or out
// of the mesh leaves the others' files at once. After a (re)start, a mesh's file is written only
// once every member has reported, or been unreachable for the grace period since the start.
import { createHash } from "node:crypto";
import type { Subscription } from "rxjs";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { changed, type Informer } from "../runtime/informer.js";
import type { Clock, TimerHandle } from "../runtime/clock.js";
import type { EventRecorder } from "../runtime/events.js";
import type { Logger } from "../runtime/log.js";
import { describeError } from "../runtime/log.js";
import { Semaphore } from "../runtime/semaphore.js";
import { renderRecords, type ReportedContainer, type SkippedName } from "../mesh/dns-records.js";
import type { RecordsFile } from "../hosts/dns-write.js";
import type { DockerEvent } from "../hosts/docker-events.js";
import { dnsMeshes, type DnsMesh } from "./dns-mesh.js";
import type { EventStream, HostConnector, HostLink } from "./dns-link.js";

export interface DnsHostState {
  /** Connected: the event stream runs; Connecting: not yet since start; Unreachable: lost. */
  stream: "Connected" | "Connecting" | "Unreachable";
  /** ms (clock) since when stream is in this state. */
  since: number;
  /** Records of this host were withdrawn from its peers (unreachable longer than the grace period). */
  withdrawn: boolean;
  /** Number of records this host contributes (containers' names). */
  records: number;
}

export interface DnsTimings {
  /** Trailing debounce of a host's events before it is looked at (default 100 ms)… */
  debounceMs: number;
  /** …but never longer than this after the first event (default 500 ms). */
  debounceMaxMs: number;
  /** A changed mesh is re-rendered this long after the first change (coalescing; default 50 ms). */
  renderDelayMs: number;
  /** Full look at each connected host (default 60 s). */
  resyncMs: number;
  /** Reconnect backoff: first delay, doubling up to the cap (defaults 1 s, 30 s). */
  backoffMs: number;
  backoffMaxMs: number;
  /** Retry of a host that cannot be contacted yet (no host key recorded, no Secret; default 5 s). */
  waitRetryMs: number;
  /** Retry of a write to a host whose resolver is not configured yet (default 5 s). */
  noResolverRetryMs: number;
  /** Writes (SSH commands) in flight at once over all hosts (default 16). */
  writeConcurrency: number;
}

export const DEFAULT_DNS_TIMINGS: DnsTimings = {
  debounceMs: 100,
  debounceMaxMs: 500,
  renderDelayMs: 50,
  resyncMs: 60_000,
  backoffMs: 1_000,
  backoffMaxMs: 30_000,
  waitRetryMs: 5_000,
  noResolverRetryMs: 5_000,
  writeConcurrency: 16,
};

type Cache<T> = Pick<Informer<T & { metadata: object }>, "list" | "get" | "events$">;

export interface DnsControllerDeps {
  machines: Cache<Machine>;
  meshes: Cache<MeshNetwork>;
  connector: HostConnector;
  events: Pick<EventRecorder, "event">;
  clock: Clock;
  log: Logger;
  timings?: Partial<DnsTimings>;
}

/** Warnings remembered (once per container and name): beyond this the oldest are forgotten. */
const MAX_WARNED = 16_384;

interface Host {
  key: string;
  namespace: string;
  name: string;
  /** spec.ssh as JSON: a change reconnects. */
  sshSpec: string;
  stream: DnsHostState["stream"];
  since: number;
  /** When the stream was lost (or the controller started, before the first connect); undefined while connected. */
  lostAt: number | undefined;
  /** A look succeeded since the controller started. */
  reported: boolean;
  /** Last look: per Docker network, the containers on it. */
  containers: Map<string, ReportedContainer[]>;
  containersHash: string;
  link: HostLink | undefined;
  stream$: EventStream | undefined;
  attempt: number;
  stopped: boolean;
  sleepTimer: TimerHandle | undefined;
  wake: (() => void) | undefined;
  debounce: TimerHandle | undefined;
  firstEventAt: number | undefined;
  inspecting: boolean;
  inspectAgain: boolean;
  resyncTimer: TimerHandle | undefined;
  /** Interface → hash of the content the host's file is known to hold. */
  written: Map<string, string>;
  writing: boolean;
  writeAgain: boolean;
  writeRetry: TimerHandle | undefined;
  records: number;
  lastState: string;
}

interface Rendered {
  mesh: DnsMesh;
  text: string;
  hash: string;
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

export class DnsController {
  private readonly t: DnsTimings;
  private readonly hosts = new Map<string, Host>();
  private meshes = new Map<string, DnsMesh>();
  /** Host key → the meshes it is a member of, in key order (rebuilt with `meshes`). */
  private memberOf = new Map<string, DnsMesh[]>();
  /** Mesh key → what its rendered text depends on besides the hosts' reports (see sync). */
  private meshInputs = new Map<string, string>();
  /** Mesh key → the text to write; absent while the mesh waits for its members' first reports. */
  private readonly rendered = new Map<string, Rendered>();
  private readonly dirty = new Set<string>();
  private renderTimer: TimerHandle | undefined;
  private graceTimer: { at: number; handle: TimerHandle } | undefined;
  private syncTimer: TimerHandle | undefined;
  private readonly writeSlots: Semaphore;
  private readonly warned = new Map<string, true>();
  private readonly listeners = new Set<(machineKey: string) => void>();
  private subs: Subscription[] = [];
  private startedAt = 0;
  private stopped = false;
  /** Writes sent (one SSH command each), for tests and benchmarks. */
  writes = 0;
  /** Looks at hosts (one SSH command each). */
  inspects = 0;

  constructor(private readonly d: DnsControllerDeps) {
    this.t = { ...DEFAULT_DNS_TIMINGS, ...d.timings };
    this.writeSlots = new Semaphore(this.t.writeConcurrency);
  }

  /** Starts following the caches (call after they synced). */
  start(): void {
    this.startedAt = this.d.clock.now();
    this.sync();
    // Only what decides membership, connections and the records' inputs: most events are status
    // writes, and a sync looks at every machine (it ran per event: O(N²) while a large mesh arrived).
    this.subs = [
      this.d.machines.events$.subscribe((e) => {
        if (changed(e, (m) => JSON.stringify([m.metadata.labels ?? {}, Boolean(m.metadata.deletionTimestamp), m.spec.ssh, m.metadata.uid]))) this.scheduleSync();
      }),
      this.d.meshes.events$.subscribe((e) => {
        if (changed(e, (n) => JSON.stringify([n.spec, Boolean(n.metadata.deletionTimestamp), n.status?.allocations ?? [], n.metadata.uid]))) this.scheduleSync();
      }),
    ];
  }

  /** Closes every connection; writes nothing (the files stay on the hosts). */
  stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    for (const t of [this.renderTimer, this.syncTimer, this.graceTimer?.handle]) if (t) this.d.clock.clearTimeout(t);
    for (const h of this.hosts.values()) this.stopHost(h);
    return Promise.resolve();
  }

  hostState(namespace: string, machine: string): DnsHostState | undefined {
    const h = this.hosts.get(`${namespace}/${machine}`);
    return h ? this.stateOf(h) : undefined;
  }

  onStateChange(listener: (machineKey: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The text last rendered for a mesh ("namespace/name"), for tests. */
  renderedText(meshKey: string): string | undefined {
    return this.rendered.get(meshKey)?.text;
  }

  // --- model: which meshes, which hosts --------------------------------------------------------

  private scheduleSync(): void {
    if (this.syncTimer || this.stopped) return;
    this.syncTimer = this.d.clock.setTimeout(() => {
      this.syncTimer = undefined;
      this.sync();
    }, 0);
  }

  /** Re-reads the caches: meshes with DNS, their members; starts and stops host connections. */
  private sync(): void {
    if (this.stopped) return;
    const meshes = dnsMeshes(this.d.meshes.list(), this.d.machines.list());
    const before = this.meshes;
    this.meshes = new Map(meshes.map((m) => [m.key, m]));
    for (const k of before.keys()) if (!this.meshes.has(k)) this.rendered.delete(k);
    this.memberOf = new Map();
    const wanted = new Map<string, Machine>();
    for (const mesh of meshes) {
      for (const mem of mesh.members) {
        const key = `${mesh.namespace}/${mem.machine}`;
        const list = this.memberOf.get(key);
        if (list) list.push(mesh);
        else this.memberOf.set(key, [mesh]);
        const m = this.d.machines.get(key);
        if (m) wanted.set(key, m);
      }
    }
    for (const [key, h] of this.hosts) {
      if (wanted.has(key)) continue;
      this.stopHost(h);
      this.hosts.delete(key);
      this.notify(key);
    }
    for (const [key, m] of wanted) {
      const ssh = JSON.stringify(m.spec.ssh);
      const h = this.hosts.get(key);
      if (h && h.sshSpec === ssh) {
        // Its meshes or their networks may have changed: look again (a no-op when nothing did).
        const nets = this.networksOf(key).join(",");
        if (nets !== [...h.containers.keys()].sort().join(",") && h.link) this.requestInspect(h, true);
        continue;
      }
      if (h) this.stopHost(h);
      const fresh = this.newHost(key, m, ssh, h);
      this.hosts.set(key, fresh);
      void this.run(fresh);
    }
    // Rendered again: the meshes whose zone, names or members changed (the hosts' reports mark
    // theirs dirty themselves).
    const inputs = new Map<string, string>();
    for (const mesh of meshes) {
      const facts = JSON.stringify([mesh.dns, mesh.interface, mesh.dockerNetwork, mesh.members]);
      inputs.set(mesh.key, facts);
      if (this.meshInputs.get(mesh.key) !== facts) this.dirty.add(mesh.key);
    }
    this.meshInputs = inputs;
    if (this.dirty.size) this.scheduleRender(0);
  }

  private newHost(key: string, m: Machine, sshSpec: string, previous: Host | undefined): Host {
    const now = this.d.clock.now();
    return {
      key,
      namespace: m.metadata.namespace ?? "default",
      name: m.metadata.name ?? "",
      sshSpec,
      stream: previous ? "Unreachable" : "Connecting",
      since: previous?.since ?? now,
      lostAt: previous ? (previous.lostAt ?? now) : this.startedAt,
      reported: previous?.reported ?? false,
      // A reconnect for a changed SSH spec keeps what the host said last (within the grace period).
      containers: previous?.containers ?? new Map<string, ReportedContainer[]>(),
      containersHash: previous?.containersHash ?? "",
      link: undefined,
      stream$: undefined,
      attempt: 0,
      stopped: false,
      sleepTimer: undefined,
      wake: undefined,
      debounce: undefined,
      firstEventAt: undefined,
      inspecting: false,
      inspectAgain: false,
      resyncTimer: undefined,
      written: new Map(),
      writing: false,
      writeAgain: false,
      writeRetry: undefined,
      records: previous?.records ?? 0,
      lastState: "",
    };
  }

  /** The meshes (DNS on) a host is a member of. */
  private meshesOf(key: string): readonly DnsMesh[] {
    return this.memberOf.get(key) ?? [];
  }

  private networksOf(key: string): string[] {
    return [...new Set(this.meshesOf(key).map((m) => m.dockerNetwork))].sort();
  }

  /** The WireGuard interfaces of those meshes: each names a records file on the host. */
  private interfacesOf(key: string): string[] {
    return [...new Set(this.meshesOf(key).map((m) => m.interface))].sort();
  }

  // --- one host: connection, events, looks -----------------------------------------------------

  private async run(h: Host): Promise<void> {
    while (!h.stopped && !this.stopped) {
      const m = this.d.machines.get(h.key);
      if (!m) return;
      let link: HostLink | undefined;
      try {
        const r = await this.d.connector(m);
        if (h.stopped) {
          if ("events" in r) r.close();
          return;
        }
        if ("wait" in r) {
          this.d.log.debug("mesh DNS: host not contacted yet", { machine: h.key, why: r.wait });
          await this.sleep(h, this.t.waitRetryMs);
          continue;
        }
        link = r;
        h.link = link;
        const stream = link.events((e) => this.onEvent(h, e));
        h.stream$ = stream;
        await stream.done;
        // Ended by stop() (the host left the meshes, or the controller stops): not news.
        if (h.stopped) return;
        this.d.log.info("mesh DNS: event stream ended; reconnecting", { machine: h.key });
      } catch (err) {
        if (h.stopped) return;
        this.d.log.info("mesh DNS: host connection failed", { machine: h.key, error: describeError(err) });
      }
      if (h.stopped) return;
      const wasConnected = h.stream === "Connected";
      h.stream$?.close();
      h.stream$ = undefined;
      link?.close();
      h.link = undefined;
      if (h.resyncTimer) this.d.clock.clearTimeout(h.resyncTimer);
      h.resyncTimer = undefined;
      this.lose(h);
      if (wasConnected) h.attempt = 0;
      const waitMs = Math.min(this.t.backoffMs * 2 ** h.attempt, this.t.backoffMaxMs);
      h.attempt++;
      await this.sleep(h, waitMs);
    }
  }

  /** The stream is not running: Unreachable from now (or from the start, if never connected). */
  private lose(h: Host): void {
    if (h.stream !== "Unreachable") {
      h.stream = "Unreachable";
      if (h.lostAt === undefined) h.lostAt = this.d.clock.now();
      h.since = h.lostAt;
    }
    for (const m of this.meshesOf(h.key)) this.dirty.add(m.key);
    this.scheduleRender();
    this.notify(h.key);
  }

  private onEvent(h: Host, e: DockerEvent): void {
    if (h.stopped) return;
    if (e.kind === "ready") {
      h.stream = "Connected";
      h.since = this.d.clock.now();
      h.lostAt = undefined;
      // What the host's files hold now is not known (a reboot, a hand edit) until the look below
      // reports their digests: meanwhile a render writes them in full.
      h.written.clear();
      this.notify(h.key);
      this.requestInspect(h, true);
      this.scheduleResync(h);
      return;
    }
    this.requestInspect(h, false);
  }

  private scheduleResync(h: Host): void {
    if (h.resyncTimer) this.d.clock.clearTimeout(h.resyncTimer);
    h.resyncTimer = this.d.clock.setTimeout(() => {
      h.resyncTimer = undefined;
      if (h.stopped || !h.link) return;
      // The look reads the files' digests: only a file that differs is written again.
      this.requestInspect(h, true);
      this.scheduleResync(h);
    }, this.t.resyncMs);
  }

  /** A look at the host soon: trailing debounce, capped; now when `immediate`. Single flight. */
  private requestInspect(h: Host, immediate: boolean): void {
    const now = this.d.clock.now();
    h.firstEventAt ??= now;
    const at = immediate ? now : Math.min(now + this.t.debounceMs, h.firstEventAt + this.t.debounceMaxMs);
    if (h.debounce) this.d.clock.clearTimeout(h.debounce);
    h.debounce = this.d.clock.setTimeout(() => {
      h.debounce = undefined;
      if (h.inspecting) {
        h.inspectAgain = true;
        return;
      }
      h.firstEventAt = undefined;
      void this.inspect(h);
    }, at - now);
  }

  private async inspect(h: Host): Promise<void> {
    const link = h.link;
    if (!link || h.stopped) return;
    h.inspecting = true;
    try {
      const nets = this.networksOf(h.key);
      const ifaces = this.interfacesOf(h.key);
      this.inspects++;
      const r = await link.inspect(nets, ifaces);
      if (h.stopped) return;
      if (r.dropped) this.d.log.warn("mesh DNS: dropped malformed lines from a host's container list", { machine: h.key, dropped: r.dropped });
      // What the host's files hold now, by its own digest: a file that is right is not sent again
      // (a resync or a reconnect cost a whole file per mesh per host before). A host that lies
      // about its digest only keeps its own file stale.
      for (const i of ifaces) {
        const sum = r.files.get(i);
        if (sum) h.written.set(i, sum);
        else h.written.delete(i);
      }
      const containers = new Map<string, ReportedContainer[]>(nets.map((n) => [n, r.networks.get(n) ?? []]));
      const hash = sha(JSON.stringify([...containers]));
      const first = !h.reported;
      h.reported = true;
      if (first || hash !== h.containersHash) {
        h.containers = containers;
        h.containersHash = hash;
        for (const m of this.meshesOf(h.key)) this.dirty.add(m.key);
        this.scheduleRender();
      } else {
        // Nothing new from this host; a resync still makes sure its own files are right.
        this.scheduleWrite(h);
      }
    } catch (err) {
      if (!h.stopped) this.d.log.info("mesh DNS: looking at a host's containers failed", { machine: h.key, error: describeError(err) });
    } finally {
      h.inspecting = false;
      if (h.inspectAgain && !h.stopped) {
        h.inspectAgain = false;
        this.requestInspect(h, true);
      }
    }
  }

  private sleep(h: Host, ms: number): Promise<void> {
    return new Promise((resolve) => {
      h.wake = resolve;
      h.sleepTimer = this.d.clock.setTimeout(() => {
        h.sleepTimer = undefined;
        h.wake = undefined;
        resolve();
      }, ms);
    });
  }

  private stopHost(h: Host): void {
    h.stopped = true;
    for (const t of [h.sleepTimer, h.debounce, h.resyncTimer, h.writeRetry]) if (t) this.d.clock.clearTimeout(t);
    h.wake?.();
    h.stream$?.close();
    h.link?.close();
    h.link = undefined;
  }

  // --- meshes: render, then write ------------------------------------------------------------

  private scheduleRender(delay = this.t.renderDelayMs): void {
    if (this.stopped || this.renderTimer) return;
    this.renderTimer = this.d.clock.setTimeout(() => {
      this.renderTimer = undefined;
      this.renderDirty();
    }, delay);
  }

  /** Withdrawn from this mesh: unreachable (or never reached) for longer than its grace period. */
  private withdrawn(h: Host | undefined, mesh: DnsMesh, now: number): boolean {
    if (!h || h.lostAt === undefined) return false;
    return now - h.lostAt >= mesh.dns.unreachableGraceSeconds * 1000;
  }

  private renderDirty(): void {
    const now = this.d.clock.now();
    const touched = new Set<string>();
    let nextExpiry = Infinity;
    const meshKeys = [...this.dirty];
    this.dirty.clear();
    for (const key of meshKeys) {
      const mesh = this.meshes.get(key);
      if (!mesh) continue;
      const inputs = [];
      let waiting = false;
      for (const mem of mesh.members) {
        const h = this.hosts.get(`${mesh.namespace}/${mem.machine}`);
        const out = this.withdrawn(h, mesh, now);
        if (h?.lostAt !== undefined && !out) nextExpiry = Math.min(nextExpiry, h.lostAt + mesh.dns.unreachableGraceSeconds * 1000);
        // After a start: not before every member has reported once or is out for the grace period.
        if (!h?.reported && !out) waiting = true;
        inputs.push({
          machine: mem.machine,
          subnet: mem.subnet,
          ...(mem.subnetV6 !== undefined ? { subnetV6: mem.subnetV6 } : {}),
          containers: out || !h ? [] : (h.containers.get(mesh.dockerNetwork) ?? []),
        });
      }
      // Once a mesh was written, a member that joins later does not hold the others back.
      if (waiting && !this.rendered.has(key)) continue;
      let r: ReturnType<typeof renderRecords>;
      try {
        r = renderRecords(mesh.dns.zone, inputs);
      } catch (err) {
        // A refused value (UnsafeValueError): this mesh is not written; a timer must never throw.
        this.d.log.warn("mesh DNS records not rendered", { meshNetwork: key, error: err instanceof Error ? err.message : String(err) });
        continue;
      }
      this.warn(mesh, r.skipped);
      for (const [machine, n] of r.records) this.setRecords(`${mesh.namespace}/${machine}`, mesh.key, n);
      this.rendered.set(key, { mesh, text: r.text, hash: sha(r.text) });
      for (const mem of mesh.members) touched.add(`${mesh.namespace}/${mem.machine}`);
    }
    for (const key of touched) {
      const h = this.hosts.get(key);
      if (h) this.scheduleWrite(h);
      if (h) this.notify(key);
    }
    if (nextExpiry < Infinity) this.scheduleGrace(nextExpiry);
  }

  private scheduleGrace(at: number): void {
    if (this.graceTimer && this.graceTimer.at <= at) return;
    if (this.graceTimer) this.d.clock.clearTimeout(this.graceTimer.handle);
    const handle = this.d.clock.setTimeout(
      () => {
        this.graceTimer = undefined;
        for (const k of this.meshes.keys()) this.dirty.add(k);
        this.renderDirty();
        for (const h of this.hosts.values()) this.notify(h.key);
      },
      Math.max(0, at - this.d.clock.now()),
    );
    this.graceTimer = { at, handle };
  }

  /** Records contributed by a host, summed over its meshes. */
  private readonly recordCounts = new Map<string, Map<string, number>>();
  private setRecords(hostKey: string, meshKey: string, n: number): void {
    const per = this.recordCounts.get(hostKey) ?? new Map<string, number>();
    per.set(meshKey, n);
    this.recordCounts.set(hostKey, per);
    const h = this.hosts.get(hostKey);
    if (h) h.records = [...per.entries()].filter(([k]) => this.meshes.has(k)).reduce((a, [, v]) => a + v, 0);
  }

  /** The files a host should hold and does not yet: per mesh it is a member of, the rendered text. */
  private filesFor(h: Host): Array<RecordsFile & { hash: string }> {
    const out: Array<RecordsFile & { hash: string }> = [];
    for (const mesh of this.meshesOf(h.key)) {
      const r = this.rendered.get(mesh.key);
      if (!r || h.written.get(mesh.interface) === r.hash) continue;
      out.push({ interface: mesh.interface, text: r.text, hash: r.hash });
    }
    return out;
  }

  /** Writes what the host lacks: one command for all its meshes; single flight, the latest text wins. */
  private scheduleWrite(h: Host): void {
    if (h.stopped || !h.link) return;
    if (h.writing) {
      h.writeAgain = true;
      return;
    }
    const files = this.filesFor(h);
    if (files.length === 0) return;
    h.writing = true;
    void this.write(h);
  }

  private async write(h: Host): Promise<void> {
    let noResolver = false;
    await this.writeSlots.acquire();
    try {
      const link = h.link;
      if (!link || h.stopped) return;
      // The latest text: it may have changed while this write waited for a slot.
      const files = this.filesFor(h);
      if (files.length === 0) return;
      this.writes++;
      const r = await link.write(files);
      for (const f of files) if (r.done.includes(f.interface)) h.written.set(f.interface, f.hash);
      if (r.noResolver.length) {
        noResolver = true;
        this.d.log.debug("mesh DNS: resolver not configured yet on the host; records written later", { machine: h.key, interfaces: r.noResolver });
      }
    } catch (err) {
      if (!h.stopped) this.d.log.info("mesh DNS: writing records failed", { machine: h.key, error: describeError(err) });
    } finally {
      this.writeSlots.release();
      h.writing = false;
    }
    if (h.stopped) return;
    if (h.writeAgain) {
      h.writeAgain = false;
      this.scheduleWrite(h);
    } else if (noResolver && !h.writeRetry) {
      h.writeRetry = this.d.clock.setTimeout(() => {
        h.writeRetry = undefined;
        this.scheduleWrite(h);
      }, this.t.noResolverRetryMs);
    }
  }

  // --- events and state ----------------------------------------------------------------------

  /** A Warning Event per skipped container name, once per container and name. */
  private warn(mesh: DnsMesh, skipped: readonly SkippedName[]): void {
    for (const s of skipped) {
      const key = `${mesh.namespace}/${s.machine}\0${s.container}\0${s.name}\0${s.kind}`;
      if (this.warned.has(key)) continue;
      this.warned.set(key, true);
      if (this.warned.size > MAX_WARNED) this.warned.delete(this.warned.keys().next().value!);
      const m = this.d.machines.get(`${mesh.namespace}/${s.machine}`);
      if (!m) continue;
      const what = s.container ? `container ${s.container} on Docker network ${mesh.dockerNetwork}: ` : "";
      const reason = s.kind === "address" ? "InvalidDNSAddress" : "InvalidDNSName";
      this.d.log.warn("mesh DNS: name not published", { machine: `${mesh.namespace}/${s.machine}`, mesh: mesh.name, container: s.container, reason: s.reason });
      void this.d.events.event(m, "Warning", reason, `MeshNetwork ${mesh.name} DNS: ${what}${s.reason}`);
    }
  }

  private stateOf(h: Host): DnsHostState {
    const now = this.d.clock.now();
    const withdrawn = this.meshesOf(h.key).some((m) => this.withdrawn(h, m, now));
    return { stream: h.stream, since: h.since, withdrawn, records: h.records };
  }

  private notify(key: string): void {
    const h = this.hosts.get(key);
    // Only what the Machine's DNSReady shows: a record count or a timestamp changing is no news.
    const state = h ? (({ stream, withdrawn }) => `${stream} ${withdrawn}`)(this.stateOf(h)) : "";
    if (h) {
      if (h.lastState === state) return;
      h.lastState = state;
    }
    for (const l of this.listeners) {
      try {
        l(key);
      } catch (err) {
        this.d.log.warn("mesh DNS: a state listener failed", { error: describeError(err) });
      }
    }
  }
}
