// The records file of one mesh (issue 13): zone and, per member machine, its subnet and the
// containers its host reported, in; the dnsmasq hosts file text and what was skipped, out. Pure
// and deterministic: the same inputs give the same bytes, whatever their order.
//
// Names (ZONE = the mesh's zone):
//   <machine>.ZONE              the machine's bridge gateway (first address of its subnet)
//   <container>.<machine>.ZONE  each container of that machine on the mesh network
//   <name>.ZONE                 every container whose name, alias on the mesh network or
//                               com.docker.compose.service label is <name>
// Every container address must lie inside its own machine's subnet (not its network, gateway or
// broadcast address): a host cannot claim another host's addresses.
import { formatIp, parseCidr } from "./ipv4.js";
import { contains6, formatIp6, parseCidr6, parseIp6 } from "./ipv6.js";
import { FQDN_MAX_CHARS, dnsLabelOf, shownName } from "./dns-names.js";
import { DNS_ZONE, checked } from "../api/formats.js";

/** A container as the host reported it (hosts/dns-inspect.ts), not yet trusted. */
export interface ReportedContainer {
  /** Full container id (64 hex). */
  id: string;
  /** Docker's name, with or without its leading "/". */
  name: string;
  /** IPv4 address on the mesh network. */
  ip: string;
  /** IPv6 address on the mesh network, when it is dual-stack. */
  ipv6?: string;
  /** Network aliases on the mesh network. */
  aliases: string[];
  /** Label com.docker.compose.service, when set. */
  service?: string;
}

export interface MachineRecordsInput {
  machine: string;
  /** The machine's allocation in this mesh (checked by mesh/allocations.ts). */
  subnet: string;
  /** Its IPv6 allocation in a dual-stack mesh (checked by mesh/allocations.ts): AAAA records beside the A records. */
  subnetV6?: string;
  containers: readonly ReportedContainer[];
}

export interface SkippedName {
  machine: string;
  /** Container id, short (12 hex). */
  container: string;
  /** The name as reported (bounded). */
  name: string;
  /** name: not a DNS label; reserved: a member machine's name; address: not in the machine's subnet; limit: past a bound; machine: the machine's own name. */
  kind: "name" | "reserved" | "address" | "limit" | "machine";
  reason: string;
}

export interface RenderedRecords {
  text: string;
  skipped: SkippedName[];
  /** Per machine: lines its containers contribute (the gateway line not counted). */
  records: Map<string, number>;
}

/** Bounds: a hostile host cannot grow a file without limit. */
export const RECORD_LIMITS = {
  containersPerMachine: 4096,
  namesPerContainer: 32,
  linesPerMesh: 65_536,
} as const;

export const RECORDS_HEADER = (zone: string) => `# Managed by dockmesh: zone ${zone}`;

const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

