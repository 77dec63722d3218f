// The status of a Machine, composed from what a reconcile found: pure functions from the status
// as stored and an outcome to the status to write (the writes are the reconciler's).
import type { Machine, MachineStatus, MachineStatusNetwork, MeshNetwork } from "../api/types.generated.js";
import { DEFAULT_UNREACHABLE_GRACE_SECONDS, resolveMesh } from "../mesh/defaults.js";
import { isMember, type NetworkPlan } from "../mesh/plan.js";
import type { HostSession } from "../hosts/ssh.js";
import { findCondition, formatTime, removeCondition, setConditions } from "../runtime/conditions.js";
import { STATUS_WRITE_FAILED } from "../runtime/status-failure.js";
import type { MachineKey } from "./keys.js";
import { networkRecord, previousFromStatus, recordedNetworks, unrecorded, withIntended } from "./previous-networks.js";
import { listed, listedPeers, peersColumn, readyCondition, MACHINE_CONDITION_TYPES, type ConditionInput, type Outcome, type PeerReport } from "./machine-conditions.js";
import { DNS_CONDITION, dnsCondition, servingText, type ResolverVerdict } from "./dns-condition.js";
import type { DnsHostState } from "./dns.js";

export const ORDER = [...MACHINE_CONDITION_TYPES, DNS_CONDITION] as readonly string[];

type Status = MachineStatus | undefined;

/**
 * When the API server refuses a status write: the status as stored, with Ready saying so; failing
 * that, only what teardown needs (the networks' names, checked), the key peers use and the last
 * key rotation done.
 */
export function statusWriteFallbacks(m: Machine, now: number): Array<(cur: Status, problem: string) => MachineStatus> {
  const failed = (cur: Status, problem: string): MachineStatus["conditions"] => {
    const message = `the controller could not write this Machine's status, so the rest of it is out of date: ${problem}`;
    const cond: ConditionInput = { type: "Ready", status: "False", reason: STATUS_WRITE_FAILED, message };
    return setConditions(cur?.conditions, [cond], m.metadata.generation ?? 0, now, ORDER);
  };
  return [
    (cur, problem) => ({ ...cur, conditions: failed(cur, problem) }),
    (cur, problem) => {
      const { previous } = previousFromStatus({ ...m, status: cur }, new Set());
      const networks = previous.map((p) => ({ meshNetwork: p.meshNetwork, interface: p.interface, ...(p.dockerNetwork ? { dockerNetwork: p.dockerNetwork } : {}) }));
      const kept = { ...(cur?.publicKey ? { publicKey: cur.publicKey } : {}), ...(cur?.keyRotation !== undefined ? { keyRotation: cur.keyRotation } : {}) };
      return { ...kept, ...(networks.length ? { networks } : {}), conditions: failed(undefined, problem) };
    },
  ];
}

/** Drift found on a converged host, said before it is repaired. */
export function driftStatus(cur: Status, m: Machine, what: readonly string[], now: number): MachineStatus {
  const drift: ConditionInput[] = [{ type: "NetworkConfigured", status: "False", reason: "DriftDetected", message: `repairing: ${listed(what, "; ")}` }];
  return { ...cur, conditions: setConditions(m.status?.conditions, [...drift, readyCondition([...drift])], m.metadata.generation ?? 0, now, ORDER) };
}

/**
 * The status that records the planned networks status does not list yet (unrecorded), written
 * before anything of them is applied; undefined when nothing is new. A machine that has a Ready
 * condition also says it is configuring them: its Ready stayed True beside a mesh not configured
 * yet, and `kubectl wait --for=condition=Ready` after a label change that added a mesh passed
 * before the mesh was there. A machine with no Ready yet (its first converge) is left without one.
 */
export function intendedStatus(cur: Status, planned: readonly NetworkPlan[], gen: number, now: number): MachineStatus | undefined {
  const added = unrecorded(cur?.networks ?? [], planned);
  if (!added.length) return undefined;
  const networks = withIntended(cur?.networks ?? [], added);
  if (!findCondition(cur?.conditions, "Ready")) return { ...cur, networks };
  const names = added.map((n) => `MeshNetwork ${n.meshNetwork}`).sort();
  const cond: ConditionInput = { type: "NetworkConfigured", status: "False", reason: "Converging", message: `configuring ${listed(names)} on the host` };
  return { ...cur, networks, conditions: setConditions(cur?.conditions, [cond, readyCondition([cond])], gen, now, ORDER) };
}

/** A teardown that failed: Ready False, and no PEERS count (the host was not observed). */
export function teardownFailedStatus(cur: Status, m: Machine, message: string, now: number): MachineStatus {
  const cond: ConditionInput = { type: "Ready", status: "False", reason: "TeardownFailed", message };
  const { peers: _peers, ...rest } = cur ?? {};
  return { ...rest, conditions: setConditions(cur?.conditions, [cond], m.metadata.generation ?? 0, now, ORDER) };
}

/**
 * DNSReady from the last converge's verdict (undefined: not converged since the controller
 * started, so what status recorded) and the records half's view of the host.
 */
