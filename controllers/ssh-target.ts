// From a Machine's spec, the Secrets it names and the host key records to an SSH target, or a
// problem the user can fix. SSH key Secrets are user-made and unlabelled: the controller does
// not watch them (it would have to cache every Secret of the cluster) but reads the named ones
// when a reconcile needs them.
import type { Machine } from "../api/types.generated.js";
import type { HostSession, SshEndpoint, SshTarget } from "../hosts/ssh.js";
import { HostError } from "../hosts/errors.js";
import { DEFAULT_SSH_PORT, DEFAULT_SSH_USER } from "../mesh/defaults.js";
import { findCondition } from "../runtime/conditions.js";
import type { SecretObject } from "../runtime/informer.js";
import { SECRETS, isNotFound, type ApiClient } from "../runtime/client.js";
import type { SetupProblem } from "./machine-conditions.js";
import { DEFAULT_SSH_SECRET_KEY } from "./resources.js";
import { endpointId, hostKeyRecordName, type HostKeyRecords } from "./host-keys.js";

/** A Secret by name, or undefined when it does not exist. */
export type SecretReader = (namespace: string, name: string) => Promise<SecretObject | undefined>;

/** Reads a Secret with GET: one request, for that name only. */
export function apiSecretReader(api: ApiClient): SecretReader {
  return async (namespace, name) => {
    try {
      return await api.get(SECRETS, namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(`cannot read Secret ${namespace}/${name}`, { cause: err });
    }
  };
}

interface EndpointSpec {
  host: string;
  port?: number;
  user?: string;
  privateKeySecretRef: { name: string; key?: string };
  hostKey?: string;
}

/** How one endpoint's host key is trusted on this connection. */
export interface HostKeyPlan {
  field: "spec.ssh" | "spec.ssh.bastion";
  /** The endpoint id the record is kept under ("user@host:port[ via host:port]"). */
  id: string;
  /** spec pins the key: the pin is enforced, and the record follows it. */
  pinned: boolean;
  /** The record's fingerprint, enforced when there is no pin; undefined: first contact. */
  recorded?: string;
}

export interface ResolvedTarget {
  target: SshTarget;
  hostKeys: HostKeyPlan[];
}

type Read = (name: string) => Promise<SecretObject | undefined>;

async function endpoint(ns: string, spec: EndpointSpec, field: HostKeyPlan["field"], read: Read): Promise<SshEndpoint | SetupProblem> {
  const ref = spec.privateKeySecretRef;
  const key = ref.key ?? DEFAULT_SSH_SECRET_KEY;
  const source = `Secret ${ns}/${ref.name} key ${key}`;
  const secret = await read(ref.name);
  if (!secret) {
    return {
      condition: "Reachable",
      reason: "SecretNotFound",
      message: `${field}.privateKeySecretRef: Secret ${ns}/${ref.name} not found; create it: kubectl -n ${ns} create secret generic ${ref.name} --from-file=${key}=PATH_TO_PRIVATE_KEY`,
    };
  }
  const b64 = secret.data?.[key];
  if (!b64) {
    const keys = Object.keys(secret.data ?? {}).sort();
    return {
      condition: "Reachable",
      reason: "SecretKeyMissing",
      message: `${field}.privateKeySecretRef: Secret ${ns}/${ref.name} has no key ${key}${keys.length ? ` (it has ${keys.join(", ")}); set ${field}.privateKeySecretRef.key` : ""}`,
    };
  }
  return {
    host: spec.host,
    port: spec.port ?? DEFAULT_SSH_PORT,
    user: spec.user ?? DEFAULT_SSH_USER,
    privateKey: Buffer.from(b64, "base64").toString("utf8"),
    keySource: source,
    ...(spec.hostKey ? { hostKeyPin: spec.hostKey } : {}),
  };
}

const isProblem = (x: object): x is SetupProblem => "reason" in x;

/**
 * The record's fingerprint for an endpoint, or a problem: no record although the Machine has
 * connected before. Status is only a hint here (it can make the controller stricter, never
 * trust a key): whoever deletes a record needs rights on Secrets, and a missing record for a
 * host that was contacted is never silently re-trusted.
 */
async function plan(m: Machine, e: SshEndpoint, field: HostKeyPlan["field"], via: SshEndpoint | undefined, records: HostKeyRecords): Promise<HostKeyPlan | SetupProblem> {
  const ns = m.metadata.namespace ?? "default";
  const id = endpointId(e, via);
  const pinned = Boolean(e.hostKeyPin);
  const recorded = await records.get(ns, id);
  if (recorded || pinned) return { field, id, pinned, ...(recorded ? { recorded } : {}) };
  const shown = field === "spec.ssh" ? m.status?.hostKeyFingerprint : m.status?.bastionHostKeyFingerprint;
  const reachable = findCondition(m.status?.conditions, "Reachable")?.status === "True";
  if (!shown && !reachable) return { field, id, pinned };
  return {
    condition: "Reachable",
    reason: "HostKeyUnknown",
    message:
      `${field}: no host key is recorded for ssh ${id} (Secret ${ns}/${hostKeyRecordName(id)} is missing) although this Machine has connected before${shown ? ` (status shows ${shown})` : ""}; ` +
      `not connecting, the key the host presents now is not trusted by itself. Check the key on the host itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and pin it: set ${field}.hostKey`,
  };
}

/** The SSH target of a Machine, reading the Secrets it names (each once) and its host key records. */
export async function sshTargetFor(m: Machine, secrets: SecretReader, records: HostKeyRecords): Promise<ResolvedTarget | SetupProblem> {
  const ns = m.metadata.namespace ?? "default";
  const seen = new Map<string, Promise<SecretObject | undefined>>();
  const read: Read = (name) => {
    let p = seen.get(name);
    if (!p) seen.set(name, (p = secrets(ns, name)));
    return p;
  };
  const main = await endpoint(ns, m.spec.ssh, "spec.ssh", read);
  if (isProblem(main)) return main;
  let bastion: SshEndpoint | undefined;
  if (m.spec.ssh.bastion) {
    const b = await endpoint(ns, m.spec.ssh.bastion, "spec.ssh.bastion", read);
    if (isProblem(b)) return b;
    bastion = b;
  }
  const plans: HostKeyPlan[] = [];
  for (const [e, field, via] of [...(bastion ? [[bastion, "spec.ssh.bastion", undefined] as const] : []), [main, "spec.ssh", bastion] as const]) {
    const p = await plan(m, e, field, via, records);
    if (isProblem(p)) return p;
    plans.push(p);
    if (p.recorded && !p.pinned) e.recordedFingerprint = p.recorded;
  }
  return { target: bastion ? { ...main, bastion } : main, hostKeys: plans };
}

export interface RecordedHostKey {
  field: HostKeyPlan["field"];
  id: string;
  fingerprint: string;
}

/**
 * After the handshake, before anything is sent to the host: records the key of each endpoint
 * contacted for the first time (trust on first use) and makes the record follow a pin. When
 * someone else recorded a different key meanwhile, that one wins and the connection is refused.
 * Returns the keys recorded on first contact (for the HostKeyRecorded event).
 */
export async function recordHostKeys(m: Machine, plans: readonly HostKeyPlan[], session: HostSession, records: HostKeyRecords): Promise<RecordedHostKey[]> {
  const ns = m.metadata.namespace ?? "default";
  const out: RecordedHostKey[] = [];
  for (const p of plans) {
    const seen = p.field === "spec.ssh" ? session.fingerprint : session.bastionFingerprint;
    if (!seen) continue;
    if (p.pinned) {
      await records.put(ns, p.id, seen);
      continue;
    }
    if (p.recorded) continue;
    const recorded = await records.create(ns, p.id, seen);
    if (recorded !== seen) {
      throw new HostError(
        "HostKeyMismatch",
        `ssh ${p.id}: host key changed: expected ${recorded} (recorded meanwhile in Secret ${ns}/${hostKeyRecordName(p.id)}), got ${seen}; refusing to go on. Check the key on the host itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); if it is the host's, pin it: set ${p.field}.hostKey`,
      );
    }
    out.push({ field: p.field, id: p.id, fingerprint: seen });
  }
  return out;
}

export { isProblem };

const addr = (s: EndpointSpec) => ({ host: s.host, port: s.port ?? DEFAULT_SSH_PORT, user: s.user ?? DEFAULT_SSH_USER });

/** The endpoint id of the Machine's host itself (through its bastion, if any): its host key record's key. */
export function sshEndpointIdOf(m: Machine): string {
  return endpointId(addr(m.spec.ssh), m.spec.ssh.bastion ? addr(m.spec.ssh.bastion) : undefined);
}

/** Names of the host key records a Machine's connection uses (to map their watch events to it). */
export function hostKeyRecordNamesOf(m: Machine): string[] {
  const b = m.spec.ssh.bastion ? addr(m.spec.ssh.bastion) : undefined;
  return [endpointId(addr(m.spec.ssh), b), ...(b ? [endpointId(b)] : [])].map(hostKeyRecordName);
}
