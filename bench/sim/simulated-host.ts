// One simulated Docker host: the state dockmesh reads and changes (links, routes, WireGuard
// interfaces, iptables chains, Docker networks and containers, files, enabled units, processes),
// kept in memory, and the commands the apply script's functions amount to, acting on it. No real
// network, no kernel: this is a simulation for benchmarks, answering as a Debian 12 host with
// Docker 27, systemd 252 and dnsmasq-base would (mesh DNS's resolver: bench/sim/simulated-resolver.ts).
import { randomBytes } from "node:crypto";
import { publicKeyOf } from "../../mesh/keys.js";
import { shJoin } from "../../mesh/shell.js";
import { parseHookLine, parseWgQuickConfig, type WgQuickConfig } from "./simulated-shell.js";

export interface SimulatedLink {
  name: string;
  kind: "loopback" | "ether" | "bridge" | "wireguard";
  up: boolean;
  mtu: number;
}

export interface SimulatedRoute {
  dst: string;
  dev: string;
  kernel?: boolean;
}

export interface SimulatedPeer {
  publicKey: string;
  endpoint?: string;
  allowedIPs: string[];
  persistentKeepalive?: number;
  /** Seconds since the epoch of the latest handshake; 0 = never. */
  handshake: number;
  rx: number;
  tx: number;
}

export interface SimulatedWireGuard {
  privateKey: string;
  publicKey: string;
  listenPort: number;
  /** By public key, in the order wg(8) would list them (insertion). */
  peers: Map<string, SimulatedPeer>;
}

export interface SimulatedDockerNetwork {
  id: string;
  name: string;
  subnet?: string;
  gateway?: string;
  options: Record<string, string>;
  labels: Record<string, string>;
}

/** A running container (bench/sim simulates containers only for mesh DNS's records). */
export interface SimulatedContainer {
  /** 64 hex digits. */
  id: string;
  /** Without Docker's leading slash. */
  name: string;
  /** The com.docker.compose.service label, when it has one. */
  service?: string;
  /** Docker network name → its address there and the aliases given for it. */
  networks: Map<string, { ip: string; aliases: string[] }>;
}

/** A process the simulation runs (only mesh DNS's dnsmasq): its argv as /proc/PID/cmdline has it. */
export interface SimulatedProcess {
  pid: number;
  argv: string[];
  /** The systemd unit that started it; undefined when started from a shell (it daemonised). */
  unit?: string;
}

/** One line of `docker events --format '{{.Type}} {{.Action}}'`. */
export type DockerEventListener = (type: "container" | "network", action: string) => void;

export interface SimulatedChain {
  /** Built-in chains have a policy; user chains do not. */
  policy?: string;
  /** Rules in order, each as `-A CHAIN word…` with POSIX quoting (the canonical form). */
  rules: string[];
}

/** A command's result as a shell would give it. */
export interface CommandResult {
  code: number;
  stdout?: string;
  stderr?: string;
}

const OK: CommandResult = { code: 0 };
const fail = (stderr: string, code = 1): CommandResult => ({ code, stderr: stderr.endsWith("\n") ? stderr : `${stderr}\n` });

/** What happens to a host's WireGuard keys, so the fleet can index hosts by public key. */
export interface WireGuardKeyListener {
  keyAdded(publicKey: string, host: SimulatedHost, iface: string): void;
  keyRemoved(publicKey: string, host: SimulatedHost, iface: string): void;
}

export interface SimulatedHostOptions {
  name: string;
  /** The uplink's address, for the default route and eth0's subnet. */
  uplinkAddress?: string;
  uplinkMtu?: number;
  dockerVersion?: string;
  keys?: WireGuardKeyListener;
  /** dnsmasq at /usr/sbin/dnsmasq (Debian's dnsmasq-base; default true). */
  dnsmasq?: boolean;
  /** systemd runs the host (default true)… */
  systemd?: boolean;
  /** …at this version (default 252, Debian 12's). */
  systemdVersion?: number;
  /**
   * The nameservers of /etc/resolv.conf (default: the uplink's gateway, as DHCP leaves it on a
   * Debian host without systemd-resolved; ["127.0.0.53"] is a host whose resolver it is).
   */
  nameservers?: string[];
}

