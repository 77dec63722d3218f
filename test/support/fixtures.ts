// Builders for Machine and MeshNetwork objects in tests.
import type { Machine, MeshNetwork, MeshNetworkSpec, MachineSpec } from "../../api/types.generated.js";

export function mesh(name: string, spec: Partial<MeshNetworkSpec> = {}, namespace = "default"): MeshNetwork {
  return { apiVersion: "dockmesh.io/v1alpha1", kind: "MeshNetwork", metadata: { name, namespace }, spec: { cidr: "10.210.0.0/16", ...spec } };
}

export function machine(name: string, opts: { endpoint?: string; labels?: Record<string, string>; subnet?: string; namespace?: string; spec?: Partial<MachineSpec> } = {}): Machine {
  return {
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "Machine",
    metadata: { name, namespace: opts.namespace ?? "default", ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: {
      ssh: { host: `${name}.example`, privateKeySecretRef: { name: "ssh" } },
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      ...(opts.subnet ? { subnet: opts.subnet } : {}),
      ...opts.spec,
    },
  };
}

/** A public machine with a documentation-range endpoint derived from its index. */
export const pub = (name: string, i: number, extra: Parameters<typeof machine>[1] = {}) => machine(name, { endpoint: `203.0.113.${10 + i}:51820`, ...extra });
export const nat = (name: string, extra: Parameters<typeof machine>[1] = {}) => machine(name, extra);
