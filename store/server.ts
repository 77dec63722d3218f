// startStore(): the embedded Kubernetes-compatible API server — SQLite state, PKI, bearer token,
// kubeconfig and the HTTPS listener. `dockmesh up` and the tests share it.
import { createServer, type Server } from "node:https";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import type { Socket } from "node:net";
import type { IncomingMessage } from "node:http";
import { stringify } from "../vendor/yaml.js";
import { loadCrds } from "../api/crd-schema.js";
import { builtinTypes } from "./builtins.js";
import { ConnectionGuard, connectionLimits, serverTimeoutOptions, type ConnectionLimits } from "./connections.js";
import { Db, type DurabilityOptions, type HistoryOptions } from "./db.js";
import { ApiHandler, type Logger } from "./http.js";
import { ObjectStore } from "./objects.js";
import { OpenApi } from "./openapi.js";
import { Registry } from "./registry.js";
import { ensurePrivateFile, secureStateDir, secureStateFiles, writePrivateFile } from "./state-dir.js";
import { defaultYamlLimits, YamlBodyParser, type YamlLimits } from "./yaml-body.js";
import { ensureTls, ensureToken, tlsServerOptions } from "./tls.js";

export type { Logger } from "./http.js";
export type { ConnectionLimits } from "./connections.js";

export interface StoreOptions {
  /** Where the database, PKI, token and kubeconfig live (created if missing). */
  stateDir: string;
  /** "HOST:PORT" ("[::1]:6443" for IPv6); port 0 picks a free one. Default 127.0.0.1:6443. */
  listen?: string;
  /** Must be true to listen on anything but a loopback address. */
  allowNonLoopback?: boolean;
  logger?: Logger;
  /** Event history kept for watch resumption (defaults: 10,000 events or 10 minutes, at most 200,000). */
  history?: Partial<HistoryOptions>;
  /** Watches without timeoutSeconds close after this × (1 + random) seconds (default 1800, as kube-apiserver). */
  watchTimeoutSeconds?: number;
  /** Interval of BOOKMARK events on watches that allow them (default 60 s). */
  bookmarkIntervalSeconds?: number;
  /** CRD manifests installed at start (default: dockmesh's own, crds/*.yaml). */
  crdDir?: string;
  /** Called with every request as it arrives, before it is handled: audits in tests. */
  onRequest?: (req: IncomingMessage) => void;
  /** Timeouts and caps of connections (defaults like kube-apiserver's: headers 32 s, idle 90 s; see connections.ts). */
  connections?: Partial<ConnectionLimits>;
  /** Limits of application/yaml request bodies, parsed in a worker (defaults in yaml-body.ts: 2 s, 200,000 values, depth 1000). */
  yaml?: Partial<YamlLimits>;
  /**
   * Acknowledge writes before they are fdatasynced (default false): they survive kill -9 but not an
   * OS crash or power loss. For benchmarks comparing against the durable default.
   */
  unsafeNoFsync?: boolean;
  /** Replaces fs.fdatasync of the WAL (tests: hold a sync to see what waits for it). */
  fdatasync?: DurabilityOptions["fdatasync"];
}

export interface StoreHandle {
  /** https://HOST:PORT */
  url: string;
  kubeconfigPath: string;
  token: string;
  caCertPem: string;
  /** Ends every open watch, as a server restart or a proxy timeout would (clients re-watch). */
  closeWatches(): void;
  close(): Promise<void>;
}

