// The look at a host's containers on the meshes' Docker networks (issue 13): one fixed script,
// the network names as argv (checked by DOCKER_NETWORK_NAME), fixed Go templates (no name is ever
// put into a template or shell text), bounded output, and a strict parser that drops whatever
// does not look right. What it returns is still the host's word: mesh/dns-records.ts checks names
// and addresses before anything is published.
import { DOCKER_NETWORK_NAME, INTERFACE_NAME, checked } from "../api/formats.js";
import { HostError } from "./errors.js";
import { OutputTooLargeError, type HostSession } from "./ssh.js";
import { hostText } from "./host-text.js";
import type { ReportedContainer } from "../mesh/dns-records.js";
import { DNS_INSPECT_SH } from "./scripts.generated.js";

export const INSPECT_LIMITS = {
  /** Whole answer: ~1 KiB a container on a few networks, for 4096 containers and then some. */
  maxStdoutBytes: 8 * 1024 * 1024,
  maxLineChars: 64 * 1024,
  containersPerNetwork: 4096,
  aliasesPerContainer: 32,
  nameChars: 256,
  timeoutMs: 30_000,
} as const;

/** Exit status of the script when the Docker daemon does not answer (dns-inspect.sh spells it; test/unit/host-scripts checks). */
export const DOCKER_DOWN_EXIT = 69;

/**
 * hosts/scripts/dns-inspect.sh as sent: `records IF SHA256` per asked interface whose records
 * file exists (and whose resolver is configured), `net NAME ID…` per network found (its running
 * containers' ids), then one JSON object per container: id, name, compose service label and its
 * networks (Docker's own JSON, keyed by network name). A network that does not exist is simply
 * not listed. It exits with DOCKER_DOWN_EXIT when the Docker daemon does not answer.
 */
export const INSPECT_SCRIPT = DNS_INSPECT_SH;

export interface InspectResult {
  /** Per network found on the host: its containers with an address on it. Networks not found are absent. */
  networks: Map<string, ReportedContainer[]>;
  /**
   * Per asked interface whose records file the host holds: the file's sha256 (hex), as the host
   * said. Absent: no file, no resolver yet, or no sha256sum on the host (the file is written).
   */
  files: Map<string, string>;
  /** Lines dropped as malformed (for a log line). */
  dropped: number;
}

/** A full container id, and a sha256 as sha256sum prints it: 64 lower-case hex digits both. */
const HEX64 = /^[0-9a-f]{64}$/;
const isStr = (v: unknown, max: number): v is string => typeof v === "string" && v.length <= max;

/**
 * The containers of the given mesh networks on a host, and the digests of the records files of
 * the given interfaces, in one command.
 */
export async function inspectContainers(session: HostSession, networks: readonly string[], interfaces: readonly string[] = []): Promise<InspectResult> {
  const args = [
    String(interfaces.length),
    ...interfaces.map((n, i) => checked(n, INTERFACE_NAME, `records file [${i}] interface`, "an interface name")),
    ...networks.map((n, i) => checked(n, DOCKER_NETWORK_NAME, `mesh Docker network [${i}]`, "a Docker network name dockmesh creates")),
  ];
  let r;
  try {
    r = await session.exec(INSPECT_SCRIPT, { args, timeoutMs: INSPECT_LIMITS.timeoutMs, maxStdoutBytes: INSPECT_LIMITS.maxStdoutBytes, maxStderrBytes: 64 * 1024 });
  } catch (err) {
    if (err instanceof OutputTooLargeError) throw err.as("ObserveFailed", "listing the containers on the mesh networks");
    throw err;
  }
  if (r.code === DOCKER_DOWN_EXIT) throw new HostError("DockerNotRunning", `listing the containers on the mesh networks: the Docker daemon does not answer (${hostText(r.stderr, 200)})`);
  if (r.code === 127) throw new HostError("MissingTools", `listing the containers on the mesh networks: ${hostText(r.stderr, 200)}; install Docker`);
  if (r.code !== 0) throw new HostError("ObserveFailed", `listing the containers on the mesh networks failed (exit ${r.code}): ${hostText(r.stderr, 300)}`);
  return parseInspect(r.stdout, networks, interfaces);
}

/** The script's output, strictly: only the asked networks, only well-formed values. */
export function parseInspect(stdout: string, networks: readonly string[], interfaces: readonly string[] = []): InspectResult {
  const wanted = new Set(networks);
  const asked = new Set(interfaces);
  const files = new Map<string, string>();
  const members = new Map<string, string[]>();
  const containers = new Map<string, { name: string; service?: string; networks: Record<string, unknown> }>();
  let dropped = 0;
  for (const line of stdout.split("\n")) {
    if (line === "") continue;
    if (line.length > INSPECT_LIMITS.maxLineChars) {
      dropped++;
      continue;
    }
    if (line.startsWith("records ")) {
      const [ifc, sum, ...rest] = line.slice(8).split(" ");
      if (!ifc || !asked.has(ifc) || files.has(ifc) || !sum || !HEX64.test(sum) || rest.length) dropped++;
      else files.set(ifc, sum);
      continue;
    }
    if (line.startsWith("net ")) {
      const [name, ...ids] = line.slice(4).split(" ");
      if (!name || !wanted.has(name) || members.has(name) || !ids.every((id) => HEX64.test(id))) {
        dropped++;
        continue;
      }
      members.set(name, ids.slice(0, INSPECT_LIMITS.containersPerNetwork));
      continue;
    }
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      dropped++;
      continue;
    }
    if (typeof o !== "object" || o === null || Array.isArray(o)) {
      dropped++;
      continue;
    }
    const c = o as Record<string, unknown>;
    const service = c.service;
    if (
      !isStr(c.id, 64) ||
      !HEX64.test(c.id) ||
      !isStr(c.name, INSPECT_LIMITS.nameChars) ||
      !(service === null || isStr(service, INSPECT_LIMITS.nameChars)) ||
      typeof c.networks !== "object" ||
      c.networks === null ||
      containers.has(c.id)
    ) {
      dropped++;
      continue;
    }
    containers.set(c.id, { name: c.name, ...(typeof service === "string" && service !== "" ? { service } : {}), networks: c.networks as Record<string, unknown> });
  }
  const out = new Map<string, ReportedContainer[]>();
  for (const [net, ids] of members) {
    const list: ReportedContainer[] = [];
    for (const id of ids) {
      const c = containers.get(id);
      if (!c) continue; // gone between the two looks
      const n = Object.hasOwn(c.networks, net) ? (c.networks[net] as Record<string, unknown> | null) : undefined;
      if (typeof n !== "object" || n === null) continue;
      const ip = n.IPAddress;
      const aliases = n.Aliases;
      if (!isStr(ip, 15) || ip === "") continue;
      if (!(aliases === null || aliases === undefined || Array.isArray(aliases))) {
        dropped++;
        continue;
      }
      const names = (aliases ?? []).filter((a): a is string => isStr(a, INSPECT_LIMITS.nameChars)).slice(0, INSPECT_LIMITS.aliasesPerContainer);
      // A dual-stack network's IPv6 address (checked against the machine's subnet where it is used).
      const ip6 = n.GlobalIPv6Address;
      const ipv6 = isStr(ip6, 39) && ip6 !== "" ? ip6 : undefined;
      list.push({ id, name: c.name, ip, ...(ipv6 !== undefined ? { ipv6 } : {}), aliases: names, ...(c.service !== undefined ? { service: c.service } : {}) });
    }
    out.set(net, list);
  }
  return { networks: out, files, dropped };
}
