// The mesh DNS resolver on one host, planned: a stock dnsmasq per mesh answering the mesh's zone
// on the bridge gateway only, its systemd unit, the firewall rules that keep it to the mesh's
// bridge, and how containers reach it there (the containers mode). Pure. The records it answers
// are written separately (controllers/dns.ts), into the directory this config watches.
import { DNS_ZONE, INTERFACE_NAME, IPV4_ADDRESS, OBJECT_NAME, UnsafeValueError } from "../api/formats.js";
import type { DnsContainersMode, ResolvedMesh } from "./defaults.js";
import { gatewayOf, parseCidr } from "./ipv4.js";

export { gatewayOf };

/** Where dnsmasq lives on Debian, Ubuntu, Fedora and Alpine alike (package dnsmasq-base, dnsmasq). */
export const DNSMASQ_PATH = "/usr/sbin/dnsmasq";

/** The host paths of one mesh's resolver (interface validated by the caller). */
export const dnsPaths = (iface: string) => ({
  dir: `/etc/dockmesh/dns/${iface}`,
  conf: `/etc/dockmesh/dns/${iface}/dnsmasq.conf`,
  /** Watched by dnsmasq (hostsdir, inotify): the records writer renames its file in here. */
  recordsDir: `/etc/dockmesh/dns/${iface}/records`,
  records: `/etc/dockmesh/dns/${iface}/records/mesh`,
  unit: `dockmesh-dns-${iface}.service`,
  unitPath: `/etc/systemd/system/dockmesh-dns-${iface}.service`,
  resolvedDropIn: `/etc/systemd/resolved.conf.d/dockmesh-${iface}.conf`,
  pidFile: `/run/dockmesh-dns-${iface}.pid`,
});

/** What the observe found that decides the containers mode. */
export interface ResolverFacts {
  /** dnsmasq is installed at DNSMASQ_PATH. */
  dnsmasq: boolean;
  /** /etc/resolv.conf points at systemd-resolved's stub listener (127.0.0.53). */
  resolvedStub: boolean;
  /** systemd's version, when systemd runs the host. */
  systemdVersion?: number;
}

export type EffectiveMode = Exclude<DnsContainersMode, "auto">;

export interface ModeDecision {
  mode: EffectiveMode;
  /** Why, from what the host showed; no timestamps, stable across resyncs. */
  reason: string;
  /** spec asked for resolved and the host cannot: the DNSReady condition says so. */
  unavailable: boolean;
}

export interface DnsPlan {
  zone: string;
  ttl: number;
  /** The bridge gateway: the only address the resolver answers on. */
  address: string;
  iface: string;
  bridge: string;
  mode: ModeDecision;
  conf: { path: string; content: string };
  unit: { name: string; path: string; content: string };
  /** Present in resolved mode: sends the zone to the resolver. */
  resolvedDropIn?: { path: string; content: string };
}

const dnsmasqMissing = "dnsmasq is not installed at /usr/sbin/dnsmasq";

/**
 * The containers mode in effect. resolved needs systemd-resolved to be the host's resolver: it
 * then sends the zone to the mesh resolver (a routing-only domain), and Docker, which gives
 * containers systemd-resolved's upstream list when /etc/resolv.conf is its stub, lists the mesh
 * resolver first for containers created from then on. Anything else is none: containers are
 * started with --dns <address>.
 */
export function decideMode(requested: DnsContainersMode, facts: ResolverFacts, address: string): ModeDecision {
  const byHand = `run containers with --dns ${address} (Compose: dns: [${address}])`;
  if (requested === "none") return { mode: "none", reason: `spec.dns.containers is none: ${byHand}`, unavailable: false };
  const why =
    facts.systemdVersion === undefined
      ? "systemd does not run the host"
      : !facts.resolvedStub
        ? `systemd ${facts.systemdVersion} runs the host, but /etc/resolv.conf does not point at systemd-resolved's stub (127.0.0.53)`
        : undefined;
  if (why === undefined) {
    return {
      mode: "resolved",
      reason: `systemd-resolved (systemd ${facts.systemdVersion}) is the host's resolver: it sends the zone to ${address}, and Docker lists ${address} first for containers created from now on`,
      unavailable: false,
    };
  }
  if (requested === "resolved") return { mode: "none", reason: `spec.dns.containers is resolved, but ${why}; until it does, ${byHand}`, unavailable: true };
  return { mode: "none", reason: `${why}: ${byHand}`, unavailable: false };
}