export function dnsReadyCondition(m: Machine, verdict: { known: boolean; value?: ResolverVerdict }, hostState: DnsHostState | undefined, meshes: readonly MeshNetwork[]): ConditionInput | undefined {
  let v = verdict.value;
  if (!verdict.known) {
    const recorded = (m.status?.networks ?? []).filter((n) => n.dns?.zone && n.dns.address);
    v = recorded.length ? { serving: recorded.map((n) => servingText(n.dns!.zone!, n.dns!.address!, n.dns!.containers ?? "none")).sort() } : undefined;
  }
  // The grace of the machine's meshes with DNS (the longest), for messages.
  const graces = meshes
    .flatMap((x) => resolveMesh(x).mesh ?? [])
    .filter((x) => x.dns && isMember(x, m))
    .map((x) => x.dns!.unreachableGraceSeconds);
  return dnsCondition(v, hostState, graces.length ? Math.max(...graces) : DEFAULT_UNREACHABLE_GRACE_SECONDS);
}

/** DNSReady alone set to `want` (or removed), or undefined when status already says so. */
export function dnsOnlyStatus(cur: Status, m: Machine, want: ConditionInput | undefined, now: number): MachineStatus {
  return { ...cur, conditions: want ? setConditions(cur?.conditions, [want], m.metadata.generation ?? 0, now, ORDER) : removeCondition(cur?.conditions, DNS_CONDITION) };
}

export interface OutcomeInput {
  m: Machine;
  outcome: Outcome;
  conditions: ConditionInput[];
  dns: ConditionInput | undefined;
  session: Pick<HostSession, "fingerprint" | "bastionFingerprint"> | undefined;
  key: MachineKey;
  /**
   * The machine's meshes; one of them not planned (invalid, or refused for a clash) keeps its
   * entry in status.networks, as the host keeps what it has of it: it is torn down when the mesh goes.
   */
  keep: ReadonlySet<string>;
  now: number;
}

/** The status an outcome gives, from the status as stored. */
export function outcomeStatus(cur: Status, x: OutcomeInput): MachineStatus {
  const { m, outcome, key } = x;
  const gen = m.metadata.generation ?? 0;
  const next: MachineStatus = { ...cur, observedGeneration: gen, publicKey: key.publicKey };
  if (key.rotatedFor !== undefined) next.keyRotation = key.rotatedFor;
  if (x.session) {
    next.hostKeyFingerprint = x.session.fingerprint;
    if (x.session.bastionFingerprint) next.bastionHostKeyFingerprint = x.session.bastionFingerprint;
  }
  if (outcome.kind === "converged") {
    const obs = outcome.result.observation;
    if (obs.dockerVersion) next.dockerVersion = obs.dockerVersion;
    next.wireguardImplementation = obs.wireguardImplementation;
    const leftovers = new Set(outcome.result.remaining.filter((s) => s.area === "teardown").map((s) => s.meshNetwork));
    next.networks = recordedNetworks(networkStatus(outcome.result.networks, outcome.peers, cur?.networks ?? []), cur?.networks ?? [], x.keep, leftovers);
    next.subnet = outcome.result.networks.map((n) => n.subnet).join(",");
    next.subnetV6 = outcome.result.networks.flatMap((n) => (n.subnetV6 !== undefined ? [n.subnetV6] : [])).join(",");
    next.dns = outcome.result.networks.flatMap((n) => (n.dns ? [`${n.dns.address} ${n.dns.zone}`] : [])).join(", ");
    if (!next.networks.length) delete next.networks;
    if (!next.subnet) delete next.subnet;
    if (!next.subnetV6) delete next.subnetV6;
    if (!next.dns) delete next.dns;
  }
  // The same counts as PeersConnected; none when the host was not observed.
  const peers = peersColumn(outcome);
  if (peers === undefined) delete next.peers;
  else next.peers = peers;
  const ready = readyCondition(x.conditions);
  next.conditions = setConditions(x.dns ? cur?.conditions : removeCondition(cur?.conditions, DNS_CONDITION), [ready, ...x.conditions, ...(x.dns ? [x.dns] : [])], gen, x.now, ORDER);
  return next;
}

export function networkStatus(networks: readonly NetworkPlan[], peers: readonly PeerReport[], prev: readonly MachineStatusNetwork[]): MachineStatusNetwork[] {
  return networks.map((n) => {
    const before = new Map((prev.find((p) => p.meshNetwork === n.meshNetwork)?.peers ?? []).map((p) => [p.machine, p]));
    // This mesh's reports only: a peer in two meshes with this machine has a report in each, and
    // taking both made peers[] list it twice (the API server refuses the write: 422 Duplicate value).
    const mine = new Set([...n.wireguard.peers.map((p) => p.machine), ...n.relayed.map((r) => r.machine), ...n.unreachable]);
    const reports = peers.filter((p) => (p.meshNetwork === undefined || p.meshNetwork === n.meshNetwork) && mine.has(p.machine));
    return {
      ...networkRecord(n),
      ...(n.dns ? { dns: { zone: n.dns.zone, address: n.dns.address, containers: n.dns.mode.mode, reason: n.dns.mode.reason } } : {}),
      peers: listedPeers(reports).map((p) => {
        const old = before.get(p.machine);
        // The handshake time is refreshed only when the state changes: a resync writes nothing.
        const time = old && old.state === p.state ? old.lastHandshakeTime : p.latestHandshake ? formatTime(p.latestHandshake * 1000) : undefined;
        return {
          machine: p.machine,
          ...(p.publicKey ? { publicKey: p.publicKey } : {}),
          ...(p.endpoint ? { endpoint: p.endpoint } : {}),
          ...(p.via ? { via: p.via } : {}),
          state: p.state,
          ...(time ? { lastHandshakeTime: time } : {}),
          ...(p.path ? { path: p.path, ...(p.pathReason ? { pathReason: p.pathReason.slice(0, 512) } : {}), ...(p.pathSince ? { pathSince: p.pathSince } : {}) } : {}),
        };
      }),
    };
  });
}
