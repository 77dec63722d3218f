// The lab's layout, computed from its options before anything is created: names (all
// carrying the prefix), addresses and routes. Pure, so it is unit-tested without root.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addr, cidrOf, inLabRange, parseBlock24, type Block24 } from "./ipv4.js";
import { addr6, labnet6Of } from "./ipv6.js";
import type { LabOptions, Uplink } from "./options.js";

export interface Route {
  dst: string;
  via: string;
}

export interface RootRoute {
  dst: string;
  /** Undefined: on-link on the lab bridge (nobody answers, so the route is a dead end). */
  via: string | undefined;
}

export interface RouterPlan {
  netns: string;
  /** Root-namespace end of its uplink veth (the other end is eth0 in the router). */
  rootVeth: string;
  wanAddress: string;
  lanCidr: string;
  lanRouterAddress: string;
  lanHostAddress: string;
  /** Sources allowed to open connections into the LAN: the management network, or the bastion only. */
  managementSources: readonly string[];
  /** How it maps ports (LabHostOptions.natMapping). */
  mapping: "independent" | "per-destination";
}

export interface HostPlan {
  name: string;
  netns: string;
  /**
   * Address of its eth0: on the lab net when public, in its LAN when NAT'd. Its IPv4 address,
   * except for an "ipv6" uplink, which has none: then its IPv6 address (the same as address6).
   */
  address: string;
  /** Address families of its uplink (LabHostOptions.uplink): "ipv4" for every NAT'd host. */
  uplink: Uplink;
  /** Its IPv6 address on the lab's /64 (uplink "dual" or "ipv6"), else absent. */
  address6?: string;
  /** Routes (besides the connected one) of its main table; never a default route. */
  routes: Route[];
  /** Root-namespace end of its veth, for a public host (a NAT'd host's link ends in its router). */
  rootVeth: string | undefined;
  router: RouterPlan | undefined;
  nat: boolean;
  inputPolicy: "ACCEPT" | "DROP";
  sshUser: string;
  /** Where SSH reaches it: `address` (IPv4, or IPv6 for an "ipv6" uplink), or its LAN address when NAT'd. */
  sshHost: string;
  bastionOnly: boolean;
  /** Name of the lab host that is its bastion. */
  bastion: string | undefined;
  /** sshd's ForceCommand (LabHostOptions.forceCommand), when set. */
  forceCommand?: string;
  /** dockerd manages ip6tables (LabHostOptions.dockerIp6tables). */
  dockerIp6tables?: boolean;
  /** Address SSH is accepted from when bastionOnly and public (a security-group-like rule). */
  sshOnlyFrom: string | undefined;
  /** cgroup parent of its containers, so leftovers can be found after a crash. */
  cgroupParent: string;
  dir: string;
}

export interface LabPlan {
  prefix: string;
  /** iptables comment on every rule the lab adds in the root namespace. */
  tag: string;
  bridge: string;
  labnetCidr: string;
  /**
   * The lab's IPv6 /64 (fdc6:1218:X::/64 for labnet 198.18.X.0/24), present only when a host has
   * an IPv6 uplink. Never on the bridge: the root namespace has no lab IPv6 address.
   */
  labnet6Cidr?: string;
  bridgeAddress: string;
  /** address6: the controller namespace's IPv6 address, present when labnet6Cidr is. */
  controller: { netns: string; rootVeth: string; address: string; address6?: string; routes: readonly Route[] };
  /** Root-namespace routes: the NAT'd LANs through their routers, the rest of the LAN range on-link. */
  rootRoutes: readonly RootRoute[];
  rootPortsForController: readonly number[];
  hosts: readonly HostPlan[];
  stateDir: string;
}

export const PREFIX_PATTERN = /^[a-z][a-z0-9]{1,7}$/;
const HOST_PATTERN = /^[a-z][a-z0-9]{0,9}$/;
const USER_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;
const MAX_PUBLIC = 90; // .10 - .99
const MAX_NAT = 100; // routers at .100 - .199

/** The lab's state directory for a prefix (fixed, so a crashed run's leftovers are found). */
export function stateDirFor(prefix: string, stateRoot?: string): string {
  return join(stateRoot ?? tmpdir(), `${prefix}-lab`);
}

export function tagFor(prefix: string): string {
  return `dockmesh-lab:${prefix}`;
}

const UPLINKS: readonly Uplink[] = ["ipv4", "dual", "ipv6"];

