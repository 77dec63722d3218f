// Shared by the store tests: a store on a random loopback port in a temp dir, a real kubectl
// subprocess pointed at it, a small HTTPS client and a polling helper.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { startStore, type StoreHandle, type StoreOptions } from "../../store/server.js";

export interface TestStore extends StoreHandle {
  stateDir: string;
  kubectl(args: string[], opts?: { input?: string; env?: Record<string, string>; timeoutMs?: number }): Promise<KubectlResult>;
  kc(): KubeConfig;
  http(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpResult>;
  /** Stops the store and removes its state dir. */
  dispose(): Promise<void>;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies, read field by field in tests
  json: Record<string, any>;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `dockmesh-${prefix}-`));
}

export async function startTestStore(opts: Partial<StoreOptions> = {}, stateDir = tempDir("store")): Promise<TestStore> {
  const handle = await startStore({ stateDir, listen: "127.0.0.1:0", ...opts });
  const cacheDir = join(stateDir, "kubectl-cache");
  const ts: TestStore = {
    ...handle,
    stateDir,
    kubectl: (args, o = {}) => runKubectl(args, { KUBECONFIG: handle.kubeconfigPath, KUBECACHEDIR: cacheDir, HOME: stateDir, ...(o.env ?? {}) }, o.input, o.timeoutMs),
    kc: () => {
      const kc = new KubeConfig();
      kc.loadFromFile(handle.kubeconfigPath);
      return kc;
    },
    http: (method, path, body, headers) => httpRequest(handle, method, path, body, headers),
    dispose: async () => {
      await handle.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return ts;
}

export function runKubectl(args: string[], env: Record<string, string>, input?: string, timeoutMs = 60_000): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile("kubectl", args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** kubectl against a kubeconfig; its stdout, or an error with its stderr unless it exits 0. */
export async function kubectlOk(kubeconfig: string, args: string[], input?: string): Promise<string> {
  const r = await runKubectl(args, { KUBECONFIG: kubeconfig, HOME: process.env.HOME ?? "/root" }, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export function httpRequest(handle: Pick<StoreHandle, "url" | "token" | "caCertPem">, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, handle.url);
    const data = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const req = request(
      url,
      {
        method,
        ca: handle.caCertPem,
        headers: {
          Authorization: `Bearer ${handle.token}`,
          Accept: "application/json",
          // Node sends DELETE bodies without chunking: the length must be given.
          ...(data !== undefined ? { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(data)) } : {}),
          ...headers,
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: HttpResult["json"] = {};
          try {
            json = JSON.parse(text) as HttpResult["json"];
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: last });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function machine(name: string, spec: Record<string, unknown> = {}, labels: Record<string, string> = {}): Record<string, unknown> {
  return {
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "Machine",
    metadata: { name, namespace: "default", labels },
    spec: { ssh: { host: "203.0.113.10", privateKeySecretRef: { name: "ssh" } }, ...spec },
  };
}
