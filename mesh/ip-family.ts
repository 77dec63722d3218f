// The two address families a mesh allocates from, behind one shape, so that one IPAM (ipam.ts)
// serves the IPv4 pool (spec.cidr) and the IPv6 pool (spec.cidrV6) alike. Addresses are bigints
// here: allocation runs once per mesh plan, not per host, so their cost does not matter.
import { formatIp, parseCidr } from "./ipv4.js";
import { formatIp6, parseCidr6 } from "./ipv6.js";

export interface FamilyCidr {
  base: bigint;
  prefix: number;
}

export interface IpFamily {
  /** "IPv4" or "IPv6", for messages. */
  label: "IPv4" | "IPv6";
  bits: 32 | 128;
  /** The fields that hold this family's pool, prefix length and pin, for messages. */
  fields: { pool: string; prefixLength: string; pin: string };
  /** An example pin, for messages. */
  example: string;
  parse(text: string): FamilyCidr | undefined;
  format(c: FamilyCidr): string;
}

export const IPV4: IpFamily = {
  label: "IPv4",
  bits: 32,
  fields: { pool: "spec.cidr", prefixLength: "spec.subnetPrefixLength", pin: "spec.subnet" },
  example: "10.210.3.0/24",
  parse(text) {
    const c = parseCidr(text);
    return c && { base: BigInt(c.base), prefix: c.prefix };
  },
  format: (c) => `${formatIp(Number(c.base))}/${c.prefix}`,
};

export const IPV6: IpFamily = {
  label: "IPv6",
  bits: 128,
  fields: { pool: "spec.cidrV6", prefixLength: "spec.subnetPrefixLengthV6", pin: "spec.subnetV6" },
  example: "fd42:0:0:3::/64",
  parse: (text) => parseCidr6(text),
  format: (c) => `${formatIp6(c.base)}/${c.prefix}`,
};

export const familyMask = (f: IpFamily, prefix: number): bigint => (prefix === 0 ? 0n : ((1n << BigInt(f.bits)) - 1n) ^ ((1n << BigInt(f.bits - prefix)) - 1n));
export const isFamilyAligned = (f: IpFamily, c: FamilyCidr): boolean => (c.base & familyMask(f, c.prefix)) === c.base;
export const familyContains = (f: IpFamily, outer: FamilyCidr, inner: FamilyCidr): boolean => inner.prefix >= outer.prefix && (inner.base & familyMask(f, outer.prefix)) === outer.base;
