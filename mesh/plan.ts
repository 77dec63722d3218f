// The planner: resources in, desired host state out. Pure: no I/O, no clock, no randomness.
// planMesh works on one MeshNetwork (membership, allocations, relays); planHost turns the
// meshes one machine belongs to into everything that machine needs, in O(members).
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { allocateSubnets, type IpamMember, type IpamResult } from "./ipam.js";
import { parseCidr } from "./ipv4.js";
import { parseCidr6 } from "./ipv6.js";
import { IPV4, IPV6, familyContains, type IpFamily } from "./ip-family.js";
import { meshConflicts, meshKey, sharedResource } from "./conflicts.js";
import { chooseRelay } from "./relays.js";
import { selectorMatches } from "./selector.js";
import { DEFAULT_PERSISTENT_KEEPALIVE, resolveMesh, tunnelMtu, type ResolvedMesh, type SpecError } from "./defaults.js";
import { endpointIn } from "./endpoints.js";
import { bothBehindNat, carriesAPair, endpointFor, hasFamilyGap, isDirect, reachKind, reachOfMachine, uplinkFamilies, type Reach } from "./uplinks.js";
import { planDns, type DnsPlan, type ResolverFacts } from "./dns-plan.js";

/** Comment on every iptables rule dockmesh adds, so observe and teardown find exactly ours. */
export const RULE_COMMENT_PREFIX = "dockmesh:";
/** Comment of the INPUT jump to INPUT_CHAIN, shared by every mesh on the host. */
export const INPUT_JUMP_COMMENT = "dockmesh";

/** Label on the Docker networks dockmesh creates (value: the interface): it never touches a network without it. */
export const NETWORK_LABEL = "dockmesh.io/interface";

/** Chain dockmesh creates in the filter table to open WireGuard's port on firewalled hosts. */
export const INPUT_CHAIN = "DOCKMESH-INPUT";

export interface IptablesRule {
  table: "filter" | "nat" | "raw";
  chain: string;
  /** The rule as `iptables -S` prints it after the chain name (canonical order), comment included. */
  args: string[];
  /** 6: an ip6tables rule (a dual-stack mesh's IPv6 half); absent: iptables. */
  family?: 6;
  /**
   * An ip6tables rule that goes in DOCKER-USER where the host has that chain, else in FORWARD
   * (Docker 20.10 managing ip6tables has none). `chain` is the planner's choice from the host's
   * facts, which diffs use; the wg-quick PostUp lines choose on the host, so the config is the same
   * for both Docker generations and a first converge from guessed facts (hosts/fresh.ts) holds.
   */
  userOrForward?: true;
}

/**
 * The table as observations and apply steps name it: "filter", or "filter6" for ip6tables' filter
 * table. The family travels with the table name, so a rule's key, its steps and its teardown
 * (which reads the key back) cannot mix the two.
 */
export const tableToken = (r: Pick<IptablesRule, "table" | "family">): string => (r.family === 6 ? `${r.table}6` : r.table);

/** The rule tool for a table token: ip6tables for "filter6", iptables for "filter". */
export const toolOfTable = (token: string): { tool: "iptables" | "ip6tables"; table: string } =>
  token.endsWith("6") ? { tool: "ip6tables", table: token.slice(0, -1) } : { tool: "iptables", table: token };

export interface Route {
  destination: string;
  dev: string;
}

export interface DockerNetworkPlan {
  name: string;
  subnet: string;
  /** The IPv6 subnet of a dual-stack mesh: the network is created with --ipv6 and both subnets. */
  subnetV6?: string;
  bridge: string;
  mtu: number;
  /** Driver options, sorted by key. */
  options: Record<string, string>;
  /** Labels, NETWORK_LABEL among them. */
  labels: Record<string, string>;
}

export interface PeerPlan {
  machine: string;
  /** Unknown until the peer's key pair exists (plan from manifests alone). */
  publicKey?: string;
  /** The peer's subnet first, then subnets of NAT'd machines it relays to us. */
  allowedIPs: string[];
  endpoint?: string;
  persistentKeepalive?: number;
  /** Machines reached through this peer acting as relay, sorted. */
  relayFor: string[];
  /**
   * A peer behind NAT, like this machine, reached through its NAT mapping (in endpoint): Direct
   * carries its subnet; Probing tries a handshake while its subnet stays with the relay.
   */
  path?: "Direct" | "Probing";
}

export interface WireGuardPlan {
  interface: string;
  listenPort: number;
  mtu: number;
  configPath: string;
  peers: PeerPlan[];
}

export interface UnitPlan {
  /** The systemd unit that brings the interface up at boot, e.g. wg-quick@dm0.service. */
  unit: string;
  dropInPath: string;
  dropInContent: string;
}