export class SimulatedHost {
  readonly name: string;
  readonly dockerVersion: string;
  readonly links = new Map<string, SimulatedLink>();
  routes: SimulatedRoute[] = [];
  readonly wg = new Map<string, SimulatedWireGuard>();
  /** "table/CHAIN" → chain. */
  readonly chains = new Map<string, SimulatedChain>();
  readonly networks = new Map<string, SimulatedDockerNetwork>();
  readonly files = new Map<string, { content: string; mode: string }>();
  /** Interfaces whose wg-quick@ unit is enabled (the multi-user.target.wants link exists). */
  readonly enabled = new Set<string>();
  /** Interfaces whose dockmesh-dns-IF.service is enabled (its multi-user.target.wants link exists). */
  readonly dnsEnabled = new Set<string>();
  /** Units systemd has loaded: name → the unit file's text when loaded (daemon-reload reloads them). */
  readonly loadedUnits = new Map<string, string>();
  readonly processes = new Map<number, SimulatedProcess>();
  /** Running containers, by id. */
  readonly containers = new Map<string, SimulatedContainer>();
  readonly uplinkAddress: string;
  readonly dnsmasq: boolean;
  /** systemd's version; undefined when systemd does not run the host. */
  readonly systemdVersion: number | undefined;
  readonly nameservers: string[];
  private nextPid = 4100;
  private readonly keys: WireGuardKeyListener | undefined;
  private readonly dockerListeners = new Set<DockerEventListener>();

  constructor(opts: SimulatedHostOptions) {
    this.name = opts.name;
    this.dockerVersion = opts.dockerVersion ?? "27.5.1";
    this.keys = opts.keys;
    this.uplinkAddress = opts.uplinkAddress ?? "192.0.2.10";
    this.dnsmasq = opts.dnsmasq ?? true;
    this.systemdVersion = (opts.systemd ?? true) ? (opts.systemdVersion ?? 252) : undefined;
    this.nameservers = opts.nameservers ?? [this.uplinkAddress.replace(/\.\d+$/, ".1")];
    const net = this.uplinkAddress.split(".").slice(0, 3).join(".");
    this.links.set("lo", { name: "lo", kind: "loopback", up: true, mtu: 65536 });
    this.links.set("eth0", { name: "eth0", kind: "ether", up: true, mtu: opts.uplinkMtu ?? 1500 });
    this.links.set("docker0", { name: "docker0", kind: "bridge", up: true, mtu: 1500 });
    this.routes.push({ dst: "default", dev: "eth0" }, { dst: `${net}.0/24`, dev: "eth0", kernel: true }, { dst: "172.17.0.0/16", dev: "docker0", kernel: true });
    // iptables as Docker 27 leaves it (iptables-nft): DOCKER-USER ends in RETURN, docker0 masqueraded.
    this.chains.set("filter/INPUT", { policy: "ACCEPT", rules: [] });
    this.chains.set("filter/FORWARD", { policy: "DROP", rules: ["-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD"] });
    this.chains.set("filter/DOCKER-USER", { rules: ["-A DOCKER-USER -j RETURN"] });
    this.chains.set("filter/DOCKER-FORWARD", { rules: ["-A DOCKER-FORWARD -i docker0 -j ACCEPT"] });
    this.chains.set("nat/POSTROUTING", { policy: "ACCEPT", rules: ["-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"] });
    this.chains.set("raw/PREROUTING", { policy: "ACCEPT", rules: [] });
  }

  // --- iptables ---------------------------------------------------------------------

  /** `iptables [-w] -t TABLE OP CHAIN [rule…]` for OP in -C -I -A -D -N -F -X. */
  iptables(argv: readonly string[]): CommandResult {
    const words = argv.filter((w) => w !== "-w");
    let table = "filter";
    if (words[0] === "-t") {
      table = words[1] ?? "";
      words.splice(0, 2);
    }
    const [op, chain, ...rule] = words;
    if (!op || !chain) return fail("iptables v1.8.9 (nf_tables): no command specified", 2);
    if (!["filter", "nat", "raw", "mangle"].includes(table)) return fail(`iptables v1.8.9 (nf_tables): can't initialize iptables table '${table}': Table does not exist`, 3);
    const key = `${table}/${chain}`;
    const c = this.chains.get(key);
    const noChain = () => fail("iptables: No chain/target/match by that name.");
    const line = shJoin(["-A", chain, ...rule]);
    switch (op) {
      case "-N":
        if (c) return fail("iptables: Chain already exists.");
        this.chains.set(key, { rules: [] });
        return OK;
      case "-F":
        if (!c) return noChain();
        c.rules = [];
        return OK;
      case "-X":
        if (!c) return noChain();
        if (c.policy) return fail("iptables v1.8.9 (nf_tables): Could not delete built-in chain");
        if (c.rules.length) return fail("iptables v1.8.9 (nf_tables): CHAIN_USER_DEL failed (Device or resource busy): chain " + chain);
        this.chains.delete(key);
        return OK;
      case "-C":
        if (!c) return noChain();
        return c.rules.includes(line) ? OK : fail("iptables: Bad rule (does a matching rule exist in that chain?).");
      case "-I":
      case "-A": {
        if (!c) return noChain();
        const target = rule[rule.indexOf("-j") + 1];
        if (target?.startsWith("DOCKMESH-") && !this.chains.has(`${table}/${target}`)) return fail(`iptables v1.8.9 (nf_tables): Chain '${target}' does not exist`, 2);
        if (op === "-I") c.rules.unshift(line);
        else c.rules.push(line);
        return OK;
      }
      case "-D": {
        if (!c) return noChain();
        const at = c.rules.indexOf(line);
        if (at < 0) return fail("iptables: Bad rule (does a matching rule exist in that chain?).");
        c.rules.splice(at, 1);
        return OK;
      }
      default:
        return fail(`iptables v1.8.9 (nf_tables): unknown option "${op}"`, 2);
    }
  }

