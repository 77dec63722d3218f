// Meshes that cannot both be on a machine. Two MeshNetworks with a member in common need their
// own interface, bridge, UDP port, Docker network and a pool that does not overlap the other's
// (routes and AllowedIPs of both would claim the same addresses). When they clash, the one that
// came first keeps the machines — the older (metadata.creationTimestamp), then the first by name —
// and the other is refused as a whole: it allocates nothing and is configured on no machine, so
// no mesh is ever half-configured and a new MeshNetwork never displaces one that works.
// The single decision `dockmesh plan` and the controllers (MeshNetwork and Machine) all use. Pure.
import type { Machine } from "../api/types.generated.js";
import type { ResolvedMesh, SpecError } from "./defaults.js";
import { overlaps, parseCidr } from "./ipv4.js";
import { overlaps6, parseCidr6 } from "./ipv6.js";
import { selectorMatches } from "./selector.js";

/** What two meshes would both use on a shared machine, and the field that changes it. */
export function sharedResource(a: ResolvedMesh, b: ResolvedMesh): { field: string; what: string } | undefined {
  if (a.interface === b.interface) return { field: "spec.interface", what: `interface ${a.interface}` };
  if (a.bridge === b.bridge) return { field: "spec.interface", what: `bridge ${a.bridge}` };
  if (a.listenPort === b.listenPort) return { field: "spec.listenPort", what: `UDP port ${a.listenPort}` };
  if (a.dockerNetwork === b.dockerNetwork) return { field: "spec.dockerNetwork", what: `Docker network ${a.dockerNetwork}` };
  const pa = parseCidr(a.cidr);
  const pb = parseCidr(b.cidr);
  if (pa && pb && overlaps(pa, pb)) return { field: "spec.cidr", what: `overlapping pools ${a.cidr} and ${b.cidr}` };
  const qa = a.cidrV6 === undefined ? undefined : parseCidr6(a.cidrV6);
  const qb = b.cidrV6 === undefined ? undefined : parseCidr6(b.cidrV6);
  if (qa && qb && overlaps6(qa, qb)) return { field: "spec.cidrV6", what: `overlapping IPv6 pools ${a.cidrV6} and ${b.cidrV6}` };
  return undefined;
}

/** "namespace/name": the key of meshConflicts' answer. */
export const meshKey = (m: { namespace: string; name: string }): string => `${m.namespace}/${m.name}`;

/** At most this many machine names in a message; the rest are counted. */
const NAMES_IN_MESSAGE = 5;

/** What b would take from a (the mesh that came first), in words for b's message. */
function clashText(a: ResolvedMesh, b: ResolvedMesh, field: string): string {
  switch (field) {
    case "spec.cidr":
      return `pool ${b.cidr} overlaps the pool ${a.cidr} of MeshNetwork ${a.name}`;
    case "spec.cidrV6":
      return `IPv6 pool ${b.cidrV6} overlaps the IPv6 pool ${a.cidrV6} of MeshNetwork ${a.name}`;
    case "spec.listenPort":
      return `UDP port ${b.listenPort} is also the listen port of MeshNetwork ${a.name}`;
    case "spec.dockerNetwork":
      return `Docker network ${b.dockerNetwork} is also the Docker network of MeshNetwork ${a.name}`;
    default:
      return a.interface === b.interface
        ? `interface ${b.interface} is also the interface of MeshNetwork ${a.name}`
        : `bridge ${b.bridge} (named after spec.interface) is also the bridge of MeshNetwork ${a.name}`;
  }
}

const createdMs = (m: ResolvedMesh): number => {
  const t = m.created === undefined ? NaN : Date.parse(m.created);
  return Number.isNaN(t) ? 0 : t;
};

/** Older first, then by name: the order in which meshes take what they use on a machine. */
export function precedence(a: ResolvedMesh, b: ResolvedMesh): number {
  const d = createdMs(a) - createdMs(b);
  if (d !== 0) return d;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * The meshes refused because they clash with one that came first on a machine both select,
 * keyed "namespace/name", each with the error naming the other mesh and the field to change.
 * Machines being deleted count for neither (nothing is configured for them any more). A refused
 * mesh takes nothing, so it refuses no later mesh. O(meshes² × machines per namespace).
 */
export function meshConflicts(meshes: readonly ResolvedMesh[], machines: readonly Machine[]): Map<string, SpecError> {
  const refused = new Map<string, SpecError>();
  const byNs = new Map<string, ResolvedMesh[]>();
  for (const m of meshes) byNs.set(m.namespace, [...(byNs.get(m.namespace) ?? []), m]);
  for (const [ns, list] of byNs) {
    if (list.length < 2) continue; // the common case: one mesh per namespace, nothing to compare
    const live = machines.filter((m) => (m.metadata.namespace ?? "default") === ns && !m.metadata.deletionTimestamp);
    const members = new Map(list.map((mesh) => [mesh, new Set(live.filter((m) => selectorMatches(mesh.selector, m.metadata.labels)).map((m) => m.metadata.name ?? ""))]));
    const accepted: ResolvedMesh[] = [];
    for (const b of [...list].sort(precedence)) {
      const mine = members.get(b)!;
      let error: SpecError | undefined;
      for (const a of accepted) {
        const shared = [...members.get(a)!].filter((n) => mine.has(n)).sort();
        const clash = shared.length ? sharedResource(a, b) : undefined;
        if (!clash) continue;
        const names = shared.slice(0, NAMES_IN_MESSAGE).join(", ") + (shared.length > NAMES_IN_MESSAGE ? ` and ${shared.length - NAMES_IN_MESSAGE} more` : "");
        error = {
          kind: "MeshNetwork",
          namespace: ns,
          name: b.name,
          field: clash.field,
          message:
            `${clashText(a, b, clash.field)}, which came first (older, or first by name when as old) and shares ` +
            `${shared.length === 1 ? "machine" : "machines"} ${names} with it: nothing of ${b.name} is allocated or configured; ` +
            `give it a different ${clash.field}, or select no machine of ${a.name}`,
        };
        break;
      }
      if (error) refused.set(meshKey(b), error);
      else accepted.push(b);
    }
  }
  return refused;
}
