// Issue 12 §3 and §4 on real lab hosts (sshd, dockerd, WireGuard in network namespaces), with the
// default 5-minute resync: Ready follows a host that goes away and comes back within a minute
// (the Ready check, the 60 s backoff cap), PEERS never contradicts Ready, a Machine that never
// connected is deleted without an annotation, and deleting a Machine or a MeshNetwork under
// running containers says which containers it disconnects (an Event naming them).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Machine } from "../../api/types.generated.js";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { MeshEnv, startMeshEnv, eventually, yamlDoc } from "../../lab/mesh-env.js";
import { machineColumns } from "../support/columns.js";
import { knownHosts, sshConfig } from "../../lab/demo-files.js";

const execFileP = promisify(execFile);

const PREFIX = "dmdel";
const LABNET = "198.18.56.0/24";
const NAT_LANS = { first: 118, last: 119 };
const PORT = 16476;
const HOSTS = ["h1", "h2", "h3"] as const;
/** The stated bound: Ready=True is at most this old (30 s check + 10 s connect timeout, and slack for a loaded machine). */
const READY_BOUND_MS = 60_000;

const MESH = yamlDoc({
  apiVersion: "dockmesh.io/v1alpha1",
  kind: "MeshNetwork",
  metadata: { name: "mesh", namespace: "default" },
  spec: { cidr: "10.231.0.0/16", dockerNetwork: "mesh", interface: "dm0" },
});

let env: MeshEnv;
const cond = (m: Machine, type: string) => m.status?.conditions?.find((c) => c.type === type);

const columns = () => machineColumns((args) => env.getJson(args));

async function until(what: string, pred: (c: Awaited<ReturnType<typeof columns>>) => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await eventually(what, async () => (pred(await columns()) ? true : undefined), timeoutMs, 1000);
  return Date.now() - t0;
}

async function events(name: string): Promise<Array<{ reason: string; message: string }>> {
  const list = await env.getJson<{ items: Array<{ reason: string; message: string }> }>(["get", "events", "--field-selector", `involvedObject.name=${name}`]);
  return list.items;
}

