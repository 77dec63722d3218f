// What a Machine's reconcile plans from, read from the informers' caches: the machine's meshes
// with their members, keys and endpoints (a snapshot), memoized per namespace while the plan
// inputs are unchanged; and the first-contact wait for machines created together.
import { createHash } from "node:crypto";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { resolveMesh, type ResolvedMesh } from "../mesh/defaults.js";
import { selectorMatches } from "../mesh/selector.js";
import { isMember, planMesh, type Member, type MeshView } from "../mesh/plan.js";
import { meshConflicts, meshKey } from "../mesh/conflicts.js";
import { checkAllocations } from "../mesh/allocations.js";
import { endpointIn } from "../mesh/endpoints.js";
import { hasFamilyGap } from "../mesh/uplinks.js";
import type { PreviousNetwork } from "../hosts/diff.js";
import { findCondition } from "../runtime/conditions.js";
import { changed, type Informer, type SecretObject } from "../runtime/informer.js";
import type { Clock } from "../runtime/clock.js";
import { meshPlanFacts, peerPlanFacts } from "./fanout.js";
import { publicKeyFromSecret, type MachineKey } from "./keys.js";
import { previousFromStatus } from "./previous-networks.js";
import { isDeleting, keySecretName } from "./resources.js";
import { canRelay } from "./relays.js";

export interface ViewsDeps {
  machines: Informer<Machine>;
  meshes: Informer<MeshNetwork>;
  secrets: Informer<SecretObject>;
  clock: Clock;
}

/** What one reconcile plans from: the machine's meshes and peers as the caches have them. */
export interface Snapshot {
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
export interface MeshMemo {
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

export interface NamespaceViews {
  version: number;
  all: ResolvedMesh[];
  meshes: MeshMemo[];
  invalid: Array<{ obj: MeshNetwork; message: string }>;
  /** Machines whose Reachable is False (a fact that moves inputsVersion: peerPlanFacts). */
  unmanaged: ReadonlySet<string>;
}

/** A machine created this recently without a key or subnet yet is arriving (settleFirstContact). */
const ARRIVAL_WINDOW_MS = 60_000;
/** How long a namespace's arrivals are reused (settleFirstContact's looks are lookups). */
const ARRIVALS_TTL_MS = 250;
/**
 * After the inputs changed, arrivals are computed again at once, but not more often than this
 * much per young machine (250 ms at 1,250 machines): a wait goes on at the event that completes
 * the mesh in a small namespace, while a large one keeps the work per second bounded.
 */
const ARRIVALS_RECOMPUTE_MS_PER_MACHINE = 0.2;
/** Longest wait of a first contact for arriving machines, and how often it looks again. */
const FIRST_CONTACT_SETTLE_MS = 15_000;
const SETTLE_POLL_MS = 1_000;

export class MachineViews {
  /** Namespace → what its machines plan with, valid while inputsVersion is unchanged. */
  private readonly viewsMemo = new Map<string, NamespaceViews>();
  /**
   * Counts changes of what plans are made from (a Machine's spec, labels, deletion, relay ability;
   * a MeshNetwork's spec and allocations; our Secrets). Undefined without watch events (test fakes):
   * nothing is memoized then.
   */
  private inputsVersion: number | undefined;
  /** key → when its first contact began waiting for machines created with it (settleFirstContact). */
  private readonly settling = new Map<string, { since: number; next: number }>();
  /** Namespace → its meshes' arriving machines (arrivals), and when that was computed. */
  private readonly arrivalsMemo = new Map<string, { at: number; version: number | undefined; young: number; meshes: Array<{ mesh: ResolvedMesh; names: Set<string> }> }>();

  constructor(private readonly d: ViewsDeps) {
    const machines$ = (d.machines as Partial<Informer<Machine>>).events$;
    const meshes$ = (d.meshes as Partial<Informer<MeshNetwork>>).events$;
    const secrets$ = (d.secrets as Partial<Informer<SecretObject>>).events$;
    if (!machines$ || !meshes$ || !secrets$) return;
    this.inputsVersion = 0;
    const bump = () => void (this.inputsVersion = (this.inputsVersion ?? 0) + 1);
    // Subscribed before the manager's: the version moves before any reconcile the event asks for.
    machines$.subscribe((e) => {
      if (changed(e, (m) => JSON.stringify([peerPlanFacts(m), canRelay(m), m.metadata?.uid]))) bump();
    });
    meshes$.subscribe((e) => {
      if (changed(e, meshPlanFacts)) bump();
    });
    secrets$.subscribe(bump);
  }

  private secret = (ns: string, name: string) => this.d.secrets.get(`${ns}/${name}`);

  /** A machine gone from the cache: nothing of it is kept. */
  forget(key: string): void {
    this.settling.delete(key);
  }

  snapshot(m: Machine, key: MachineKey): Snapshot {
    const v = this.meshViews(m, key);
    const prev = previousFromStatus(m, v.keep);
    return { ...v, previous: prev.previous, refused: [...v.refused, ...prev.refused].sort() };
  }

