// The lab's IPv6 block, derived from its IPv4 lab net so that two labs (which never share an
// IPv4 block) never share it either: 198.18.X.0/24 → the ULA fdc6:1218:X::/64 (X in hex), and
// address n of the IPv4 block (198.18.X.n) → fdc6:1218:X::n (n in hex). Written the way `ip`
// prints them (RFC 5952: lower case, the longest run of zero groups as "::").
import { addr, type Block24 } from "./ipv4.js";
import { formatIp6 } from "../mesh/ipv6.js";

/** RFC 5952 text of eight 16-bit groups (mesh/ipv6.ts spells every address the planner writes). */
export function formatIpv6(groups: readonly number[]): string {
  if (groups.length !== 8 || !groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff)) throw new Error(`not eight 16-bit groups: ${groups.join(",")}`);
  return formatIp6(groups.reduce((n, g) => (n << 16n) | BigInt(g), 0n));
}

function groupsOf(block: Block24, host: number): number[] {
  if (block.octets[0] !== 198 || block.octets[1] !== 18) throw new Error(`the lab's IPv6 block is derived from a /24 of 198.18.0.0/16, not ${block.octets.join(".")}.0/24`);
  return [0xfdc6, 0x1218, block.octets[2], 0, 0, 0, 0, host];
}

/** The lab's IPv6 /64 for its lab net, e.g. 198.18.69.0/24 → "fdc6:1218:45::/64". */
export function labnet6Of(block: Block24): string {
  return `${formatIpv6(groupsOf(block, 0))}/64`;
}

/** The IPv6 twin of address number `host` (1-254) of the lab net, e.g. 198.18.69.11 → "fdc6:1218:45::b". */
export function addr6(block: Block24, host: number): string {
  addr(block, host); // same range check as the IPv4 address
  return formatIpv6(groupsOf(block, host));
}
