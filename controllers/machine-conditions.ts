// The Machine's conditions, decided from what one reconcile saw. Pure: the same outcome
// always gives the same conditions, and no message holds a time or an unsorted list, so a
// resync that finds nothing new changes nothing.
import type { NatPath, NetworkPlan } from "../mesh/plan.js";
import type { ConvergeResult } from "../hosts/converge.js";
import type { HostObservation, WgPeerState } from "../hosts/observe.js";
import type { ConditionStatus } from "../api/meta.js";

export const MACHINE_CONDITION_TYPES = ["Ready", "Reachable", "DockerReady", "WireGuardReady", "NetworkConfigured", "PeersConnected"] as const;
export type MachineConditionType = (typeof MACHINE_CONDITION_TYPES)[number];

export interface ConditionInput {
  /** DNSReady (controllers/dns-condition.ts) is not part of what Ready summarises. */
  type: MachineConditionType | "DNSReady";
  status: ConditionStatus;
  reason: string;
  message: string;
}

/** At most this many names in a condition message; the rest are counted ("and 995 more"). */
export const NAMES_IN_MESSAGE = 5;

/**
 * A list for a message: the first NAMES_IN_MESSAGE items and a count of the rest, so that a
 * mesh of a thousand machines gives a message of a line, not one over the API's 32 KiB limit.
 */
export function listed(items: readonly string[], separator = ", "): string {
  const head = items.slice(0, NAMES_IN_MESSAGE).join(separator);
  return items.length > NAMES_IN_MESSAGE ? `${head} and ${items.length - NAMES_IN_MESSAGE} more` : head;
}

/** A handshake younger than this counts as connected (WireGuard re-keys every 2 minutes). */
export const CONNECTED_HANDSHAKE_AGE_S = 180;

/** A latest handshake (seconds since the epoch, 0: never) young enough to count as connected: status and /metrics alike. */
export const isFreshHandshake = (t: number, nowS: number): boolean => t > 0 && nowS - t < CONNECTED_HANDSHAKE_AGE_S;

export type PeerState = "Connected" | "Stale" | "NoHandshake" | "Relayed" | "Unreachable";

export interface PeerReport {
  machine: string;
  /** The mesh this report is for: a peer in two meshes with this machine has a report in each. */
  meshNetwork?: string;
  publicKey?: string;
  endpoint?: string;
  via?: string;
  state: PeerState;
  latestHandshake: number;
  /** The controller cannot reach this peer's host: its state is not held against us. */
  unmanaged?: boolean;
  /** A peer behind NAT like this machine: the path the pair takes, why, and since when (RFC 3339). */
  path?: NatPath["path"];
  pathReason?: string;
  pathSince?: string;
}

/** Failures before or instead of talking to the host. */
export interface SetupProblem {
  /** Which condition carries it. */
  condition: "Reachable" | "NetworkConfigured";
  reason: string;
  message: string;
}

export type Outcome =
  | { kind: "setup"; problem: SetupProblem }
  | { kind: "hostError"; reason: string; message: string; stage: "connect" | "preflight" }
  | {
      kind: "converged";
      result: ConvergeResult;
      connectedVia: string;
      peers: PeerReport[];
      planErrors: string[];
      /** The reason planErrors are given under (default WaitingForSubnet). */
      planErrorReason?: string;
      /** Members not configured as peers yet: they have no WireGuard key so far. */
      pendingPeers?: string[];
      /** MTU changes held back because containers are attached. */
      mtuPending?: string[];
      /** IPv6 turned on or off under attached containers (NetworkPlan.ipv6Held), as NetworkConfigured says it. */
      ipv6Pending?: string[];
      /** ipv6ForwardingText. */
      ipv6Forwarding?: string[];
      /** Values refused where they were read (a forged status, a bad Secret), naming the field; left out of the plan. */
      refusedValues?: string[];
    };

