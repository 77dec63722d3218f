// What a value read from a host must look like before the controller keeps it. A host is
// untrusted: what it prints goes into status (kubectl prints it to terminals) and, for some
// values (link names, routes, rules, network names), into later commands on that host. Every
// pattern is anchored and bounded.
import { isIP } from "node:net";
import { parseCidr } from "../mesh/ipv4.js";
import { formatCidr6, parseCidr6 } from "../mesh/ipv6.js";
import { DOCKER_NETWORK_NAME, DOCKER_VERSION, NO_CONTROL, WIREGUARD_KEY } from "../api/formats.js";

export const isDockerVersion = (v: unknown): v is string => typeof v === "string" && v.length <= 64 && DOCKER_VERSION.test(v);

/** A WireGuard key: 32 bytes in base64, whose last character only takes the values 32 bytes can give. */
export const isWgKey = (v: unknown): v is string => typeof v === "string" && WIREGUARD_KEY.test(v);

/**
 * A Linux interface name (dev_valid_name): 1-15 bytes, not "." or "..", no "/", ":" or white
 * space; printable ASCII only here (a name outside that is not one of ours, nor to be shown).
 */
export const isLinkName = (v: unknown): v is string => typeof v === "string" && /^[!-~]{1,15}$/.test(v) && !/[/:]/.test(v) && v !== "." && v !== "..";

/** An IPv4 network "10.0.1.0/24" (a bare address is not a CIDR here). */
export const isIpv4Cidr = (v: unknown): v is string => typeof v === "string" && v.length <= 18 && parseCidr(v) !== undefined;

/** An IPv4 or IPv6 network, as WireGuard prints allowed IPs. */
export function isCidr(v: unknown): v is string {
  if (typeof v !== "string" || v.length > 49) return false;
  const m = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(v);
  if (!m) return false;
  const family = isIP(m[1]!);
  return family !== 0 && Number(m[2]) <= (family === 4 ? 32 : 128);
}

/**
 * An IPv6 network in its one spelling (RFC 5952, as the plan writes it), or undefined. Hosts print
 * the same way (inet_ntop), but what a host prints is not trusted to.
 */
export function ipv6Cidr(v: unknown): string | undefined {
  if (typeof v !== "string" || v.length > 43) return undefined;
  const c = parseCidr6(v);
  return c && formatCidr6(c);
}

/** A route destination as `ip -j route` (or `ip -6 -j route`) prints it: a network, or an address (a /32, a /128). */
export function routeDestination(v: unknown): string | undefined {
  if (typeof v !== "string" || v.length > 43) return undefined;
  if (v.includes(":")) return ipv6Cidr(v.includes("/") ? v : `${v}/128`);
  if (v.length > 18) return undefined;
  if (isIP(v) === 4) return `${v}/32`;
  return isIpv4Cidr(v) ? v : undefined;
}

/** A whole number from min to max (at most 65535) written in plain digits: no sign, point, exponent or space. */
export function wholeNumber(v: unknown, min: number, max: number): number | undefined {
  if (typeof v !== "string" || !/^\d{1,5}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= min && n <= max ? n : undefined;
}

/** A port 1-65535, or 0 when allowZero (a WireGuard interface without a listen port). */
export function port(v: unknown, allowZero = false): number | undefined {
  return wholeNumber(v, allowZero ? 0 : 1, 65535);
}

/** A WireGuard endpoint: "203.0.113.7:51820" or "[2001:db8::1]:51820". */
export function isEndpoint(v: unknown): v is string {
  if (typeof v !== "string" || v.length > 64) return false;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(v);
  if (!m || port(m[3]) === undefined) return false;
  return m[1] !== undefined ? isIP(m[1]) === 6 : isIP(m[2]!) === 4;
}

/** A non-negative counter or time (seconds, bytes) that a JavaScript number holds exactly. */
export function counter(v: unknown): number | undefined {
  if (typeof v !== "string" || !/^\d{1,16}$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** An MTU as `ip -j link` gives it (lo has 65536; jumbo frames stay far below 2^20). */
export const isMtu = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 1 << 20;

/** A link kind (linkinfo.info_kind): "wireguard", "bridge", "veth", "ipip". */
export const isLinkKind = (v: unknown): v is string => typeof v === "string" && /^[a-z0-9_-]{1,32}$/.test(v);

/** An `iptables -S` line longer than this is not one iptables prints (a comment is at most 256 characters). */
export const MAX_RULE_CHARS = 4096;
/** A rule line: bounded, printable (a rule's words go back to the host in later commands). */
export const isRuleLine = (v: string): boolean => v.length <= MAX_RULE_CHARS && NO_CONTROL.test(v);
/** A chain policy: ACCEPT, DROP. */
export const isPolicy = (v: unknown): v is string => typeof v === "string" && /^[A-Z]{1,16}$/.test(v);

/** sha256 of a file, as sha256sum prints it. */
export const isSha256 = (v: unknown): v is string => typeof v === "string" && /^[0-9a-f]{64}$/.test(v);

/** A Docker network id (64 hex digits; a prefix of one too). */
export const isDockerId = (v: unknown): v is string => typeof v === "string" && /^[0-9a-f]{1,64}$/.test(v);
/** A Docker network name as dockmesh creates them (the only ones the observe script asks for). */
export const isDockerNetworkName = (v: unknown): v is string => typeof v === "string" && DOCKER_NETWORK_NAME.test(v);

/** A container name as Docker prints it (letters, digits, _ . -; Docker allows more than a network name's 64). */
export const isContainerName = (v: unknown): v is string => typeof v === "string" && /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(v);

/** Docker option and label keys ("com.docker.network.driver.mtu", "io.dockmesh.interface"). */
const isMapKey = (v: string) => v.length <= 256 && /^[!-~]+$/.test(v);
/** Their values: bounded, no control characters. */
const isMapValue = (v: unknown): v is string => typeof v === "string" && v.length <= 1024 && NO_CONTROL.test(v);

/** The string entries of a Docker options/labels object that pass the checks above; others dropped. */
export function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!v || typeof v !== "object" || Array.isArray(v)) return out;
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) if (isMapKey(k) && isMapValue(val)) out[k] = val;
  return out;
}
