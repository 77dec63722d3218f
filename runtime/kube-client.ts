// ApiClient (runtime/client.ts) over @kubernetes/client-node 1.x, with the workarounds its quirks
// need, so that no other module meets them:
// - a kept-alive HTTPS agent per API server (reuseConnections): client-node makes one per request;
// - a watch that cannot start reports it through done: client-node's Watch rejects instead, which
//   its ListWatch (runtime/informer.ts) leaves unhandled, ending the process;
// - objects of the typed core APIs back in wire form (toWire): client-node turns their times into
//   Dates, and lists them without apiVersion and kind, unlike what a watch delivers.
// Failures come out as client-node throws them: isNotFound and the like (runtime/client.ts) read
// the HTTP code of either kind of error; describeError shortens an ApiException's message.
// The generated API classes are called method by method, never through a generic request:
// test/ops/rbac.test.ts finds each call here and the RBAC rule it needs. A verb on a resource that
// dockmesh does not use fails rather than call a method that has no rule.
import { createHash } from "node:crypto";
import type { Agent } from "node:http";
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, Watch } from "../vendor/client-node.js";
import type { CoreV1Event, KubeConfig, KubernetesListObject, KubernetesObject, V1Lease, V1Secret } from "@kubernetes/client-node";
import type { ApiClient, ListOptions, Resource } from "./client.js";

/**
 * The client of kc's current context. reuseConnections: kept-alive connections (below), what the
 * controller's processes use; without, a connection per request as client-node makes them.
 */