export function peerReports(
  networks: readonly NetworkPlan[],
  obs: Pick<HostObservation, "wg"> | { wg: ReadonlyMap<string, { peers: readonly WgPeerState[] }> },
  nowS: number,
  unmanaged: ReadonlySet<string> = new Set(),
): PeerReport[] {
  const out: PeerReport[] = [];
  for (const net of networks) {
    const live = new Map((obs.wg.get(net.wireguard.interface)?.peers ?? []).map((p) => [p.publicKey, p]));
    const stateOf = (key: string | undefined): { state: PeerState; latestHandshake: number } => {
      const p = key ? live.get(key) : undefined;
      const t = p?.latestHandshake ?? 0;
      if (!t) return { state: "NoHandshake", latestHandshake: 0 };
      return { state: isFreshHandshake(t, nowS) ? "Connected" : "Stale", latestHandshake: t };
    };
    const direct = new Map<string, ReturnType<typeof stateOf>>();
    const paths = new Map((net.natPaths ?? []).map((p) => [p.machine, p]));
    const pathOf = (machine: string) => {
      const p = paths.get(machine);
      return p ? { path: p.path, pathReason: p.reason, pathSince: p.since, ...(p.endpoint ? { endpoint: p.endpoint } : {}) } : {};
    };
    for (const p of net.wireguard.peers) {
      // A peer being probed is reported as relayed (below): the relay carries its traffic.
      if (p.path === "Probing") continue;
      const s = stateOf(p.publicKey);
      direct.set(p.machine, s);
      out.push({ machine: p.machine, meshNetwork: net.meshNetwork, ...(p.publicKey ? { publicKey: p.publicKey } : {}), ...(p.endpoint ? { endpoint: p.endpoint } : {}), ...s, ...pathOf(p.machine) });
    }
    for (const r of net.relayed) {
      const viaState = direct.get(r.via);
      out.push({
        machine: r.machine,
        meshNetwork: net.meshNetwork,
        via: r.via,
        state: viaState?.state === "Connected" ? "Relayed" : (viaState?.state ?? "NoHandshake"),
        latestHandshake: viaState?.latestHandshake ?? 0,
        ...pathOf(r.machine),
      });
    }
    for (const u of net.unreachable) out.push({ machine: u, meshNetwork: net.meshNetwork, state: "Unreachable", latestHandshake: 0, ...pathOf(u) });
  }
  for (const p of out) if (unmanaged.has(p.machine)) p.unmanaged = true;
  return out.sort((a, b) => (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0));
}

const ok = (s: PeerState) => s === "Connected" || s === "Relayed";

/** At most this many peers per mesh are listed in a Machine's status; status.peers counts them all. */
export const MAX_LISTED_PEERS = 50;

/**
 * The peers a Machine's status lists: every one up to MAX_LISTED_PEERS; beyond that, those not
 * connected first (what needs looking at), then connected ones, by name, sorted by machine.
 * Listing all of them made each Machine of a 1,000-machine mesh ~150 KB of status, written on
 * every change and cached by the controller for every Machine: O(N²) memory and traffic.
 */
export function listedPeers(reports: readonly PeerReport[]): PeerReport[] {
  if (reports.length <= MAX_LISTED_PEERS) return [...reports];
  const byName = (a: PeerReport, b: PeerReport) => (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0);
  const attention = reports.filter((p) => !ok(p.state));
  const fine = reports.filter((p) => ok(p.state));
  return [...attention.sort(byName), ...fine.sort(byName)].slice(0, MAX_LISTED_PEERS).sort(byName);
}
/**
 * The peers PeersConnected counts, and those of them connected: every peer save those the
 * controller cannot reach (their own Machine is Reachable=False): those are not held against
 * this machine, and the message names the ones not connected. status.peers shows the same two
 * numbers, so the PEERS column and Ready never disagree (issue 12: "PEERS 0/2, READY True").
 */
export function countPeers(peers: readonly PeerReport[]): { counted: PeerReport[]; good: PeerReport[] } {
  const counted = peers.filter((p) => !p.unmanaged);
  return { counted, good: counted.filter((p) => ok(p.state)) };
}

/**
 * status.peers for an outcome: "connected/counted" (members without a key yet count, as in
 * PeersConnected), or undefined when this outcome did not observe the host: the old count is
 * then removed, not left standing next to Ready=False (issue 12: "PEERS 2/2" under HostKeyMismatch).
 */
