// Observe: everything the controller needs to know about a host, read-only, in one SSH round
// trip. The script (hosts/scripts/observe.sh) is static text; interface and network names travel
// as quoted arguments. WireGuard private keys are blanked on the host before anything is sent back.
import { OutputTooLargeError, type HostSession } from "./ssh.js";
import { shJoin } from "../mesh/shell.js";
import { DEFAULT_UPLINK_MTU } from "../mesh/defaults.js";
import type { ResolverFacts } from "../mesh/dns-plan.js";
import { NETWORK_LABEL, type DockerNetworkFacts, type HostFacts } from "../mesh/plan.js";
import { HostError } from "./errors.js";
import { hostText } from "./host-text.js";
import { OBSERVE_SH } from "./scripts.generated.js";
import {
  counter,
  isCidr,
  isContainerName,
  isDockerId,
  isDockerNetworkName,
  isDockerVersion,
  isEndpoint,
  isIpv4Cidr,
  isLinkKind,
  isLinkName,
  isMtu,
  wholeNumber,
  isPolicy,
  isRuleLine,
  isSha256,
  isWgKey,
  port,
  routeDestination,
  ipv6Cidr,
  stringMap,
} from "./observe-values.js";

/**
 * The observe script, hosts/scripts/observe.sh as sent. Arguments: interface names, "--", Docker
 * network names; stdin: the probes (probeInput).
 */
export const OBSERVE_SCRIPT = OBSERVE_SH;

export interface WgPeerState {
  publicKey: string;
  endpoint?: string;
  allowedIPs: string[];
  /** Seconds since the epoch; 0 = never. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
  persistentKeepalive?: number;
}

export interface WgInterfaceState {
  publicKey: string;
  listenPort: number;
  peers: WgPeerState[];
}

export interface LinkState {
  name: string;
  up: boolean;
  mtu: number;
  kind?: string;
}

export interface DockerNetworkState {
  id: string;
  name: string;
  subnet?: string;
  /** Its IPv6 subnet: a dual-stack network (created with --ipv6). */
  subnetV6?: string;
  options: Record<string, string>;
  labels: Record<string, string>;
  containers: number;
  /** Names of the attached containers (checked; at most MAX_CONTAINER_NAMES, sorted): for messages. */
  containerNames?: string[];
}

/** Container names kept per network: enough to name them in an Event. */
export const MAX_CONTAINER_NAMES = 50;

export interface IfaceFiles {
  /** path → sha256 of its content, or undefined when missing. */
  files: Map<string, string | undefined>;
  /** Those of the files that start with dockmesh's "Managed by dockmesh" line. */
  mine: Set<string>;
  enabled: boolean;
  /** The mesh DNS resolver's unit is enabled, and the resolver runs (its pid file, our config). */
  dnsEnabled: boolean;
  dnsRunning: boolean;
}

export interface HostObservation {
  tools: Record<"docker" | "wg" | "wg-quick" | "iptables" | "ip" | "systemctl", boolean>;
  /** net.ipv6.conf.all.forwarding, read when a mesh of the host is dual-stack. */
  ipv6Forwarding?: boolean;
  systemd: boolean;
  wireguardImplementation: "kernel" | "userspace";
  iptablesBackend: "nft" | "legacy";
  dockerVersion?: string;
  dockerError?: string;
  links: Map<string, LinkState>;
  routes: Array<{ dst: string; dev: string }>;
  defaultDev?: string;
  wg: Map<string, WgInterfaceState>;
  /** "table/CHAIN" → rules as `iptables -S` prints them; undefined when the chain is missing. */
  iptables: Map<string, string[] | undefined>;
  /** "table/CHAIN" → policy of a built-in chain (ACCEPT, DROP). */
  policies: Map<string, string>;
  ifaces: Map<string, IfaceFiles>;
  networks: Map<string, DockerNetworkState | undefined>;
  /** What decides the mesh DNS resolver's mode (mesh/dns-plan.ts). */
  resolver: ResolverFacts;
}

/**
 * Splits an `iptables -S` line (or its canonical form) into words: double quotes appear around
 * comments (always with nft), single quotes in the canonical form (POSIX quoting).
 */