export interface NetworkPlan {
  meshNetwork: string;
  subnet: string;
  /** This machine's IPv6 subnet in a dual-stack mesh (spec.cidrV6). */
  subnetV6?: string;
  docker: DockerNetworkPlan;
  wireguard: WireGuardPlan;
  rules: IptablesRule[];
  routes: Route[];
  unit: UnitPlan;
  /** Other NAT'd machines reached through a relay. */
  relayed: Array<{ machine: string; via: string }>;
  /** Other machines that cannot be reached: not directly, and no machine can relay between them. */
  unreachable: string[];
  /** Those of `unreachable` whose uplinks share no family with this machine's (the others are behind NAT, as it is). */
  noSharedFamily?: string[];
  /** True when this machine relays between NAT'd members (it has an endpoint and the mesh needs one). */
  relay: boolean;
  /** For a machine behind NAT: the path to each other NAT'd member, as decided (MeshView.natPaths), sorted. */
  natPaths?: Array<NatPath & { machine: string }>;
  /** The mesh's DNS resolver on this host; absent when the mesh's DNS is disabled. */
  dns?: DnsPlan;
  /**
   * An MTU change not made: the Docker network has containers attached (recreating it would cut
   * them off), so network and tunnel keep `have` until they are stopped; then it becomes `want`.
   */
  mtuHeld?: { want: number; have: number; containers: number };
  /**
   * IPv6 turned on or off for the mesh (spec.cidrV6 set or removed) while the Docker network has
   * containers attached: Docker cannot add or drop a network's IPv6 in place, so the network keeps
   * what it has until they are stopped; everything else of the change is made at once.
   */
  ipv6Held?: { change: "add" | "remove"; subnetV6: string; containers: number };
  /**
   * The Docker network has IPv6 but the host does not forward IPv6 (Docker leaves it off when its
   * ip-forward option is off): IPv6 between the tunnel and the bridge goes nowhere. dockmesh does
   * not turn on the host-wide switch itself; the Machine says so, IPv4 is configured as ever.
   */
  ipv6ForwardingOff?: true;
  /** This machine's WireGuard port is reached over IPv6 (an IPv6 endpoint): ip6tables' INPUT is looked at and opened. */
  uplinkV6?: true;
}

export interface HostPlan {
  namespace: string;
  machine: string;
  networks: NetworkPlan[];
  /** Meshes this machine belongs to but cannot be configured for, and why. */
  errors: SpecError[];
  /** The host facts it was planned with. */
  facts: HostFacts;
}

/** A member as planHost needs it. */
export interface Member {
  name: string;
  endpoint?: string;
  /** [IPv6]:port beside an IPv4 endpoint, for a dual-uplink host (mesh/uplinks.ts). */
  endpointV6?: string;
  publicKey?: string;
  /** Allocated subnet; members without one are left out of the mesh. */
  subnet?: string;
  /** Allocated IPv6 subnet, in a dual-stack mesh (spec.cidrV6). */
  subnetV6?: string;
}

/** How this machine reaches another member behind NAT (controllers/nat-paths.ts decides). */
export interface NatPath {
  /** Direct and Probing go through the peer's NAT mapping (endpoint); Relayed through a relay. */
  path: "Direct" | "Probing" | "Relayed";
  /** The peer's NAT mapping as public peers see it (host:port), for Direct and Probing. */
  endpoint?: string;
  /** Why, for status. */
  reason: string;
  /** When the pair took this path (RFC 3339). */
  since: string;
}

export interface MeshView {
  mesh: ResolvedMesh;
  members: Member[];
  /** Healthy machines that may relay; default: every member with an endpoint. */
  relayCandidates?: string[];
  /** For a machine behind NAT: how it reaches each other member behind NAT, by name (absent: relayed). */
  natPaths?: ReadonlyMap<string, NatPath>;
}

export interface HostFacts {
  /** MTU of the host's uplink, for mtu: auto (default 1500). */
  uplinkMtu?: number;
  /** The host's INPUT chain drops what it does not allow (policy DROP or a final DROP/REJECT). */
  inputDrops?: boolean;
  /** ip6tables' INPUT drops what it does not allow (known once ip6tables was observed). */
  inputDropsV6?: boolean;
  /** The raw table is there: Docker 28+ drops traffic to containers in raw PREROUTING. */
  rawTable?: boolean;
  /** ip6tables' raw table is there (known only once a dual-stack host was observed; absent: as rawTable). */
  rawTableV6?: boolean;
  /**
   * ip6tables has Docker's DOCKER-USER chain (Docker 23+ managing ip6tables; absent: assumed so).
   * Without it (Docker 20.10 with --ip6tables) the tunnel's IPv6 is let into the bridge in FORWARD.
   */
  dockerUserV6?: boolean;
  /** net.ipv6.conf.all.forwarding (known once a dual-stack host was observed). */
  ipv6Forwarding?: boolean;
  /** systemd runs the host (/run/systemd/system): a changed unit drop-in is followed by daemon-reload. */
  systemd?: boolean;
  /** What decides the mesh DNS resolver's containers mode; absent when planning from manifests alone. */
  resolver?: ResolverFacts;
  /** The host's Docker networks by name, as far as planning needs them (an MTU held under containers). */
  dockerNetworks?: ReadonlyMap<string, DockerNetworkFacts>;
}

export interface DockerNetworkFacts {
  /** The MTU option it was created with, if any. */
  mtu?: number;
  /** Its IPv6 subnet, when it is dual-stack. */
  subnetV6?: string;
  /** Containers attached. */
  containers: number;
  /** The WireGuard interface named by its dockmesh label (ours when it is the mesh's). */
  label?: string;
}

