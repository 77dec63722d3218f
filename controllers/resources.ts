// Names the controllers own: resources, the finalizer, annotations, the key Secret.
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { httpStatus, type ApiClient, type Resource } from "../runtime/client.js";

export const GROUP = "dockmesh.io";
export const VERSION = "v1alpha1";
export const MACHINES: Resource<Machine> = { group: GROUP, version: VERSION, plural: "machines" };
export const MESHNETWORKS: Resource<MeshNetwork> = { group: GROUP, version: VERSION, plural: "meshnetworks" };

/** Guards host cleanup: removed once the host no longer carries anything of ours. */
export const FINALIZER = "dockmesh.io/host-cleanup";
/** "true" on a Machine being deleted: give up on cleaning an unreachable host and let it go. */
export const RELEASE_ANNOTATION = "dockmesh.io/release-unreachable";
/** A new value asks for a new WireGuard key pair (status.keyRotation records the last one done). */
export const ROTATE_ANNOTATION = "dockmesh.io/rotate-key";
export const MANAGED_BY = { "app.kubernetes.io/managed-by": "dockmesh" };
/** Selects the Secrets the controller made (MANAGED_BY): the only ones it lists and watches. */
export const OWNED_SECRETS_SELECTOR = "app.kubernetes.io/managed-by=dockmesh";
export const DEFAULT_SSH_SECRET_KEY = "ssh-privatekey";

/** Secret holding a Machine's WireGuard private key. */
export function keySecretName(machine: string): string {
  const name = `${machine}-wireguard`;
  return name.length <= 253 ? name : `${machine.slice(0, 243)}-wireguard`;
}

export const isDeleting = (m: Machine): boolean => Boolean(m.metadata.deletionTimestamp);
export const hasFinalizer = (m: Machine): boolean => (m.metadata.finalizers ?? []).includes(FINALIZER);

/**
 * Sets metadata.finalizers with a JSON Patch guarded by a test of resourceVersion (optimistic).
 * Returns false when the object changed meanwhile (the failed test is a 422, a conflict a 409):
 * the newer version is on its way through the informer and reconciles again.
 */
/** The Machine as patched, or undefined when it changed or went meanwhile (its next event reconciles again). */
export async function setFinalizers(api: ApiClient, m: Machine, finalizers: string[]): Promise<Machine | undefined> {
  try {
    return await api.patch(MACHINES, m.metadata.namespace ?? "default", m.metadata.name ?? "", [
      { op: "test", path: "/metadata/resourceVersion", value: m.metadata.resourceVersion },
      { op: "add", path: "/metadata/finalizers", value: finalizers },
    ]);
  } catch (err) {
    if ([409, 422, 404].includes(httpStatus(err) ?? 0)) return undefined;
    throw new Error(`cannot update the finalizers of machine ${m.metadata.name}`, { cause: err });
  }
}
