// Observe: everything the controller needs to know about a host, read-only, in one SSH round
// trip. The script is static text; interface and network names travel as quoted arguments.
// WireGuard private keys are blanked on the host before anything is sent back.
import { OutputTooLargeError, type HostSession } from "./ssh.js";
import { shJoin } from "../mesh/shell.js";
import { DEFAULT_UPLINK_MTU } from "../mesh/defaults.js";
import type { ResolverFacts } from "../mesh/dns-plan.js";
import { HostError } from "./errors.js";
import { hostText } from "./host-text.js";
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
  isPolicy,
  isRuleLine,
  isSha256,
  isWgKey,
  port,
  routeDestination,
  stringMap,
} from "./observe-values.js";

/**
 * Docker through its API on the local socket when curl is there: the docker CLI, a Go program,
 * costs 80-100 ms of CPU a call, curl about a third of that (on a lab host the whole observe went
 * from 290 to 200 ms of CPU). The CLI stays the fallback, and the only path whenever it may be
 * pointed at another daemon (DOCKER_HOST other than a unix socket, a context) or the API gives
 * another answer than 200 or 404. The version and every asked network come from ONE curl (one
 * process, one connection: curl is ~15 ms of CPU a run, most of it starting up).
 */
const DOCKER_API = String.raw`
dsock=@{DOCKER_HOST:-unix:///var/run/docker.sock}
case "$dsock" in unix://*) dsock=@{dsock#unix://} ;; *) dsock= ;; esac
if [ -n "$dsock" ] && { [ -n "@{DOCKER_CONTEXT:-}" ] || ! [ -S "$dsock" ] || ! command -v curl >/dev/null 2>&1; }; then dsock=; fi
if [ -n "$dsock" ] && [ -f "@{HOME:-/root}/.docker/config.json" ] && grep -q currentContext "@{HOME:-/root}/.docker/config.json" 2>/dev/null; then dsock=; fi
`;

/**
 * Every WireGuard interface and peer in one `wg show` (handshake, bytes, endpoint, allowed IPs),
 * with the interfaces' private keys blanked on the host before anything is sent back.
 */
export const WG_DUMP = String.raw`wg show all dump 2>/dev/null | awk 'BEGIN { FS = OFS = "\t" } NF == 5 { $2 = "(hidden)" } { print }'`;

/**
 * Probes idle peers, then nothing else: shared by the observe and the Ready check
 * (hosts/liveness.ts). Reads "iface source publickey address [w]" lines on stdin, after an
 * optional "@wait N" line: the peers marked w (being configured at this moment, as the
 * controller knows) are waited for after the probes, up to N tenths of a second, until each has
 * handshaken. With no line at all (a first converge, a host without peers) it starts no process.
 */
export const PROBE_IDLE_PEERS = String.raw`
# Probe peers without a recent handshake: one ping from our bridge's address to the peer's goes
# through the tunnel and makes WireGuard handshake, so handshake state reflects reachability even
# on idle links. Only peers idle for 2 minutes are probed; a peer the interface does not have
# (yet) is not: it cannot handshake. Without ping (minimal images), bash's /dev/udp sends one
# datagram instead, which is enough to make WireGuard handshake.
probe() {
  if command -v ping >/dev/null 2>&1; then ping -c 1 -W 1 -I "$1" "$2" >/dev/null 2>&1
  elif command -v bash >/dev/null 2>&1; then bash -c 'printf x > "/dev/udp/$0/9"' "$2" 2>/dev/null; sleep 1
  fi
}
# One "wg show" for every interface and peer (not one per peer: a host with a thousand peers
# would run a thousand, each printing a thousand lines), joined with the candidates in awk.
wait_for=0
if IFS= read -r first; then
  case "$first" in
    "@wait "*) wait_for=@{first#@wait }; case "$wait_for" in '' | *[!0-9]*) wait_for=0 ;; esac; IFS= read -r first || first= ;;
  esac
fi
if [ -n "@{first:-}" ]; then
  now=$(date +%s)
  waiting=$({ wg show all latest-handshakes 2>/dev/null | sed 's/^/h /'; printf 'p %s\n' "$first"; sed 's/^/p /'; } |
    awk -v now="$now" '$1 == "h" { t[$2 " " $3] = $4; next } $1 == "p" && ($2 " " $4) in t && now - t[$2 " " $4] >= 120 { print $2, $4, $3, $5, $6 }' |
    { while read -r pi pk pb pa pw; do probe "$pb" "$pa" & if [ "$pw" = w ]; then echo "$pi $pk"; fi; done; wait; })
  # Peers being configured right now come up within seconds, and their own probes make the
  # handshake: wait for them here rather than report them missing and look again later.
  n=0
  while [ -n "$waiting" ] && [ "$n" -lt "$wait_for" ]; do
    if wg show all latest-handshakes 2>/dev/null | awk -v want="$waiting" 'BEGIN { k = split(want, l, "\n"); for (i = 1; i <= k; i++) w[l[i]] = 1 } ($1 " " $2) in w && $3 > 0 { ok[$1 " " $2] = 1 } END { for (x in w) if (!(x in ok)) exit 1 }'; then break; fi
    sleep 0.1; n=$((n + 1))
  done
fi
`.replaceAll("@{", "${");