/** One machine's subnets in a mesh: IPv4 always, IPv6 when the mesh has spec.cidrV6. */
export interface Allocation {
  machine: string;
  subnet: string;
  subnetV6?: string;
}

export interface MeshPlan {
  mesh: ResolvedMesh;
  /** Member machine names, sorted (machines being deleted are not members). */
  members: string[];
  /** Members' subnets (and IPv6 subnets in a dual-stack mesh), plus those still reserved by machines being deleted. */
  allocations: Allocation[];
  errors: SpecError[];
  /** NAT'd pairs and their relay, sorted; capped so status stays small. */
  relays: Array<{ machines: [string, string]; via: string }>;
  /** NAT'd pairs with no relay, as "a<->b", sorted. */
  unreachablePairs: string[];
  /** Those of unreachablePairs whose uplinks share no address family (not both behind NAT). */
  noSharedFamily?: string[];
  /** Why the mesh is refused as a whole (mesh/conflicts.ts): then it allocates nothing. */
  refused?: SpecError;
}

const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
export const MAX_LISTED_PAIRS = 50;

export function isMember(mesh: ResolvedMesh, machine: Machine): boolean {
  return (machine.metadata.namespace ?? "default") === mesh.namespace && selectorMatches(mesh.selector, machine.metadata.labels);
}

/**
 * The pin Machine.spec.subnet (spec.subnetV6 for the IPv6 pool) means for this mesh: it applies to
 * the mesh whose pool holds it, and when none of the machine's meshes holds it, to every mesh
 * (which then reports it).
 */
function pinIn(f: IpFamily, pin: string | undefined, poolOf: (m: ResolvedMesh) => string | undefined, mesh: ResolvedMesh, machineMeshes: readonly ResolvedMesh[]): string | undefined {
  if (pin === undefined || poolOf(mesh) === undefined) return undefined;
  const c = f.parse(pin);
  if (!c) return pin;
  const inside = (m: ResolvedMesh) => {
    const text = poolOf(m);
    const pool = text === undefined ? undefined : f.parse(text);
    return pool !== undefined && familyContains(f, pool, c);
  };
  if (inside(mesh)) return pin;
  return machineMeshes.some(inside) ? undefined : pin;
}

export const pinFor = (mesh: ResolvedMesh, machine: Machine, machineMeshes: readonly ResolvedMesh[]): string | undefined => pinIn(IPV4, machine.spec.subnet, (m) => m.cidr, mesh, machineMeshes);

export const pinV6For = (mesh: ResolvedMesh, machine: Machine, machineMeshes: readonly ResolvedMesh[]): string | undefined => pinIn(IPV6, machine.spec.subnetV6, (m) => m.cidrV6, mesh, machineMeshes);

/** Membership, subnet allocations and relays of one mesh. */
export function planMesh(
  mesh: ResolvedMesh,
  machines: readonly Machine[],
  opts: { existing?: ReadonlyArray<Allocation>; allMeshes?: readonly ResolvedMesh[]; relayCandidates?: readonly string[] } = {},
): MeshPlan {
  const selected = machines.filter((m) => isMember(mesh, m)).sort((a, b) => byName({ name: a.metadata.name ?? "" }, { name: b.metadata.name ?? "" }));
  // A machine being deleted is no longer a member (peers drop it at once), but its subnet
  // stays reserved until it is gone, so no newcomer gets a subnet still routed on its host.
  const members = selected.filter((m) => !m.metadata.deletionTimestamp);
  const existing = new Map((opts.existing ?? []).map((a) => [a.machine, a]));
  const all = opts.allMeshes ?? [mesh];
  const ipamMembers = (v6: boolean): IpamMember[] =>
    selected.map((m) => {
      const name = m.metadata.name ?? "";
      const meshes = all.filter((x) => isMember(x, m));
      const pin = v6 ? pinV6For(mesh, m, meshes) : pinFor(mesh, m, meshes);
      const ex = v6 ? existing.get(name)?.subnetV6 : existing.get(name)?.subnet;
      return { name, ...(pin !== undefined ? { pin } : {}), ...(ex !== undefined ? { existing: ex } : {}) };
    });
  const ipam = allocateSubnets(mesh.cidr, mesh.subnetPrefixLength, ipamMembers(false));
  // A dual-stack mesh: a member needs both subnets. One refused its IPv6 subnet (a bad pin, a full
  // pool) gets neither, so no host is configured with half of its addresses.
  const ipam6: IpamResult | undefined = mesh.cidrV6 !== undefined ? allocateSubnets(mesh.cidrV6, mesh.subnetPrefixLengthV6 ?? 64, ipamMembers(true), IPV6) : undefined;
  const poolFields = new Set([IPV4.fields.pool, IPV6.fields.pool]);
  const errors: SpecError[] = [...ipam.errors, ...(ipam6?.errors ?? [])].map((e) => ({
    kind: poolFields.has(e.field) ? "MeshNetwork" : "Machine",
    namespace: mesh.namespace,
    name: poolFields.has(e.field) ? mesh.name : e.machine,
    field: e.field,
    message: poolFields.has(e.field) ? e.message : `MeshNetwork ${mesh.name}: ${e.message}`,
    ...(poolFields.has(e.field) ? { machine: e.machine } : {}),
  }));
  if (ipam6) for (const e of ipam6.errors) ipam.allocations.delete(e.machine);

  const reserved = new Set(selected.filter((m) => m.metadata.deletionTimestamp).map((m) => m.metadata.name ?? ""));
  const withSubnet = members.filter((m) => ipam.allocations.has(m.metadata.name ?? ""));
  const nat = withSubnet.filter((m) => !m.spec.endpoint).map((m) => m.metadata.name ?? "");
  const candidates = opts.relayCandidates ?? withSubnet.filter((m) => m.spec.endpoint).map((m) => m.metadata.name ?? "");
  const reaches = withSubnet.map((m) => ({ name: m.metadata.name ?? "", ...reachOfMachine(m) }));
  return {
    mesh,
    members: members.map((m) => m.metadata.name ?? ""),
    allocations: [...ipam.allocations]
      .filter(([machine]) => !reserved.has(machine) || existing.has(machine))
      .map(([machine, subnet]) => {
        const subnetV6 = ipam6?.allocations.get(machine);
        return subnetV6 !== undefined ? { machine, subnet, subnetV6 } : { machine, subnet };
      }),
    errors: errors.filter((e) => !reserved.has(e.name)),
    ...(hasFamilyGap(reaches) ? relayFamilyGaps(mesh.name, reaches, candidates) : relayNatPairs(mesh.name, nat, candidates)),
  };
}

