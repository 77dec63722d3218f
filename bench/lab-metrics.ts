// Counters for the steady-state benchmark, read from outside the controller: its /metrics
// (Prometheus text), the store's global resourceVersion (one per committed write), the
// process's CPU time (/proc).
import { readFileSync } from "node:fs";
import { request } from "node:http";
import type { MeshEnv } from "../test/support/mesh-env.js";

/** Sum of a metric's samples whose labels include all of `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
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
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}
