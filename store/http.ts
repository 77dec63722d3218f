// The HTTP surface of the store: authentication, routing of Kubernetes API paths, content
// negotiation (JSON, Table, PartialObjectMetadata), list, watch and the write verbs.
import type { IncomingMessage, ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { KObject } from "./db.js";
import { answerReview, authorizationGroup, authorizationVersion } from "./access-review.js";
import { apiGroup, apiGroupList, apiResourceList, apiVersions } from "./discovery.js";
import { ApiError, badRequest, cause, internalError, invalid, methodNotAllowed, type Status } from "./errors.js";
import type { ObjectStore, WriteOptions } from "./objects.js";
import type { OpenApi } from "./openapi.js";
import { patchTypeOf } from "./patch.js";
import { decodeKubernetesProtobuf } from "./protobuf.js";
import { apiVersionOf, type ResourceType } from "./registry.js";
import { parseFieldSelector, parseLabelSelector } from "./selectors.js";
import { partialObjectMetadata, toTable, type IncludeObject } from "./table.js";
import type { FieldValidation } from "./validation.js";
import { matches, serveWatch, type WatchFilter } from "./watch.js";
import { YamlBodyParser } from "./yaml-body.js";

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface HttpOptions {
  token: string;
  serverAddress: string;
  /** Watches without timeoutSeconds end after this many seconds times (1 + random), like kube-apiserver's --min-request-timeout. */
  watchTimeoutSeconds: number;
  bookmarkIntervalSeconds: number;
  logger: Logger;
  ready: () => boolean;
  /** Called for each request that carries the token (before it is served). */
  authenticated?: (req: IncomingMessage) => void;
  /** Parses application/yaml bodies off the event loop (default: store/yaml-body.ts's limits). */
  yaml?: YamlBodyParser;
}

/** Largest request body, as kube-apiserver's 3 MiB (MaxRequestBodyBytes). */
export const maxBody = 3 * 1024 * 1024;

const versionInfo = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.0-dockmesh",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2025-01-01T00:00:00Z",
  goVersion: "go1.23.0",
  compiler: "gc",
  platform: "linux/amd64",
};

type Negotiated = { as: "json" } | { as: "table"; apiVersion: string } | { as: "meta"; apiVersion: string };

function negotiate(accept: string | undefined): Negotiated {
  if (!accept) return { as: "json" };
  for (const part of accept.split(",")) {
    const params = new Map<string, string>();
    const [mt, ...rest] = part.split(";");
    for (const p of rest) {
      const [k, v] = p.split("=");
      if (k && v) params.set(k.trim(), v.trim());
    }
    const type = (mt ?? "").trim();
    if (type !== "application/json" && type !== "*/*") continue;
    const as = params.get("as");
    if (!as) return { as: "json" };
    if (params.get("g") !== "meta.k8s.io") continue;
    const av = `meta.k8s.io/${params.get("v") ?? "v1"}`;
    if (as === "Table") return { as: "table", apiVersion: av };
    if (as === "PartialObjectMetadata" || as === "PartialObjectMetadataList") return { as: "meta", apiVersion: av };
  }
  return { as: "json" };
}

interface Route {
  rt: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export class ApiHandler {
  private readonly watches = new Set<() => void>();
  private readonly yaml: YamlBodyParser;

  constructor(
    private readonly store: ObjectStore,
    private readonly openapi: OpenApi,
    private readonly opts: HttpOptions,
  ) {
    this.yaml = opts.yaml ?? new YamlBodyParser();
  }

  /** Ends every open watch (clients re-watch from their last resourceVersion). */
  closeWatches(): void {
    for (const end of [...this.watches]) end();
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.dispatch(req, res).catch((err: unknown) => this.fail(res, err));
  }

  private authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(h);
    if (!m) return false;
    const given = Buffer.from((m[1] ?? "").trim());
    const want = Buffer.from(this.opts.token);
    return given.length === want.length && timingSafeEqual(given, want);
  }