/** Relays of NAT'd pairs, in a mesh whose uplinks all share a family; the lists capped. */
function relayNatPairs(mesh: string, nat: readonly string[], candidates: readonly string[]): Pick<MeshPlan, "relays" | "unreachablePairs"> {
  const relays: MeshPlan["relays"] = [];
  const unreachablePairs: string[] = [];
  // Listing every NAT'd pair is quadratic; stop once the lists are full. A candidate that is not
  // itself behind NAT relays every pair, so then no pair is unreachable and relays alone can fill.
  const natSet = new Set(nat);
  const everyPairRelayed = candidates.some((c) => !natSet.has(c));
  outer: for (let i = 0; i < nat.length; i++) {
    for (let j = i + 1; j < nat.length; j++) {
      if (relays.length >= MAX_LISTED_PAIRS && (everyPairRelayed || unreachablePairs.length >= MAX_LISTED_PAIRS)) break outer;
      const a = nat[i]!;
      const b = nat[j]!;
      const via = chooseRelay(mesh, a, b, candidates);
      if (via && relays.length < MAX_LISTED_PAIRS) relays.push({ machines: [a, b], via });
      if (!via && unreachablePairs.length < MAX_LISTED_PAIRS) unreachablePairs.push(`${a}<->${b}`);
    }
  }
  return { relays, unreachablePairs };
}

/**
 * Relays of a mesh whose members' uplinks do not all share a family: every pair that is not
 * direct, NAT'd pairs and family gaps alike, in name order; the lists capped as for NAT'd pairs.
 */
function relayFamilyGaps(mesh: string, reaches: ReadonlyArray<Reach & { name: string }>, candidates: readonly string[]): Pick<MeshPlan, "relays" | "unreachablePairs" | "noSharedFamily"> {
  const relays: MeshPlan["relays"] = [];
  const unreachablePairs: string[] = [];
  const noSharedFamily: string[] = [];
  const pick = pairCandidates(reaches, candidates);
  const full = () => relays.length >= MAX_LISTED_PAIRS && unreachablePairs.length >= MAX_LISTED_PAIRS;
  outer: for (let i = 0; i < reaches.length; i++) {
    for (let j = i + 1; j < reaches.length; j++) {
      if (full()) break outer;
      const a = reaches[i]!;
      const b = reaches[j]!;
      if (isDirect(a, b)) continue;
      const usable = pick(a, b);
      // Relayed for sure (three or more usable relays) and the relay list is full: nothing to add.
      if (relays.length >= MAX_LISTED_PAIRS && usable.length >= 3) continue;
      const via = chooseRelay(mesh, a.name, b.name, usable);
      if (via && relays.length < MAX_LISTED_PAIRS) relays.push({ machines: [a.name, b.name], via });
      if (!via && unreachablePairs.length < MAX_LISTED_PAIRS) {
        unreachablePairs.push(`${a.name}<->${b.name}`);
        if (!bothBehindNat(a, b)) noSharedFamily.push(`${a.name}<->${b.name}`);
      }
    }
  }
  return { relays, unreachablePairs, ...(noSharedFamily.length ? { noSharedFamily } : {}) };
}

/**
 * The relays that can carry a pair: candidates direct with both ends. One filtered array per kind
 * of pair (mesh/uplinks.ts reachKind), and the candidates array itself when every one can, so
 * mesh/relays.ts builds each ring once.
 */
function pairCandidates(members: ReadonlyArray<Reach & { name: string }>, candidates: readonly string[]): (a: Reach, b: Reach) => readonly string[] {
  const byName = new Map(members.map((m) => [m.name, m]));
  const memo = new Map<string, readonly string[]>();
  return (a, b) => {
    const ka = reachKind(a);
    const kb = reachKind(b);
    const key = ka < kb ? `${ka}|${kb}` : `${kb}|${ka}`;
    let list = memo.get(key);
    if (!list) {
      const ok = candidates.filter((c) => {
        const r = byName.get(c);
        return r !== undefined && isDirect(r, a) && isDirect(r, b);
      });
      list = ok.length === candidates.length ? candidates : ok;
      memo.set(key, list);
    }
    return list;
  };
}

