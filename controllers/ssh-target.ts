// From a Machine's spec and the Secrets it names to an SSH target, or a problem the user can fix.
import type { Machine } from "../api/types.generated.js";
import type { SshEndpoint, SshTarget } from "../hosts/ssh.js";
import { DEFAULT_SSH_PORT, DEFAULT_SSH_USER } from "../mesh/defaults.js";
import type { SecretObject } from "../runtime/informer.js";
import type { SetupProblem } from "./machine-conditions.js";
import { DEFAULT_SSH_SECRET_KEY } from "./resources.js";

type SecretLookup = (namespace: string, name: string) => SecretObject | undefined;

interface EndpointSpec {
  host: string;
  port?: number;
  user?: string;
  privateKeySecretRef: { name: string; key?: string };
  hostKey?: string;
}

function endpoint(ns: string, spec: EndpointSpec, field: string, recorded: string | undefined, secrets: SecretLookup): SshEndpoint | SetupProblem {
  const ref = spec.privateKeySecretRef;
  const key = ref.key ?? DEFAULT_SSH_SECRET_KEY;
  const source = `Secret ${ns}/${ref.name} key ${key}`;
  const secret = secrets(ns, ref.name);
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
    ...(recorded ? { recordedFingerprint: recorded } : {}),
  };
}

const isProblem = (x: SshEndpoint | SetupProblem): x is SetupProblem => "reason" in x;

export function sshTargetFor(m: Machine, secrets: SecretLookup): SshTarget | SetupProblem {
  const ns = m.metadata.namespace ?? "default";
  const main = endpoint(ns, m.spec.ssh, "spec.ssh", m.status?.hostKeyFingerprint, secrets);
  if (isProblem(main)) return main;
  if (!m.spec.ssh.bastion) return main;
  const bastion = endpoint(ns, m.spec.ssh.bastion, "spec.ssh.bastion", m.status?.bastionHostKeyFingerprint, secrets);
  if (isProblem(bastion)) return bastion;
  return { ...main, bastion };
}

export { isProblem };