export function splitRuleLine(line: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === " " || c === "\t") {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word = (word ?? "") + line.slice(i + 1, end < 0 ? line.length : end);
      i = end < 0 ? line.length : end;
    } else if (c === '"') {
      let j = i + 1;
      let text = "";
      while (j < line.length && line[j] !== '"') {
        if (line[j] === "\\" && j + 1 < line.length) j++;
        text += line[j];
        j++;
      }
      word = (word ?? "") + text;
      i = j;
    } else if (c === "\\" && i + 1 < line.length) {
      word = (word ?? "") + line[++i];
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) out.push(word);
  return out;
}

/** One canonical spelling per rule (POSIX-quoted words), whichever iptables backend printed it. */
export const canonicalRule = (line: string): string => shJoin(splitRuleLine(line));

function sections(text: string): Array<{ name: string; arg: string; body: string[] }> {
  const out: Array<{ name: string; arg: string; body: string[] }> = [];
  for (const line of text.split("\n")) {
    const m = /^@@dockmesh (\S+) ?(.*)$/.exec(line);
    if (m) out.push({ name: m[1]!, arg: m[2]!, body: [] });
    else if (out.length) out[out.length - 1]!.body.push(line);
  }
  return out;
}

function json<T>(lines: string[], fallback: T): T {
  const text = lines.join("\n").trim();
  if (!text) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/** A chain the observe script lists, as its section names it ("filter:DOCKER-USER"; "filter6:…" for ip6tables). */
const CHAIN_SECTION = /^(filter|nat|raw|mangle)6?:[A-Za-z0-9_-]{1,28}$/;

/** The files the observe script hashes for interface i (nothing else is kept). */
const ifaceFiles = (i: string) => [
  `/etc/wireguard/${i}.conf`,
  `/etc/systemd/system/wg-quick@${i}.service.d/dockmesh.conf`,
  `/etc/dockmesh/dns/${i}/dnsmasq.conf`,
  `/etc/dockmesh/dns/${i}/records/mesh`,
  `/etc/systemd/system/dockmesh-dns-${i}.service`,
  `/etc/systemd/resolved.conf.d/dockmesh-${i}.conf`,
];

/** The Docker version, or why there is none; throws when the host printed something that is not one. */
function dockerVersion(body: string[]): { dockerVersion: string } | { dockerError: string } {
  const refuse = (v: string) => new Error(`the Docker version the host reported is not a version like 27.5.1 (got "${hostText(v, 40)}", ${v.length} characters); check the host's docker`);
  if (body[0]?.startsWith("api ")) {
    const v = json<{ Version?: unknown }>([body.join("\n").slice(4)], {}).Version;
    if (v === undefined) return { dockerError: "the Docker API's /version has no version" };
    if (!isDockerVersion(v)) throw refuse(String(v));
    return { dockerVersion: v };
  }
  const rc = body.at(-1);
  const rest = body.slice(0, -1).join("\n").trim();
  if (rc === "rc=0" && /^\d+\.\d+/.test(rest)) {
    if (!isDockerVersion(rest)) throw refuse(rest);
    return { dockerVersion: rest };
  }
  // The docker CLI's own error ("Cannot connect to the Docker daemon …"), shown in a condition.
  return { dockerError: hostText(rest, 300) || "docker version failed" };
}

function parseLinks(body: string[], obs: HostObservation): void {
  const links = json<unknown>(body, []);
  for (const l of Array.isArray(links) ? (links as Array<Record<string, unknown> | null>) : []) {
    if (!l || typeof l !== "object" || !isLinkName(l.ifname)) continue;
    const flags = Array.isArray(l.flags) ? l.flags : [];
    const kind = (l.linkinfo as { info_kind?: unknown } | undefined)?.info_kind;
    obs.links.set(l.ifname, { name: l.ifname, up: flags.includes("UP"), mtu: isMtu(l.mtu) ? l.mtu : 0, ...(isLinkKind(kind) ? { kind } : {}) });
  }
}

function parseRoutes(body: string[], obs: HostObservation): void {
  const routes = json<unknown>(body, []);
  for (const r of Array.isArray(routes) ? (routes as Array<Record<string, unknown> | null>) : []) {
    if (!r || typeof r !== "object" || !isLinkName(r.dev)) continue;
    if (r.dst === "default") obs.defaultDev = r.dev;
    else {
      const dst = routeDestination(r.dst);
      // The kernel's own IPv6 routes on every link (link-local fe80::/64, multicast ff00::/8) are
      // not the mesh's: never compared, never deleted.
      if (dst && !/^f[ef][0-9a-f]{2}:/.test(dst)) obs.routes.push({ dst, dev: r.dev });
    }
  }
}

/** One of a peer's allowed IPs as the plan writes it (IPv6 in its RFC 5952 spelling), or none. */
const allowedIp = (c: string): string[] => {
  if (!isCidr(c)) return [];
  if (!c.includes(":")) return [c];
  const v6 = ipv6Cidr(c);
  return v6 !== undefined ? [v6] : [];
};

/** `wg show all dump`: an interface line (5 fields), then its peers (9 fields); anything invalid is dropped. */
export function parseWgDump(body: readonly string[]): Map<string, WgInterfaceState> {
  const wg = new Map<string, WgInterfaceState>();
  for (const l of body) {
    const f = l.split("\t");
    if (f.length === 5) {
      const listenPort = port(f[3], true);
      if (isLinkName(f[0]) && isWgKey(f[2]) && listenPort !== undefined) wg.set(f[0], { publicKey: f[2], listenPort, peers: [] });
    } else if (f.length === 9) {
      const iface = wg.get(f[0]!);
      if (!iface || !isWgKey(f[1])) continue;
      const keepalive = port(f[8]);
      iface.peers.push({
        publicKey: f[1],
        ...(isEndpoint(f[3]) ? { endpoint: f[3] } : {}),
        allowedIPs: (f[4] ?? "").split(",").flatMap(allowedIp).sort(),
        latestHandshake: counter(f[5]) ?? 0,
        rxBytes: counter(f[6]) ?? 0,
        txBytes: counter(f[7]) ?? 0,
        ...(keepalive !== undefined ? { persistentKeepalive: keepalive } : {}),
      });
    }
  }
  return wg;
}

function parseNetwork(body: string[], arg: string): DockerNetworkState | undefined {
  const n = json<Record<string, unknown> | null>(body, {});
  if (!n || typeof n !== "object" || !isDockerId(n.Id)) return undefined;
  // Docker looks a network up by id, then name, then id prefix: asked for "a", it answers with
  // any network whose id starts with "a" when none is named so. Only the named one is ours to see.
  if (n.Name !== arg) return undefined;
  const ipam = n.IPAM as { Config?: unknown } | undefined;
  const configs = Array.isArray(ipam?.Config) ? (ipam.Config as Array<{ Subnet?: unknown } | null>) : [];
  // A dual-stack network's IPv6 subnet may come first.
  const subnet = configs.map((c) => c?.Subnet).find(isIpv4Cidr);
  const subnetV6 = configs.map((c) => ipv6Cidr(c?.Subnet)).find((c) => c !== undefined);
  const attached = n.Containers && typeof n.Containers === "object" ? Object.values(n.Containers as Record<string, { Name?: unknown } | null>) : [];
  const containers = attached.length;
  const containerNames = attached
    .map((c) => c?.Name)
    .filter(isContainerName)
    .sort()
    .slice(0, MAX_CONTAINER_NAMES);
  return {
    id: n.Id,
    name: arg,
    ...(subnet ? { subnet } : {}),
    ...(subnetV6 ? { subnetV6 } : {}),
    options: stringMap(n.Options),
    labels: stringMap(n.Labels),
    containers,
    ...(containerNames.length ? { containerNames } : {}),
  };
}

/** An observation of nothing: no tools, no links, no rules (what parsing starts from). */
export function emptyObservation(): HostObservation {
  return {
    tools: { docker: false, wg: false, "wg-quick": false, iptables: false, ip: false, systemctl: false },
    systemd: false,
    wireguardImplementation: "userspace",
    iptablesBackend: "legacy",
    links: new Map(),
    routes: [],
    wg: new Map(),
    iptables: new Map(),
    policies: new Map(),
    ifaces: new Map(),
    networks: new Map(),
    resolver: { dnsmasq: false, resolvedStub: false },
  };
}

/**
 * Parses the observe script's output. Exported for tests. Every value is checked before it is
 * kept (hosts/observe-values.ts): what does not look like what the host's tools print is
 * dropped, and a Docker version that is not one refuses the whole observation (it is shown in
 * status and conditions).
 */
export function parseObservation(text: string): HostObservation {
  const secs = sections(text);
  if (!secs.some((s) => s.name === "end")) throw new Error("observe output is truncated (no end marker)");
  const obs = emptyObservation();

  const nameservers: string[] = [];
  for (const s of secs) {
    const body = s.body.filter((l) => l !== "");
    switch (s.name) {
      case "tools":
        for (const l of body) {
          const [c, v] = l.split(" ");
          if (c && Object.hasOwn(obs.tools, c)) obs.tools[c as keyof HostObservation["tools"]] = v === "yes";
        }
        break;
      case "system":
        for (const l of body) {
          if (l === "systemd yes") obs.systemd = true;
          if (l === "dnsmasq yes") obs.resolver.dnsmasq = true;
          const v = /^systemd-version (\d{1,4})$/.exec(l);
          if (v) obs.resolver.systemdVersion = Number(v[1]);
          if (/^nameserver /.test(l)) nameservers.push(l.slice("nameserver ".length));
          if (l === "wireguard kernel") obs.wireguardImplementation = "kernel";
          if (l === "ipv6-forwarding 0" || l === "ipv6-forwarding 1") obs.ipv6Forwarding = l.endsWith("1");
          if (l === "iptables nft") obs.iptablesBackend = "nft";
        }
        break;
      case "docker-version":
        Object.assign(obs, dockerVersion(body));
        break;
      case "links":
        parseLinks(body, obs);
        break;
      case "routes":
      case "routes6":
        parseRoutes(body, obs);
        break;
      case "wg":
        obs.wg = parseWgDump(body);
        break;
      case "iptables": {
        if (!CHAIN_SECTION.test(s.arg)) break;
        const rc = body.at(-1);
        const key = s.arg.replace(":", "/");
        obs.iptables.set(
          key,
          rc === "rc=0"
            ? body
                .slice(0, -1)
                .filter((l) => l.startsWith("-A ") && isRuleLine(l))
                .map(canonicalRule)
            : undefined,
        );
        const policy = body.find((l) => l.startsWith("-P "))?.split(" ")[2];
        if (rc === "rc=0" && isPolicy(policy)) obs.policies.set(key, policy);
        break;
      }
      case "iface": {
        if (!isLinkName(s.arg)) break;
        const expected = ifaceFiles(s.arg);
        const files = new Map<string, string | undefined>();
        const mine = new Set<string>();
        let enabled = false;
        let dnsEnabled = false;
        let dnsRunning = false;
        for (const l of body) {
          if (l === "dns-enabled yes") dnsEnabled = true;
          if (l === "dns-running yes") dnsRunning = true;
          const m = /^file (\S+) (.+)$/.exec(l);
          if (m && expected.includes(m[2]!) && (m[1] === "-" || isSha256(m[1]))) files.set(m[2]!, m[1] === "-" ? undefined : m[1]);
          // Only a path the script was asked about (one of the "file" lines) counts as ours.
          const mp = /^mine (.+)$/.exec(l);
          if (mp && files.has(mp[1]!) && files.get(mp[1]!) !== undefined) mine.add(mp[1]!);
          if (l === "enabled yes") enabled = true;
        }
        obs.ifaces.set(s.arg, { files, mine, enabled, dnsEnabled, dnsRunning });
        break;
      }
      case "network":
        if (isDockerNetworkName(s.arg)) obs.networks.set(s.arg, parseNetwork(body, s.arg));
        break;
    }
  }
  // systemd-resolved is the resolver when every nameserver is its stub listener.
  obs.resolver.resolvedStub = nameservers.length > 0 && nameservers.every((n) => n === "127.0.0.53");
  if (!obs.systemd) delete obs.resolver.systemdVersion;
  return obs;
}

/** A peer to ping before reading handshakes, when it has been idle for two minutes. */
export interface Probe {
  iface: string;
  /** Our bridge's address (the source: it routes through the tunnel, and the peer answers it). */
  source: string;
  publicKey: string;
  /** An address on the peer's side of the tunnel: its bridge gateway. */
  address: string;
  /** The peer is being configured at this moment: wait a little for its handshake (PROBE_WAIT_TENTHS). */
  wait?: boolean;
  /**
   * With wait: this end initiates again while the first handshake has not come (one end of each
   * pair, the one with the lower key: two ends initiating at once leave each other without a
   * session until WireGuard's 5 s retry; hosts/scripts/probe-idle-peers.sh probe_again).
   */
  retry?: boolean;
}

/** How long the probes wait for peers being configured at the same time: 3 s, in tenths. */
export const PROBE_WAIT_TENTHS = 30;

/**
 * Bounds of the observe script's output. Its largest real answer: a host with 1,000 peers
 * prints 160 KiB as the simulated host renders it (bench/sim; test/security/observe-limits:
 * `wg show dump` 99 KB, `ip -j route` 62 KB) and ~0.3 MB by the real tools' line lengths (a
 * real dump line carries handshake times and byte counts); a busy Docker host adds ~0.7 KB of
 * `ip -j link` per container veth and ~0.3 KB per container in its network's JSON: ~2 MB at
 * 1,000 containers. 16 MiB is 8 times that. The script's standard error carries only tool
 * errors (most are sent to /dev/null), shown in a condition.
 */
export const OBSERVE_LIMITS = { maxStdoutBytes: 16 * 1024 * 1024, maxStderrBytes: 1024 * 1024 } as const;

/** The probes as hosts/scripts/probe-idle-peers.sh reads them on stdin: "iface source publickey address [w|r]" lines. */
export const probeInput = (probes: readonly Probe[]): string =>
  (probes.some((p) => p.wait) ? `@wait ${PROBE_WAIT_TENTHS}\n` : "") + probes.map((p) => `${p.iface} ${p.source} ${p.publicKey} ${p.address}${p.wait ? (p.retry ? " r" : " w") : ""}\n`).join("");

/** What a look reads: the interfaces, the Docker networks, and IPv6 as well when asked. */
export interface ObserveNames {
  ifaces: readonly string[];
  nets: readonly string[];
  ipv6?: boolean;
}

/** The observe script's arguments: "--ipv6" when asked, the interfaces, "--", the Docker networks. */
export const observeArgs = (names: ObserveNames): string[] => [...(names.ipv6 ? ["--ipv6"] : []), ...names.ifaces, "--", ...names.nets];

/** Runs the observe script for the given interfaces and Docker networks. One round trip. */
export function observeHost(session: HostSession, names: ObserveNames, probes: readonly Probe[] = []): Promise<HostObservation> {
  // Not async itself: an async function keeps its arguments for as long as it waits, and the
  // probes (an object per peer: ~135 KB at 1,000) are not needed once they are the script's input.
  return observeWith(session, names, probeInput(probes));
}

async function observeWith(session: HostSession, names: ObserveNames, input: string): Promise<HostObservation> {
  let res;
  try {
    res = await session.exec(OBSERVE_SCRIPT, { args: observeArgs(names), input, timeoutMs: 60_000, ...OBSERVE_LIMITS });
  } catch (err) {
    if (err instanceof OutputTooLargeError) throw err.as("ObserveFailed", "observing the host");
    throw err;
  }
  if (res.code !== 0) throw new HostError("ObserveFailed", `observing the host failed (exit ${res.code}): ${hostText(res.stderr.trim())}`);
  try {
    return parseObservation(res.stdout);
  } catch (err) {
    throw new HostError("ObserveFailed", `observing the host failed: ${hostText((err as Error).message)}`, { cause: err });
  }
}

/**
 * What the status write needs of a look, once its peers were summed up: the observation without
 * the WireGuard peers' dump (each interface keeps its key and port) and the route table. At 1,000
 * peers those are ~440 KB of parsed objects per look, otherwise held across the write.
 */
export function forStatus(obs: HostObservation): HostObservation {
  // A copy, not the parts themselves: the parsed strings are slices of the host's output (V8 keeps
  // a substring as a view of its parent), so one key or rule kept would hold all of it (~172 KB).
  return structuredClone({ ...obs, routes: [], wg: new Map([...obs.wg].map(([name, s]) => [name, { publicKey: s.publicKey, listenPort: s.listenPort, peers: [] }])) });
}

/** An INPUT chain drops what it does not allow: policy DROP, or a catch-all DROP/REJECT (no match before the verdict). */
function dropsAll(obs: HostObservation, key: "filter/INPUT" | "filter6/INPUT"): boolean {
  return obs.policies.get(key) === "DROP" || (obs.iptables.get(key) ?? []).some((l) => /^-A INPUT -j (DROP|REJECT)\b/.test(l));
}

/** What the planner needs to know about the host. */
export function hostFacts(
  obs: HostObservation,
): Required<Omit<HostFacts, "dockerNetworks" | "rawTableV6" | "dockerUserV6" | "ipv6Forwarding" | "inputDropsV6">> &
  Pick<HostFacts, "rawTableV6" | "dockerUserV6" | "ipv6Forwarding" | "inputDropsV6"> {
  return {
    uplinkMtu: uplinkMtu(obs) ?? DEFAULT_UPLINK_MTU,
    inputDrops: dropsAll(obs, "filter/INPUT"),
    rawTable: obs.iptables.get("raw/PREROUTING") !== undefined,
    // Known when ip6tables was looked at (a dual-stack mesh): its sections are there, present or not.
    ...(obs.iptables.has("filter6/DOCKER-USER") ? { rawTableV6: obs.iptables.get("raw6/PREROUTING") !== undefined, dockerUserV6: obs.iptables.get("filter6/DOCKER-USER") !== undefined } : {}),
    ...(obs.ipv6Forwarding !== undefined ? { ipv6Forwarding: obs.ipv6Forwarding } : {}),
    ...(obs.iptables.has("filter6/INPUT") ? { inputDropsV6: dropsAll(obs, "filter6/INPUT") } : {}),
    systemd: obs.systemd,
    resolver: obs.resolver,
  };
}

const MTU_OPTION = "com.docker.network.driver.mtu";

/** The host's Docker networks as planning needs them (HostFacts.dockerNetworks: an MTU held under containers). */
export function dockerNetworkFacts(obs: HostObservation): Map<string, DockerNetworkFacts> {
  const out = new Map<string, DockerNetworkFacts>();
  for (const [name, n] of obs.networks) {
    // Host output that the plan may carry into the WireGuard config and `ip link` (a held MTU):
    // a plain integer an interface can have, else as if no MTU were recorded (nothing is held).
    const mtu = wholeNumber(n?.options[MTU_OPTION], 576, 65535);
    if (n)
      out.set(name, {
        containers: n.containers,
        ...(mtu !== undefined ? { mtu } : {}),
        ...(n.subnetV6 !== undefined ? { subnetV6: n.subnetV6 } : {}),
        ...(n.labels[NETWORK_LABEL] !== undefined ? { label: n.labels[NETWORK_LABEL] } : {}),
      });
  }
  return out;
}

/** MTU of the uplink: the default route's device, else the smallest physical-looking link. */
export function uplinkMtu(obs: HostObservation): number | undefined {
  if (obs.defaultDev) {
    const l = obs.links.get(obs.defaultDev);
    if (l?.mtu) return l.mtu;
  }
  const candidates = [...obs.links.values()].filter(
    (l) => l.up && l.name !== "lo" && !["wireguard", "bridge", "tun", "dummy"].includes(l.kind ?? "") && !/^(br-|docker|veth|wg|dm)/.test(l.name) && !obs.wg.has(l.name),
  );
  if (candidates.length === 0) return undefined;
  return Math.min(...candidates.map((l) => l.mtu));
}