/**
 * The chains the observe reads, as "table:CHAIN" (the section names): one `iptables-save` per
 * table instead of an `iptables -S` per chain, turned into the same sections by one awk.
 */
export const OBSERVED_CHAINS = ["filter:DOCKER-USER", "nat:POSTROUTING", "filter:INPUT", "filter:FORWARD", "raw:PREROUTING", "filter:DOCKMESH-INPUT"] as const;

/**
 * iptables-save's output for the observed chains, as `iptables -S` sections: "-P CHAIN POLICY"
 * (built-in) or "-N CHAIN" (user chain), its rules, "rc=0"; "rc=1" when the chain is not there.
 * The backend from the save header ("(nf_tables)"), else from `iptables -V`. A table iptables
 * cannot open prints nothing, so its chains are missing, as `iptables -t T -S C` would fail.
 */
const IPTABLES_SECTIONS = String.raw`
ipt_sections() {
  awk -v want="${OBSERVED_CHAINS.join(" ")}" '
    BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) wanted[w[i]] = 1 }
    /^# Generated by / { hdr = 1; if ($0 ~ /nf_tables/) nft = 1; next }
    /^\*/ { t = substr($0, 2); next }
    /^:/ { c = substr($1, 2); k = t ":" c; if (k in wanted) { decl[k] = ($2 == "-") ? "-N " c : "-P " c " " $2; body[k] = "" } next }
    /^-A / { k = t ":" $2; if (k in decl) body[k] = body[k] $0 "\n"; next }
    END {
      if (!hdr) { v = ""; "iptables -V 2>/dev/null" | getline v; nft = v ~ /nf_tables/ }
      print "@@dockmesh system"; print (nft ? "iptables nft" : "iptables legacy")
      for (i = 1; i <= n; i++) {
        k = w[i]; print "@@dockmesh iptables " k
        if (k in decl) { print decl[k]; printf "%s", body[k]; print "rc=0" } else print "rc=1"
      }
    }'
}
if command -v iptables-save >/dev/null 2>&1; then
  { iptables-save -t filter; iptables-save -t nat; iptables-save -t raw; } 2>/dev/null | ipt_sections
else
  sec system
  if iptables -V 2>/dev/null | grep -q nf_tables; then echo "iptables nft"; else echo "iptables legacy"; fi
  for k in ${OBSERVED_CHAINS.join(" ")}; do sec iptables "$k"; iptables -w -t "@{k%%:*}" -S "@{k#*:}" 2>&1; echo "rc=$?"; done
fi
`;

/**
 * A file's "file HASH PATH" line (or "file - PATH" when missing), and "mine PATH" when it starts
 * with our "# Managed by dockmesh" line: one process (sha256sum) per file that exists.
 */
const FILE_LINE = String.raw`
file_line() {
  if [ -f "$1" ]; then
    h=$(sha256sum < "$1"); echo "file @{h%% *} $1"
    # Ours: our files start with this line (teardown touches no other interface's files or unit).
    first=; IFS= read -r first < "$1" 2>/dev/null || :
    case "$first" in "# Managed by dockmesh"*) echo "mine $1" ;; esac
  else
    echo "file - $1"
  fi
}
`;

