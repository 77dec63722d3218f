// The records half of mesh DNS against a simulated host: what hosts/dns-inspect.ts's INSPECT_SCRIPT
// prints for the host's containers, what hosts/dns-write.ts's WRITE_RECORDS_SCRIPT does with its
// arguments and input, and the lines of hosts/docker-events.ts's EVENTS_SCRIPT (the stream itself
// is the fleet's: bench/sim/simulated-fleet.ts). Each follows its script step by step.
import { createHash } from "node:crypto";
import { DNS_DIR, NO_RESOLVER_EXIT } from "../../hosts/dns-write.js";
import { READY_MARKER } from "../../hosts/docker-events.js";
import type { CommandResult, SimulatedContainer, SimulatedHost } from "./simulated-host.js";

/** The event script's first line: the host's clock since when events are replayed. */
export const readyLine = (nowS: number): string => `${READY_MARKER} ${nowS}\n`;

/** One event as `docker events --format '{{.Type}} {{.Action}}'` prints it. */
export const eventLine = (type: string, action: string): string => `${type} ${action}\n`;

const HEX64 = /^[0-9a-f]{64}$/;

/** `docker inspect --type container --format '{…}'` of one container: the script's JSON line. */
function containerLine(host: SimulatedHost, c: SimulatedContainer): string {
  const networks: Record<string, unknown> = {};
  for (const [name, at] of c.networks) {
    const n = host.networks.get(name);
    const aliases = [...(c.service ? [c.name, c.service] : []), ...at.aliases];
    networks[name] = {
      IPAMConfig: null,
      Links: null,
      Aliases: aliases.length ? aliases : null,
      MacAddress: ["02", "42", ...at.ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0"))].join(":"),
      DriverOpts: null,
      NetworkID: n?.id ?? "",
      EndpointID: createHash("sha256").update(`${c.id} ${name}`).digest("hex"),
      Gateway: n?.gateway ?? "",
      IPAddress: at.ip,
      IPPrefixLen: Number(n?.subnet?.split("/")[1] ?? 24),
      IPv6Gateway: "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      DNSNames: [c.name, c.id.slice(0, 12), ...aliases.filter((a) => a !== c.name)],
    };
  }
  // A missing label indexes to "" in a Go template, not null.
  return `{"id":${JSON.stringify(c.id)},"name":${JSON.stringify(`/${c.name}`)},"service":${JSON.stringify(c.service ?? "")},"networks":${JSON.stringify(networks)}}`;
}

/**
 * INSPECT_SCRIPT with these interfaces and network names: `records IF SHA256` per interface whose
 * resolver and records file exist, `net NAME ID…` per network that exists (its running
 * containers' ids, in the order of Go's sorted map), then one JSON line per container. A network
 * that does not exist is not listed; none existing prints nothing. Exit 0 (Docker answers).
 */
export function renderInspect(host: SimulatedHost, argv: readonly string[]): CommandResult {
  // `COUNT IF… NET…`: `records IF SHA256` per interface with a resolver and a records file.
  const count = Number(argv[0] ?? "0");
  if (!/^[0-9]*$/.test(argv[0] ?? "")) return { code: 2, stderr: "bad count\n" };
  const records: string[] = [];
  for (const ifc of argv.slice(1, 1 + count)) {
    if (ifc === "" || ifc.startsWith(".") || ifc.includes("/")) continue;
    const file = host.files.get(`${DNS_DIR}/${ifc}/records/mesh`);
    if (!host.files.has(`${DNS_DIR}/${ifc}/dnsmasq.conf`) || !file) continue;
    records.push(`records ${ifc} ${createHash("sha256").update(file.content).digest("hex")}\n`);
  }
  const args = argv.slice(1 + count);
  if (args.length === 0) return { code: 0, stdout: records.join("") };
  // `docker network inspect --format '{{.Name}}{{range $id, $c := .Containers}} {{$id}}{{end}}' "$@"`
  const out = args.filter((n) => host.networks.has(n)).map((n) => [n, ...host.containersOn(n).map((c) => c.id)].join(" "));
  const lines = [...records, ...out.map((l) => `net ${l}\n`)];
  const ids: string[] = [];
  for (const word of out.join("\n").split(/\s+/)) if (HEX64.test(word) && !ids.includes(word)) ids.push(word);
  for (const id of ids) {
    const c = host.containers.get(id);
    if (c) lines.push(`${containerLine(host, c)}\n`);
  }
  return { code: 0, stdout: lines.join("") };
}

/** WRITE_RECORDS_SCRIPT's run: its exit status, what it printed, whether a resolver was missing. */
export interface WriteRun extends CommandResult {
  noResolver: boolean;
}

/**
 * WRITE_RECORDS_SCRIPT: `TOTAL (IFACE LEN)…` and the files one after another on stdin. Each file
 * whose resolver is configured (its dnsmasq.conf exists) goes to records/mesh unless it is the
 * same; the others are reported and the exit status is NO_RESOLVER_EXIT.
 */
export function runWriteRecords(host: SimulatedHost, args: readonly string[], stdin: Buffer): WriteRun {
  const refuse = (stderr: string, code = 2): WriteRun => ({ code, stderr: `${stderr}\n`, noResolver: false });
  if (args.length === 0) return refuse("sh: 3: 1: parameter not set");
  const total = args[0]!;
  if (!/^[0-9]+$/.test(total)) return refuse("bad total");
  if (stdin.length !== Number(total)) return refuse(`expected ${total} bytes on input, got ${stdin.length}`);
  const out: string[] = [];
  let off = 0;
  let missing = false;
  const rest = args.slice(1);
  for (let i = 0; i + 1 < rest.length; i += 2) {
    const ifc = rest[i]!;
    const len = rest[i + 1]!;
    if (ifc === "" || ifc.startsWith(".") || ifc.includes("/")) return { ...refuse("bad interface"), stdout: out.join("") };
    if (!/^[0-9]+$/.test(len)) return { ...refuse("bad length"), stdout: out.join("") };
    const dir = `${DNS_DIR}/${ifc}`;
    if (!host.files.has(`${dir}/dnsmasq.conf`)) {
      out.push(`noresolver ${ifc}\n`);
      missing = true;
    } else {
      const text = stdin.subarray(off, off + Number(len)).toString("utf8");
      const path = `${dir}/records/mesh`;
      if (host.files.get(path)?.content === text) out.push(`unchanged ${ifc}\n`);
      else {
        host.files.set(path, { content: text, mode: "644" });
        out.push(`written ${ifc}\n`);
      }
    }
    off += Number(len);
  }
  return { code: missing ? NO_RESOLVER_EXIT : 0, stdout: out.join(""), noResolver: missing };
}
