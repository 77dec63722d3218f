// A MeshNetwork's recorded allocations, checked where the Machine reconciler reads them. They sit
// in status, which anyone with `meshnetworks/status` rights can write: a subnet there becomes
// AllowedIPs, routes and iptables rules on every host of the mesh. Only allocations the mesh's
// own IPAM could have made are used (a /prefix inside the pool, one per machine, no overlaps).
import type { ResolvedMesh } from "./defaults.js";
import { IPV4_CIDR, OBJECT_NAME, shown } from "../api/formats.js";
import { contains, isAligned, parseCidr, type Cidr } from "./ipv4.js";
import { contains6, formatCidr6, isAligned6, parseCidr6 } from "./ipv6.js";
import type { Allocation } from "./plan.js";

export type { Allocation };

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
    // The IPv6 subnet of a dual-stack mesh: a /prefixV6 of cidrV6, in its one spelling (it is
    // compared as text). Absent, the machine is IPv4 only until the MeshNetwork controller writes it;
    // in an IPv4-only mesh it is not used.
    let subnetV6: string | undefined;
    if (mesh.cidrV6 !== undefined && a.subnetV6 !== undefined) {
      const pool6 = parseCidr6(mesh.cidrV6);
      const c6 = typeof a.subnetV6 === "string" && a.subnetV6.length <= 43 ? parseCidr6(a.subnetV6) : undefined;
      if (!c6 || !pool6 || !isAligned6(c6) || c6.prefix !== mesh.subnetPrefixLengthV6 || !contains6(pool6, c6) || formatCidr6(c6) !== a.subnetV6) {
        refused.push(`${field}.subnetV6: ${shown(String(a.subnetV6))} is not a /${mesh.subnetPrefixLengthV6 ?? "?"} inside the pool ${mesh.cidrV6}; ignored`);
        return;
      }
      subnetV6 = a.subnetV6;
    }
    if (seen.has(machine)) {
      refused.push(`${field}.machine: ${machine} has more than one allocation; ignored`);
      return;
    }
    seen.add(machine);
    kept.push({ a: subnetV6 !== undefined ? { machine, subnet, subnetV6 } : { machine, subnet }, c, field });
  });
  // Two machines on one subnet: neither is used (which one is right cannot be told here). All are
  // aligned /prefix subnets of one pool, so overlapping means equal: a count, not a pairwise check.
  const holders = new Map<string, number>();
  const hold = (s: string | undefined) => s !== undefined && holders.set(s, (holders.get(s) ?? 0) + 1);
  for (const k of kept) [k.a.subnet, k.a.subnetV6].forEach(hold);
  const taken = (s: string | undefined) => s !== undefined && (holders.get(s) ?? 0) > 1;
  const clash = (k: (typeof kept)[number]) => taken(k.a.subnet) || taken(k.a.subnetV6);
  for (const k of kept.filter(clash)) {
    const which = taken(k.a.subnet) ? `subnet: ${k.a.subnet}` : `subnetV6: ${k.a.subnetV6}`;
    refused.push(`${k.field}.${which} is also allocated to another machine; ignored`);
  }
  return { valid: kept.filter((k) => !clash(k)).map((k) => k.a), refused };
}