/**
 * The plan of a mesh refused by meshConflicts: its members, and nothing else. It allocates no
 * subnet (a subnet of an overlapping pool would be routed twice on a shared machine), so no
 * machine configures it; what its machines already have of it is left as it is.
 */
export function refusedMeshPlan(mesh: ResolvedMesh, machines: readonly Machine[], refusal: SpecError): MeshPlan {
  const members = machines
    .filter((m) => isMember(mesh, m) && !m.metadata.deletionTimestamp)
    .map((m) => m.metadata.name ?? "")
    .sort();
  return { mesh, members, allocations: [], errors: [refusal], relays: [], unreachablePairs: [], refused: refusal };
}

function networkFor(self: Member, view: MeshView, facts: HostFacts): NetworkPlan {
  const { mesh } = view;
  const iface = mesh.interface;
  const want = tunnelMtu(mesh.mtu, facts.uplinkMtu);
  const existing = facts.dockerNetworks?.get(mesh.dockerNetwork);
  const held = existing?.label === iface && existing.containers > 0 && existing.mtu && existing.mtu !== want ? { want, have: existing.mtu, containers: existing.containers } : undefined;
  const mtu = held?.have ?? want;
  // The Docker network's IPv6 while containers are attached: as it is (see NetworkPlan.ipv6Held).
  const busy = existing?.label === iface && existing.containers > 0 ? existing : undefined;
  const others = view.members.filter((m) => m.name !== self.name && m.subnet !== undefined).sort(byName);
  const candidates = view.relayCandidates ?? view.members.filter((m) => m.endpoint && m.subnet).map((m) => m.name);
  const keepalive = mesh.persistentKeepalive > 0 ? mesh.persistentKeepalive : undefined;
  // Dual-stack: this machine has its IPv6 subnet; a peer's IPv6 subnet is routed to it then (a peer
  // without one yet, its allocation not written, is reached over IPv4 only until it has).
  const v6 = mesh.cidrV6 !== undefined && self.subnetV6 !== undefined;
  const ipv6Held: NetworkPlan["ipv6Held"] =
    busy && v6 && busy.subnetV6 === undefined
      ? { change: "add", subnetV6: self.subnetV6!, containers: busy.containers }
      : busy && !v6 && busy.subnetV6 !== undefined
        ? { change: "remove", subnetV6: busy.subnetV6, containers: busy.containers }
        : undefined;
  const dockerV6 = ipv6Held ? (ipv6Held.change === "remove" ? ipv6Held.subnetV6 : undefined) : v6 ? self.subnetV6 : undefined;
  const subnetsOf = (p: Member): string[] => (v6 && p.subnetV6 !== undefined ? [p.subnet!, p.subnetV6] : [p.subnet!]);

  const peers = new Map<string, PeerPlan>();
  /** Entries made for this host alone (NAT paths, relays' copies): the others are shared. */
  const ownEntries = new Set<PeerPlan>();
  const relayed: NetworkPlan["relayed"] = [];
  const unreachable: string[] = [];
  const noSharedFamily: string[] = [];
  // Direct peers first (a relay must be one); mesh/uplinks.ts says which pairs are direct.
  const indirect: Member[] = [];
  for (const p of others) {
    if (!isDirect(self, p)) {
      indirect.push(p);
      continue;
    }
    const endpoint = endpointFor(self, p);
    // Keepalives where one side cannot send to the other first (NAT, or an uplink without its family).
    const ka = keepalive !== undefined && (endpoint === undefined || endpointFor(p, self) === undefined) ? keepalive : undefined;
    peers.set(
      p.name,
      sharedPeer(p, `${v6 ? 6 : 4} ${endpoint ?? ""} ${ka ?? ""}`, () => ({
        machine: p.name,
        ...(p.publicKey ? { publicKey: p.publicKey } : {}),
        allowedIPs: subnetsOf(p),
        ...(endpoint ? { endpoint } : {}),
        ...(ka !== undefined ? { persistentKeepalive: ka } : {}),
        relayFor: [],
      })),
    );
  }
  // An uplink of the other family among this machine's peers: only relays direct with both ends count.
  const gap = indirect.some((p) => !bothBehindNat(self, p));
  const pick = gap ? pairCandidates(view.members, candidates) : () => candidates;
  for (const p of indirect) {
    const d = bothBehindNat(self, p) ? view.natPaths?.get(p.name) : undefined;
    if (d && d.path !== "Relayed" && d.endpoint) {
      // Through the peer's NAT mapping, with a keepalive: it opens this side's NAT to the peer
      // (both sides send at once) and keeps both mappings alive. Probing: no subnet yet.
      const entry: PeerPlan = {
        machine: p.name,
        ...(p.publicKey ? { publicKey: p.publicKey } : {}),
        allowedIPs: d.path === "Direct" ? subnetsOf(p) : [],
        endpoint: d.endpoint,
        persistentKeepalive: keepalive ?? DEFAULT_PERSISTENT_KEEPALIVE,
        relayFor: [],
        path: d.path,
      };
      ownEntries.add(entry);
      peers.set(p.name, entry);
      if (d.path === "Direct") continue;
    }
    const via = chooseRelay(mesh.name, self.name, p.name, pick(self, p));
    let relayPeer = via === undefined ? undefined : peers.get(via);
    if (relayPeer && !ownEntries.has(relayPeer)) {
      // A shared entry is never changed: this host's relay gets its own copy.
      relayPeer = { ...relayPeer, allowedIPs: [...relayPeer.allowedIPs], relayFor: [...relayPeer.relayFor] };
      ownEntries.add(relayPeer);
      peers.set(relayPeer.machine, relayPeer);
    }
    if (!relayPeer) {
      unreachable.push(p.name);
      if (!bothBehindNat(self, p)) noSharedFamily.push(p.name);
      continue;
    }
    relayPeer.allowedIPs.push(...subnetsOf(p));
    relayPeer.relayFor.push(p.name);
    relayed.push({ machine: p.name, via: relayPeer.machine });
  }
  const relay = Boolean(self.endpoint) && candidates.includes(self.name) && carriesAPair(self, others);
  const comment = ["-m", "comment", "--comment", `${RULE_COMMENT_PREFIX}${iface}`];
  const rules: IptablesRule[] = [
    // Docker drops traffic from external interfaces to containers; let the tunnel in.
    { table: "filter", chain: "DOCKER-USER", args: ["-i", iface, "-o", mesh.bridge, ...comment, "-j", "ACCEPT"] },
    // Skip Docker's MASQUERADE for bridge traffic into the tunnel: wg has no address to masquerade to.
    { table: "nat", chain: "POSTROUTING", args: ["-s", self.subnet!, "-o", iface, ...comment, "-j", "RETURN"] },
  ];
  if (relay) {
    // Relay between NAT'd members of this mesh only: in and out of the tunnel, mesh addresses both ways.
    rules.push({ table: "filter", chain: "DOCKER-USER", args: ["-s", mesh.cidr, "-d", mesh.cidr, "-i", iface, "-o", iface, ...comment, "-j", "ACCEPT"] });
  }
  if (facts.rawTable) {
    // Docker 28+ drops packets for a container IP that do not arrive on its bridge, in raw
    // PREROUTING; let the tunnel's traffic for our subnet past those drops.
    rules.push({ table: "raw", chain: "PREROUTING", args: ["-d", self.subnet!, "-i", iface, ...comment, "-j", "ACCEPT"] });
  }
  if (v6) {
    // The same for IPv6, in ip6tables (Docker manages both when its ip6tables option is on, the
    // default since 27): the tunnel into the bridge, no masquerading into the tunnel, the relay,
    // the raw drops. Rules that are about the resolver's IPv4 address or the host's own firewall
    // stay IPv4 only.
    const forward6 = facts.dockerUserV6 === false ? "FORWARD" : "DOCKER-USER";
    rules.push({ table: "filter", chain: forward6, args: ["-i", iface, "-o", mesh.bridge, ...comment, "-j", "ACCEPT"], family: 6, userOrForward: true });
    rules.push({ table: "nat", chain: "POSTROUTING", args: ["-s", self.subnetV6!, "-o", iface, ...comment, "-j", "RETURN"], family: 6 });
    if (relay) rules.push({ table: "filter", chain: forward6, args: ["-s", mesh.cidrV6!, "-d", mesh.cidrV6!, "-i", iface, "-o", iface, ...comment, "-j", "ACCEPT"], family: 6, userOrForward: true });
    if (facts.rawTableV6 ?? facts.rawTable) rules.push({ table: "raw", chain: "PREROUTING", args: ["-d", self.subnetV6!, "-i", iface, ...comment, "-j", "ACCEPT"], family: 6 });
  }
  if (facts.inputDrops) {
    // A firewalled host: open the WireGuard port in dockmesh's own chain (jumped to from INPUT).
    rules.push({ table: "filter", chain: INPUT_CHAIN, args: ["-p", "udp", "-m", "udp", "--dport", String(mesh.listenPort), ...comment, "-j", "ACCEPT"] });
    rules.push({ table: "filter", chain: "INPUT", args: ["-m", "comment", "--comment", INPUT_JUMP_COMMENT, "-j", INPUT_CHAIN] });
  }
  const uplinkV6 = uplinkFamilies(self).includes(6);
  if (uplinkV6 && facts.inputDropsV6) {
    // The same in ip6tables for a port its peers reach over IPv6.
    rules.push({ table: "filter", chain: INPUT_CHAIN, args: ["-p", "udp", "-m", "udp", "--dport", String(mesh.listenPort), ...comment, "-j", "ACCEPT"], family: 6 });
    rules.push({ table: "filter", chain: "INPUT", args: ["-m", "comment", "--comment", INPUT_JUMP_COMMENT, "-j", INPUT_CHAIN], family: 6 });
  }
  const dns = planDns(mesh, self.subnet!, facts.resolver ?? { dnsmasq: true, resolvedStub: false });
  if (dns && facts.resolver?.dnsmasq !== false) {
    // The resolver answers the mesh's bridge and the host itself (systemd-resolved), nobody else:
    // not an uplink, not the tunnel, not another Docker network.
    for (const proto of ["udp", "tcp"]) {
      rules.push({
        table: "filter",
        chain: "INPUT",
        args: ["-d", `${dns.address}/32`, "!", "-i", mesh.bridge, "-p", proto, "-m", "addrtype", "!", "--src-type", "LOCAL", "-m", proto, "--dport", "53", ...comment, "-j", "DROP"],
      });
    }
    if (facts.inputDrops) {
      // A firewalled host: let the bridge's containers in to it.
      for (const proto of ["udp", "tcp"]) {
        rules.push({ table: "filter", chain: INPUT_CHAIN, args: ["-d", `${dns.address}/32`, "-i", mesh.bridge, "-p", proto, "-m", proto, "--dport", "53", ...comment, "-j", "ACCEPT"] });
      }
    }
  }
  const peerList = [...peers.values()];
  // Sorted by address, each destination parsed once (not in the comparator: O(N log N) parses per
  // host); IPv4 first, then IPv6 (by its bigint: only dual-stack meshes pay for it).
  const routes = peerList
    .flatMap((p) => routesVia(p, iface, ownEntries.has(p)))
    .sort((a, b) => (a.base !== b.base ? a.base - b.base : a.base6 < b.base6 ? -1 : a.base6 > b.base6 ? 1 : 0))
    .map((r) => r.route);
  const unit = `wg-quick@${iface}.service`;
  return {
    meshNetwork: mesh.name,
    subnet: self.subnet!,
    ...(v6 ? { subnetV6: self.subnetV6! } : {}),
    docker: {
      name: mesh.dockerNetwork,
      subnet: self.subnet!,
      ...(dockerV6 !== undefined ? { subnetV6: dockerV6 } : {}),
      bridge: mesh.bridge,
      mtu,
      options: {
        "com.docker.network.bridge.name": mesh.bridge,
        "com.docker.network.bridge.trusted_host_interfaces": iface,
        "com.docker.network.driver.mtu": String(mtu),
      },
      labels: { [NETWORK_LABEL]: iface },
    },
    wireguard: { interface: iface, listenPort: mesh.listenPort, mtu, configPath: `/etc/wireguard/${iface}.conf`, peers: peerList },
    rules,
    routes,
    unit: {
      unit,
      dropInPath: `/etc/systemd/system/${unit}.d/dockmesh.conf`,
      dropInContent: ["# Managed by dockmesh: the mesh interface needs Docker's bridge and DOCKER-USER chain.", "[Unit]", "After=docker.service", "Requires=docker.service", ""].join("\n"),
    },
    relayed: relayed.sort(byMachine),
    unreachable: unreachable.sort(),
    ...(noSharedFamily.length ? { noSharedFamily: noSharedFamily.sort() } : {}),
    relay,
    ...(view.natPaths?.size && !self.endpoint ? { natPaths: [...view.natPaths].map(([machine, p]) => ({ machine, ...p })).sort(byMachine) } : {}),
    ...(dns ? { dns } : {}),
    ...(held ? { mtuHeld: held } : {}),
    ...(ipv6Held ? { ipv6Held } : {}),
    ...(uplinkV6 ? { uplinkV6: true as const } : {}),
    ...(v6 && facts.ipv6Forwarding === false && existing?.label === iface && existing.subnetV6 !== undefined ? { ipv6ForwardingOff: true as const } : {}),
  };
}