  /** A wg-quick PostUp/PostDown line: alternatives tried in order, iptables and true only. */
  private hook(line: string): CommandResult {
    let last: CommandResult = OK;
    for (const argv of parseHookLine(line)) {
      if (argv[0] === "true") return OK;
      if (argv[0] !== "iptables") return fail(`sh: 1: ${argv[0] ?? ""}: not found`, 127);
      last = this.iptables(argv.slice(1));
      if (last.code === 0) return last;
    }
    return last;
  }

  // --- Docker -----------------------------------------------------------------------

  /** `docker network create ARGS NAME` unless NAME exists (the apply script's ensure_network). */
  ensureNetwork(name: string, argv: readonly string[]): CommandResult {
    if (this.networks.has(name)) return OK;
    const options: Record<string, string> = {};
    const labels: Record<string, string> = {};
    let subnet: string | undefined;
    for (let i = 0; i < argv.length; i++) {
      const flag = argv[i]!;
      const value = argv[i + 1] ?? "";
      const kv = (): [string, string] => [value.slice(0, value.indexOf("=")), value.slice(value.indexOf("=") + 1)];
      if (flag === "--driver") {
        if (value !== "bridge") return fail(`Error response from daemon: plugin "${value}" not found`);
      } else if (flag === "--subnet") subnet = value;
      else if (flag === "--label") labels[kv()[0]] = kv()[1];
      else if (flag === "-o" || flag === "--opt") options[kv()[0]] = kv()[1];
      else return fail(`unknown flag: ${flag}`, 125);
      i++;
    }
    if (subnet && [...this.networks.values()].some((n) => n.subnet === subnet)) return fail("Error response from daemon: Pool overlaps with other one on this address space");
    const id = randomBytes(32).toString("hex");
    const bridge = options["com.docker.network.bridge.name"] ?? `br-${id.slice(0, 12)}`;
    if (this.links.has(bridge)) return fail(`Error response from daemon: bridge ${bridge} already exists`);
    const gateway = subnet ? subnet.replace(/\.\d+\/\d+$/, (m) => `.${Number(m.slice(1, m.indexOf("/"))) + 1}`) : undefined;
    this.networks.set(name, { id, name, ...(subnet ? { subnet } : {}), ...(gateway ? { gateway } : {}), options, labels });
    this.links.set(bridge, { name: bridge, kind: "bridge", up: true, mtu: Number(options["com.docker.network.driver.mtu"] ?? 1500) });
    if (subnet) {
      this.routes.push({ dst: subnet, dev: bridge, kernel: true });
      this.chains.get("nat/POSTROUTING")?.rules.push(shJoin(["-A", "POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"]));
    }
    return OK;
  }

  removeNetwork(name: string): CommandResult {
    const n = this.networks.get(name);
    if (!n) return OK;
    // remove_network disconnects its containers first (docker network disconnect -f).
    for (const c of this.containersOn(name)) {
      c.networks.delete(name);
      this.dockerEvent("network", "disconnect");
    }
    const bridge = n.options["com.docker.network.bridge.name"] ?? `br-${n.id.slice(0, 12)}`;
    this.networks.delete(name);
    this.links.delete(bridge);
    this.routes = this.routes.filter((r) => r.dev !== bridge);
    const nat = this.chains.get("nat/POSTROUTING");
    if (nat) nat.rules = nat.rules.filter((r) => !r.includes(` ${bridge} -j MASQUERADE`));
    return OK;
  }