/**
 * What goes on an eth0 on the lab net: "<IPv4>/24" unless the uplink is "ipv6", and
 * "<IPv6>/64" when there is an IPv6 address (a host plan, or the controller's, which has no uplink field).
 */
export function uplinkCidrs(a: { address: string; address6?: string; uplink?: Uplink }): string[] {
  return [...(a.uplink === "ipv6" ? [] : [`${a.address}/24`]), ...(a.address6 !== undefined ? [`${a.address6}/64`] : [])];
}

export function planLab(opts: LabOptions): LabPlan {
  const p = opts.prefix;
  if (!PREFIX_PATTERN.test(p)) throw new Error(`lab prefix "${p}" must be 2-8 lower-case letters or digits, starting with a letter`);
  const labnet = parseBlock24(opts.labnet);
  if (!inLabRange(labnet) || labnet.octets[1] !== 18) {
    throw new Error(`labnet ${opts.labnet} must be a /24 of 198.18.0.0/16 (the lab keeps its traffic in 198.18.0.0/15)`);
  }
  const lans = opts.natLans ?? { first: 0, last: 9 };
  if (!(Number.isInteger(lans.first) && Number.isInteger(lans.last) && lans.first >= 0 && lans.last <= 255 && lans.first <= lans.last)) {
    throw new Error(`natLans ${JSON.stringify(lans)} must be third octets 0-255 with first <= last`);
  }
  if (opts.hosts.length === 0) throw new Error("a lab needs at least one host");
  const names = new Set<string>();
  for (const h of opts.hosts) {
    if (!HOST_PATTERN.test(h.name)) throw new Error(`host name "${h.name}" must be 1-10 lower-case letters or digits, starting with a letter`);
    if (names.has(h.name)) throw new Error(`host name "${h.name}" is used twice`);
    names.add(h.name);
    if (h.sshUser !== undefined && !USER_PATTERN.test(h.sshUser)) throw new Error(`host ${h.name}: sshUser "${h.sshUser}" is not a valid user name`);
    // It becomes one line of sshd_config: a line break would add configuration.
    if (h.forceCommand !== undefined && (h.forceCommand.trim() === "" || /[\r\n]/.test(h.forceCommand))) throw new Error(`host ${h.name}: forceCommand must be one non-empty line`);
    const uplink = h.uplink ?? "ipv4";
    if (!UPLINKS.includes(uplink)) throw new Error(`host ${h.name}: uplink ${JSON.stringify(uplink)} must be "ipv4", "dual" or "ipv6"`);
    if (uplink !== "ipv4" && h.nat) {
      throw new Error(`host ${h.name}: uplink "${uplink}" is for a public host; a NAT'd host (nat: true) has an IPv4 uplink only (leave uplink out or set "ipv4")`);
    }
    if (uplink !== "ipv4" && h.bastionOnly) {
      throw new Error(`host ${h.name}: uplink "${uplink}" is for a public host; a bastionOnly host is reached through its bastion over IPv4 (leave uplink out or set "ipv4")`);
    }
  }
  const natCount = opts.hosts.filter((h) => h.nat).length;
  if (natCount > Math.min(MAX_NAT, lans.last - lans.first + 1)) {
    throw new Error(`${natCount} NAT'd hosts need ${natCount} LANs, natLans has ${lans.last - lans.first + 1}`);
  }
  if (opts.hosts.length > MAX_PUBLIC) throw new Error(`at most ${MAX_PUBLIC} hosts per lab`);
  for (const port of opts.rootPortsForController ?? []) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`rootPortsForController: ${port} is not a TCP port`);
  }

  const bridgeAddress = addr(labnet, 1);
  const controllerAddress = addr(labnet, 2);
  const stateDir = stateDirFor(p, opts.stateRoot);
  const publicAddress = (i: number): string => addr(labnet, 10 + i);
  const uplinkOf = (h: LabOptions["hosts"][number]): Uplink => h.uplink ?? "ipv4";
  const hasIpv6 = opts.hosts.some((h) => uplinkOf(h) !== "ipv4");
  // A bastion reaches the hosts behind it over IPv4: an IPv6-only host is never the default one.
  const directCandidates = opts.hosts.filter((h) => !h.nat && !h.bastionOnly && uplinkOf(h) !== "ipv6");

  let natIndex = 0;
  const hosts: HostPlan[] = opts.hosts.map((h, i) => {
    const netns = `${p}-${h.name}`;
    let bastion: string | undefined;
    if (h.bastionOnly) {
      const b = h.bastion ?? directCandidates[0]?.name;
      const bh = opts.hosts.find((x) => x.name === b);
      if (!b || !bh) throw new Error(`host ${h.name} is bastionOnly but the lab has no public host to be its bastion${h.bastion ? ` (no host "${h.bastion}")` : ""}`);
      if (bh.nat || bh.bastionOnly) throw new Error(`host ${h.name}: its bastion ${b} must be public and reachable directly`);
      if (uplinkOf(bh) === "ipv6") throw new Error(`host ${h.name}: its bastion ${b} has an IPv6-only uplink, but a bastion reaches its hosts over IPv4 (give ${b} uplink "dual" or "ipv4")`);
      bastion = b;
    } else if (h.bastion !== undefined) {
      throw new Error(`host ${h.name}: bastion is set but bastionOnly is not`);
    }
    const bastionAddress = bastion === undefined ? undefined : publicAddress(opts.hosts.findIndex((x) => x.name === bastion));
    const common = {
      name: h.name,
      netns,
      nat: h.nat === true,
      uplink: uplinkOf(h),
      inputPolicy: h.inputPolicy ?? "ACCEPT",
      sshUser: h.sshUser ?? "root",
      bastionOnly: h.bastionOnly === true,
      bastion,
      cgroupParent: netns,
      dir: join(stateDir, "hosts", h.name),
      ...(h.forceCommand !== undefined ? { forceCommand: h.forceCommand } : {}),
      ...(h.dockerIp6tables ? { dockerIp6tables: true } : {}),
    } as const;
    if (!h.nat) {
      const address6 = common.uplink === "ipv4" ? undefined : addr6(labnet, 10 + i);
      const address = common.uplink === "ipv6" && address6 !== undefined ? address6 : publicAddress(i);
      return {
        ...common,
        address,
        ...(address6 !== undefined ? { address6 } : {}),
        sshHost: address,
        routes: [],
        rootVeth: `${p}-h${i}`,
        router: undefined,
        sshOnlyFrom: bastionAddress,
      };
    }
    const k = natIndex++;
    const lan: Block24 = { octets: [198, 19, lans.first + k] };
    const router: RouterPlan = {
      netns: `${p}-gw-${h.name}`,
      rootVeth: `${p}-g${k}`,
      wanAddress: addr(labnet, 100 + k),
      lanCidr: cidrOf(lan),
      lanRouterAddress: addr(lan, 1),
      lanHostAddress: addr(lan, 2),
      managementSources: bastionAddress ? [bastionAddress] : [bridgeAddress, controllerAddress],
      mapping: h.natMapping ?? "independent",
    };
    return {
      ...common,
      address: router.lanHostAddress,
      sshHost: router.lanHostAddress,
      routes: [{ dst: cidrOf(labnet), via: router.lanRouterAddress }],
      rootVeth: undefined,
      router,
      sshOnlyFrom: undefined,
    };
  });

  // The management network reaches the NAT'd LANs through their routers; a bastion-only
  // LAN is routed from its bastion alone (its router rejects anyone else).
  const managementRoutes: Route[] = [];
  for (const h of hosts) {
    if (!h.router) continue;
    const route = { dst: h.router.lanCidr, via: h.router.wanAddress };
    if (h.bastion) hosts.find((x) => x.name === h.bastion)?.routes.push(route);
    else managementRoutes.push(route);
  }
  // The root namespace routes every LAN of the lab's range into the lab (unused ones on-link,
  // where nobody answers): its default route must never carry a packet meant for the lab.
  const rootRoutes: RootRoute[] = [];
  for (let x = lans.first; x <= lans.last; x++) {
    const dst = `198.19.${x}.0/24`;
    const router = hosts.find((h) => h.router?.lanCidr === dst)?.router;
    rootRoutes.push(router ? { dst, via: router.wanAddress } : { dst, via: undefined });
  }

  return {
    prefix: p,
    tag: tagFor(p),
    bridge: `${p}-br`,
    labnetCidr: cidrOf(labnet),
    ...(hasIpv6 ? { labnet6Cidr: labnet6Of(labnet) } : {}),
    bridgeAddress,
    controller: {
      netns: `${p}-controller`,
      rootVeth: `${p}-c`,
      address: controllerAddress,
      ...(hasIpv6 ? { address6: addr6(labnet, 2) } : {}),
      routes: managementRoutes,
    },
    rootRoutes,
    rootPortsForController: opts.rootPortsForController ?? [],
    hosts,
    stateDir,
  };
}