/**
 * A direct peer's entry as the plans of every host that has it the same way share it (keyed by
 * the Member object, which the namespace's views share until the peer changes, and by what else
 * the entry depends on): a host's plan holds a reference, not an object per peer per host. At
 * 1,000 machines each plan in flight held ~160 KB of peer entries (docs/benchmarks.md). Shared
 * entries are never changed (a relay gets a copy first); a WeakMap, so they go with the Member.
 */
const sharedPeers = new WeakMap<Member, Map<string, PeerPlan>>();
function sharedPeer(p: Member, variant: string, make: () => PeerPlan): PeerPlan {
  let byVariant = sharedPeers.get(p);
  if (!byVariant) sharedPeers.set(p, (byVariant = new Map<string, PeerPlan>()));
  let entry = byVariant.get(variant);
  if (!entry) byVariant.set(variant, (entry = make()));
  return entry;
}

interface SortableRoute {
  route: Route;
  base: number;
  base6: bigint;
}
/** A peer's routes with their sort keys, kept with a shared entry (parsed once, not per host). */
const sharedRoutes = new WeakMap<PeerPlan, { dev: string; routes: SortableRoute[] }>();
function routesVia(p: PeerPlan, dev: string, own: boolean): SortableRoute[] {
  const hit = own ? undefined : sharedRoutes.get(p);
  if (hit && hit.dev === dev) return hit.routes;
  const routes = p.allowedIPs.map((destination) => ({
    route: { destination, dev },
    base: parseCidr(destination)?.base ?? 2 ** 32,
    base6: destination.includes(":") ? (parseCidr6(destination)?.base ?? 0n) : 0n,
  }));
  if (!own) sharedRoutes.set(p, { dev, routes });
  return routes;
}

