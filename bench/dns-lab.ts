// The mesh DNS benchmark's lab (issue 13): its own prefix and address blocks (never the other
// benchmarks' dmbench), the mesh it builds (DNS on or off), and small statistics helpers.
import { yamlDoc } from "../lab/mesh-env.js";

// Overridable from the environment like the other lab benchmarks, with this benchmark's defaults.
const env = process.env;
export const DNS_BENCH = {
  prefix: env.BENCH_PREFIX ?? "dmdnb",
  labnet: env.BENCH_LABNET ?? "198.18.64.0/24",
  natLans: { first: Number(env.BENCH_NAT_FIRST ?? 150), last: Number(env.BENCH_NAT_LAST ?? 159) },
  apiPort: Number(env.BENCH_API_PORT ?? 16505),
  metricsPort: Number(env.BENCH_METRICS_PORT ?? 16506),
} as const;

export const DNS_MESH = { name: "mesh", cidr: "10.212.0.0/16", prefixLength: 24, dockerNetwork: "mesh", iface: "dm0", zone: "mesh.internal" } as const;

export function dnsMeshYaml(enabled: boolean): string {
  return yamlDoc({
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "MeshNetwork",
    metadata: { name: DNS_MESH.name, namespace: "default" },
    spec: { cidr: DNS_MESH.cidr, subnetPrefixLength: DNS_MESH.prefixLength, dockerNetwork: DNS_MESH.dockerNetwork, interface: DNS_MESH.iface, dns: { enabled } },
  });
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((s.length * p) / 100) - 1))]!;
}

/** "p50 / p95 / max" cells, in ms. */
export function spread(xs: readonly number[]): [string, string, string] {
  const f = (x: number) => (Number.isFinite(x) ? String(Math.round(x)) : "-");
  return [f(percentile(xs, 50)), f(percentile(xs, 95)), f(xs.length ? Math.max(...xs) : NaN)];
}

export const loadavg = async (): Promise<string> => {
  const { readFileSync } = await import("node:fs");
  return readFileSync("/proc/loadavg", "utf8").trim();
};
