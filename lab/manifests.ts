// Kubernetes manifests for a lab: the SSH key Secret, one Machine per host, a MeshNetwork.
// What a user applies to point dockmesh at the lab's hosts.
import { stringify } from "yaml";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import type { LabHost } from "./lab-host.js";

export const SSH_SECRET = { name: "lab-ssh", key: "ssh-privatekey" } as const;

export interface ManifestOptions {
  namespace?: string;
  /** WireGuard listen port written into the endpoints (default 51820). */
  listenPort?: number;
  meshName?: string;
  cidr?: string;
}

export function secretManifest(privateKey: string, namespace = "default"): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: SSH_SECRET.name, namespace },
    type: "kubernetes.io/ssh-auth",
    stringData: { [SSH_SECRET.key]: privateKey },
  };
}

export function machineManifest(h: LabHost, o: ManifestOptions = {}): Machine {
  const ref = { name: SSH_SECRET.name, key: SSH_SECRET.key };
  const m: Machine = {
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "Machine",
    metadata: { name: h.name, namespace: o.namespace ?? "default", labels: { "dockmesh.io/lab": h.nat ? "nat" : "public" } },
    spec: {
      ssh: {
        host: h.sshHost,
        port: h.sshPort,
        user: h.sshUser,
        privateKeySecretRef: ref,
        hostKey: h.hostKey,
        ...(h.bastion ? { bastion: { host: h.bastion.host, port: h.bastion.port, user: h.bastion.user, privateKeySecretRef: ref, hostKey: h.bastion.hostKey } } : {}),
      },
    },
  };
  if (h.publicEndpoint) m.spec.endpoint = `${h.publicEndpoint}:${o.listenPort ?? 51820}`;
  // A "dual" uplink only: its IPv6 address as the second endpoint (an "ipv6" one's is spec.endpoint).
  if (h.uplink === "dual" && h.publicEndpointV6) m.spec.endpointV6 = `${h.publicEndpointV6}:${o.listenPort ?? 51820}`;
  return m;
}

export function meshManifest(o: ManifestOptions = {}): MeshNetwork {
  const name = o.meshName ?? "mesh";
  return {
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "MeshNetwork",
    metadata: { name, namespace: o.namespace ?? "default" },
    spec: { cidr: o.cidr ?? "10.210.0.0/16", subnetPrefixLength: 24, dockerNetwork: name, interface: `dm-${name}`.slice(0, 15), listenPort: o.listenPort ?? 51820 },
  };
}

/** The manifest files of a lab, by file name (applied in name order with `kubectl apply -f <dir>`). */
export function labManifestFiles(hosts: readonly LabHost[], privateKey: string, o: ManifestOptions = {}): Record<string, string> {
  const doc = (header: string, objs: readonly object[]): string => `${header}\n${objs.map((x) => stringify(x, { lineWidth: 0 })).join("---\n")}`;
  return {
    "00-ssh-key-secret.yaml": doc("# The lab's SSH private key; its public key is authorized on every lab host.", [secretManifest(privateKey, o.namespace)]),
    "10-meshnetwork.yaml": doc("# One routed network over all the lab's Machines.", [meshManifest(o)]),
    "20-machines.yaml": doc(
      "# The lab's hosts. A host behind NAT has no endpoint: it connects out to the others, with keepalives.",
      hosts.map((h) => machineManifest(h, o)),
    ),
  };
}
