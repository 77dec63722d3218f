// `dockmesh up` and startStore's lifecycle: output, kubeconfig, restarts keep the PKI and token,
// one store per state dir, non-loopback only when asked for.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startStore } from "../../store/server.js";
import { runKubectl, tempDir, waitFor } from "./helpers.js";

const bin = fileURLToPath(new URL("../../../bin/dockmesh.js", import.meta.url));

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

describe("dockmesh up and startStore", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("dockmesh up prints the kubeconfig and export line; kubectl works with it; SIGTERM stops it", async () => {
    const dir = tempDir("up");
    dirs.push(dir);
    const port = await freePort();
    const proc = spawn(process.execPath, [bin, "up", "--state-dir", dir, "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    try {
      await waitFor("dockmesh up to be ready", () => stdout.includes("export KUBECONFIG=") || proc.exitCode !== null, 30_000);
      assert.equal(proc.exitCode, null, stderr);
      const kubeconfig = join(dir, "kubeconfig");
      assert.match(stdout, new RegExp(`^dockmesh: API server https://127\\.0\\.0\\.1:${port} ready`, "m"));
      assert.ok(stdout.includes(`export KUBECONFIG=${kubeconfig}`));
      assert.equal(statSync(kubeconfig).mode & 0o777, 0o600);
      const r = await runKubectl(["get", "namespaces", "-o", "name"], { KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, "cache"), HOME: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /namespace\/default/);
      const crds = await runKubectl(["get", "crd", "-o", "name"], { KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, "cache"), HOME: dir });
      assert.match(crds.stdout, /machines\.dockmesh\.io/);
      assert.match(crds.stdout, /meshnetworks\.dockmesh\.io/);
    } finally {
      proc.kill("SIGTERM");
      await waitFor("dockmesh up to exit", () => proc.exitCode !== null || proc.signalCode !== null, 15_000);
    }
    assert.equal(proc.exitCode, 0, stderr);
  });

  it("a restart keeps the CA, the token and the data; one store per state dir", async () => {
    const dir = tempDir("restart");
    dirs.push(dir);
    const a = await startStore({ stateDir: dir, listen: "127.0.0.1:0" });
    await assert.rejects(startStore({ stateDir: dir, listen: "127.0.0.1:0" }), /another dockmesh store .* is using/);
    await a.close();
    const b = await startStore({ stateDir: dir, listen: "127.0.0.1:0" });
    try {
      assert.equal(b.caCertPem, a.caCertPem);
      assert.equal(b.token, a.token);
      assert.equal(readFileSync(join(dir, "token"), "utf8").trim(), b.token);
      assert.equal(statSync(join(dir, "pki", "ca.key")).mode & 0o777, 0o600);
    } finally {
      await b.close();
    }
  });

  it("a start that fails (the port is taken) leaves no PKI, token or database behind", async () => {
    const taken = tempDir("taken");
    const dir = tempDir("failed");
    dirs.push(taken, dir);
    const a = await startStore({ stateDir: taken, listen: "127.0.0.1:0" });
    try {
      const port = Number(new URL(a.url).port);
      await assert.rejects(startStore({ stateDir: dir, listen: `127.0.0.1:${port}` }), /the port is taken/);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      await a.close();
    }
  });

  it("listening beyond loopback must be asked for explicitly", async () => {
    const dir = tempDir("listen");
    dirs.push(dir);
    await assert.rejects(startStore({ stateDir: dir, listen: "0.0.0.0:0" }), /not a loopback address/);
    await assert.rejects(startStore({ stateDir: dir, listen: "nonsense" }), /HOST:PORT/);
  });
});
