// Durability: kill -9 the store (a separate process running dist/store/serve.js) while a client
// writes; after a restart every acknowledged write is there and resourceVersions keep increasing.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { httpRequest, tempDir, waitFor } from "./helpers.js";

const serve = fileURLToPath(new URL("../../store/serve.js", import.meta.url));

export function freePort(): Promise<number> {
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

interface Running {
  proc: ChildProcess;
  url: string;
  token: string;
  caCertPem: string;
  output: () => string;
}

async function up(stateDir: string, port: number): Promise<Running> {
  const proc = spawn(process.execPath, [serve, "--state-dir", stateDir, "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  await waitFor(`the store to be ready (${out})`, () => out.includes("export KUBECONFIG=") || proc.exitCode !== null, 20_000);
  if (proc.exitCode !== null) throw new Error(`the store exited: ${out}`);
  assert.match(out, new RegExp(`export KUBECONFIG=${join(stateDir, "kubeconfig").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  return {
    proc,
    url: `https://127.0.0.1:${port}`,
    token: readFileSync(join(stateDir, "token"), "utf8").trim(),
    caCertPem: readFileSync(join(stateDir, "pki", "ca.crt"), "utf8"),
    output: () => out,
  };
}

describe("durability", () => {
  const dirs: string[] = [];
  const procs: ChildProcess[] = [];
  after(() => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("every acknowledged write survives kill -9 and resourceVersions keep increasing", async () => {
    const stateDir = tempDir("durable");
    dirs.push(stateDir);
    const port = await freePort();
    const first = await up(stateDir, port);
    procs.push(first.proc);
    const acked = new Map<string, { rv: number; value: string }>();
    let stop = false;
    let failures = 0;
    const deadline = Date.now() + 5_000;
    // Four writers, each bounded by count and time; they run until the store is killed.
    const writer = async (w: number) => {
      for (let i = 0; i < 5_000 && !stop && Date.now() < deadline; i++) {
        const name = `w${w}-${i}`;
        try {
          const r = await httpRequest(first, "POST", "/api/v1/namespaces/default/configmaps", { apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { v: `value-${i}` } });
          if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${r.text}`);
          acked.set(name, { rv: Number((r.json.metadata as { resourceVersion: string }).resourceVersion), value: `value-${i}` });
        } catch {
          failures++;
          return; // the store is gone
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await waitFor("some acknowledged writes", () => acked.size >= 300, 10_000, 5);
    first.proc.kill("SIGKILL");
    stop = true;
    await Promise.all(writers);
    await waitFor("the killed store to exit", () => first.proc.exitCode !== null || first.proc.signalCode !== null, 5_000);
    assert.ok(failures > 0 || acked.size > 0);

    const second = await up(stateDir, port);
    procs.push(second.proc);
    try {
      const list = await httpRequest(second, "GET", "/api/v1/namespaces/default/configmaps");
      assert.equal(list.status, 200);
      const items = new Map((list.json.items as Array<{ metadata: { name: string; resourceVersion: string }; data: { v: string } }>).map((o) => [o.metadata.name, o]));
      const missing = [...acked.keys()].filter((n) => !items.has(n));
      assert.deepEqual(missing, [], `${missing.length} of ${acked.size} acknowledged writes lost`);
      for (const [name, a] of acked) {
        const o = items.get(name);
        assert.equal(o?.data.v, a.value);
        assert.equal(Number(o?.metadata.resourceVersion), a.rv);
      }
      const maxAcked = Math.max(...[...acked.values()].map((a) => a.rv));
      assert.ok(Number((list.json.metadata as { resourceVersion: string }).resourceVersion) >= maxAcked);
      const after = await httpRequest(second, "POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: "after-restart" } });
      assert.equal(after.status, 201, after.text);
      assert.ok(Number((after.json.metadata as { resourceVersion: string }).resourceVersion) > Number((list.json.metadata as { resourceVersion: string }).resourceVersion));
    } finally {
      second.proc.kill("SIGTERM");
      await waitFor("a clean shutdown", () => second.proc.exitCode !== null, 10_000);
      assert.equal(second.proc.exitCode, 0, second.output());
    }
  });
});
