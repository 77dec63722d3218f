// The controller's own HTTP endpoint (node:http, plain HTTP as controller-runtime's):
// /metrics for Prometheus, /healthz (liveness) and /readyz (readiness) for the kubelet.
// Probes answer 200 "ok" or 500 with the failing check named, as kube-apiserver's do;
// `?verbose` lists every check.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "./log.js";
import { describeError, rootLogger } from "./log.js";

export interface CheckResult {
  ok: boolean;
  /** Why not, or what is fine; one line. */
  message?: string;
}

export type Check = () => CheckResult;

export interface OpsServerOptions {
  /** "HOST:PORT", ":PORT" (every interface) or "PORT". */
  bind: string;
  /** Exposition text and its content type; absent: /metrics is 404. */
  metrics?: { render(): Promise<string>; contentType: string };
  /** Liveness checks by name: failing ones make the kubelet restart the container. */
  live?: Record<string, Check>;
  /** Readiness checks by name. */
  ready?: Record<string, Check>;
  logger?: Logger;
}

export interface OpsServer {
  /** The address actually bound, "127.0.0.1:8080" or "[::]:8080". */
  address: string;
  port: number;
  close(): Promise<void>;
}

/** Values of --metrics-bind-address that turn the endpoint off. */
export const OFF = ["0", "off", ""];

/** `undefined` when off; throws on text that is not an address. */
export function parseBindAddress(text: string, flag = "--metrics-bind-address"): { host?: string; port: number } | undefined {
  const t = text.trim();
  if (OFF.includes(t)) return undefined;
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):)?(\d{1,5})$/.exec(t);
  const port = m ? Number(m[2]) : Number.NaN;
  // ":0" picks a free port (tests); a bare "0" is off.
  if (!m || port > 65535 || (port === 0 && !t.includes(":"))) throw new Error(`${flag}: ${JSON.stringify(text)} is not an address; write it like :8080, 127.0.0.1:8080, or 0 to turn it off`);
  const host = m[1] ? m[1].replace(/^\[|\]$/g, "") : undefined;
  return host ? { host, port } : { port };
}

function runChecks(checks: Record<string, Check>): { ok: boolean; lines: string[] } {
  const lines: string[] = [];
  let ok = true;
  for (const [name, check] of Object.entries(checks)) {
    let r: CheckResult;
    try {
      r = check();
    } catch (err) {
      r = { ok: false, message: describeError(err) };
    }
    ok &&= r.ok;
    lines.push(`[${r.ok ? "+" : "-"}]${name} ${r.ok ? "ok" : "failed"}${r.message ? `: ${r.message}` : ""}`);
  }
  return { ok, lines };
}

function probe(res: ServerResponse, url: URL, checks: Record<string, Check>, what: string): void {
  const { ok, lines } = runChecks(checks);
  res.statusCode = ok ? 200 : 500;
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  res.setHeader("Cache-Control", "no-store");
  if (url.searchParams.has("verbose") || !ok) res.end(`${lines.join("\n")}\n${what} check ${ok ? "passed" : "failed"}\n`);
  else res.end("ok");
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer | undefined> {
  const bind = parseBindAddress(opts.bind);
  if (!bind) return undefined;
  const log = (opts.logger ?? rootLogger()).child({ component: "ops-server" });
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.statusCode = 405;
      res.setHeader("Allow", "GET, HEAD");
      res.end();
      return;
    }
    switch (url.pathname) {
      case "/healthz":
      case "/livez":
        probe(res, url, opts.live ?? {}, "liveness");
        return;
      case "/readyz":
        probe(res, url, opts.ready ?? {}, "readiness");
        return;
      case "/metrics":
        if (opts.metrics) {
          const body = await opts.metrics.render();
          res.setHeader("Content-Type", opts.metrics.contentType);
          res.end(body);
          return;
        }
        break;
    }
    res.statusCode = 404;
    res.setHeader("Content-Type", "text/plain; charset=utf-8");
    res.end("not found: try /metrics, /healthz or /readyz\n");
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.warn("serving a request failed", { path: req.url, error: describeError(err) });
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`cannot listen on ${opts.bind} for /metrics and the health probes`, { cause: err })));
    server.listen({ port: bind.port, ...(bind.host ? { host: bind.host } : {}) }, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const address = `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
  log.info("serving /metrics, /healthz and /readyz", { address });
  return {
    address,
    port: a.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