export function peersColumn(outcome: Outcome): string | undefined {
  if (outcome.kind !== "converged") return undefined;
  const { counted, good } = countPeers(outcome.peers);
  return `${good.length}/${counted.length + (outcome.pendingPeers?.length ?? 0)}`;
}

/** Each MTU change held under containers (NetworkPlan.mtuHeld), as NetworkConfigured says it. */
export function mtuHeldText(networks: readonly NetworkPlan[]): string[] {
  return networks.flatMap((n) =>
    n.mtuHeld
      ? [
          `MeshNetwork ${n.meshNetwork}: the MTU should be ${n.mtuHeld.want} but Docker network ${n.docker.name} has ${n.mtuHeld.containers} container(s) attached and keeps ${n.mtuHeld.have} (tunnel too) until they are stopped or disconnected; then it is recreated with ${n.mtuHeld.want}`,
        ]
      : [],
  );
}

/** Each dual-stack mesh on a host that does not forward IPv6 (NetworkPlan.ipv6ForwardingOff). */
export function ipv6ForwardingText(networks: readonly NetworkPlan[]): string[] {
  return networks
    .filter((n) => n.ipv6ForwardingOff)
    .map(
      (n) =>
        `MeshNetwork ${n.meshNetwork}: the host does not forward IPv6 (net.ipv6.conf.all.forwarding is 0), so containers get no IPv6 across the mesh; Docker turns it on with an IPv6 network unless its ip-forward option is off. Turn it on (sysctl -w net.ipv6.conf.all.forwarding=1; first accept_ra=2 on an uplink configured by router advertisements, so it keeps its default route), or remove spec.cidrV6`,
    );
}

/** Each IPv6 change of a Docker network held under containers (NetworkPlan.ipv6Held). */
export function ipv6HeldText(networks: readonly NetworkPlan[]): string[] {
  return networks.flatMap((n) => {
    const h = n.ipv6Held;
    if (!h) return [];
    const what = h.change === "add" ? `should get IPv6 (${h.subnetV6})` : `should lose its IPv6 (${h.subnetV6}): the mesh no longer has spec.cidrV6`;
    const then = h.change === "add" ? "recreated with IPv6; everything else of the mesh's IPv6 is in place" : "recreated without it; the tunnel, routes and rules for IPv6 are removed already";
    return [
      `MeshNetwork ${n.meshNetwork}: Docker network ${n.docker.name} ${what}, but has ${h.containers} container(s) attached and Docker cannot change a network's IPv6 in place; it is ${then} once they are stopped or disconnected`,
    ];
  });
}

const unknown = (type: MachineConditionType, message: string): ConditionInput => ({ type, status: "Unknown", reason: "NotObserved", message });

function describeAreas(steps: ConvergeResult["remaining"], area: string): string[] {
  return [...new Set(steps.filter((s) => s.area === area).map((s) => s.display))].sort();
}

