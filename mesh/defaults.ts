// Documented defaults, applied when planning (never written into spec), and the checks a
// structural schema cannot express.
import type { MeshNetwork, MeshNetworkSpecMachineSelector } from "../api/types.generated.js";
import { formatCidr, isAligned, aligned, parseCidr } from "./ipv4.js";
import { aligned6, formatCidr6, isAligned6, isUniqueLocal6, parseCidr6 } from "./ipv6.js";
import { DNS_ZONE, INTERFACE_NAME } from "../api/formats.js";

export const DEFAULT_SUBNET_PREFIX_LENGTH = 24;
/** Each machine's IPv6 prefix from spec.cidrV6: a /64, as IPv6 subnets conventionally are. */
export const DEFAULT_SUBNET_PREFIX_LENGTH_V6 = 64;
export const DEFAULT_LISTEN_PORT = 51820;
export const DEFAULT_PERSISTENT_KEEPALIVE = 25;
export const DEFAULT_SSH_PORT = 22;
export const DEFAULT_SSH_USER = "root";
export const DEFAULT_SSH_KEY = "ssh-privatekey";
/** WireGuard's overhead over IPv4/IPv6 (wg-quick subtracts the same 80 bytes). */
export const WIREGUARD_OVERHEAD = 80;
export const DEFAULT_UPLINK_MTU = 1500;
export const DEFAULT_DNS_TTL = 5;
export const DEFAULT_UNREACHABLE_GRACE_SECONDS = 300;
/** Longest zone: leaves room for "<container>.<machine>." within DNS's 253 characters. */
export const MAX_ZONE_LENGTH = 120;

export type DnsContainersMode = "auto" | "resolved" | "none";

/** MeshNetwork.spec.dns with its defaults; absent from ResolvedMesh when disabled. */
export interface ResolvedDns {
  zone: string;
  ttl: number;
  containers: DnsContainersMode;
  unreachableGraceSeconds: number;
}

/** A MeshNetwork's spec with every default filled in. */
export interface ResolvedMesh {
  namespace: string;
  name: string;
  cidr: string;
  subnetPrefixLength: number;
  /** spec.cidrV6, the optional IPv6 pool: with it the mesh is dual-stack. */
  cidrV6?: string;
  /** Prefix length of each machine's IPv6 subnet; set when cidrV6 is. */
  subnetPrefixLengthV6?: number;
  dockerNetwork: string;
  interface: string;
  /** Linux bridge of the Docker network: "br-" + interface, cut to 15 characters. */
  bridge: string;
  listenPort: number;
  mtu: number | "auto";
  persistentKeepalive: number;
  /** spec.natTraversal "Relay": NAT'd pairs always go through a relay. Absent: Auto (direct where the NATs allow it). */
  natTraversal?: "Relay";
  selector?: MeshNetworkSpecMachineSelector;
  /** Mesh DNS (spec.dns); absent when spec.dns.enabled is false. */
  dns?: ResolvedDns;
  /** metadata.creationTimestamp: of two meshes that conflict on a machine, the older keeps it (mesh/conflicts.ts). */
  created?: string;
}

export interface SpecError {
  kind: "MeshNetwork" | "Machine";
  namespace: string;
  name: string;
  /** JSON path of the field to fix, e.g. "spec.cidr". */
  field: string;
  message: string;
  /** The machine a mesh-wide error refuses a subnet (a full pool), when it is about one. */
  machine?: string;
}

export function bridgeNameFor(iface: string): string {
  return `br-${iface}`.slice(0, 15);
}

export function resolveMesh(mesh: MeshNetwork): { mesh?: ResolvedMesh; errors: SpecError[] } {
  const namespace = mesh.metadata.namespace ?? "default";
  const name = mesh.metadata.name ?? "";
  const errors: SpecError[] = [];
  const err = (field: string, message: string) => errors.push({ kind: "MeshNetwork", namespace, name, field, message });
  const s = mesh.spec;

  const pool = parseCidr(s.cidr);
  const prefix = s.subnetPrefixLength ?? DEFAULT_SUBNET_PREFIX_LENGTH;
  if (!pool) err("spec.cidr", `${JSON.stringify(s.cidr)} is not an IPv4 CIDR; write it like 10.210.0.0/16`);
  else if (!isAligned(pool)) err("spec.cidr", `${s.cidr} has host bits set; the pool's network address is ${formatCidr(aligned(pool))}`);
  else if (prefix < pool.prefix) err("spec.subnetPrefixLength", `/${prefix} subnets do not fit in the /${pool.prefix} pool ${s.cidr}; use a prefix length of at least ${pool.prefix}`);

  const v6 = resolveV6(s, err);

  let iface = s.interface;
  if (iface === undefined) {
    iface = `dm-${name}`;
    if (!INTERFACE_NAME.test(iface)) err("spec.interface", `the default interface name ${iface} is longer than 15 characters; set spec.interface`);
  } else if (!INTERFACE_NAME.test(iface)) {
    err("spec.interface", `${JSON.stringify(iface)} is not a valid interface name: use 1-15 of a-z A-Z 0-9 _ = . - (no "+", which iptables reads as a wildcard), e.g. dm0`);
  }
  const dns = resolveDns(name, s.dns, err);
  if (errors.length) return { errors };
  return {
    errors,
    mesh: {
      namespace,
      name,
      cidr: s.cidr,
      subnetPrefixLength: prefix,
      ...v6,
      dockerNetwork: s.dockerNetwork ?? name,
      interface: iface,
      bridge: bridgeNameFor(iface),
      listenPort: s.listenPort ?? DEFAULT_LISTEN_PORT,
      mtu: s.mtu ?? "auto",
      persistentKeepalive: s.persistentKeepalive ?? DEFAULT_PERSISTENT_KEEPALIVE,
      ...(s.natTraversal === "Relay" ? { natTraversal: "Relay" as const } : {}),
      ...(s.machineSelector ? { selector: s.machineSelector } : {}),
      ...(dns ? { dns } : {}),
      ...createdOf(mesh),
    },
  };
}

