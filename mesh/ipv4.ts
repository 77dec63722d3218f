// IPv4 arithmetic on 32-bit unsigned numbers: enough for pools, subnets and overlap checks.

export interface Cidr {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

const CIDR_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/**
 * Parsed CIDRs by text. The same few thousand subnets are parsed again by every plan, check and
 * status of a large mesh (1.9 s of the controller's CPU at 300 simulated machines). Results are
 * frozen and shared; the map is bounded and starts over when full.
 */
const parsed = new Map<string, Readonly<Cidr> | undefined>();
const MAX_PARSED = 8192;

/** Parses "a.b.c.d/n"; returns undefined for anything else (including host bits set: see isAligned). */
export function parseCidr(text: string): Readonly<Cidr> | undefined {
  const hit = parsed.get(text);
  if (hit !== undefined || parsed.has(text)) return hit;
  const c = parseCidrUncached(text);
  if (parsed.size >= MAX_PARSED) parsed.clear();
  if (typeof text === "string" && text.length <= 18) parsed.set(text, c && Object.freeze(c));
  return c;
}

function parseCidrUncached(text: string): Cidr | undefined {
  const m = CIDR_RE.exec(text);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return undefined;
  const [a, b, c, d] = octets as [number, number, number, number];
  return { base: ((a << 24) | (b << 16) | (c << 8) | d) >>> 0, prefix };
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** True when no host bits are set (10.0.0.0/16, not 10.0.1.0/16). */
export function isAligned(c: Cidr): boolean {
  return (c.base & maskOf(c.prefix)) >>> 0 === c.base;
}

export function aligned(c: Cidr): Cidr {
  return { base: (c.base & maskOf(c.prefix)) >>> 0, prefix: c.prefix };
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** True when inner lies entirely within outer. */
export function contains(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && (inner.base & maskOf(outer.prefix)) >>> 0 === outer.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  const m = maskOf(p);
  return (a.base & m) >>> 0 === (b.base & m) >>> 0;
}

/** The i-th subnet of `prefix` bits inside pool. */
export function nthSubnet(pool: Cidr, prefix: number, i: number): Cidr {
  return { base: (pool.base + i * 2 ** (32 - prefix)) >>> 0, prefix };
}

/** Index of subnet inside pool (both aligned, subnet within pool). */
export function subnetIndex(pool: Cidr, subnet: Cidr): number {
  return (subnet.base - pool.base) / 2 ** (32 - subnet.prefix);
}

/** The gateway (first host address) of a subnet in CIDR form: what Docker gives its bridge. */
export function gatewayOf(subnet: string): string {
  const c = parseCidr(subnet);
  if (!c) throw new Error(`${JSON.stringify(subnet)} is not an IPv4 CIDR`);
  return formatIp(c.base + 1);
}
