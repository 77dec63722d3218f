// Plan time of a whole mesh with the pure planner (mesh/plan.ts): planMesh once (membership,
// subnets, relays), then planHost for every member with the members as MachineReconciler
// builds them. No I/O. Used by bench/scale.ts for the N = 10 / 100 / 1,000 / 2,000 curve.
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { resolveMesh } from "../mesh/defaults.js";
import { planHost, planMesh, type Member } from "../mesh/plan.js";

export const BENCH_NAMESPACE = "default";
export const BENCH_MESH = "scale";

/** Machine name of number i: m0000, m0001, … (sorts like the numbers). */
export const machineName = (i: number): string => `m${String(i).padStart(4, "0")}`;

/** A public endpoint in 198.18.0.0/15 (RFC 2544, benchmarking): never contacted, hosts are simulated. */
export const benchEndpoint = (i: number): string => `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}:51820`;

/**
 * The benchmark's MeshNetwork: a /12 pool of /24 subnets (4,096 machines); `dns` sets
 * spec.dns.enabled (absent: the product's default, on).
 */
export function benchMesh(opts: { dns?: boolean } = {}): MeshNetwork {
  return {
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "MeshNetwork",
    metadata: { name: BENCH_MESH, namespace: BENCH_NAMESPACE },
    spec: { cidr: "10.0.0.0/12", subnetPrefixLength: 24, interface: "dm0", dockerNetwork: "mesh", ...(opts.dns !== undefined ? { dns: { enabled: opts.dns } } : {}) },
  };
}

/** A stand-in WireGuard public key (44 base64 characters); the planner only copies it. */
const fakeKey = (name: string) => createHash("sha256").update(name).digest("base64");

export interface PlanPoint {
  machines: number;
  /** Machines behind NAT (no endpoint) among them. */
  behindNat: number;
  /** Fastest of the repetitions, milliseconds, for the whole mesh (the work is deterministic: what varies is GC and the other core's load). */
  ms: number;
  repetitions: number;
}

function machinesFor(n: number, natEvery: number): Machine[] {
  return Array.from({ length: n }, (_, i) => ({
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "Machine",
    metadata: { name: machineName(i), namespace: BENCH_NAMESPACE },
    spec: { ssh: { host: "127.0.0.1", privateKeySecretRef: { name: "ssh" } }, ...(natEvery > 0 && i % natEvery === natEvery - 1 ? {} : { endpoint: benchEndpoint(i) }) },
  }));
}

/** Plans the whole mesh once: planMesh, then planHost for each member. Returns the peers planned (a check). */
export function planWholeMesh(mesh: MeshNetwork, machines: readonly Machine[]): number {
  const resolved = resolveMesh(mesh).mesh;
  if (!resolved) throw new Error("the benchmark mesh does not resolve");
  const plan = planMesh(resolved, machines);
  const byName = new Map(machines.map((m) => [m.metadata.name ?? "", m]));
  const members: Member[] = plan.allocations.map((a) => {
    const m = byName.get(a.machine);
    return { name: a.machine, subnet: a.subnet, ...(m?.spec.endpoint ? { endpoint: m.spec.endpoint } : {}), publicKey: fakeKey(a.machine) };
  });
  const relayCandidates = members.filter((m) => m.endpoint).map((m) => m.name);
  let peers = 0;
  for (const name of plan.members) {
    const host = planHost(BENCH_NAMESPACE, name, [{ mesh: resolved, members, relayCandidates }], { uplinkMtu: 1500, rawTable: true });
    for (const n of host.networks) peers += n.wireguard.peers.length + n.relayed.length;
  }
  return peers;
}

/**
 * Fastest time to plan the whole mesh of n machines (every natEvery-th behind NAT; 0 = none),
 * repeated until about budgetMs has passed (at least 3 times, at most 50).
 */
export function planTime(n: number, natEvery = 0, budgetMs = 1_500): PlanPoint {
  const machines = machinesFor(n, natEvery);
  const mesh = benchMesh();
  planWholeMesh(mesh, machines.slice(0, Math.min(n, 10))); // warm up the JIT on a small mesh
  const times: number[] = [];
  const started = performance.now();
  while (times.length < 50 && (times.length < 3 || performance.now() - started < budgetMs)) {
    const t = performance.now();
    const peers = planWholeMesh(mesh, machines);
    times.push(performance.now() - t);
    if (peers !== n * (n - 1)) throw new Error(`plan of ${n} machines: ${peers} peers planned, expected ${n * (n - 1)}`);
  }
  times.sort((a, b) => a - b);
  const behindNat = natEvery > 0 ? Math.floor(n / natEvery) : 0;
  return { machines: n, behindNat, ms: times[0]!, repetitions: times.length };
}

/** The growth exponent between two points: log(t2/t1) / log(n2/n1) (2 = quadratic). */
export function exponent(a: PlanPoint, b: PlanPoint): number {
  return Math.log(b.ms / a.ms) / Math.log(b.machines / a.machines);
}