function check(field: string, value: string, format: RegExp, what: string): string {
  if (!format.test(value)) throw new UnsafeValueError(field, `${JSON.stringify(value)} is not ${what}; refused`);
  return value;
}

export function planDns(mesh: ResolvedMesh, subnet: string, facts: ResolverFacts): DnsPlan | undefined {
  const dns = mesh.dns;
  if (!dns) return undefined;
  const iface = check("spec.interface", mesh.interface, INTERFACE_NAME, "an interface name");
  const bridge = check("bridge", mesh.bridge, INTERFACE_NAME, "an interface name");
  const zone = check("spec.dns.zone", dns.zone, DNS_ZONE, "a DNS zone");
  // Named in the config's first line: one line, whatever the object said.
  const owner = `${check("metadata.namespace", mesh.namespace, OBJECT_NAME, "an object name")}/${check("metadata.name", mesh.name, OBJECT_NAME, "an object name")}`;
  const address = check("subnet", parseCidr(subnet) ? gatewayOf(subnet) : subnet, IPV4_ADDRESS, "an IPv4 subnet's gateway");
  const p = dnsPaths(iface);
  const mode = decideMode(dns.containers, facts, address);
  // Names outside the zone are forwarded as the host would resolve them (no recursion beyond what
  // containers already get from Docker); with systemd-resolved, to its upstream list, so a query
  // never loops back through the stub that sends the zone here.
  const upstream = mode.mode === "resolved" ? "/run/systemd/resolve/resolv.conf" : "/etc/resolv.conf";
  const conf = [
    `# Managed by dockmesh: DNS resolver of MeshNetwork ${owner}, zone ${zone}, on ${bridge}'s gateway.`,
    `listen-address=${address}`,
    // Binds the address alone, also when the bridge comes up after dnsmasq (at boot).
    "bind-dynamic",
    "port=53",
    "no-hosts",
    `hostsdir=${p.recordsDir}`,
    `local=/${zone}/`,
    `local-ttl=${Math.trunc(dns.ttl)}`,
    "domain-needed",
    `resolv-file=${upstream}`,
    `pid-file=${p.pidFile}`,
    "",
  ].join("\n");
  const unit = [
    `# Managed by dockmesh: DNS resolver of the mesh on ${iface} (dnsmasq on ${bridge}'s gateway).`,
    "[Unit]",
    `Description=dockmesh DNS resolver for ${iface}`,
    `After=docker.service wg-quick@${iface}.service`,
    "",
    "[Service]",
    `ExecStart=${DNSMASQ_PATH} --keep-in-foreground --conf-file=${p.conf}`,
    "ExecReload=/bin/kill -HUP $MAINPID",
    "Restart=on-failure",
    "RestartSec=2",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
  const plan: DnsPlan = {
    zone,
    ttl: dns.ttl,
    address,
    iface,
    bridge,
    mode,
    conf: { path: p.conf, content: conf },
    unit: { name: p.unit, path: p.unitPath, content: unit },
  };
  if (mode.mode === "resolved") {
    plan.resolvedDropIn = {
      path: p.resolvedDropIn,
      content: [`# Managed by dockmesh: ${zone} is answered by the mesh resolver on ${bridge}.`, "[Resolve]", `DNS=${address}`, `Domains=~${zone}`, ""].join("\n"),
    };
  }
  return plan;
}

/** Why the resolver cannot run on this host, or undefined. */
export const resolverMissing = (facts: ResolverFacts): string | undefined =>
  facts.dnsmasq ? undefined : `${dnsmasqMissing}; install it (Debian/Ubuntu: apt-get install dnsmasq-base; Fedora: dnf install dnsmasq; Alpine: apk add dnsmasq)`;
