// The observe script's output, rendered from a simulated host's state in the exact format
// hosts/observe.ts parses: `@@dockmesh SECTION` lines, `ip -j` JSON, `wg show all dump` with
// the private key hidden, `iptables -S` as iptables-nft prints it (comments in double quotes),
// file hashes, enable links, `docker network inspect` JSON, the resolver facts and mesh DNS's
// files, unit and process. The probes on stdin make peers handshake, as the real script's pings do.
import { createHash } from "node:crypto";
import { hostFacts, parseObservation, splitRuleLine } from "../../hosts/observe.js";
import type { SimulatedHost, SimulatedPeer } from "./simulated-host.js";
import { dnsPid } from "./simulated-resolver.js";
import { dnsPaths } from "../../mesh/dns-plan.js";

/** The other side of a WireGuard peer, when the fleet knows it. */
export interface PeerDirectory {
  /**
   * The peer entry for `host`'s interface on the host that owns `peerKey`, when that host has
   * `host`'s interface configured as a peer too (so a handshake can complete).
   */
  counterpart(host: SimulatedHost, iface: string, peerKey: string): SimulatedPeer | undefined;
}

/** A handshake younger than this is not probed again (the observe script's 2 minutes). */
export const PROBE_IDLE_S = 120;

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** Interface names before `--`, Docker network names after it (the script's ifaces/nets). */
export function splitObserveArgs(args: readonly string[]): { ifaces: string[]; nets: string[] } {
  const at = args.indexOf("--");
  return at < 0 ? { ifaces: [...args], nets: [] } : { ifaces: args.slice(0, at), nets: args.slice(at + 1) };
}

/**
 * Handshakes: a peer configured on both sides handshakes when probed (and idle for 2 minutes)
 * or when it has a persistent keepalive and none so far. Both sides record the time.
 */
export function simulateHandshakes(host: SimulatedHost, probesInput: string, nowS: number, dir: PeerDirectory): number {
  const probed = new Set<string>();
  for (const line of probesInput.split("\n")) {
    const [iface, , key] = line.trim().split(/\s+/);
    if (iface && key) probed.add(`${iface} ${key}`);
  }
  let made = 0;
  for (const [iface, wg] of host.wg) {
    if (!host.links.get(iface)?.up) continue;
    for (const peer of wg.peers.values()) {
      const idle = peer.handshake === 0 || nowS - peer.handshake >= PROBE_IDLE_S;
      const asked = probed.has(`${iface} ${peer.publicKey}`) || (peer.persistentKeepalive !== undefined && peer.handshake === 0);
      if (!idle || !asked) continue;
      const other = dir.counterpart(host, iface, peer.publicKey);
      if (!other) continue;
      peer.handshake = nowS;
      other.handshake = nowS;
      peer.rx += 92;
      peer.tx += 148;
      other.rx += 148;
      other.tx += 92;
      made++;
    }
  }
  return made;
}

/** An `iptables -S` line as iptables-nft prints it: the comment in double quotes. */
function nftLine(rule: string): string {
  const words = splitRuleLine(rule);
  return words.map((w, i) => (words[i - 1] === "--comment" ? `"${w}"` : w)).join(" ");
}

function linksJson(host: SimulatedHost): string {
  let index = 0;
  const links = [...host.links.values()].map((l) => {
    index++;
    const flags =
      l.kind === "loopback"
        ? ["LOOPBACK", "UP", "LOWER_UP"]
        : l.kind === "wireguard"
          ? ["POINTOPOINT", "NOARP", ...(l.up ? ["UP", "LOWER_UP"] : [])]
          : ["BROADCAST", "MULTICAST", ...(l.up ? ["UP", "LOWER_UP"] : [])];
    return {
      ifindex: index,
      ifname: l.name,
      flags,
      mtu: l.mtu,
      qdisc: "noqueue",
      operstate: l.up ? (l.kind === "wireguard" || l.kind === "loopback" ? "UNKNOWN" : "UP") : "DOWN",
      linkmode: "DEFAULT",
      group: "default",
      link_type: l.kind === "wireguard" ? "none" : l.kind === "loopback" ? "loopback" : "ether",
    };
  });
  return JSON.stringify(links);
}

function routesJson(host: SimulatedHost): string {
  return JSON.stringify(
    host.routes.map((r) =>
      r.dst === "default"
        ? { dst: "default", gateway: host.uplinkAddress.replace(/\.\d+$/, ".1"), dev: r.dev, protocol: "static", flags: [] }
        : { dst: r.dst.endsWith("/32") ? r.dst.slice(0, -3) : r.dst, dev: r.dev, ...(r.kernel ? { protocol: "kernel", scope: "link" } : { scope: "link" }), flags: [] },
    ),
  );
}

function wgDump(host: SimulatedHost): string[] {
  const out: string[] = [];
  for (const [iface, wg] of host.wg) {
    out.push([iface, "(hidden)", wg.publicKey, String(wg.listenPort), "off"].join("\t"));
    for (const p of wg.peers.values()) {
      out.push(
        [
          iface,
          p.publicKey,
          "(none)",
          p.endpoint ?? "(none)",
          p.allowedIPs.length ? p.allowedIPs.join(",") : "(none)",
          String(p.handshake),
          String(p.rx),
          String(p.tx),
          p.persistentKeepalive ? String(p.persistentKeepalive) : "off",
        ].join("\t"),
      );
    }
  }
  return out;
}

function iptablesSection(host: SimulatedHost, table: string, chain: string): string[] {
  const out = [`@@dockmesh iptables ${table}:${chain}`];
  const c = host.chains.get(`${table}/${chain}`);
  if (!c) return [...out, "iptables: No chain/target/match by that name.", "rc=1"];
  out.push(c.policy ? `-P ${chain} ${c.policy}` : `-N ${chain}`);
  for (const r of c.rules) out.push(nftLine(r));
  return [...out, "rc=0"];
}

function networkJson(host: SimulatedHost, name: string): string {
  const n = host.networks.get(name);
  if (!n) return "{}";
  return JSON.stringify({
    Name: n.name,
    Id: n.id,
    Created: "2026-01-01T00:00:00.000000000Z",
    Scope: "local",
    Driver: "bridge",
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: {}, Config: n.subnet ? [{ Subnet: n.subnet, ...(n.gateway ? { Gateway: n.gateway } : {}) }] : [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Containers: Object.fromEntries(
      host.containersOn(name).map((c) => {
        const at = c.networks.get(name)!;
        const mac = ["02", "42", ...at.ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0"))].join(":");
        return [c.id, { Name: c.name, EndpointID: sha256(`${c.id} ${name}`), MacAddress: mac, IPv4Address: `${at.ip}/${n.subnet?.split("/")[1] ?? "24"}`, IPv6Address: "" }];
      }),
    ),
    Options: n.options,
    Labels: n.labels,
  });
}

/** Everything the observe script prints for these arguments, after the probes it was given. */
export function renderObservation(host: SimulatedHost, args: readonly string[], probesInput: string, nowS: number, dir: PeerDirectory): string {
  simulateHandshakes(host, probesInput, nowS, dir);
  return renderState(host, args);
}

/**
 * What a first converge's guard (hosts/fresh-guard.ts) says on this host: undefined when it
 * lets the steps run, else why not. The facts are the controller's own reading of what this
 * host's observe prints (hostFacts), so the simulation agrees with the planner by construction.
 */
export function freshGuardVerdict(host: SimulatedHost, guard: readonly string[]): string | undefined {
  // guardArgs' order (hosts/fresh-guard.ts); the simulated hosts have no ip6tables.
  const [mtu, raw, drops, dnsmasq, resolved, raw6, ...ifaces] = guard;
  if (raw6 === "yes") return "ip6tables raw table: no";
  const obs = parseObservation(renderState(host, []));
  const f = hostFacts(obs);
  const yn = (b: boolean) => (b ? "yes" : "no");
  for (const i of ifaces) if (host.links.has(i)) return `interface ${i} exists`;
  if (dnsmasq !== "-" && yn(f.resolver.dnsmasq) !== dnsmasq) return `dnsmasq installed: ${yn(f.resolver.dnsmasq)}`;
  const isResolved = f.resolver.systemdVersion !== undefined && f.resolver.resolvedStub;
  if (resolved !== "-" && yn(isResolved) !== resolved) return `systemd-resolved is the resolver: ${yn(isResolved)}`;
  if (!host.chains.has("filter/DOCKER-USER")) return "iptables chain DOCKER-USER is missing";
  if (yn(f.rawTable) !== raw) return `iptables raw table: ${yn(f.rawTable)}`;
  if (yn(f.inputDrops) !== drops) return `INPUT drops: ${yn(f.inputDrops)}`;
  if (mtu !== "-" && String(f.uplinkMtu) !== mtu) return `uplink MTU ${f.uplinkMtu}`;
  return undefined;
}

/** The observe script's output for the host as it is (no probes, no handshakes). */
function renderState(host: SimulatedHost, args: readonly string[]): string {
  const { ifaces, nets } = splitObserveArgs(args);
  const out: string[] = [];
  const sec = (s: string) => out.push(`@@dockmesh ${s}`);
  sec("tools");
  for (const c of ["docker", "wg", "wg-quick", "iptables", "ip", "systemctl"]) out.push(`${c} yes`);
  sec("system");
  out.push(`systemd ${host.systemdVersion !== undefined ? "yes" : "no"}`, "wireguard kernel", "iptables nft");
  if (host.dnsmasq) out.push("dnsmasq yes");
  if (host.systemdVersion !== undefined) out.push(`systemd-version ${host.systemdVersion}`);
  out.push(...host.nameservers.slice(0, 3).map((n) => `nameserver ${n}`));
  sec("docker-version");
  out.push(host.dockerVersion, "rc=0");
  sec("links");
  out.push(linksJson(host));
  sec("routes");
  out.push(routesJson(host));
  sec("wg");
  out.push(...wgDump(host));
  for (const [t, c] of [
    ["filter", "DOCKER-USER"],
    ["nat", "POSTROUTING"],
    ["filter", "INPUT"],
    ["filter", "FORWARD"],
    ["raw", "PREROUTING"],
    ["filter", "DOCKMESH-INPUT"],
  ] as const) {
    out.push(...iptablesSection(host, t, c));
  }
  for (const i of ifaces) {
    sec(`iface ${i}`);
    for (const path of [`/etc/wireguard/${i}.conf`, `/etc/systemd/system/wg-quick@${i}.service.d/dockmesh.conf`]) {
      const f = host.files.get(path);
      out.push(`file ${f ? sha256(f.content) : "-"} ${path}`);
      if (f?.content.startsWith("# Managed by dockmesh")) out.push(`mine ${path}`);
    }
    out.push(`enabled ${host.enabled.has(i) ? "yes" : "no"}`);
    const p = dnsPaths(i);
    for (const path of [p.conf, p.records, p.unitPath, p.resolvedDropIn]) {
      const f = host.files.get(path);
      out.push(`file ${f ? sha256(f.content) : "-"} ${path}`);
      if (f?.content.startsWith("# Managed by dockmesh")) out.push(`mine ${path}`);
    }
    if (host.dnsEnabled.has(i)) out.push("dns-enabled yes");
    if (dnsPid(host, i) !== undefined) out.push("dns-running yes");
  }
  for (const n of nets) {
    sec(`network ${n}`);
    out.push(networkJson(host, n));
  }
  sec("end");
  return out.join("\n") + "\n";
}

/** The Ready check's output (hosts/liveness.ts): probes first, then the wg dump and the asked interfaces' links. */
export function renderLiveness(host: SimulatedHost, ifaces: readonly string[], probesInput: string, nowS: number, dir: PeerDirectory): string {
  simulateHandshakes(host, probesInput, nowS, dir);
  const out = ["@@wg", ...wgDump(host), "@@links"];
  let i = 1;
  for (const name of ifaces) {
    const l = host.links.get(name);
    if (l) out.push(`${i++}: ${name}: <POINTOPOINT,NOARP${l.up ? ",UP,LOWER_UP" : ""}> mtu ${l.mtu} qdisc noqueue state ${l.up ? "UNKNOWN" : "DOWN"} mode DEFAULT group default qlen 1000`);
  }
  out.push("@@end");
  return `${out.join("\n")}\n`;
}