/** Conditions other than Ready, in a fixed order. */
export function machineConditions(outcome: Outcome): ConditionInput[] {
  if (outcome.kind === "setup") {
    const p = outcome.problem;
    if (p.condition === "Reachable") {
      return [
        { type: "Reachable", status: "False", reason: p.reason, message: p.message },
        unknown("DockerReady", "the host was not reached"),
        unknown("WireGuardReady", "the host was not reached"),
        unknown("NetworkConfigured", "the host was not reached"),
        unknown("PeersConnected", "the host was not reached"),
      ];
    }
    return [
      { type: "Reachable", status: "Unknown", reason: "NotContacted", message: "the host is contacted once it has a network to configure" },
      unknown("DockerReady", "the host was not contacted"),
      unknown("WireGuardReady", "the host was not contacted"),
      { type: "NetworkConfigured", status: "False", reason: p.reason, message: p.message },
      unknown("PeersConnected", "the host was not contacted"),
    ];
  }
  if (outcome.kind === "hostError") {
    if (outcome.stage === "connect") {
      return machineConditions({ kind: "setup", problem: { condition: "Reachable", reason: outcome.reason, message: outcome.message } });
    }
    return [
      { type: "Reachable", status: "True", reason: "Connected", message: "SSH works" },
      { type: "DockerReady", status: "False", reason: outcome.reason, message: outcome.message },
      unknown("WireGuardReady", "preflight checks failed"),
      unknown("NetworkConfigured", "preflight checks failed"),
      unknown("PeersConnected", "preflight checks failed"),
    ];
  }

  const { result, peers } = outcome;
  const obs = result.observation;
  const conds: ConditionInput[] = [
    { type: "Reachable", status: "True", reason: "Connected", message: outcome.connectedVia },
    { type: "DockerReady", status: "True", reason: "DockerRunning", message: `Docker ${obs.dockerVersion}` },
  ];

  // WireGuard: every planned interface up with our key and port.
  const wgProblems: string[] = [];
  for (const n of result.networks) {
    const i = n.wireguard.interface;
    const link = obs.links.get(i);
    if (!link) wgProblems.push(`${i} does not exist`);
    else if (!link.up) wgProblems.push(`${i} is down`);
    else if (obs.wg.get(i)?.listenPort !== n.wireguard.listenPort) wgProblems.push(`${i} does not listen on UDP ${n.wireguard.listenPort}`);
  }
  const wgApply = outcome.result.applyError && outcome.result.remaining.some((s) => s.area === "wireguard");
  if (result.networks.length === 0) conds.push({ type: "WireGuardReady", status: "True", reason: "NoNetworks", message: "not a member of any MeshNetwork" });
  else if (wgProblems.length)
    conds.push({ type: "WireGuardReady", status: "False", reason: wgApply ? "ApplyFailed" : "InterfaceDown", message: [...wgProblems, ...(wgApply ? [result.applyError!.message] : [])].join("; ") });
  else {
    const impl = obs.wireguardImplementation === "kernel" ? "kernel" : "userspace (wireguard-go)";
    conds.push({
      type: "WireGuardReady",
      status: "True",
      reason: "InterfaceUp",
      message: `${result.networks.map((n) => `${n.wireguard.interface} up on UDP ${n.wireguard.listenPort}`).join(", ")}, ${impl}`,
    });
  }

  // Network: no blockers, nothing left to change, no spec problems for this machine.
  const leftovers = ["docker", "rules", "routes", "unit", "teardown"].flatMap((a) => describeAreas(result.remaining, a));
  if (outcome.planErrors.length) {
    // A mesh that has no subnet for this machine yet (just joined, or its spec is refused).
    conds.push({ type: "NetworkConfigured", status: "False", reason: outcome.planErrorReason ?? "WaitingForSubnet", message: [...outcome.planErrors].sort().join("; ") });
  } else if (outcome.refusedValues?.length) {
    conds.push({ type: "NetworkConfigured", status: "False", reason: "UnsafeValue", message: `refused: ${listed([...outcome.refusedValues].sort(), "; ")}` });
  } else if (result.blockers.length) {
    const b = [...result.blockers].sort((x, y) => (x.meshNetwork + x.reason < y.meshNetwork + y.reason ? -1 : 1));
    conds.push({ type: "NetworkConfigured", status: "False", reason: b[0]!.reason, message: b.map((x) => `MeshNetwork ${x.meshNetwork}: ${x.message}`).join("; ") });
  } else if (result.applyError) {
    conds.push({ type: "NetworkConfigured", status: "False", reason: "ApplyFailed", message: result.applyError.message });
  } else if (outcome.mtuPending?.length) {
    conds.push({ type: "NetworkConfigured", status: "False", reason: "MtuChangePending", message: outcome.mtuPending.join("; ") });
  } else if (outcome.ipv6Pending?.length) {
    conds.push({ type: "NetworkConfigured", status: "False", reason: "IPv6ChangePending", message: outcome.ipv6Pending.join("; ") });
  } else if (outcome.ipv6Forwarding?.length) {
    conds.push({ type: "NetworkConfigured", status: "False", reason: "IPv6ForwardingOff", message: outcome.ipv6Forwarding.join("; ") });
  } else if (leftovers.length) {
    conds.push({ type: "NetworkConfigured", status: "False", reason: "Drift", message: `still differs after applying: ${listed(leftovers, "; ")}` });
  } else if (result.networks.length === 0) {
    conds.push({ type: "NetworkConfigured", status: "True", reason: "NoNetworks", message: "not a member of any MeshNetwork" });
  } else {
    conds.push({ type: "NetworkConfigured", status: "True", reason: "Configured", message: result.networks.map((n) => `${n.docker.name} ${n.subnet} on ${n.docker.bridge}`).join(", ") });
  }

  // Peers. A peer the controller cannot reach is listed but not held against this machine:
  // one broken host degrades alone.
  const { counted, good } = countPeers(peers);
  const unreachable = counted.filter((p) => p.state === "Unreachable").map((p) => p.machine);
  const waiting = counted.filter((p) => !ok(p.state) && p.state !== "Unreachable");
  const aside = peers.filter((p) => p.unmanaged && !ok(p.state)).map((p) => p.machine);
  const note = aside.length ? `; not counted: ${listed(aside)} (the controller cannot reach ${aside.length === 1 ? "it" : "them"})` : "";
  const pending = outcome.pendingPeers ?? [];
  if (pending.length) {
    conds.push({
      type: "PeersConnected",
      status: "False",
      reason: "PeersPending",
      message: `${good.length}/${counted.length + pending.length} connected; ${listed(pending)} ${pending.length === 1 ? "has" : "have"} no WireGuard key yet (their first reconcile creates it)${note}`,
    });
  } else if (unreachable.length) {
    // Behind NAT like this machine, or an uplink of the other address family (mesh/uplinks.ts).
    const families = new Set(result.networks.flatMap((n) => n.noSharedFamily ?? []));
    const natted = unreachable.filter((u) => !families.has(u));
    const gapped = unreachable.filter((u) => families.has(u));
    const why = [
      ...(natted.length ? [`${listed(natted)} cannot be reached: both behind NAT and no machine in the mesh has an endpoint to relay through; give one machine spec.endpoint`] : []),
      ...(gapped.length
        ? [
            `${listed(gapped)} cannot be reached: ${gapped.length === 1 ? "its uplink shares" : "their uplinks share"} no address family with this machine's and no machine in the mesh has an endpoint in both to relay through; give one machine spec.endpoint (IPv4) and spec.endpointV6`,
          ]
        : []),
    ];
    conds.push({
      type: "PeersConnected",
      status: "False",
      reason: "NoRelay",
      message: `${good.length}/${counted.length} connected; ${why.join("; ")}${note}`,
    });
  } else if (waiting.length) {
    const detail = listed(
      waiting.map(
        (p) => `${p.machine} (${p.state === "Stale" ? "handshake is stale" : "no handshake yet"}${p.via ? ` via relay ${p.via}` : p.endpoint ? `, endpoint ${p.endpoint}` : ", it connects in"})`,
      ),
    );
    conds.push({
      type: "PeersConnected",
      status: "False",
      reason: "HandshakePending",
      message: `${good.length}/${counted.length} connected; waiting for ${detail}; check that UDP reaches the WireGuard port${note}`,
    });
  } else {
    conds.push({ type: "PeersConnected", status: "True", reason: "AllConnected", message: `${good.length}/${counted.length} peers connected${note}` });
  }
  return conds;
}

/** Ready: the first False condition decides, else the first Unknown; all True → Converged. */
export function readyCondition(conds: readonly ConditionInput[]): ConditionInput {
  const rest = MACHINE_CONDITION_TYPES.slice(1)
    .map((t) => conds.find((c) => c.type === t))
    .filter((c): c is ConditionInput => c !== undefined);
  const c = rest.find((x) => x.status === "False") ?? rest.find((x) => x.status === "Unknown");
  if (c) return { type: "Ready", status: "False", reason: c.reason, message: `${c.type}: ${c.message}` };
  return { type: "Ready", status: "True", reason: "Converged", message: "the host matches the plan and every peer is connected" };
}