function ipNumber(ip: string): number | undefined {
  if (!IPV4.test(ip)) return undefined;
  return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

interface Line {
  /** IPv4 as a number, or an IPv6 address: a bigint (AAAA), sorted after the IPv4 lines of a name. */
  ip: number | bigint;
  name: string;
}

const lineText = (l: Line): string => `${typeof l.ip === "bigint" ? formatIp6(l.ip) : formatIp(l.ip)} ${l.name}`;
const byAddress = (a: number | bigint, b: number | bigint): number => (typeof a === typeof b ? (a < b ? -1 : a > b ? 1 : 0) : typeof a === "bigint" ? 1 : -1);

/**
 * The file text and what was skipped. `reserved` are the labels of the member machines: a
 * container's short name equal to one is not published as <name>.ZONE (the machine keeps it).
 */
export function renderRecords(zone: string, machines: readonly MachineRecordsInput[]): RenderedRecords {
  // Checked where it goes into the file (resolveMesh checked it too): one line holds one name.
  checked(zone, DNS_ZONE, "spec.dns.zone", "a DNS zone");
  const skipped: SkippedName[] = [];
  const records = new Map<string, number>();
  const lines = new Map<string, Line>();
  const add = (ip: number | bigint, name: string): boolean => {
    const key = `${typeof ip === "bigint" ? "6:" : ""}${ip} ${name}`;
    if (lines.has(key)) return true;
    if (lines.size >= RECORD_LIMITS.linesPerMesh) return false;
    lines.set(key, { ip, name });
    return true;
  };
  const machineLabels = new Map<string, string>();
  for (const m of machines) {
    const r = dnsLabelOf(m.machine);
    if (r.ok) machineLabels.set(m.machine, r.label);
  }
  const reserved = new Set(machineLabels.values());
  for (const m of [...machines].sort((a, b) => (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0))) {
    const skip = (container: string, name: string, kind: SkippedName["kind"], reason: string) =>
      skipped.push({ machine: m.machine, container: container.slice(0, 12), name: name.slice(0, 80), kind, reason });
    const subnet = parseCidr(m.subnet);
    const mLabel = machineLabels.get(m.machine);
    if (!subnet || subnet.prefix > 30) continue; // checked allocations only; nothing to publish in a /31 or /32
    if (!mLabel) {
      skip("", m.machine, "machine", `machine name ${shownName(m.machine)} is not a DNS label after normalisation: no names under it`);
      continue;
    }
    const gateway = subnet.base + 1;
    const broadcast = subnet.base + 2 ** (32 - subnet.prefix) - 1;
    const fits = (name: string) => name.length + zone.length + 1 <= FQDN_MAX_CHARS;
    if (fits(mLabel)) add(gateway, `${mLabel}.${zone}`);
    // Dual-stack: the IPv6 gateway, and each container's IPv6 address inside the machine's own
    // IPv6 subnet (not its network or gateway address), under the same names.
    const subnet6 = m.subnetV6 === undefined ? undefined : parseCidr6(m.subnetV6);
    const gateway6 = subnet6 ? subnet6.base + 1n : undefined;
    if (gateway6 !== undefined && fits(mLabel)) add(gateway6, `${mLabel}.${zone}`);
    const ipv6Of = (c: ReportedContainer): bigint | undefined => {
      if (!subnet6 || gateway6 === undefined || c.ipv6 === undefined) return undefined;
      const a = parseIp6(c.ipv6);
      return a !== undefined && a > gateway6 && contains6(subnet6, { base: a, prefix: 128 }) ? a : undefined;
    };
    let count = 0;
    const containers = [...m.containers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, RECORD_LIMITS.containersPerMachine);
    for (const c of containers) {
      const ip = ipNumber(c.ip);
      if (ip === undefined || ip <= gateway || ip >= broadcast) {
        skip(c.id, c.name, "address", `address ${shownName(c.ip)} is not a container address inside ${m.machine}'s subnet ${m.subnet}; no record`);
        continue;
      }
      const short = c.id.slice(0, 12);
      const names: Array<{ raw: string; kind: string }> = [
        { raw: c.name, kind: "container name" },
        // Docker adds the short id as an alias of its own: not a name anyone chose.
        ...c.aliases.filter((a) => a !== short).map((raw) => ({ raw, kind: "network alias" })),
        ...(c.service !== undefined && c.service !== "" ? [{ raw: c.service, kind: "label com.docker.compose.service" }] : []),
      ].slice(0, RECORD_LIMITS.namesPerContainer);
      const ip6 = ipv6Of(c);
      if (c.ipv6 !== undefined && ip6 === undefined)
        skip(c.id, c.name, "address", `IPv6 address ${shownName(c.ipv6)} is not a container address inside ${m.machine}'s IPv6 subnet ${m.subnetV6 ?? "(none)"}; no AAAA record`);
      let containerLabel: string | undefined;
      for (const [i, n] of names.entries()) {
        const r = dnsLabelOf(n.raw);
        if (!r.ok) {
          skip(c.id, n.raw, "name", `${n.kind} ${shownName(n.raw)} ${r.reason}; not published`);
          continue;
        }
        if (i === 0) containerLabel = r.label;
        if (reserved.has(r.label)) {
          skip(c.id, n.raw, "reserved", `${n.kind} ${shownName(n.raw)} is also the name of a member machine: ${r.label}.${zone} stays that machine's gateway`);
        } else if (fits(r.label) && add(ip, `${r.label}.${zone}`)) {
          count++;
          if (ip6 !== undefined && add(ip6, `${r.label}.${zone}`)) count++;
        } else skip(c.id, n.raw, "limit", `${r.label}.${zone} is too long or the mesh has ${RECORD_LIMITS.linesPerMesh} records already; not published`);
      }
      if (containerLabel !== undefined) {
        const fq = `${containerLabel}.${mLabel}`;
        if (fits(fq) && add(ip, `${fq}.${zone}`)) {
          count++;
          if (ip6 !== undefined && add(ip6, `${fq}.${zone}`)) count++;
        } else skip(c.id, c.name, "limit", `${fq}.${zone} is too long or the mesh has ${RECORD_LIMITS.linesPerMesh} records already; not published`);
      }
    }
    if (m.containers.length > RECORD_LIMITS.containersPerMachine) {
      skip("", "", "limit", `${m.containers.length} containers reported; only the first ${RECORD_LIMITS.containersPerMachine} by id are published`);
    }
    records.set(m.machine, count);
  }
  const sorted = [...lines.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : byAddress(a.ip, b.ip)));
  const text = [RECORDS_HEADER(zone), ...sorted.map(lineText)].join("\n") + "\n";
  return { text, skipped, records };
}
