// Which reconciles a watch event asks for, beyond the object's own: the machines and meshes
// that plan or report with what changed, and no others. Each status write of a machine is a
// watch event; in a mesh of N machines, re-reconciling all N on each one made convergence do
// O(N²) reconciles (and a Ready machine's reconcile still re-plans the whole mesh to find it has
// nothing to do). Pure bookkeeping: the caller passes the namespace's machines.
import { createHash } from "node:crypto";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import type { SecretObject } from "../runtime/informer.js";
import { findCondition } from "../runtime/conditions.js";
import { objectKey, type WatchEvent } from "../runtime/informer.js";
import { canRelay } from "./relays.js";

/**
 * What other machines plan with (endpoints, membership) or report (a peer the controller cannot
 * reach). Peer keys come from the key Secrets (onKeySecret), not from status.publicKey.
 */
export function peerPlanFacts(m: Machine): string {
  return JSON.stringify([
    m.spec.endpoint ?? "",
    m.spec.endpointPorts ?? [],
    m.metadata.labels ?? {},
    Boolean(m.metadata.deletionTimestamp),
    findCondition(m.status?.conditions, "Reachable")?.status === "False",
  ]);
}

/** What machines waiting for their peers look for: a peer that became reachable or ready may now handshake. */
export function readinessFacts(m: Machine): string {
  return JSON.stringify([findCondition(m.status?.conditions, "Ready")?.status ?? "", findCondition(m.status?.conditions, "Reachable")?.status ?? ""]);
}

/** What a MeshNetwork's status is computed from (membership, relays, ready counts). */
export function meshStatusFacts(m: Machine): string {
  return JSON.stringify([peerPlanFacts(m), canRelay(m), readinessFacts(m)]);
}

/** What machines plan with from a MeshNetwork: its spec and the subnets it allocated. */
export function meshPlanFacts(mesh: MeshNetwork): string {
  return JSON.stringify([mesh.spec, Boolean(mesh.metadata.deletionTimestamp), mesh.status?.allocations ?? []]);
}

const isReady = (m: Machine) => findCondition(m.status?.conditions, "Ready")?.status === "True";

export class FanOut {
  private readonly plan = new Map<string, string>();
  private readonly relay = new Map<string, boolean>();
  private readonly readiness = new Map<string, string>();
  private readonly meshStatus = new Map<string, string>();
  private readonly meshPlan = new Map<string, string>();
  private readonly meshReady = new Map<string, string>();
  private readonly keys = new Map<string, string>();
  private readonly meshSpec = new Map<string, string>();

  /**
   * A machine's WireGuard key Secret → the machines that configure it as a peer from there:
   * created, only those not Ready (a machine whose peer has no key yet waits, not Ready; at start
   * the informer lists every Secret, and Ready machines have nothing to add); its key changed
   * (rotation), every machine of the namespace.
   */
  onKeySecret(e: WatchEvent<SecretObject>, isKeySecret: (secretName: string) => boolean, namespace: () => readonly Machine[]): string[] {
    const key = objectKey(e.object);
    if (!isKeySecret(e.object.metadata?.name ?? "")) return [];
    if (e.type === "DELETED") {
      this.keys.delete(key);
      return [];
    }
    const digest = createHash("sha256").update(e.object.data?.privateKey ?? "").digest("hex");
    const before = this.keys.get(key);
    this.keys.set(key, digest);
    if (before === digest) return [];
    return namespace()
      .filter((m) => before !== undefined || !isReady(m))
      .map(objectKey);
  }

  /**
   * A Machine event: the machine itself, plus (for changes and deletions)
   * - every machine of the namespace when something they plan with changed;
   * - the NAT'd machines when it became able or unable to relay (only they use relays);
   * - the machines not Ready yet when its readiness changed (they may be waiting for it);
   * and whether the namespace's meshes must recount.
   */
  onMachine(e: WatchEvent<Machine>, namespace: () => readonly Machine[]): { machines: string[]; meshes: boolean } {
    const key = objectKey(e.object);
    const gone = e.type === "DELETED";
    const changed = <V>(map: Map<string, V>, value: () => V): boolean => {
      if (gone) {
        map.delete(key);
        return true;
      }
      const v = value();
      const c = map.get(key) !== v;
      map.set(key, v);
      return c;
    };
    const plan = changed(this.plan, () => peerPlanFacts(e.object));
    if (e.type === "ADDED") {
      // A new machine (or every machine, once, when the informer lists them at start): others
      // learn of it through the subnet its mesh allocates to it (onMesh), not from this event.
      for (const map of [this.relay, this.readiness, this.meshStatus] as Array<Map<string, unknown>>) map.delete(key);
      this.relay.set(key, canRelay(e.object));
      this.readiness.set(key, readinessFacts(e.object));
      this.meshStatus.set(key, meshStatusFacts(e.object));
      return { machines: [key], meshes: true };
    }
    const relay = changed(this.relay, () => canRelay(e.object));
    const readiness = changed(this.readiness, () => readinessFacts(e.object));
    const meshes = changed(this.meshStatus, () => meshStatusFacts(e.object));
    if (plan) return { machines: [key, ...namespace().map(objectKey)], meshes };
    const others = namespace().filter((m) => (relay && !m.spec.endpoint) || (readiness && !isReady(m)));
    return { machines: [key, ...others.map(objectKey)], meshes };
  }

  /**
   * A MeshNetwork event → meshes: itself; and every mesh of the namespace when it came, went, or
   * its spec changed, since any of them may clash with it on a machine (mesh/conflicts.ts) or no
   * longer do. Its status alone (each write of it) concerns no other mesh.
   */
  onMeshForMeshes(e: WatchEvent<MeshNetwork>, namespace: () => readonly MeshNetwork[]): string[] {
    const key = objectKey(e.object);
    if (e.type === "DELETED") {
      this.meshSpec.delete(key);
      return namespace().map(objectKey);
    }
    const spec = JSON.stringify([e.object.spec, Boolean(e.object.metadata?.deletionTimestamp)]);
    const changed = this.meshSpec.get(key) !== spec;
    this.meshSpec.set(key, spec);
    return changed ? [key, ...namespace().map(objectKey)] : [key];
  }

  /**
   * A MeshNetwork event → machines: all of the namespace when its spec or allocations changed;
   * only those without a subnet in it when just its Ready condition did (their status quotes it);
   * none for a recount.
   */
  onMesh(e: WatchEvent<MeshNetwork>, namespace: () => readonly Machine[]): string[] {
    const key = objectKey(e.object);
    if (e.type === "DELETED") {
      this.meshPlan.delete(key);
      this.meshReady.delete(key);
      return namespace().map(objectKey);
    }
    const plan = meshPlanFacts(e.object);
    const cond = findCondition(e.object.status?.conditions, "Ready");
    const ready = JSON.stringify([cond?.status, cond?.reason, cond?.message]);
    const planChanged = this.meshPlan.get(key) !== plan;
    const readyChanged = this.meshReady.get(key) !== ready;
    this.meshPlan.set(key, plan);
    this.meshReady.set(key, ready);
    if (planChanged) return namespace().map(objectKey);
    if (!readyChanged) return [];
    const allocated = new Set((e.object.status?.allocations ?? []).map((a) => a.machine));
    return namespace()
      .filter((m) => !allocated.has(m.metadata.name ?? ""))
      .map(objectKey);
  }
}