describe("deletes and status on lab hosts", { timeout: 900_000 }, () => {
  before(async () => {
    env = await startMeshEnv({
      prefix: PREFIX,
      labnet: LABNET,
      natLans: NAT_LANS,
      hosts: HOSTS.map((name) => ({ name })),
      port: PORT,
      // The default resync: what Ready says within the bound comes from the Ready check alone.
      resyncPeriod: "5m",
    });
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + MESH + env.machineYaml([...HOSTS]));
    await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", ...HOSTS.map((h) => `machine/${h}`)], undefined, 200_000);
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("docs/lab.md's commands work as written, without a terminal: ssh -F ssh_config, timeout 5 wget", async () => {
    // The files lab:up writes, for this lab's hosts; ssh runs with no TTY (stdin closed). The
    // arguments are what the doc's shell lines leave after the local shell's quote removal.
    const dir = mkdtempSync(join(tmpdir(), "dmdel-ssh-"));
    try {
      writeFileSync(join(dir, "id_ed25519"), env.lab.sshPrivateKey, { mode: 0o600 });
      writeFileSync(join(dir, "known_hosts"), knownHosts(env.lab.hosts));
      writeFileSync(join(dir, "ssh_config"), sshConfig(dir, env.lab.hosts));
      const ssh = (...args: string[]) => execFileP("ssh", ["-F", join(dir, "ssh_config"), ...args], { timeout: 60_000 }).then((r) => r.stdout);
      await ssh("h2", "docker", "run", "-d", "--name", "web", "--network", "mesh", "dockmesh-lab/busybox", "sh", "-c", "'echo hello from h2 > /index.html; exec httpd -f -p 80 -h /'");
      const ip = (await ssh("h2", "docker", "inspect", "-f", "'{{.NetworkSettings.Networks.mesh.IPAddress}}'", "web")).trim();
      assert.match(ip, /^10\.231\.\d+\.\d+$/);
      assert.equal(await ssh("h1", "docker", "run", "--rm", "--network", "mesh", "dockmesh-lab/busybox", "timeout", "5", "wget", "-qO-", `http://${ip}:80/`), "hello from h2\n");
      await ssh("h2", "docker", "rm", "-f", "web");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a host that goes away is Ready=False within a minute, and Ready again within a minute of coming back", async () => {
    await until("all Ready 2/2", (c) => HOSTS.every((h) => c.get(h)?.ready === "True" && c.get(h)?.peers === "2/2"), 60_000);
    await env.lab.cut("h2");
    let down: number;
    try {
      down = await until("h2 Ready=False", (c) => c.get("h2")?.ready === "False", READY_BOUND_MS);
      const c = await columns();
      assert.equal(c.get("h2")?.reason, "Unreachable");
    } finally {
      await env.lab.heal("h2"); // the next tests start from a whole lab, whatever happened here
    }
    const back = await until("h2 Ready again", (c) => c.get("h2")?.ready === "True", 90_000);
    console.log(`h2 cut: Ready=False after ${down} ms; healed: Ready=True after ${back} ms`);
  });

  test("every host gone: every Machine Ready=False within a minute, PEERS removed; all back", async () => {
    for (const h of HOSTS) await env.lab.cut(h);
    let down: number;
    try {
      down = await until("all Ready=False", (c) => HOSTS.every((h) => c.get(h)?.ready === "False" && c.get(h)?.peers === ""), READY_BOUND_MS);
    } finally {
      for (const h of HOSTS) await env.lab.heal(h);
    }
    const back = await until("all Ready again", (c) => HOSTS.every((h) => c.get(h)?.ready === "True" && c.get(h)?.peers === "2/2"), 120_000);
    console.log(`all cut: all Ready=False after ${down} ms; healed: all Ready=True 2/2 after ${back} ms`);
  });

  test("a Machine that never connected is deleted without an annotation", async () => {
    // In a namespace of its own (no mesh there): nothing else plans with it.
    const ghost = yamlDoc({
      apiVersion: "dockmesh.io/v1alpha1",
      kind: "Machine",
      metadata: { name: "ghost", namespace: "ghosts" },
      spec: { ssh: { host: "198.18.56.250", privateKeySecretRef: { name: "lab-ssh" } } },
    });
    await env.kubectlOk(["create", "namespace", "ghosts"]);
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml().replace("namespace: default", "namespace: ghosts") + ghost);
    const m = await eventually(
      "ghost Reachable=False",
      async () => {
        const x = await env.getJson<Machine>(["-n", "ghosts", "get", "machine", "ghost"]);
        return cond(x, "Reachable")?.status === "False" ? x : undefined;
      },
      60_000,
      1000,
    );
    assert.ok(m.metadata.finalizers?.includes("dockmesh.io/host-cleanup"), "held by the finalizer");
    await env.kubectlOk(["-n", "ghosts", "delete", "machine", "ghost", "--timeout=30s"], undefined, 40_000);
    const list = await env.getJson<{ items: Array<{ reason: string; message: string }> }>(["-n", "ghosts", "get", "events", "--field-selector", "involvedObject.name=ghost"]);
    assert.match(
      list.items.map((e) => `${e.reason}: ${e.message}`).join("\n"),
      /Released: nothing to clean up: the controller never connected to ssh root@198\.18\.56\.250:22 \(no host key record Secret ghosts\/dockmesh-hostkey-/,
    );
  });

  test("deleting a Machine under a running container disconnects it and says so; the container keeps running", async () => {
    await env.lab.startHttpd("h3", { name: "web3", network: "mesh", content: "h3" });
    await env.kubectlOk(["delete", "machine", "h3", "--timeout=60s"], undefined, 70_000);
    const ev = (await events("h3")).find((e) => e.reason === "ContainersDetached");
    assert.match(ev?.message ?? "", /^deleting the Machine: Docker network mesh \(MeshNetwork mesh\): 1 container\(s\) disconnected: web3; they keep running without that network$/);
    assert.equal((await env.lab.execOk("h3", ["docker", "inspect", "-f", "{{.State.Running}} {{len .NetworkSettings.Networks}}", "web3"])).trim(), "true 0");
    assert.notEqual((await env.lab.exec("h3", ["docker", "network", "inspect", "mesh"])).code, 0, "the mesh network is gone from h3");
  });

  test("deleting the MeshNetwork under running containers disconnects them and says so on each Machine", async () => {
    await env.lab.startHttpd("h1", { name: "web1", network: "mesh", content: "h1" });
    await env.kubectlOk(["delete", "meshnetwork", "mesh", "--timeout=60s"], undefined, 70_000);
    const ev = await eventually("ContainersDetached on h1", async () => (await events("h1")).find((e) => e.reason === "ContainersDetached"), 60_000, 1000);
    assert.match(ev.message, /^leaving a MeshNetwork: Docker network mesh \(MeshNetwork mesh\): 1 container\(s\) disconnected: web1; they keep running without that network$/);
    assert.equal((await env.lab.execOk("h1", ["docker", "inspect", "-f", "{{.State.Running}}", "web1"])).trim(), "true");
    await eventually("mesh network gone from h1", async () => ((await env.lab.exec("h1", ["docker", "network", "inspect", "mesh"])).code !== 0 ? true : undefined), 30_000, 1000);
  });
});