  private fail(res: ServerResponse, err: unknown): void {
    const e = err instanceof ApiError ? err : internalError(err);
    if (!(err instanceof ApiError)) this.opts.logger.error(`store: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // After a 413 the rest of the body is not read: close rather than keep draining it.
    if (e.code === 413) res.setHeader("Connection", "close");
    this.send(res, e.code, e.toStatus());
  }

  private send(res: ServerResponse, code: number, body: unknown, warnings: string[] = []): void {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    const headers: Record<string, string | string[]> = {
      "Content-Type": "application/json",
      "Cache-Control": "no-cache, private",
      "Content-Length": String(Buffer.byteLength(text)),
    };
    if (warnings.length > 0) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    res.writeHead(code, headers);
    res.end(text);
  }

  /**
   * Sends an answer that reflects the store's state only once that state is durable: a client never
   * sees (nor is acknowledged) a write a power cut could still take back. Group commit in db.ts.
   */
  private async sendDurable(res: ServerResponse, code: number, body: unknown, warnings: string[] = []): Promise<void> {
    await this.store.db.durable(this.store.db.currentRv());
    this.send(res, code, body, warnings);
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.authorized(req)) {
      const st: Status = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "Unauthorized", reason: "Unauthorized", code: 401 };
      // Its body is not read, and a client without the token gets no keep-alive connection.
      res.setHeader("Connection", "close");
      this.send(res, 401, st);
      return;
    }
    this.opts.authenticated?.(req);
    const url = new URL(req.url ?? "/", "https://store.invalid");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const method = req.method ?? "GET";
    const q = url.searchParams;

    if (path === "/healthz" || path === "/livez" || path === "/readyz" || path.startsWith("/healthz/") || path.startsWith("/livez/") || path.startsWith("/readyz/")) {
      const ok = !path.startsWith("/readyz") || this.opts.ready();
      res.writeHead(ok ? 200 : 500, { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" });
      res.end(ok ? "ok" : "not ready");
      return;
    }
    if (path === "/version") return this.send(res, 200, versionInfo);
    if (path === "/openapi/v2" || path === "/swagger.json") throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    if (path === "/openapi/v3") return this.send(res, 200, this.openapi.index());
    if (path.startsWith("/openapi/v3/")) {
      const doc = this.openapi.document(path.slice("/openapi/v3/".length));
      if (!doc) throw new ApiError(404, "NotFound", "the server could not find the requested resource");
      return this.send(res, 200, doc);
    }
    if (path === "/api") return this.send(res, 200, apiVersions(this.opts.serverAddress));
    if (path === "/apis") return this.send(res, 200, apiGroupList(this.store.registry));

    let segs: string[];
    try {
      segs = path
        .split("/")
        .filter((s) => s !== "")
        .map(decodeURIComponent);
    } catch (err) {
      throw new ApiError(400, "BadRequest", `malformed path ${JSON.stringify(path)}`, undefined, { cause: err });
    }
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === "api" && segs.length >= 2) {
      group = "";
      version = segs[1] ?? "";
      rest = segs.slice(2);
    } else if (segs[0] === "apis" && segs.length >= 3) {
      group = segs[1] ?? "";
      version = segs[2] ?? "";
      rest = segs.slice(3);
    } else if (segs[0] === "apis" && segs.length === 2) {
      const g = apiGroup(this.store.registry, segs[1] ?? "");
      if (!g) throw notFoundPath();
      return this.send(res, 200, g);
    } else {
      throw notFoundPath();
    }
    if (rest.length === 0) {
      const list = apiResourceList(this.store.registry, group, version);
      if (!list) throw notFoundPath();
      return this.send(res, 200, list);
    }
    if (group === authorizationGroup && version === authorizationVersion && rest.length === 1) {
      if (method !== "POST") throw methodNotAllowed(method, rest[0] ?? "");
      const review = answerReview(rest[0] ?? "", await this.readBody(req, "create"));
      if (!review) throw notFoundPath();
      return this.send(res, 201, review);
    }
    const route = this.route(group, version, rest);
    if (!route) throw notFoundPath();
    await this.serveResource(req, res, method, route, q);
  }

  private route(group: string, version: string, rest: string[]): Route | undefined {
    const reg = this.store.registry;
    let namespace: string | undefined;
    let r = rest;
    if (r[0] === "namespaces" && r.length >= 3 && !(r.length === 3 && (r[2] === "status" || r[2] === "finalize") && group === "")) {
      namespace = r[1];
      r = r.slice(2);
    }
    const rt = reg.get(group, version, r[0] ?? "");
    if (!rt) return undefined;
    if (namespace !== undefined && !rt.namespaced) return undefined;
    if (r.length > 3) return undefined;
    const route: Route = { rt };
    if (namespace !== undefined) route.namespace = namespace;
    if (r[1] !== undefined) route.name = r[1];
    if (r[2] !== undefined) {
      if (r[2] !== "status" || !rt.statusSubresource) return undefined;
      route.subresource = r[2];
    }
    return route;
  }

  private writeOptions(q: URLSearchParams): WriteOptions {
    const dry = q.getAll("dryRun");
    for (const d of dry) if (d !== "All") throw badRequest(`Invalid dry run value: ${JSON.stringify(dry)}: Unsupported value: "${d}": supported values: "All"`);
    const fvRaw = q.get("fieldValidation") ?? "";
    let fieldValidation: FieldValidation = "Warn";
    if (fvRaw !== "") {
      const norm = fvRaw.charAt(0).toUpperCase() + fvRaw.slice(1).toLowerCase();
      if (norm !== "Strict" && norm !== "Warn" && norm !== "Ignore") throw badRequest(`fieldValidation must be one of "Ignore", "Warn", "Strict", got ${JSON.stringify(fvRaw)}`);
      fieldValidation = norm;
    }
    return { dryRun: dry.length > 0, fieldValidation };
  }

  /** Write options with the field manager: ?fieldManager, else the User-Agent's first word (kube-apiserver's managerOrUserAgent). */
  private writeOptionsAs(q: URLSearchParams, req: IncomingMessage, kind: "CreateOptions" | "UpdateOptions" | "PatchOptions"): WriteOptions {
    const given = q.get("fieldManager");
    if (given !== null && given.length > 128) throw invalid("meta.k8s.io", kind, "", [cause("FieldValueTooLong", "fieldManager", "may not be longer than 128", { v: given })]);
    const fieldManager =
      given !== null && given !== ""
        ? given
        : [...((req.headers["user-agent"] ?? "").split("/")[0] ?? "")]
            .filter((c) => c >= " " && c !== "\x7f")
            .join("")
            .slice(0, 128);
    return { ...this.writeOptions(q), fieldManager };
  }

  private async serveResource(req: IncomingMessage, res: ServerResponse, method: string, route: Route, q: URLSearchParams): Promise<void> {
    const { rt, name } = route;
    const ns = rt.namespaced ? route.namespace : undefined;
    const neg = negotiate(req.headers.accept);
    if (name === undefined) {
      if (method === "GET") {
        const watch = q.get("watch");
        if (watch === "true" || watch === "1") return this.serveWatch(req, res, rt, ns, q, neg);
        return this.serveList(res, rt, ns, q, neg);
      }
      if (method === "POST") {
        if (rt.namespaced && ns === undefined) throw methodNotAllowed("POST", `${rt.plural} across all namespaces`);
        const body = await this.readBody(req, "create");
        const opts = this.writeOptionsAs(q, req, "CreateOptions");
        const out = this.store.create(rt, ns ?? "", body, opts);
        return this.sendDurable(res, 201, this.render(rt, out.obj, neg, q), out.warnings);
      }
      if (method === "DELETE") {
        const opts = this.writeOptions(q);
        const filter = this.filter(rt, ns, q);
        const policy = q.get("propagationPolicy") ?? undefined;
        const items: KObject[] = [];
        for (const o of this.store.list(rt, ns)) {
          if (!matches(filter, o)) continue;
          items.push(this.store.delete(rt, String(o.metadata.namespace ?? ""), String(o.metadata.name), { propagationPolicy: policy }, opts.dryRun).obj);
        }
        // Like the real server: the list of what was deleted (or is now being deleted).
        return this.sendDurable(res, 200, { apiVersion: apiVersionOf(rt), kind: rt.listKind, metadata: { resourceVersion: String(this.store.db.currentRv()) }, items });
      }
      throw methodNotAllowed(method, rt.plural);
    }
    if (rt.namespaced && ns === undefined) throw notFoundPath();
    const nsv = ns ?? "";
    const sub = route.subresource === "status" ? "status" : undefined;
    switch (method) {
      case "GET":
        return this.sendDurable(res, 200, this.render(rt, this.store.get(rt, nsv, name), neg, q));
      case "PUT": {
        const body = await this.readBody(req, "update");
        const out = this.store.update(rt, nsv, name, body, this.writeOptionsAs(q, req, "UpdateOptions"), sub);
        return this.sendDurable(res, 200, this.render(rt, out.obj, neg, q), out.warnings);
      }
      case "PATCH": {
        const ct = req.headers["content-type"] ?? "";
        const type = patchTypeOf(ct);
        if (!type) {
          throw new ApiError(
            415,
            "UnsupportedMediaType",
            `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml${rt.builtin ? ", application/strategic-merge-patch+json" : ""}`,
          );
        }
        const opts = this.writeOptionsAs(q, req, "PatchOptions");
        const force = q.get("force");
        if (type === "apply") {
          // Refused before its body is read: an apply without a manager cannot be recorded.
          if (!q.get("fieldManager")) throw invalid("meta.k8s.io", "PatchOptions", "", [cause("FieldValueRequired", "fieldManager", "is required for apply patch")]);
          // Server-side apply: YAML (or JSON) parsed off the event loop with the YAML body limits.
          const raw = await readRaw(req);
          let config: unknown;
          try {
            config = await this.yaml.parse(raw.toString("utf8"));
          } catch (err) {
            if (err instanceof ApiError) throw err;
            throw new ApiError(400, "BadRequest", `error decoding YAML: ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
          }
          const out = this.store.apply(rt, nsv, name, config, { ...opts, fieldManager: q.get("fieldManager") ?? "" }, force === "true" || force === "1", sub);
          return this.sendDurable(res, out.created ? 201 : 200, this.render(rt, out.obj, neg, q), out.warnings);
        }
        if (force !== null) throw invalid("meta.k8s.io", "PatchOptions", "", [cause("FieldValueForbidden", "force", "may not be specified for non-apply patch")]);
        const raw = await readRaw(req);
        let patch: unknown;
        try {
          patch = JSON.parse(raw.toString("utf8"));
        } catch (err) {
          throw new ApiError(400, "BadRequest", `error decoding patch: ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
        }
        const out = this.store.patch(rt, nsv, name, type, patch, opts, sub);
        return this.sendDurable(res, 200, this.render(rt, out.obj, neg, q), out.warnings);
      }
      case "DELETE": {
        if (sub) throw methodNotAllowed("DELETE", `${rt.plural}/status`);
        const raw = await readRaw(req);
        let body: Record<string, unknown> = {};
        if (raw.length > 0) {
          try {
            const parsed: unknown = JSON.parse(raw.toString("utf8"));
            if (parsed && typeof parsed === "object") body = parsed as Record<string, unknown>;
          } catch (err) {
            throw new ApiError(400, "BadRequest", `error decoding DeleteOptions: ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
          }
        }
        const dry = [...q.getAll("dryRun"), ...(Array.isArray(body.dryRun) ? (body.dryRun as string[]) : [])];
        const policy = typeof body.propagationPolicy === "string" ? body.propagationPolicy : (q.get("propagationPolicy") ?? undefined);
        const orphanQ = q.get("orphanDependents");
        const out = this.store.delete(
          rt,
          nsv,
          name,
          {
            preconditions: body.preconditions as { uid?: string; resourceVersion?: string } | undefined,
            propagationPolicy: policy,
            orphanDependents: typeof body.orphanDependents === "boolean" ? body.orphanDependents : orphanQ === null ? undefined : orphanQ === "true",
          },
          dry.includes("All"),
        );
        if (out.deleted) {
          return this.sendDurable(res, 200, {
            kind: "Status",
            apiVersion: "v1",
            metadata: {},
            status: "Success",
            details: { name, group: rt.group, kind: rt.plural, uid: out.obj.metadata.uid },
          });
        }
        return this.sendDurable(res, 200, this.render(rt, out.obj, neg, q));
      }
      default:
        throw methodNotAllowed(method, rt.plural);
    }
  }

  private async readBody(req: IncomingMessage, what: string): Promise<unknown> {
    const ct = (req.headers["content-type"] ?? "application/json").split(";")[0]?.trim().toLowerCase() ?? "";
    const isYaml = ct === "application/yaml" || ct === "application/x-yaml" || ct === "text/yaml";
    if (!isYaml && ct !== "application/json" && ct !== "" && ct !== "*/*" && ct !== "application/vnd.kubernetes.protobuf") {
      throw new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`);
    }
    const raw = await readRaw(req);
    try {
      if (isYaml) return await this.yaml.parse(raw.toString("utf8"));
      if (ct === "application/vnd.kubernetes.protobuf") return decodeKubernetesProtobuf(raw);
      return JSON.parse(raw.toString("utf8"));
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError(400, "BadRequest", `the object provided is unrecognized (${what}): ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
    }
  }

  private render(rt: ResourceType, obj: KObject, neg: Negotiated, q: URLSearchParams): unknown {
    if (neg.as === "table") return toTable(rt, [obj], { include: includeObject(q), apiVersion: neg.apiVersion });
    if (neg.as === "meta") return partialObjectMetadata(obj, neg.apiVersion);
    return obj;
  }

  private filter(rt: ResourceType, ns: string | undefined, q: URLSearchParams): WatchFilter {
    const labels = parseLabelSelector(q.get("labelSelector") ?? "");
    const extra = rt.fieldSelectors ?? {};
    const fields = parseFieldSelector(q.get("fieldSelector") ?? "", (f) => f === "metadata.name" || f === "metadata.namespace" || f in extra, rt.plural);
    return {
      namespace: ns,
      labels,
      fields,
      fieldValue: (obj, field) => {
        if (field === "metadata.name") return String(obj.metadata.name ?? "");
        if (field === "metadata.namespace") return String(obj.metadata.namespace ?? "");
        const get = extra[field];
        return get ? get(obj) : "";
      },
    };
  }

  private serveList(res: ServerResponse, rt: ResourceType, ns: string | undefined, q: URLSearchParams, neg: Negotiated): Promise<void> {
    const filter = this.filter(rt, ns, q);
    const items = this.store.list(rt, ns).filter((o) => matches(filter, o));
    const rv = String(this.store.db.currentRv());
    if (neg.as === "table") return this.sendDurable(res, 200, toTable(rt, items, { include: includeObject(q), resourceVersion: rv, apiVersion: neg.apiVersion }));
    if (neg.as === "meta") {
      return this.sendDurable(res, 200, {
        kind: "PartialObjectMetadataList",
        apiVersion: neg.apiVersion,
        metadata: { resourceVersion: rv },
        items: items.map((o) => partialObjectMetadata(o, neg.apiVersion)),
      });
    }
    // Items are already serialised-ready objects; build the JSON by hand to avoid a deep copy.
    const head = JSON.stringify({ apiVersion: apiVersionOf(rt), kind: rt.listKind, metadata: { resourceVersion: rv } }).slice(0, -1);
    const body = `${head},"items":[${items.map((o) => JSON.stringify(o)).join(",")}]}`;
    return this.sendDurable(res, 200, body);
  }

  private serveWatch(req: IncomingMessage, res: ServerResponse, rt: ResourceType, ns: string | undefined, q: URLSearchParams, neg: Negotiated): void {
    const av = apiVersionOf(rt);
    const include = includeObject(q);
    serveWatch(req, res, {
      store: this.store,
      rt,
      namespace: ns,
      query: q,
      filter: this.filter(rt, ns, q),
      shape: (obj) => {
        const o = obj.apiVersion === av ? obj : { ...obj, apiVersion: av };
        if (neg.as === "table") return toTable(rt, [o], { include, apiVersion: neg.apiVersion });
        if (neg.as === "meta") return partialObjectMetadata(o, neg.apiVersion);
        return o;
      },
      open: this.watches,
      watchTimeoutSeconds: this.opts.watchTimeoutSeconds,
      bookmarkIntervalSeconds: this.opts.bookmarkIntervalSeconds,
    });
  }
}

function includeObject(q: URLSearchParams): IncludeObject {
  const v = q.get("includeObject");
  return v === "None" || v === "Object" ? v : "Metadata";
}

function notFoundPath(): ApiError {
  return new ApiError(404, "NotFound", "the server could not find the requested resource", {});
}

function tooLarge(): ApiError {
  return new ApiError(413, "RequestEntityTooLarge", `Request entity too large: limit is ${maxBody}`);
}

async function readRaw(req: IncomingMessage): Promise<Buffer> {
  // A declared length over the limit is refused before anything is read.
  if (Number(req.headers["content-length"] ?? 0) > maxBody) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    const b = c as Buffer;
    size += b.length;
    if (size > maxBody) throw tooLarge();
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