/**
 * The script, written with "@{" for the shell's "${" (a template literal cannot hold "${").
 * Arguments: interface names, "--", Docker network names. About a dozen processes on a host
 * without our interfaces (iptables-save ×3, awk ×2, ip ×2, wg, curl), a few more per interface
 * of ours (sha256sum per file) and for peers to probe.
 */
export const OBSERVE_SCRIPT = String.raw`
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
nl='
'
sec() { printf '@@dockmesh %s\n' "$*"; }
sec tools
for c in docker wg wg-quick iptables ip systemctl; do if command -v "$c" >/dev/null 2>&1; then echo "$c yes"; else echo "$c no"; fi; done
sec system
if [ -d /run/systemd/system ]; then echo "systemd yes"; else echo "systemd no"; fi
if [ -d /sys/module/wireguard ]; then echo "wireguard kernel"; else echo "wireguard userspace"; fi
# The mesh DNS resolver: dnsmasq, and whether systemd-resolved is the host's resolver.
if [ -x /usr/sbin/dnsmasq ]; then echo "dnsmasq yes"; fi
if [ -d /run/systemd/system ]; then
  v=$(systemctl --version 2>/dev/null); v=@{v%%"$nl"*}
  case "$v" in "systemd "*) v=@{v#systemd }; echo "systemd-version @{v%% *}" ;; esac
fi
if [ -r /etc/resolv.conf ]; then
  ns=0
  while read -r k v rest; do if [ "$k" = nameserver ] && [ "$ns" -lt 3 ]; then echo "nameserver $v"; ns=$((ns + 1)); fi; done < /etc/resolv.conf
fi
sec links
ip -j link show 2>/dev/null || echo '[]'
sec routes
ip -j route show table main 2>/dev/null || echo '[]'
${PROBE_IDLE_PEERS}
sec wg
${WG_DUMP}
${IPTABLES_SECTIONS}
${FILE_LINE}
m=if
for i in "$@"; do
  if [ "$i" = -- ]; then m=net; continue; fi
  [ "$m" = if ] || continue
  sec iface "$i"
  for f in "/etc/wireguard/$i.conf" "/etc/systemd/system/wg-quick@$i.service.d/dockmesh.conf"; do file_line "$f"; done
  if [ -L "/etc/systemd/system/multi-user.target.wants/wg-quick@$i.service" ]; then echo "enabled yes"; else echo "enabled no"; fi
  for f in "/etc/dockmesh/dns/$i/dnsmasq.conf" "/etc/dockmesh/dns/$i/records/mesh" "/etc/systemd/system/dockmesh-dns-$i.service" "/etc/systemd/resolved.conf.d/dockmesh-$i.conf"; do file_line "$f"; done
  if [ -L "/etc/systemd/system/multi-user.target.wants/dockmesh-dns-$i.service" ]; then echo "dns-enabled yes"; fi
  # The resolver runs when its pid file names a dnsmasq started with this mesh's config.
  if [ -f "/run/dockmesh-dns-$i.pid" ]; then
    pid=$(head -c 12 "/run/dockmesh-dns-$i.pid" 2>/dev/null)
    case "$pid" in '' | *[!0-9]*) ;; *) if grep -qaF -- "/etc/dockmesh/dns/$i/dnsmasq.conf" "/proc/$pid/cmdline" 2>/dev/null; then echo "dns-running yes"; fi ;; esac
  fi
done
${DOCKER_API}
# The API's answers, each followed by "@@http CODE URL": the version and networks it answered
# (200, or 404: no such network) are printed; anything else is asked of the CLI below.
got=
if [ -n "$dsock" ]; then
  urls=; m=if
  for n in "$@"; do
    if [ "$n" = -- ]; then m=net; continue; fi
    [ "$m" = net ] || continue
    case "$n" in .* | *[!a-zA-Z0-9_.-]*) ;; *) urls="$urls http://docker/networks/$n" ;; esac
  done
  body=
  while IFS= read -r l; do
    case "$l" in
      "@@http "*)
        code=@{l#@@http }; url=@{code#* }; code=@{code%% *}
        case "$code:$url" in
          200:http://docker/version) sec docker-version; printf 'api %s\n' "$body"; got="$got /version" ;;
          200:http://docker/networks/*) n=@{url#http://docker/networks/}; sec network "$n"; printf '%s\n' "$body"; got="$got $n" ;;
          404:http://docker/networks/*) n=@{url#http://docker/networks/}; sec network "$n"; echo '{}'; got="$got $n" ;;
        esac
        body= ;;
      *) body=$body$l ;;
    esac
  done <<EOF
$(curl -s --max-time 20 --unix-socket "$dsock" -w '\n@@http %{http_code} %{url_effective}\n' http://docker/version $urls 2>/dev/null)
EOF
fi
case "$got " in *" /version "*) ;; *) sec docker-version; docker version --format '{{.Server.Version}}' 2>&1; echo "rc=$?" ;; esac
m=if
for n in "$@"; do
  if [ "$n" = -- ]; then m=net; continue; fi
  [ "$m" = net ] || continue
  case "$got " in *" $n "*) continue ;; esac
  sec network "$n"
  docker network inspect --format '{{json .}}' "$n" 2>/dev/null || echo '{}'
done
sec end
`.replaceAll("@{", "${");

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