  /** The running containers attached to a network, by id (the order of Docker's .Containers map in a template). */
  containersOn(network: string): SimulatedContainer[] {
    return [...this.containers.values()].filter((c) => c.networks.has(network)).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /**
   * `docker run -d --name NAME --network NETWORK [--network-alias A…]` (a Compose service's
   * container when `service` is given): the next free address of the network's subnet, and the
   * events Docker gives (network connect, container start). For benchmarks and tests of mesh DNS.
   */
  runContainer(name: string, network: string, opts: { service?: string; aliases?: string[] } = {}): SimulatedContainer {
    const n = this.networks.get(network);
    if (!n?.subnet) throw new Error(`simulated host ${this.name}: no network ${network} with a subnet`);
    if ([...this.containers.values()].some((c) => c.name === name)) throw new Error(`simulated host ${this.name}: a container named ${name} exists`);
    const [base, prefix] = n.subnet.split("/") as [string, string];
    const start = base.split(".").reduce((a, o) => a * 256 + Number(o), 0);
    const used = new Set([n.gateway, ...this.containersOn(network).map((c) => c.networks.get(network)!.ip)]);
    const size = 2 ** (32 - Number(prefix));
    let ip: string | undefined;
    for (let i = 1; i < size - 1 && !ip; i++) {
      const a = start + i;
      const text = [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join(".");
      if (!used.has(text)) ip = text;
    }
    if (!ip) throw new Error(`simulated host ${this.name}: network ${network} is full`);
    const c: SimulatedContainer = {
      id: randomBytes(32).toString("hex"),
      name,
      ...(opts.service ? { service: opts.service } : {}),
      networks: new Map([[network, { ip, aliases: [...(opts.aliases ?? [])] }]]),
    };
    this.containers.set(c.id, c);
    this.dockerEvent("network", "connect");
    this.dockerEvent("container", "start");
    return c;
  }

  /** `docker rm -f NAME`: die, network disconnect (per network), destroy. False when there is none. */
  removeContainer(name: string): boolean {
    const c = [...this.containers.values()].find((x) => x.name === name);
    if (!c) return false;
    this.containers.delete(c.id);
    this.dockerEvent("container", "die");
    for (let i = 0; i < c.networks.size; i++) this.dockerEvent("network", "disconnect");
    this.dockerEvent("container", "destroy");
    return true;
  }

  /** Follows Docker's events (what `docker events` prints) until the returned function is called. */
  onDockerEvent(listener: DockerEventListener): () => void {
    this.dockerListeners.add(listener);
    return () => this.dockerListeners.delete(listener);
  }

  private dockerEvent(type: "container" | "network", action: string): void {
    for (const l of this.dockerListeners) l(type, action);
  }

  // --- processes ----------------------------------------------------------------------

  /** Starts a process; its pid. */
  spawn(argv: readonly string[], unit?: string): number {
    const pid = this.nextPid++;
    this.processes.set(pid, { pid, argv: [...argv], ...(unit ? { unit } : {}) });
    return pid;
  }

  /** `kill PID` (SIGTERM: the processes simulated all exit on it). False when there is no such process. */
  kill(pid: number): boolean {
    return this.processes.delete(pid);
  }

  // --- files and units --------------------------------------------------------------

  writeFile(path: string, content: string, mode: string): CommandResult {
    this.files.set(path, { content, mode });
    return OK;
  }

  removeFile(path: string): CommandResult {
    this.files.delete(path);
    return OK;
  }

  // --- links and routes -------------------------------------------------------------

  private noDevice(dev: string): CommandResult {
    return fail(`Cannot find device "${dev}"`);
  }

  linkUp(dev: string): CommandResult {
    const l = this.links.get(dev);
    if (!l) return this.noDevice(dev);
    l.up = true;
    return OK;
  }

  linkMtu(dev: string, mtu: number): CommandResult {
    const l = this.links.get(dev);
    if (!l) return this.noDevice(dev);
    l.mtu = mtu;
    return OK;
  }

  routeReplace(dst: string, dev: string): CommandResult {
    if (!this.links.has(dev)) return this.noDevice(dev);
    const r = this.routes.find((x) => x.dst === dst);
    if (r) {
      r.dev = dev;
      delete r.kernel;
    } else this.routes.push({ dst, dev });
    return OK;
  }

  routeDel(dst: string, dev: string): CommandResult {
    this.routes = this.routes.filter((r) => !(r.dst === dst && r.dev === dev));
    return OK;
  }

  // --- WireGuard --------------------------------------------------------------------

  private config(iface: string): WgQuickConfig | CommandResult {
    const path = `/etc/wireguard/${iface}.conf`;
    const f = this.files.get(path);
    if (!f) return fail(`wg-quick: \`${path}' does not exist`);
    try {
      return parseWgQuickConfig(f.content);
    } catch (err) {
      return fail((err as Error).message);
    }
  }

  /** `wg-quick up IFACE`: the link, keys and peers, routes to every AllowedIPs, then PostUp. */
  wgQuickUp(iface: string): CommandResult {
    if (this.links.has(iface)) return fail(`wg-quick: \`${iface}' already exists`);
    const cfg = this.config(iface);
    if ("code" in cfg) return cfg;
    this.links.set(iface, { name: iface, kind: "wireguard", up: true, mtu: cfg.mtu ?? 1420 });
    this.setWireGuard(iface, cfg);
    for (const p of cfg.peers) for (const dst of p.allowedIPs) this.routeReplace(dst, iface);
    const out: string[] = [`[#] ip link add ${iface} type wireguard`];
    for (const h of cfg.postUp) {
      out.push(`[#] ${h}`);
      const r = this.hook(h);
      if (r.code !== 0) {
        this.wgQuickDown(iface, false);
        return { code: r.code, stdout: out.join("\n") + "\n", ...(r.stderr ? { stderr: r.stderr } : {}) };
      }
    }
    return { code: 0, stdout: out.join("\n") + "\n" };
  }

  /** `wg-quick down IFACE` (PostDown, then the link goes with its routes); or `ip link del` without a config. */
  wgQuickDown(iface: string, hooks = true): CommandResult {
    if (!this.links.has(iface)) return OK;
    const cfg = hooks ? this.config(iface) : undefined;
    if (cfg && !("code" in cfg)) for (const h of cfg.postDown) this.hook(h);
    this.links.delete(iface);
    this.routes = this.routes.filter((r) => r.dev !== iface);
    const live = this.wg.get(iface);
    if (live) this.keys?.keyRemoved(live.publicKey, this, iface);
    this.wg.delete(iface);
    return OK;
  }

  /** `wg syncconf IFACE <(wg-quick strip IFACE)`: keys, port and peers as in the file; handshakes kept. */
  wgSync(iface: string): CommandResult {
    if (!this.links.has(iface)) return fail("Unable to modify interface: No such device");
    const cfg = this.config(iface);
    if ("code" in cfg) return cfg;
    this.setWireGuard(iface, cfg);
    return OK;
  }

  private setWireGuard(iface: string, cfg: WgQuickConfig): void {
    const before = this.wg.get(iface);
    let publicKey = "";
    try {
      publicKey = cfg.privateKey ? publicKeyOf(cfg.privateKey) : "";
    } catch {
      publicKey = "";
    }
    const peers = new Map<string, SimulatedPeer>();
    for (const p of cfg.peers) {
      const old = before?.peers.get(p.publicKey);
      peers.set(p.publicKey, {
        publicKey: p.publicKey,
        ...(p.endpoint ? { endpoint: p.endpoint } : old?.endpoint ? { endpoint: old.endpoint } : {}),
        allowedIPs: [...p.allowedIPs],
        ...(p.persistentKeepalive ? { persistentKeepalive: p.persistentKeepalive } : {}),
        handshake: old?.handshake ?? 0,
        rx: old?.rx ?? 0,
        tx: old?.tx ?? 0,
      });
    }
    if (before && before.publicKey !== publicKey) this.keys?.keyRemoved(before.publicKey, this, iface);
    this.wg.set(iface, { privateKey: cfg.privateKey ?? "", publicKey, listenPort: cfg.listenPort ?? 0, peers });
    if (publicKey && before?.publicKey !== publicKey) this.keys?.keyAdded(publicKey, this, iface);
  }

  // --- drift, for tests and benchmarks --------------------------------------------

  /** Deletes one rule of ours behind dockmesh's back (what `iptables -D` by hand does). */
  dropFirstRule(chainKey: string, contains: string): boolean {
    const c = this.chains.get(chainKey);
    const at = c?.rules.findIndex((r) => r.includes(contains)) ?? -1;
    if (!c || at < 0) return false;
    c.rules.splice(at, 1);
    return true;
  }
}
