// A MeshNetwork's recorded allocations, checked where the Machine reconciler reads them. They sit
// in status, which anyone with `meshnetworks/status` rights can write: a subnet there becomes
// AllowedIPs, routes and iptables rules on every host of the mesh. Only allocations the mesh's
// own IPAM could have made are used (a /prefix inside the pool, one per machine, no overlaps).
import type { ResolvedMesh } from "./defaults.js";
import { IPV4_CIDR, OBJECT_NAME, shown } from "../api/formats.js";
import { contains, isAligned, parseCidr, type Cidr } from "./ipv4.js";

export interface Allocation {
  machine: string;
  subnet: string;
}

export interface CheckedAllocations {
  valid: Allocation[];
  /** One message per refused entry, naming the field: "MeshNetwork m status.allocations[2].subnet: …". */
  refused: string[];
}

export function checkAllocations(mesh: ResolvedMesh, allocations: readonly Allocation[]): CheckedAllocations {
  const pool = parseCidr(mesh.cidr);
  const refused: string[] = [];
  const kept: Array<{ a: Allocation; c: Cidr; field: string }> = [];
  const seen = new Set<string>();
  allocations.forEach((a, i) => {
    const field = `MeshNetwork ${mesh.name} status.allocations[${i}]`;
    const machine = typeof a.machine === "string" ? a.machine : "";
    const subnet = typeof a.subnet === "string" ? a.subnet : "";
    if (!OBJECT_NAME.test(machine) || machine.length > 253) {
      refused.push(`${field}.machine: ${shown(machine)} is not a Machine name; ignored`);
      return;
    }
    const c = IPV4_CIDR.test(subnet) ? parseCidr(subnet) : undefined;
    if (!c || !pool || !isAligned(c) || c.prefix !== mesh.subnetPrefixLength || !contains(pool, c)) {
      refused.push(`${field}.subnet: ${shown(subnet)} is not a /${mesh.subnetPrefixLength} inside the pool ${mesh.cidr}; ignored`);
      return;
    }
    if (seen.has(machine)) {
      refused.push(`${field}.machine: ${machine} has more than one allocation; ignored`);
      return;
    }
    seen.add(machine);
    kept.push({ a: { machine, subnet }, c, field });
  });
  // Two machines on one subnet: neither is used (which one is right cannot be told here). All are
  // aligned /prefix subnets of one pool, so overlapping means equal: a count, not a pairwise check.
  const holders = new Map<string, number>();
  for (const k of kept) holders.set(k.a.subnet, (holders.get(k.a.subnet) ?? 0) + 1);
  const clash = (k: (typeof kept)[number]) => (holders.get(k.a.subnet) ?? 0) > 1;
  for (const k of kept.filter(clash)) refused.push(`${k.field}.subnet: ${k.a.subnet} is also allocated to another machine; ignored`);
  return { valid: kept.filter((k) => !clash(k)).map((k) => k.a), refused };
}
