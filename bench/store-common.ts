// Shared by the store benchmarks: a store child process (dist/store/serve.js) on a free loopback port (so the
// load generator does not share the store's event loop) and a keep-alive HTTPS client.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface BenchStore {
  url: string;
  token: string;
  ca: string;
  agent: Agent;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      const port = typeof a === "object" && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/** The store as a child process; extraArgs e.g. ["--unsafe-no-fsync"]. */
export async function startBenchStore(extraArgs: string[] = []): Promise<BenchStore> {
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-bench-"));
  const port = await freePort();
  // The store alone: the controllers of `dockmesh up` would react to the benchmark's Machines.
  const serve = fileURLToPath(new URL("../store/serve.js", import.meta.url));
  const proc: ChildProcess = spawn(process.execPath, [serve, "--state-dir", dir, "--listen", `127.0.0.1:${port}`, ...extraArgs], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 30_000;
  while (!out.includes("export KUBECONFIG=")) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`the store did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  return {
    url: `https://127.0.0.1:${port}`,
    token: readFileSync(join(dir, "token"), "utf8").trim(),
    ca: readFileSync(join(dir, "pki", "ca.crt"), "utf8"),
    agent,
    stop: async () => {
      agent.destroy();
      proc.kill("SIGTERM");
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function call(s: BenchStore, method: string, path: string, body?: unknown, contentType = "application/json"): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      new URL(path, s.url),
      {
        method,
        agent: s.agent,
        ca: s.ca,
        headers: { Authorization: `Bearer ${s.token}`, Accept: "application/json", ...(data ? { "Content-Type": contentType, "Content-Length": String(Buffer.byteLength(data)) } : {}) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}
