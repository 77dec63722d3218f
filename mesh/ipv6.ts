// IPv6 arithmetic on 128-bit bigints: enough for a mesh's IPv6 pool, its per-machine prefixes and
// overlap checks. Text is written the RFC 5952 way (lower case, the longest run of zero groups
// shortened to "::"), so one prefix has one spelling in status, plans and on hosts.

export interface Cidr6 {
  /** Network address as an unsigned 128-bit number. */
  base: bigint;
  prefix: number;
}

const ALL = (1n << 128n) - 1n;
const GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Parses an IPv6 address without zone or embedded IPv4 ("fd42::1"); undefined for anything else. */
export function parseIp6(text: string): bigint | undefined {
  if (typeof text !== "string" || text.length < 2 || text.length > 39) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string): string[] | undefined => {
    if (s === "") return [];
    const g = s.split(":");
    return g.every((x) => GROUP.test(x)) ? g : undefined;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const count = head.length + tail.length;
  if (halves.length === 1 ? count !== 8 : count > 7) return undefined;
  const all = [...head, ...Array<string>(8 - count).fill("0"), ...tail];
  let n = 0n;
  for (const g of all) n = (n << 16n) | BigInt(parseInt(g, 16));
  return n;
}

/** Parses "addr/n" (n 0..128); undefined for anything else. Host bits may be set: see isAligned6. */
export function parseCidr6(text: string): Readonly<Cidr6> | undefined {
  if (typeof text !== "string") return undefined;
  const slash = text.lastIndexOf("/");
  if (slash < 0 || !/^\d{1,3}$/.test(text.slice(slash + 1))) return undefined;
  const prefix = Number(text.slice(slash + 1));
  const base = parseIp6(text.slice(0, slash));
  if (base === undefined || prefix > 128) return undefined;
  return { base, prefix };
}

export function maskOf6(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL;
}

export function isAligned6(c: Cidr6): boolean {
  return (c.base & maskOf6(c.prefix)) === c.base;
}

export function aligned6(c: Cidr6): Cidr6 {
  return { base: c.base & maskOf6(c.prefix), prefix: c.prefix };
}

/** RFC 5952 text: lower case, leading zeros dropped, the longest run (≥2) of zero groups as "::". */
export function formatIp6(n: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

export function formatCidr6(c: Cidr6): string {
  return `${formatIp6(c.base)}/${c.prefix}`;
}

/** True when inner lies entirely within outer. */
export function contains6(outer: Cidr6, inner: Cidr6): boolean {
  return inner.prefix >= outer.prefix && (inner.base & maskOf6(outer.prefix)) === outer.base;
}

export function overlaps6(a: Cidr6, b: Cidr6): boolean {
  const m = maskOf6(Math.min(a.prefix, b.prefix));
  return (a.base & m) === (b.base & m);
}

/** The i-th subnet of `prefix` bits inside pool. */
export function nthSubnet6(pool: Cidr6, prefix: number, i: number): Cidr6 {
  return { base: pool.base + (BigInt(i) << BigInt(128 - prefix)), prefix };
}

/** Index of subnet inside pool (both aligned, subnet within pool); a number while it fits one. */
export function subnetIndex6(pool: Cidr6, subnet: Cidr6): number {
  return Number((subnet.base - pool.base) >> BigInt(128 - subnet.prefix));
}

/** The gateway (first host address) of an IPv6 subnet, as Docker gives its bridge: "fd42::1". */
export function gatewayOf6(subnet: string): string {
  const c = parseCidr6(subnet);
  if (!c) throw new Error(`${JSON.stringify(subnet)} is not an IPv6 CIDR`);
  return formatIp6(c.base + 1n);
}

/** Unique local addresses (fc00::/7): what a mesh's own pool should be taken from. */
export const isUniqueLocal6 = (c: Cidr6): boolean => c.base >> 121n === 0x7en;
