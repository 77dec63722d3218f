// One kept-alive HTTPS agent per API server for every request of the process.
// @kubernetes/client-node 1.x builds a new https.Agent for each request (KubeConfig.createAgent
// from applySecurityAuthentication and applyToHTTPSOptions): each API call paid a TCP connect, a
// TLS handshake and a SecureContext built from the PEM text again. Profiled on 100 simulated
// machines, that was a quarter of the controller's CPU (bench/scale.ts). The agent is keyed by
// what it is made from (server, proxy, CA, client certificate, key, TLS options), so a rotated
// certificate or a changed kubeconfig gets a new agent and the old one is closed.
import { createHash } from "node:crypto";
import type { Agent } from "node:http";
import type { KubeConfig } from "@kubernetes/client-node";

type CreateAgent = (cluster: unknown, options: Record<string, unknown>) => Agent;

/** Agents kept at once (one per distinct TLS identity; a rotation replaces one). */
const MAX_AGENTS = 4;

function digest(cluster: unknown, options: Record<string, unknown>): string {
  const h = createHash("sha256");
  const c = (cluster ?? {}) as { server?: string; proxyUrl?: string; skipTLSVerify?: boolean };
  h.update(JSON.stringify([c.server ?? "", c.proxyUrl ?? "", Boolean(c.skipTLSVerify)]));
  for (const k of Object.keys(options).sort()) {
    const v = options[k];
    h.update(`\0${k}=`);
    if (v === undefined) continue;
    if (Buffer.isBuffer(v) || typeof v === "string") h.update(v);
    else h.update(JSON.stringify(v));
  }
  return h.digest("hex");
}

/** Makes kc reuse connections: every API client made from it after this shares kept-alive agents. */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createAgent: CreateAgent };
  const create = target.createAgent.bind(kc);
  const agents = new Map<string, Agent>();
  target.createAgent = (cluster, options) => {
    const key = digest(cluster, options);
    const have = agents.get(key);
    if (have) return have;
    const agent = create(cluster, { ...options, keepAlive: true });
    agents.set(key, agent);
    for (const [k, old] of agents) {
      if (agents.size <= MAX_AGENTS) break;
      agents.delete(k);
      old.destroy();
    }
    return agent;
  };
  return kc;
}