/** spec.cidrV6 and its prefix length, checked; {} for an IPv4-only mesh. */
function resolveV6(s: MeshNetwork["spec"], err: (field: string, message: string) => void): { cidrV6?: string; subnetPrefixLengthV6?: number } {
  if (s.cidrV6 === undefined) {
    if (s.subnetPrefixLengthV6 !== undefined) err("spec.subnetPrefixLengthV6", "is set but spec.cidrV6 is not; set spec.cidrV6 (e.g. fd42:d0c::/48) or remove spec.subnetPrefixLengthV6");
    return {};
  }
  const pool = parseCidr6(s.cidrV6);
  const prefix = s.subnetPrefixLengthV6 ?? DEFAULT_SUBNET_PREFIX_LENGTH_V6;
  if (!pool) err("spec.cidrV6", `${JSON.stringify(s.cidrV6)} is not an IPv6 CIDR; write it like fd42:d0c::/48 (a unique local pool)`);
  else if (!isAligned6(pool)) err("spec.cidrV6", `${s.cidrV6} has host bits set; the pool's network address is ${formatCidr6(aligned6(pool))}`);
  else if (!isUniqueLocal6(pool)) err("spec.cidrV6", `${s.cidrV6} is not a unique local pool (fc00::/7); containers' addresses stay inside the mesh: use one such as fd42:d0c::/48`);
  else if (prefix < pool.prefix) err("spec.subnetPrefixLengthV6", `/${prefix} subnets do not fit in the /${pool.prefix} pool ${s.cidrV6}; use a prefix length of at least ${pool.prefix}`);
  // One spelling (RFC 5952) everywhere the pool is written: rules, plans, status.
  return pool ? { cidrV6: formatCidr6(pool), subnetPrefixLengthV6: prefix } : {};
}

function resolveDns(name: string, spec: MeshNetwork["spec"]["dns"], err: (field: string, message: string) => void): ResolvedDns | undefined {
  if (spec?.enabled === false) return undefined;
  const zone = spec?.zone ?? `${name}.internal`;
  if (spec?.zone === undefined && (zone.length > MAX_ZONE_LENGTH || !DNS_ZONE.test(zone))) {
    err("spec.dns.zone", `the default zone ${zone} is longer than ${MAX_ZONE_LENGTH} characters or not a DNS name; set spec.dns.zone, e.g. mesh.internal`);
  } else if (zone.length > MAX_ZONE_LENGTH || !DNS_ZONE.test(zone)) {
    err("spec.dns.zone", `${JSON.stringify(zone)} is not a DNS zone of at most ${MAX_ZONE_LENGTH} characters: use lower-case labels of a-z 0-9 - joined by dots, e.g. mesh.internal`);
  }
  return {
    zone,
    ttl: spec?.ttl ?? DEFAULT_DNS_TTL,
    containers: spec?.containers ?? "auto",
    unreachableGraceSeconds: spec?.unreachableGraceSeconds ?? DEFAULT_UNREACHABLE_GRACE_SECONDS,
  };
}

/** creationTimestamp as RFC 3339 text: typed Date by client-node, a string on the wire. */
function createdOf(mesh: MeshNetwork): { created?: string } {
  const c = mesh.metadata.creationTimestamp as unknown;
  if (typeof c === "string" && c !== "") return { created: c };
  if (c instanceof Date && !Number.isNaN(c.getTime())) return { created: c.toISOString() };
  return {};
}

export function tunnelMtu(mtu: number | "auto", uplinkMtu: number | undefined): number {
  return mtu === "auto" ? (uplinkMtu ?? DEFAULT_UPLINK_MTU) - WIREGUARD_OVERHEAD : mtu;
}
