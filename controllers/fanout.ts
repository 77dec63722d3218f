// Which reconciles a watch event asks for, beyond the object's own: the machines and meshes
// that plan or report with what changed, and no others. Each status write of a machine is a
// watch event; in a mesh of N machines, re-reconciling all N on each one made convergence do
// O(N²) reconciles (and a Ready machine's reconcile still re-plans the whole mesh to find it has
// nothing to do). Pure bookkeeping: the caller passes the namespace's machines.
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import type { SecretObject } from "../runtime/informer.js";
import { findCondition } from "../runtime/conditions.js";
import { changed, objectKey, type WatchEvent } from "../runtime/informer.js";
import { canRelay } from "./relays.js";
import { hasFamilyGap, reachOfMachine } from "../mesh/uplinks.js";

/**
 * What other machines plan with (endpoints, membership) or report (a peer the controller cannot
 * reach). Peer keys come from the key Secrets (onKeySecret), not from status.publicKey.
 */
export function peerPlanFacts(m: Machine): string {
  return JSON.stringify([
    m.spec.endpoint ?? "",
    m.spec.endpointV6 ?? "",
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

/** What machines plan with from a MeshNetwork: its spec and the subnets it allocated. */
export function meshPlanFacts(mesh: MeshNetwork): string {
  return JSON.stringify([mesh.spec, Boolean(mesh.metadata.deletionTimestamp), mesh.status?.allocations ?? []]);
}

const isReady = (m: Machine) => findCondition(m.status?.conditions, "Ready")?.status === "True";
const meshSpecFacts = (mesh: MeshNetwork) => JSON.stringify([mesh.spec, Boolean(mesh.metadata?.deletionTimestamp)]);
const meshReadyFacts = (mesh: MeshNetwork) => {
  const cond = findCondition(mesh.status?.conditions, "Ready");
  return JSON.stringify([cond?.status, cond?.reason, cond?.message]);
};

/**
 * Each method maps a watch event to keys, as controller-runtime's mapped handlers with predicates
 * over the object before and after it (the informer's `old`): no state of its own.
 */
export class FanOut {
  /**
   * A machine's WireGuard key Secret → the machines that configure it as a peer from there:
   * created, only those not Ready (a machine whose peer has no key yet waits, not Ready; at start
   * the informer lists every Secret, and Ready machines have nothing to add); its key changed
   * (rotation), every machine of the namespace.
   */
  onKeySecret(e: WatchEvent<SecretObject>, isKeySecret: (secretName: string) => boolean, namespace: () => readonly Machine[]): string[] {
    if (e.type === "DELETED" || !changed(e, (s) => s.data?.privateKey ?? "") || !isKeySecret(e.object.metadata?.name ?? "")) return [];
    return namespace()
      .filter((m) => e.old !== undefined || !isReady(m))
      .map(objectKey);
  }

  /**
   * A Machine event: the machine itself, plus (for changes and deletions)
   * - every machine of the namespace when something they plan with changed;
   * - the machines that use relays when it became able or unable to relay (NAT'd ones; all when uplinks differ in family);
   * - the machines not Ready yet when its readiness changed (they may be waiting for it);
   * and whether the namespace's meshes must recount.
   */
  onMachine(e: WatchEvent<Machine>, namespace: () => readonly Machine[]): { machines: string[]; meshes: boolean } {
    const key = objectKey(e.object);
    // A new machine (or every machine, once, when the informer lists them at start): others
    // learn of it through the subnet its mesh allocates to it (onMesh), not from this event.
    if (e.type === "ADDED") return { machines: [key], meshes: true };
    if (changed(e, peerPlanFacts)) return { machines: [key, ...namespace().map(objectKey)], meshes: true };
    const relay = changed(e, canRelay);
    const readiness = changed(e, readinessFacts);
    // Relays serve NAT'd machines, and any machine when some uplinks share no family (mesh/uplinks.ts).
    const all = namespace();
    const gap = relay && hasFamilyGap(all.map(reachOfMachine));
    const others = all.filter((m) => (relay && (!m.spec.endpoint || gap)) || (readiness && !isReady(m)));
    // A mesh's status counts its members, relays and Ready machines.
    return { machines: [key, ...others.map(objectKey)], meshes: relay || readiness };
  }

  /**
   * A MeshNetwork event → meshes: itself; and every mesh of the namespace when it came, went, or
   * its spec changed, since any of them may clash with it on a machine (mesh/conflicts.ts) or no
   * longer do. Its status alone (each write of it) concerns no other mesh.
   */
  onMeshForMeshes(e: WatchEvent<MeshNetwork>, namespace: () => readonly MeshNetwork[]): string[] {
    const all = namespace().map(objectKey);
    if (e.type === "DELETED") return all;
    return changed(e, meshSpecFacts) ? [objectKey(e.object), ...all] : [objectKey(e.object)];
  }

  /**
   * A MeshNetwork event → machines: all of the namespace when its spec or allocations changed;
   * only those without a subnet in it when just its Ready condition did (their status quotes it);
   * none for a recount.
   */
  onMesh(e: WatchEvent<MeshNetwork>, namespace: () => readonly Machine[]): string[] {
    if (changed(e, meshPlanFacts)) return namespace().map(objectKey);
    if (!changed(e, meshReadyFacts)) return [];
    const allocated = new Set((e.object.status?.allocations ?? []).map((a) => a.machine));
    return namespace()
      .filter((m) => !allocated.has(m.metadata.name ?? ""))
      .map(objectKey);
  }
}