const byMachine = (a: { machine: string }, b: { machine: string }) => (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0);

/** Everything one machine needs, for every mesh it belongs to. */
export function planHost(namespace: string, machine: string, views: readonly MeshView[], facts: HostFacts = {}): HostPlan {
  const networks: NetworkPlan[] = [];
  const errors: SpecError[] = [];
  const taken: Array<{ mesh: ResolvedMesh }> = [];
  for (const view of [...views].sort((a, b) => (a.mesh.name < b.mesh.name ? -1 : 1))) {
    const self = view.members.find((m) => m.name === machine);
    if (!self?.subnet) continue; // not a member, or no subnet: planMesh reports why
    const clash = taken.find(({ mesh }) => sharedResource(mesh, view.mesh) !== undefined);
    if (clash) {
      const what = sharedResource(clash.mesh, view.mesh)!;
      errors.push({
        kind: "MeshNetwork",
        namespace,
        name: view.mesh.name,
        field: what.field,
        message: `MeshNetworks ${clash.mesh.name} and ${view.mesh.name} both use ${what.what} on machine ${machine}; give ${view.mesh.name} a different ${what.field}`,
      });
      continue;
    }
    taken.push({ mesh: view.mesh });
    networks.push(networkFor(self, view, facts));
  }
  return { namespace, machine, networks, errors, facts };
}

