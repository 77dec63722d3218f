// Shared by the lab benchmarks (time-to-mesh, disruption, steady-state): the benchmark lab's
// prefix and address blocks, the mesh they all build, and a fresh lab (or lab + `dockmesh up`)
// per measurement, so no variant starts from another's leftovers.
import { createLab, type Lab } from "../lab/lab.js";
import { ensureSystemPackages } from "../lab/requirements.js";
import { startMeshEnv, yamlDoc, type MeshEnv } from "../lab/mesh-env.js";

// Overridable from the environment (BENCH_PREFIX, BENCH_LABNET, BENCH_NAT_FIRST/LAST,
// BENCH_API_PORT, BENCH_METRICS_PORT), so a benchmark can run where another lab holds the defaults.
const env = process.env;
/** Every lab object of the benchmarks carries this prefix; its blocks differ from every test's. */
export const BENCH_PREFIX = env.BENCH_PREFIX ?? "dmbench";
export const BENCH_LABNET = env.BENCH_LABNET ?? "198.18.7.0/24";
export const BENCH_NAT_LANS = { first: Number(env.BENCH_NAT_FIRST ?? 70), last: Number(env.BENCH_NAT_LAST ?? 79) };
/** API server port of `dockmesh up`, inside the lab's controller namespace. */
export const BENCH_API_PORT = Number(env.BENCH_API_PORT ?? 16447);
/** /metrics of `dockmesh up` (steady-state only), inside the controller namespace. */
export const BENCH_METRICS_PORT = Number(env.BENCH_METRICS_PORT ?? 18447);

/** The mesh every benchmark builds: the same names for dockmesh, the manual procedure and the floor. */
export const MESH = { name: "mesh", cidr: "10.210.0.0/16", prefixLength: 24, dockerNetwork: "mesh", iface: "dm0", listenPort: 51820 } as const;

export function hostNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `h${i + 1}`);
}

/** The subnet dockmesh allocates to the i-th host (0-based; names sort h1 < h2 < … < h9). */
export function subnetOf(index: number): string {
  return `10.210.${index}.0/24`;
}

/** The IPv6 pool of the dual-stack variant (issue 17). */
export const MESH_CIDR_V6 = "fd42:d0c::/48";

export function meshYaml(opts: { ipv6?: boolean } = {}): string {
  return yamlDoc({
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "MeshNetwork",
    metadata: { name: MESH.name, namespace: "default" },
    spec: { cidr: MESH.cidr, ...(opts.ipv6 ? { cidrV6: MESH_CIDR_V6 } : {}), subnetPrefixLength: MESH.prefixLength, dockerNetwork: MESH.dockerNetwork, interface: MESH.iface },
  });
}

/**
 * Lab hosts whose dockerd manages ip6tables (what a dual-stack mesh needs): set for every variant
 * of a run that has a dual-stack one, so that all of them run on the same kind of host.
 */
export const benchHosts = { dockerIp6tables: false };

const quietLog = (m: string) => {
  if (process.env.BENCH_VERBOSE) console.error(`[lab] ${m}`);
};

/** A fresh lab of n public hosts (an earlier benchmark lab is removed first). */
export async function benchLab(n: number): Promise<Lab> {
  await ensureSystemPackages();
  return createLab({ prefix: BENCH_PREFIX, labnet: BENCH_LABNET, natLans: BENCH_NAT_LANS, hosts: hostNames(n).map((name) => ({ name, ...benchHosts })), log: quietLog });
}

/** A fresh lab of n public hosts with `dockmesh up` running (idle) in its controller namespace. */
export async function benchMeshEnv(n: number, opts: { resyncPeriod?: string; extraArgs?: string[] } = {}): Promise<MeshEnv> {
  return startMeshEnv({
    prefix: BENCH_PREFIX,
    labnet: BENCH_LABNET,
    natLans: BENCH_NAT_LANS,
    hosts: hostNames(n).map((name) => ({ name, ...benchHosts })),
    port: BENCH_API_PORT,
    // dockmesh's own default: a benchmark of the first converge must not ride on resyncs.
    resyncPeriod: opts.resyncPeriod ?? "5m",
    ...(opts.extraArgs ? { extraArgs: opts.extraArgs } : {}),
  });
}

/** Milliseconds since t0, as seconds with two decimals. */
export const secs = (ms: number): string => (ms / 1000).toFixed(2);

/** Runs fn and returns its result with the milliseconds it took. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

/** A plain-text table: header, rule, rows, columns padded to their widest cell. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}

/** Sizes from BENCH_SIZES ("2,4,8") or the default. */
export function sizesFromEnv(fallback: readonly number[]): number[] {
  const text = process.env.BENCH_SIZES;
  if (!text) return [...fallback];
  const sizes = text.split(",").map((s) => Number(s.trim()));
  if (sizes.some((s) => !Number.isInteger(s) || s < 2 || s > 9)) throw new Error(`BENCH_SIZES=${text}: give host counts from 2 to 9, comma-separated`);
  return sizes;
}

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    console.error(`${what} creates lab hosts (network namespaces, dockerd, sshd): run it as root`);
    process.exit(2);
  }
}