const silent: Logger = { info: () => {}, warn: () => {}, error: () => {} };

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(listen) ?? /^([^:]+):(\d+)$/.exec(listen);
  if (!m) throw new Error(`--listen must be HOST:PORT (or [IPv6]:PORT), got ${JSON.stringify(listen)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`--listen port out of range: ${port}`);
  return { host: m[1] ?? "", port };
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

function certHosts(host: string): string[] {
  const hosts = new Set(["localhost", "127.0.0.1", "::1"]);
  if (host === "0.0.0.0" || host === "::") {
    hosts.add(hostname());
    for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) hosts.add(a.address.replace(/%.*$/, ""));
  } else hosts.add(host);
  return [...hosts];
}

function urlHost(host: string): string {
  const h = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return isIP(h) === 6 ? `[${h}]` : h;
}

const lockedHere = new Set<string>();

/** One store per state dir: a second one would hand out the same resourceVersions. */
function lock(stateDir: string): () => void {
  if (lockedHere.has(stateDir)) throw new Error(`another dockmesh store (pid ${process.pid}) is using ${stateDir}; stop it first`);
  const path = join(stateDir, "store.pid");
  if (existsSync(path)) {
    const pid = Number(readFileSync(path, "utf8").trim());
    let alive = false;
    if (pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        alive = true;
        // After a reboot the pid may belong to something else: on Linux, only a node process counts.
        const cmdline = `/proc/${pid}/cmdline`;
        if (existsSync(cmdline)) alive = readFileSync(cmdline, "utf8").includes("node");
      } catch {
        alive = false;
      }
    }
    if (alive) throw new Error(`another dockmesh store (pid ${pid}) is using ${stateDir}; stop it first`);
  }
  writePrivateFile(path, `${process.pid}\n`);
  lockedHere.add(stateDir);
  return () => {
    lockedHere.delete(stateDir);
    rmSync(path, { force: true });
  };
}

export function kubeconfigYaml(url: string, caCertPem: string, token: string): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "dockmesh", cluster: { server: url, "certificate-authority-data": Buffer.from(caCertPem).toString("base64") } }],
    users: [{ name: "dockmesh-admin", user: { token } }],
    contexts: [{ name: "dockmesh", context: { cluster: "dockmesh", user: "dockmesh-admin", namespace: "default" } }],
    "current-context": "dockmesh",
    preferences: {},
  });
}

export async function startStore(options: StoreOptions): Promise<StoreHandle> {
  const stateDir = resolve(options.stateDir);
  const logger = options.logger ?? silent;
  const { host, port } = parseListen(options.listen ?? "127.0.0.1:6443");
  if (!isLoopback(host) && !options.allowNonLoopback) {
    throw new Error(`refusing to listen on ${host}, which is not a loopback address: pass it explicitly (dockmesh up --listen ${host}:${port}) to expose the API server to the network`);
  }
  const limits = connectionLimits(options.connections);
  secureStateDir(stateDir);
  const unlock = lock(stateDir);
  // What the directory held before: a start that fails (the port is taken, a bad CRD) removes
  // what it made (PKI, token, database), leaving the directory as it found it.
  const before = new Set(readdirSync(stateDir));
  let db: Db | undefined;
  try {
    const tls = ensureTls(stateDir, certHosts(host));
    const token = ensureToken(stateDir);
    const dbPath = join(stateDir, "store.db");
    ensurePrivateFile(dbPath);
    db = new Db(dbPath, options.history, { unsafeNoFsync: options.unsafeNoFsync === true, ...(options.fdatasync ? { fdatasync: options.fdatasync } : {}) });
    secureStateFiles(stateDir);
    const registry = new Registry();
    for (const rt of builtinTypes()) registry.add(rt);
    const store = new ObjectStore(db, registry);
    store.loadCrds();
    for (const ns of ["default", "kube-system", "kube-public", "kube-node-lease"]) store.ensureNamespace(ns);
    for (const crd of loadCrds(options.crdDir)) store.installCrd(crd);
    store.resumeCleanups();
    const openapi = new OpenApi(registry);

    let ready = false;
    const sockets = new Set<Socket>();
    const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem, noDelay: true, ...tlsServerOptions, ...serverTimeoutOptions(limits) });
    const guard = new ConnectionGuard(server, limits);
    let serverAddress = `${urlHost(host)}:${port}`;
    const handler = new ApiHandler(store, openapi, {
      token,
      get serverAddress() {
        return serverAddress;
      },
      watchTimeoutSeconds: options.watchTimeoutSeconds ?? 1800,
      bookmarkIntervalSeconds: options.bookmarkIntervalSeconds ?? 60,
      logger,
      ready: () => ready,
      authenticated: (req) => guard.trust(req),
      yaml: new YamlBodyParser({ ...defaultYamlLimits, ...options.yaml }),
    });
    const onRequest = options.onRequest;
    server.on("request", (req, res) => {
      onRequest?.(req);
      handler.handle(req, res);
    });
    server.on("secureConnection", (s: Socket) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    server.on("tlsClientError", () => {
      // a client that does not trust the CA, or a port scan: nothing to do
    });
    await new Promise<void>((resolveListen, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) => {
        const why =
          err.code === "EADDRINUSE"
            ? `: the port is taken (another dockmesh up or API server?); choose another with --listen ${host}:PORT`
            : err.code === "EADDRNOTAVAIL"
              ? `: ${host} is not an address of this machine`
              : "";
        reject(new Error(`cannot listen on ${host}:${port}${why}`, { cause: err }));
      });
      server.listen(port, host, () => resolveListen());
    });
    const addr = server.address();
    const actualPort = typeof addr === "object" && addr ? addr.port : port;
    serverAddress = `${urlHost(host)}:${actualPort}`;
    const url = `https://${serverAddress}`;
    const kubeconfigPath = join(stateDir, "kubeconfig");
    writePrivateFile(kubeconfigPath, kubeconfigYaml(url, tls.caCertPem, token));
    ready = true;
    logger.info(`store: API server ${url} ready (state in ${stateDir}, resourceVersion ${db.currentRv()})`);
    if (!isLoopback(host)) logger.warn(`store: listening on ${host}: reachable from the network; the bearer token in ${kubeconfigPath} is the only guard`);

    const openDb = db;
    let closing: Promise<void> | undefined;
    return {
      url,
      kubeconfigPath,
      token,
      caCertPem: tls.caCertPem,
      closeWatches: () => handler.closeWatches(),
      close: () => {
        closing ??= (async () => {
          ready = false;
          handler.closeWatches();
          store.close();
          await new Promise<void>((r) => {
            server.close(() => r());
            server.closeIdleConnections();
            setTimeout(() => {
              for (const s of sockets) s.destroy();
            }, 2000).unref();
          });
          await openDb.close();
          unlock();
        })();
        return closing;
      },
    };
  } catch (err) {
    await db?.close();
    unlock();
    for (const f of readdirSync(stateDir)) if (!before.has(f)) rmSync(join(stateDir, f), { recursive: true, force: true });
    throw err;
  }
}