/**
 * Members of a mesh as planHost needs them, from Machines and the mesh plan. `allMeshes` (the
 * namespace's meshes) decide each member's port in this mesh (mesh/endpoints.ts).
 */
export function membersOf(plan: MeshPlan, machines: readonly Machine[], publicKeys: ReadonlyMap<string, string>, allMeshes: readonly ResolvedMesh[] = [plan.mesh]): Member[] {
  const subnets = new Map(plan.allocations.map((a) => [a.machine, a]));
  const byN = new Map(machines.map((m) => [m.metadata.name ?? "", m]));
  return plan.members.map((name) => {
    const m = byN.get(name);
    const subnet = subnets.get(name)?.subnet;
    const subnetV6 = subnets.get(name)?.subnetV6;
    const key = publicKeys.get(name);
    const { endpoint, endpointV6 } = m
      ? endpointIn(
          m,
          plan.mesh,
          allMeshes.filter((x) => isMember(x, m)),
        )
      : { endpoint: undefined, endpointV6: undefined };
    return {
      name,
      ...(endpoint ? { endpoint } : {}),
      ...(endpointV6 ? { endpointV6 } : {}),
      ...(key ? { publicKey: key } : {}),
      ...(subnet ? { subnet } : {}),
      ...(subnetV6 ? { subnetV6 } : {}),
    };
  });
}

/** Plans every mesh and every machine of a set of manifests (the `dockmesh plan` view). */
export function planAll(
  meshes: readonly MeshNetwork[],
  machines: readonly Machine[],
  publicKeys: ReadonlyMap<string, string> = new Map(),
  facts: ReadonlyMap<string, HostFacts> = new Map(),
): { meshes: MeshPlan[]; hosts: HostPlan[]; errors: SpecError[] } {
  const errors: SpecError[] = [];
  const resolved: ResolvedMesh[] = [];
  for (const m of meshes) {
    const r = resolveMesh(m);
    errors.push(...r.errors);
    if (r.mesh) resolved.push(r.mesh);
  }
  resolved.sort((a, b) => (a.namespace + "/" + a.name < b.namespace + "/" + b.name ? -1 : 1));
  // The same decision as the controllers': a mesh clashing with an earlier one on a machine is refused whole.
  const refused = meshConflicts(resolved, machines);
  const meshPlans = resolved.map((mesh) => {
    const refusal = refused.get(meshKey(mesh));
    return refusal ? refusedMeshPlan(mesh, machines, refusal) : planMesh(mesh, machines, { allMeshes: resolved.filter((r) => r.namespace === mesh.namespace) });
  });
  for (const p of meshPlans) errors.push(...p.errors);
  const views = meshPlans
    .filter((p) => !p.refused)
    .map((p) => ({
      plan: p,
      view: {
        mesh: p.mesh,
        members: membersOf(
          p,
          machines,
          publicKeys,
          resolved.filter((r) => r.namespace === p.mesh.namespace),
        ),
      },
    }));
  const hosts = [...machines]
    .sort((a, b) => ((a.metadata.namespace ?? "default") + "/" + a.metadata.name < (b.metadata.namespace ?? "default") + "/" + b.metadata.name ? -1 : 1))
    .map((m) => {
      const ns = m.metadata.namespace ?? "default";
      const name = m.metadata.name ?? "";
      const mine = views.filter((v) => v.plan.mesh.namespace === ns && v.plan.members.includes(name)).map((v) => v.view);
      const h = planHost(ns, name, mine, facts.get(`${ns}/${name}`) ?? {});
      errors.push(...h.errors);
      // A refused mesh this machine belongs to: said on the machine too (already counted above).
      const refusals = meshPlans.filter((p) => p.refused && p.mesh.namespace === ns && p.members.includes(name)).map((p) => p.refused!);
      return { ...h, errors: [...refusals, ...h.errors] };
    });
  return { meshes: meshPlans, hosts, errors };
}