/** A chain the observe script lists, as its section names it ("filter:DOCKER-USER"). */
const CHAIN_SECTION = /^(filter|nat|raw|mangle):[A-Za-z0-9_-]{1,28}$/;

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
  const refuse = (v: string) =>
    new Error(`the Docker version the host reported is not a version like 27.5.1 (got "${hostText(v, 40)}", ${v.length} characters); check the host's docker`);
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
      if (dst) obs.routes.push({ dst, dev: r.dev });
    }
  }
}

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
        allowedIPs: (f[4] ?? "").split(",").filter(isCidr).sort(),
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
  // Ours are IPv4 networks: a dual-stack network's IPv6 subnet may come first.
  const subnet = configs.map((c) => c?.Subnet).find(isIpv4Cidr);
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
        parseRoutes(body, obs);
        break;
      case "wg":
        obs.wg = parseWgDump(body);
        break;
      case "iptables": {
        if (!CHAIN_SECTION.test(s.arg)) break;
        const rc = body.at(-1);
        const key = s.arg.replace(":", "/");
        obs.iptables.set(key, rc === "rc=0" ? body.slice(0, -1).filter((l) => l.startsWith("-A ") && isRuleLine(l)).map(canonicalRule) : undefined);
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

/** The probes as PROBE_IDLE_PEERS reads them on stdin: "iface source publickey address" lines. */
export const probeInput = (probes: readonly Probe[]): string =>
  (probes.some((p) => p.wait) ? `@wait ${PROBE_WAIT_TENTHS}\n` : "") + probes.map((p) => `${p.iface} ${p.source} ${p.publicKey} ${p.address}${p.wait ? " w" : ""}\n`).join("");

/** Runs the observe script for the given interfaces and Docker networks. One round trip. */
export async function observeHost(session: HostSession, ifaces: readonly string[], networks: readonly string[], probes: readonly Probe[] = []): Promise<HostObservation> {
  const input = probeInput(probes);
  let res;
  try {
    res = await session.exec(OBSERVE_SCRIPT, { args: [...ifaces, "--", ...networks], input, timeoutMs: 60_000, ...OBSERVE_LIMITS });
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

/** What the planner needs to know about the host. */
export function hostFacts(obs: HostObservation): { uplinkMtu: number; inputDrops: boolean; rawTable: boolean; systemd: boolean; resolver: ResolverFacts } {
  const input = obs.iptables.get("filter/INPUT") ?? [];
  // A catch-all DROP/REJECT (no match before the verdict) drops new flows just like a DROP policy.
  const catchAll = input.some((l) => /^-A INPUT -j (DROP|REJECT)\b/.test(l));
  return {
    uplinkMtu: uplinkMtu(obs) ?? DEFAULT_UPLINK_MTU,
    inputDrops: obs.policies.get("filter/INPUT") === "DROP" || catchAll,
    rawTable: obs.iptables.get("raw/PREROUTING") !== undefined,
    systemd: obs.systemd,
    resolver: obs.resolver,
  };
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
