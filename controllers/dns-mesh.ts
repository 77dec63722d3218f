// Which meshes serve DNS, and who is in them, from the informer caches (issue 13, records half).
// Pure functions of the cached objects.
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { resolveMesh, type ResolvedDns, type ResolvedMesh } from "../mesh/defaults.js";
import { isMember } from "../mesh/plan.js";
import { meshConflicts, meshKey } from "../mesh/conflicts.js";
import { checkAllocations } from "../mesh/allocations.js";

export type { ResolvedDns } from "../mesh/defaults.js";

export interface DnsMember {
  machine: string;
  subnet: string;
  /** Its IPv6 subnet in a dual-stack mesh: its containers' IPv6 addresses are published (AAAA). */
  subnetV6?: string;
}

/** A mesh with DNS on, as the records half needs it. */
export interface DnsMesh {
  /** "namespace/name". */
  key: string;
  namespace: string;
  name: string;
  interface: string;
  dockerNetwork: string;
  dns: ResolvedDns;
  /** Members with a valid allocation, sorted by name; machines being deleted are not members. */
  members: DnsMember[];
}

/** Every mesh with DNS on that can be configured (valid, not refused for a clash), with its members. */
export function dnsMeshes(meshes: readonly MeshNetwork[], machines: readonly Machine[]): DnsMesh[] {
  const byNs = new Map<string, Array<{ obj: MeshNetwork; mesh: ResolvedMesh }>>();
  for (const obj of meshes) {
    if (obj.metadata.deletionTimestamp) continue;
    const r = resolveMesh(obj);
    if (!r.mesh) continue;
    const list = byNs.get(r.mesh.namespace) ?? [];
    list.push({ obj, mesh: r.mesh });
    byNs.set(r.mesh.namespace, list);
  }
  const out: DnsMesh[] = [];
  for (const [ns, list] of byNs) {
    const nsMachines = machines.filter((m) => (m.metadata.namespace ?? "default") === ns);
    const refused = meshConflicts(
      list.map((x) => x.mesh),
      nsMachines,
    );
    for (const { obj, mesh } of list) {
      const dns = mesh.dns;
      if (!dns || refused.has(meshKey(mesh))) continue;
      const byName = new Map(nsMachines.map((m) => [m.metadata.name ?? "", m]));
      const members = checkAllocations(mesh, obj.status?.allocations ?? [])
        .valid.filter((a) => {
          const m = byName.get(a.machine);
          return m !== undefined && !m.metadata.deletionTimestamp && isMember(mesh, m);
        })
        .sort((a, b) => (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0));
      out.push({ key: meshKey(mesh), namespace: ns, name: mesh.name, interface: mesh.interface, dockerNetwork: mesh.dockerNetwork, dns, members });
    }
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
