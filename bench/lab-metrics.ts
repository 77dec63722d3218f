// Counters for the steady-state benchmark, read from outside the controller: its /metrics
// (Prometheus text), the store's global resourceVersion (one per committed write), the
// process's CPU time (/proc).
import { readFileSync } from "node:fs";
import { request } from "node:http";
import type { MeshEnv } from "../lab/mesh-env.js";
import { CLOCK_TICKS_PER_S, procStats } from "./scale-proc.js";

/** Sum of a metric's samples whose labels include all of `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!] as const));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

export function scrape(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 10_000 }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on("error", (err) => reject(new Error(`GET ${url}`, { cause: err })));
    req.end();
  });
}

/** The store's current resourceVersion: every committed write takes the next one. */
export async function storeRv(env: MeshEnv): Promise<number> {
  const list = JSON.parse(await env.kubectlOk(["get", "--raw", "/api/v1/namespaces/default/configmaps?limit=1"])) as { metadata: { resourceVersion: string } };
  return Number(list.metadata.resourceVersion);
}

/** CPU time (user + system, ms) of a process so far. */
export const cpuMs = (pid: number): number => procStats(pid).cpuMs;

/**
 * CPU time (ms) the whole machine has spent busy so far (user, nice, system, irq, softirq of
 * /proc/stat): lab hosts are namespaces on this one kernel, so this counts every host's work,
 * the controller's and Docker's alike.
 */
export function machineCpuMs(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return ((f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) * 1000) / CLOCK_TICKS_PER_S;
}
