// SSH host keys seen on first contact, recorded where only the controller writes (like ssh's
// known_hosts): one Secret per SSH endpoint in the Machine's namespace, labelled as ours so the
// controller's labelled Secret informer caches it. Not owned by the Machine: the record outlives
// the Machine's deletion and its re-creation from Git. Machine status only displays the
// fingerprint; anyone allowed to write status could otherwise make the controller trust an
// impostor by deleting it.
import { createHash } from "node:crypto";
import type { Informer, SecretObject } from "../runtime/informer.js";
import { SECRETS, isConflict, isNotFound, type ApiClient } from "../runtime/client.js";
import { MANAGED_BY } from "./resources.js";

/** Label on every host key record (besides MANAGED_BY). */
export const HOST_KEY_LABEL = "dockmesh.io/host-key";
/** Annotation naming the endpoint a record is for: "root@198.18.0.10:22 via 198.18.0.11:22". */
export const ENDPOINT_ANNOTATION = "dockmesh.io/ssh-endpoint";
export const HOST_KEY_SECRET_TYPE = "dockmesh.io/ssh-host-key";

export interface EndpointAddress {
  host: string;
  port: number;
  user: string;
}

/** "user@host:port", plus " via host:port" of the bastion the connection goes through. */
export function endpointId(e: EndpointAddress, via?: EndpointAddress): string {
  return `${e.user}@${e.host}:${e.port}${via ? ` via ${via.host}:${via.port}` : ""}`;
}

/** The record's Secret name: dockmesh-hostkey-<first 20 hex of sha256(endpoint id)>. */
export function hostKeyRecordName(id: string): string {
  return `dockmesh-hostkey-${createHash("sha256").update(id).digest("hex").slice(0, 20)}`;
}

/** Where host key records are read and written. */
export interface HostKeyRecords {
  /** The fingerprint recorded for the endpoint, or undefined when there is no record. */
  get(namespace: string, id: string): Promise<string | undefined>;
  /**
   * Records the fingerprint unless a record exists; returns what is recorded now (the given
   * fingerprint, or the one somebody recorded first).
   */
  create(namespace: string, id: string, fingerprint: string): Promise<string>;
  /** Sets the record to a fingerprint verified against a pin in spec (created when missing). */
  put(namespace: string, id: string, fingerprint: string): Promise<void>;
}

function fingerprintIn(s: SecretObject | undefined, id: string): string | undefined {
  if (!s) return undefined;
  // A record for another endpoint under this name (a hash collision, a hand-made Secret) is none.
  if (s.metadata?.annotations?.[ENDPOINT_ANNOTATION] !== id) return undefined;
  const b64 = s.data?.fingerprint;
  return b64 ? Buffer.from(b64, "base64").toString("utf8").trim() || undefined : undefined;
}

function body(namespace: string, id: string, fingerprint: string, resourceVersion?: string): SecretObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: HOST_KEY_SECRET_TYPE,
    metadata: {
      name: hostKeyRecordName(id),
      namespace,
      labels: { ...MANAGED_BY, [HOST_KEY_LABEL]: "true" },
      annotations: { [ENDPOINT_ANNOTATION]: id },
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    data: { fingerprint: Buffer.from(fingerprint).toString("base64") },
  };
}

/** Records as Secrets: read from the labelled informer's cache, else by name (a record just created may not be cached yet). */
export function apiHostKeyRecords(api: ApiClient, cache: Informer<SecretObject>): HostKeyRecords {
  const read = async (namespace: string, id: string): Promise<SecretObject | undefined> => {
    const name = hostKeyRecordName(id);
    const cached = cache.get(`${namespace}/${name}`);
    if (cached) return cached;
    try {
      return await api.get(SECRETS, namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(`cannot read the host key record Secret ${namespace}/${name} of ${id}`, { cause: err });
    }
  };
  return {
    get: async (namespace, id) => fingerprintIn(await read(namespace, id), id),
    async create(namespace, id, fingerprint) {
      try {
        await api.create(SECRETS, body(namespace, id, fingerprint));
        return fingerprint;
      } catch (err) {
        if (!isConflict(err)) throw new Error(`cannot record the host key of ${id} in Secret ${namespace}/${hostKeyRecordName(id)}`, { cause: err });
      }
      // Somebody recorded it first: theirs is enforced.
      const name = hostKeyRecordName(id);
      const existing = await api.get(SECRETS, namespace, name).catch((err: unknown) => {
        throw new Error(`cannot read the host key record Secret ${namespace}/${name} of ${id}`, { cause: err });
      });
      const recorded = fingerprintIn(existing, id);
      if (!recorded) throw new Error(`Secret ${namespace}/${name} exists but is not the host key record of ${id}; delete it or pin the host key in spec.ssh.hostKey`);
      return recorded;
    },
    async put(namespace, id, fingerprint) {
      const existing = await read(namespace, id);
      if (fingerprintIn(existing, id) === fingerprint) return;
      const name = hostKeyRecordName(id);
      try {
        if (existing) await api.replace(SECRETS, body(namespace, id, fingerprint, existing.metadata?.resourceVersion));
        else await api.create(SECRETS, body(namespace, id, fingerprint));
      } catch (err) {
        throw new Error(`cannot record the pinned host key of ${id} in Secret ${namespace}/${name}`, { cause: err });
      }
    },
  };
}