  /** The snapshot taken again; kept as it was if the set of meshes changed (teardown was decided on it). */
  refreshed(m: Machine, key: MachineKey, before: Snapshot): Snapshot {
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
  namespaceViews(ns: string): NamespaceViews {
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
        meshes.push({
          mesh,
          obj,
          refusal: `MeshNetwork ${mesh.name}: ${refusal.field}: ${refusal.message}`,
          allocated: new Set(),
          members: [],
          refused: [],
          relayCandidates: [],
          natMembers: 0,
          digest: "",
        });
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
        const {
          endpoint,
          endpointV6,
          refused: bad,
        } = endpointIn(
          peer,
          mesh,
          all.filter((x) => isMember(x, peer)),
        );
        refused.push(...bad);
        if (written && !endpoint) continue;
        members.push({
          name: a.machine,
          subnet: a.subnet,
          ...(a.subnetV6 ? { subnetV6: a.subnetV6 } : {}),
          ...(endpoint ? { endpoint } : {}),
          ...(endpointV6 ? { endpointV6 } : {}),
          ...(publicKey ? { publicKey } : {}),
        });
      }
      // Relays matter only where two members are behind NAT or uplinks share no family (a pair to relay). Elsewhere the list is
      // left empty, so peers' status changing (which decides who can relay) leaves this plan, and
      // its hash, as they are: no re-converge of every host when the others turn Ready.
      const natMembers = members.filter((x) => !x.endpoint).length;
      const relayCandidates = natMembers >= 2 || hasFamilyGap(members) ? members.filter((x) => canRelay(this.d.machines.get(`${ns}/${x.name}`))).map((x) => x.name) : [];
      const digest = createHash("sha256").update(JSON.stringify({ mesh, members, relayCandidates })).digest("hex");
      meshes.push({ mesh, obj, allocated: new Set(checked.valid.map((a) => a.machine)), members, refused, relayCandidates, natMembers, digest });
    }
    const unmanaged = new Set(
      this.d.machines
        .list(ns)
        .filter((x) => findCondition(x.status?.conditions, "Reachable")?.status === "False")
        .map((x) => x.metadata.name ?? ""),
    );
    const views: NamespaceViews = { version: this.inputsVersion ?? -1, all, meshes, invalid, unmanaged };
    if (this.inputsVersion !== undefined) {
      if (this.viewsMemo.size > 1_000) this.viewsMemo.clear();
      this.viewsMemo.set(ns, views);
    }
    return views;
  }

  /** The meshes this machine belongs to, as planHost needs them; and why some cannot be planned yet. */
  meshViews(m: Machine, key: MachineKey): Omit<Snapshot, "previous"> {
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
   * once per ARRIVALS_TTL_MS for the namespace (a wait's look is then a lookup, not a re-plan),
   * and again when the inputs changed, at most once per ARRIVALS_RECOMPUTE_MS_PER_MACHINE each.
   */
  private arrivals(ns: string): Array<{ mesh: ResolvedMesh; names: Set<string> }> {
    const now = this.d.clock.now();
    const memo = this.arrivalsMemo.get(ns);
    if (memo && now - memo.at < ARRIVALS_TTL_MS) {
      const current = memo.version === this.inputsVersion;
      if (current || now - memo.at < memo.young * ARRIVALS_RECOMPUTE_MS_PER_MACHINE) return memo.meshes;
    }
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
    this.arrivalsMemo.set(ns, { at: now, version: this.inputsVersion, young: young.length, meshes });
    return meshes;
  }

  /**
   * Before the first contact with a host that has nothing of ours yet: while machines created with
   * it (in one of its meshes) still lack a key or a subnet, wait (a second at a time,
   * FIRST_CONTACT_SETTLE_MS at most) so that its first converge configures them all. Converging at
   * once and again for each arrival cost a mesh created at once ~4 converges and ~10 round trips
   * per host. The wait writes nothing. Returns the requeue delay, or undefined to go on.
   */
  settleFirstContact(m: Machine, key: string, converged: boolean): number | undefined {
    // Its own key is there by now: it is among them only while its own subnet is not.
    if (converged || (m.status?.networks?.length ?? 0) > 0 || !this.waitsForArrivals(m)) {
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
   * it goes on at once when nothing is left to wait for (the event completed the mesh), else it
   * looks again once the poll period has passed. At 8 machines the poll alone kept every first
   * converge waiting for the rest of a second after the last key had come.
   */
  settleWaitLeft(key: string, m: Machine): number {
    const s = this.settling.get(key);
    const left = s ? s.next - this.d.clock.now() : 0;
    if (left <= 0) return 0;
    return this.waitsForArrivals(m) ? left : 0;
  }

  /** Whether machines created with m, in one of its meshes, still lack a key or a subnet. */
  private waitsForArrivals(m: Machine): boolean {
    return this.arrivals(m.metadata.namespace ?? "default").some((a) => isMember(a.mesh, m));
  }

  /**
   * Why a mesh refuses this machine a subnet (a pin outside the pool, taken, of the wrong size; a
   * full pool): the errors the MeshNetwork controller's own plan gives for it, from the same caches.
   */
  private refusals(mesh: ResolvedMesh, obj: MeshNetwork, name: string, all: readonly ResolvedMesh[]): string[] {
    const plan = planMesh(mesh, this.d.machines.list(mesh.namespace), { existing: obj.status?.allocations ?? [], allMeshes: all });
    return plan.errors
      .filter((e) => (e.kind === "Machine" && e.name === name) || ((e.field === "spec.cidr" || e.field === "spec.cidrV6") && e.machine === name))
      .map((e) => `${e.field}: ${e.message.replace(`MeshNetwork ${mesh.name}: `, "")}`);
  }

  /** Peers whose own Machine says the controller cannot reach them (not held against this one). */
  unmanaged(ns: string): ReadonlySet<string> {
    return this.namespaceViews(ns).unmanaged;
  }

  /** The members of these meshes the controller cannot reach now, sorted. */
  unmanagedOf(m: Machine, views: readonly MeshView[]): string {
    const out = this.unmanaged(m.metadata.namespace ?? "default");
    return JSON.stringify([...new Set(views.flatMap((v) => v.members.map((x) => x.name)).filter((x) => out.has(x)))].sort());
  }
}
