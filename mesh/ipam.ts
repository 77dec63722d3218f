// IPAM: one subnet per member machine, carved from the MeshNetwork's pool.
// Order of precedence: pins (Machine.spec.subnet), then allocations already recorded in the
// MeshNetwork's status (an allocation never moves while its machine stays), then the lowest
// free subnets for everyone else, in name order. Pure and deterministic.
// One IPAM for both families (ip-family.ts): the IPv4 pool and, when set, the IPv6 pool.
import { IPV4, familyContains, familyMask, isFamilyAligned, type FamilyCidr, type IpFamily } from "./ip-family.js";

export interface IpamMember {
  name: string;
  /** Machine.spec.subnet (spec.subnetV6), when it falls inside this pool (pins for other meshes are filtered out by the caller). */
  pin?: string;
  /** The allocation recorded in MeshNetwork.status.allocations. */
  existing?: string;
}

export interface IpamError {
  machine: string;
  field: string;
  message: string;
}

export interface IpamResult {
  /** machine → subnet, for every member that could get one. */
  allocations: Map<string, string>;
  /** One entry per member that could not get a subnet, naming the field to fix. */
  errors: IpamError[];
}

/** Subnets counted in a pool: beyond this (an IPv6 pool of 2^56 /64s), a pool is as good as endless. */
const MAX_CAPACITY = 2 ** 32;

export function allocateSubnets(poolText: string, prefixLength: number, members: readonly IpamMember[], family: IpFamily = IPV4): IpamResult {
  const f = family;
  const pool = f.parse(poolText);
  if (!pool || !isFamilyAligned(f, pool)) throw new Error(`invalid pool ${poolText}`);
  if (prefixLength < pool.prefix || prefixLength > f.bits) throw new Error(`subnet prefix /${prefixLength} does not fit pool ${poolText}`);
  const step = 1n << BigInt(f.bits - prefixLength);
  const nth = (i: number): string => f.format({ base: pool.base + BigInt(i) * step, prefix: prefixLength });
  const indexOf = (c: FamilyCidr): number => Number((c.base - pool.base) / step);
  const withMask = (c: FamilyCidr): string => f.format({ base: c.base & familyMask(f, c.prefix), prefix: c.prefix });

  const sorted = [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const capacity = Math.min(2 ** (prefixLength - pool.prefix), MAX_CAPACITY);
  const holder = new Map<number, string>(); // subnet index → machine
  const allocations = new Map<string, string>();
  const errors: IpamError[] = [];
  const fail = (machine: string, field: string, message: string) => errors.push({ machine, field, message });

  const inPool = (text: string): FamilyCidr | undefined => {
    const c = f.parse(text);
    return c && isFamilyAligned(f, c) && c.prefix === prefixLength && familyContains(f, pool, c) && indexOf(c) < capacity ? c : undefined;
  };

  // 1. Pins. A pin that another pin also claims goes to the machine already holding it; when
  //    neither holds it, both are refused: picking one silently would be a guess.
  const pinClaims = new Map<number, IpamMember[]>();
  for (const m of sorted) {
    if (m.pin === undefined) continue;
    const c = f.parse(m.pin);
    const pin = f.fields.pin;
    if (!c) {
      fail(m.name, pin, `subnet ${m.pin} is not an ${f.label} CIDR (e.g. ${f.example})`);
    } else if (!isFamilyAligned(f, c)) {
      fail(m.name, pin, `subnet ${m.pin} has host bits set; use ${withMask(c)}`);
    } else if (c.prefix !== prefixLength) {
      fail(m.name, pin, `subnet ${m.pin} is a /${c.prefix} but the mesh allocates /${prefixLength} subnets; pin a /${prefixLength}`);
    } else if (!familyContains(f, pool, c) || indexOf(c) >= capacity) {
      fail(m.name, pin, `subnet ${m.pin} is outside the mesh's pool ${poolText}; pin a subnet inside it or remove ${pin}`);
    } else {
      const idx = indexOf(c);
      pinClaims.set(idx, [...(pinClaims.get(idx) ?? []), m]);
    }
  }
  for (const [idx, claimants] of [...pinClaims].sort((a, b) => a[0] - b[0])) {
    const subnet = nth(idx);
    if (claimants.length === 1) {
      holder.set(idx, claimants[0]!.name);
      continue;
    }
    const keeper = claimants.find((m) => m.existing === subnet);
    for (const m of claimants) {
      if (m === keeper) continue;
      const others = claimants
        .filter((o) => o !== m)
        .map((o) => o.name)
        .join(", ");
      fail(m.name, f.fields.pin, `subnet ${subnet} is also pinned by ${others}${keeper ? ` (which holds it)` : ""}; pin a different subnet on one of them`);
    }
    if (keeper) holder.set(idx, keeper.name);
  }

  // 2. Existing allocations stay where they are, unless a pin moved the machine or took the subnet.
  const pinned = new Set([...holder.values()]);
  const refused = new Set(errors.map((e) => e.machine));
  for (const m of sorted) {
    if (pinned.has(m.name) || refused.has(m.name) || m.existing === undefined) continue;
    const c = inPool(m.existing);
    if (!c) continue; // pool or prefix changed: allocate afresh below
    const idx = indexOf(c);
    const other = holder.get(idx);
    if (other === undefined) holder.set(idx, m.name);
  }
  // A pinned subnet already allocated to a machine that does not pin it is refused to the pin's owner.
  for (const m of sorted) {
    if (m.pin === undefined || !pinned.has(m.name)) continue;
    const c = inPool(m.pin);
    if (!c) continue;
    const other = sorted.find((o) => o !== m && o.pin === undefined && o.existing === m.pin);
    if (other) {
      holder.set(indexOf(c), other.name);
      pinned.delete(m.name);
      fail(m.name, f.fields.pin, `subnet ${m.pin} is already allocated to ${other.name}; pin a free subnet or remove ${f.fields.pin}`);
    }
  }
  for (const [idx, name] of holder) allocations.set(name, nth(idx));

  // 3. Everyone else gets the lowest free subnet, in name order.
  let next = 0;
  const failed = new Set(errors.map((e) => e.machine));
  const waiting = sorted.filter((m) => !allocations.has(m.name) && !failed.has(m.name));
  for (const m of waiting) {
    while (next < capacity && holder.has(next)) next++;
    if (next >= capacity) {
      fail(
        m.name,
        f.fields.pool,
        `pool ${poolText} has no free /${prefixLength} left for ${m.name} (${capacity} of ${capacity} in use); widen the MeshNetwork's ${f.fields.pool} or lengthen ${f.fields.prefixLength}`,
      );
      continue;
    }
    holder.set(next, m.name);
    allocations.set(m.name, nth(next));
  }
  errors.sort((a, b) => (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0));
  return { allocations: new Map([...allocations].sort((a, b) => (a[0] < b[0] ? -1 : 1))), errors };
}