export function kubeApiClient(kc: KubeConfig, opts: { reuseConnections?: boolean } = {}): ApiClient {
  if (opts.reuseConnections) reuseConnections(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const watcher = new Watch(kc);
  const which = (r: Resource<KubernetesObject>): "secrets" | "events" | "leases" | "custom" => {
    if (r.group === "" && (r.plural === "secrets" || r.plural === "events")) return r.plural;
    if (r.group === "coordination.k8s.io" && r.plural === "leases") return "leases";
    if (r.group === "") throw new Error(`${r.plural}: not a core resource dockmesh uses`);
    return "custom";
  };
  const unused = (verb: string, r: Resource<KubernetesObject>) => new Error(`${verb} ${r.plural}: not an API call dockmesh makes (test/ops/rbac.test.ts)`);
  const cast = <T>(o: unknown) => o as T;
  const at = (o: KubernetesObject) => ({ name: o.metadata?.name ?? "", namespace: o.metadata?.namespace ?? "" });

  return {
    async get(r, namespace, name) {
      const ns = namespace ?? "";
      switch (which(r)) {
        case "secrets":
          return cast(toWire(await core.readNamespacedSecret({ name, namespace: ns })));
        case "leases":
          return cast(toWire(await coordination.readNamespacedLease({ name, namespace: ns })));
        case "custom":
          return cast(namespace ? await custom.getNamespacedCustomObject({ ...gvp(r), namespace, name }) : await custom.getClusterCustomObject({ ...gvp(r), name }));
        default:
          throw unused("get", r);
      }
    },
    async list(r, opts = {}) {
      const { namespace } = opts;
      const q = query(opts);
      switch (which(r)) {
        case "secrets": {
          const res = namespace ? await core.listNamespacedSecret({ namespace, ...q }) : await core.listSecretForAllNamespaces(q);
          return cast(wireList(res, "Secret"));
        }
        case "custom": {
          // CustomObjectsApi answers the JSON as it came: items keep apiVersion and kind.
          const body: unknown = namespace ? await custom.listNamespacedCustomObject({ ...gvp(r), namespace, ...q }) : await custom.listClusterCustomObject({ ...gvp(r), ...q });
          return cast(body);
        }
        default:
          throw unused("list", r);
      }
    },
    async watch(r, opts, onEvent, done) {
      const prefix = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
      const path = opts.namespace ? `${prefix}/namespaces/${encodeURIComponent(opts.namespace)}/${r.plural}` : `${prefix}/${r.plural}`;
      const { resourceVersion, labelSelector, fieldSelector } = opts;
      try {
        return await watcher.watch(path, { resourceVersion, labelSelector, fieldSelector }, onEvent, done);
      } catch (err) {
        // No current cluster, credentials that cannot be loaded: nothing was sent, done not called.
        done(err);
        return new AbortController();
      }
    },
    async create(r, object) {
      const { namespace } = at(object);
      switch (which(r)) {
        case "secrets":
          return cast(toWire(await core.createNamespacedSecret({ namespace, body: cast<V1Secret>(object) })));
        case "events":
          return cast(toWire(await core.createNamespacedEvent({ namespace, body: cast<CoreV1Event>(object) })));
        case "leases":
          return cast(toWire(await coordination.createNamespacedLease({ namespace, body: cast<V1Lease>(object) })));
        default:
          throw unused("create", r);
      }
    },
    async replace(r, object) {
      const { name, namespace } = at(object);
      switch (which(r)) {
        case "secrets":
          return cast(toWire(await core.replaceNamespacedSecret({ name, namespace, body: cast<V1Secret>(object) })));
        case "leases":
          return cast(toWire(await coordination.replaceNamespacedLease({ name, namespace, body: cast<V1Lease>(object) })));
        default:
          throw unused("replace", r);
      }
    },
    async replaceStatus(r, object, opts = {}) {
      if (which(r) !== "custom") throw unused("replaceStatus", r);
      const { name, namespace } = at(object);
      const fm = opts.fieldManager !== undefined ? { fieldManager: opts.fieldManager } : {};
      const body: unknown = namespace
        ? await custom.replaceNamespacedCustomObjectStatus({ ...gvp(r), namespace, name, body: object, ...fm })
        : await custom.replaceClusterCustomObjectStatus({ ...gvp(r), name, body: object, ...fm });
      return cast(body);
    },
    // client-node sends patches as application/json-patch+json, the first type its generated
    // methods list (merge patch would need a header middleware): JSON Patch is all this offers.
    async patch(r, namespace, name, ops) {
      const body = [...ops];
      switch (which(r)) {
        case "events":
          return cast(toWire(await core.patchNamespacedEvent({ namespace, name, body })));
        case "custom":
          return cast(await custom.patchNamespacedCustomObject({ ...gvp(r), namespace, name, body }));
        default:
          throw unused("patch", r);
      }
    },
  };
}

const gvp = (r: Resource<KubernetesObject>) => ({ group: r.group, version: r.version, plural: r.plural });

/** The query parameters of a list, only those given (client-node would send the others empty). */
function query(o: ListOptions): { labelSelector?: string; fieldSelector?: string; limit?: number; _continue?: string } {
  return {
    ...(o.labelSelector !== undefined ? { labelSelector: o.labelSelector } : {}),
    ...(o.fieldSelector !== undefined ? { fieldSelector: o.fieldSelector } : {}),
    ...(o.limit !== undefined ? { limit: o.limit } : {}),
    ...(o.continue ? { _continue: o.continue } : {}),
  };
}

/** A typed list as a watch would deliver its items: wire-format times, apiVersion and kind set. */
function wireList(res: { metadata?: unknown; items: unknown[] }, kind: string): KubernetesListObject<KubernetesObject> {
  const items = res.items.map((o) => ({ ...(toWire(o) as KubernetesObject), apiVersion: "v1", kind }));
  return { apiVersion: "v1", kind: `${kind}List`, metadata: toWire(res.metadata) as KubernetesListObject<KubernetesObject>["metadata"], items };
}

/** A deserialized client-node model back in wire form: Dates as RFC 3339 strings, undefined fields gone. */
export function toWire(value: unknown): unknown {
  if (value instanceof Date) {
    const iso = value.toISOString();
    // metav1.Time has whole seconds; V1MicroTime overrides toISOString with 6 digits itself.
    return value.constructor === Date ? iso.replace(/\.000Z$/, "Z") : iso;
  }
  if (Array.isArray(value)) return value.map(toWire);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toWire(v);
  return out;
}

// --- one kept-alive HTTPS agent per API server ---------------------------------------------
// @kubernetes/client-node 1.x builds a new https.Agent for each request (KubeConfig.createAgent
// from applySecurityAuthentication and applyToHTTPSOptions): each API call paid a TCP connect, a
// TLS handshake and a SecureContext built from the PEM text again. Profiled on 100 simulated
// machines, that was a quarter of the controller's CPU (bench/scale.ts). The agent is keyed by
// what it is made from (server, proxy, CA, client certificate, key, TLS options), so a rotated
// certificate or a changed kubeconfig gets a new agent and the old one is closed.

type CreateAgent = (cluster: unknown, options: Record<string, unknown>) => Agent;

/** Agents kept at once (one per distinct TLS identity; a rotation replaces one). */
const MAX_AGENTS = 4;

/**
 * Connections to one API server: at most MAX_SOCKETS at once (the informers' watches hold one each
 * for as long as they run), MAX_FREE_SOCKETS of them kept open while idle. Node's defaults (no limit,
 * 256 idle) let a burst of writes (a thousand machines' Events, fired without waiting) open and
 * then keep ~260 TLS connections: measured at 1,000 simulated machines, each kept its TLS buffers
 * (OpenSSL's and Node's BIO: 58 MB at the peak under heaptrack) for the whole run. With these
 * limits the same run peaked at 332 MB instead of 382 MB, as fast (docs/benchmarks.md).
 */
export const MAX_SOCKETS = 64;
export const MAX_FREE_SOCKETS = 16;

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
    const agent = create(cluster, { ...options, keepAlive: true, maxSockets: MAX_SOCKETS, maxFreeSockets: MAX_FREE_SOCKETS });
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
