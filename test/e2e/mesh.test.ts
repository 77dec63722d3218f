// Issue 4 acceptance, end to end on real lab hosts (sshd, dockerd, WireGuard, iptables in
// network namespaces), with `dockmesh up` in the lab's controller namespace and real kubectl.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { generateEd25519 } from "../../lab/keys.js";
import { MeshEnv, startMeshEnv, eventually, sleep, appliedSteps, yamlDoc } from "../../lab/mesh-env.js";

// This file's own lab: prefix, address blocks and port differ from every other test's.
const PREFIX = "dme2e";
const LABNET = "198.18.3.0/24";
const PORT = 16443;

const MESH = yamlDoc({
  apiVersion: "dockmesh.io/v1alpha1",
  kind: "MeshNetwork",
  metadata: { name: "mesh", namespace: "default" },
  spec: { cidr: "10.210.0.0/16", subnetPrefixLength: 24, dockerNetwork: "mesh", interface: "dm0" },
});

let env: MeshEnv;
const page = (h: string) => `hello from ${h}`;
const ips = new Map<string, string>();

async function machine(name: string): Promise<Machine> {
  return env.getJson<Machine>(["get", "machine", name]);
}

const cond = (m: Machine | MeshNetwork, type: string) => m.status?.conditions?.find((c) => c.type === type);

async function waitReady(names: readonly string[], timeout = "180s"): Promise<void> {
  await env.kubectlOk(["wait", "--for=condition=Ready", `--timeout=${timeout}`, ...names.map((n) => `machine/${n}`)], undefined, 200_000);
}

/** Waits for a condition reason on a Machine; on timeout says what it was instead. */
async function waitReason(name: string, type: string, reason: string, timeoutMs = 90_000): Promise<Machine> {
  let last: unknown;
  try {
    return await eventually(
      `${name} ${type}=${reason}`,
      async () => {
        const x = await machine(name);
        last = cond(x, type);
        return cond(x, type)?.reason === reason ? x : undefined;
      },
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`, { cause: err });
  }
}

async function startHttpd(host: string): Promise<void> {
  await env.lab.exec(host, ["docker", "rm", "-f", "web"]);
  const { ip } = await env.lab.startHttpd(host, { name: "web", network: "mesh", content: page(host), restart: "unless-stopped" });
  ips.set(host, ip);
}

async function assertReaches(from: string, to: string): Promise<void> {
  const body = await env.lab.fetchOk(from, { network: "mesh", url: `http://${ips.get(to)}:80/`, timeoutSec: 5 });
  assert.equal(body, page(to), `${from} → ${to}`);
}

async function assertFullMesh(hosts: readonly string[]): Promise<void> {
  for (const a of hosts) for (const b of hosts) if (a !== b) await assertReaches(a, b);
}

async function rulesOf(host: string): Promise<string> {
  const f = await env.lab.execOk(host, ["iptables", "-S", "DOCKER-USER"]);
  const n = await env.lab.execOk(host, ["iptables", "-t", "nat", "-S", "POSTROUTING"]);
  return f + n;
}

describe("dockmesh on real hosts", { timeout: 900_000 }, () => {
  before(async () => {
    env = await startMeshEnv({
      prefix: PREFIX,
      labnet: LABNET,
      hosts: [{ name: "h1" }, { name: "h2" }, { name: "h3" }, { name: "h4" }, { name: "h5" }],
      port: PORT,
      resyncPeriod: "10s",
    });
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("3 hosts: apply, a controller killed mid-converge, all Ready, containers talk both ways", async () => {
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + MESH + env.machineYaml(["h1", "h2", "h3"]));
    // Kill the controller as soon as it starts changing a host, then start it again: it must finish.
    await env.waitForLog('"[#] ', 120_000);
    await env.stopController("SIGKILL");
    await env.startController();
    await waitReady(["h1", "h2", "h3"]);

    for (const h of ["h1", "h2", "h3"]) {
      const rules = await rulesOf(h);
      assert.equal(rules.match(/-A DOCKER-USER -i dm0 -o br-dm0 .*-j ACCEPT/g)?.length, 1, `${h}: exactly one DOCKER-USER accept\n${rules}`);
      assert.equal(rules.match(/-A POSTROUTING -s 10\.210\.\d+\.0\/24 -o dm0 .*-j RETURN/g)?.length, 1, `${h}: exactly one RETURN\n${rules}`);
      const nets = await env.lab.execOk(h, ["docker", "network", "ls", "--filter", "name=^mesh$", "--format", "{{.Name}}"]);
      assert.equal(nets.trim(), "mesh", `${h}: one Docker network named mesh`);
      const m = await machine(h);
      assert.equal(m.status?.peers, "2/2");
      assert.match(m.status?.subnet ?? "", /^10\.210\.\d+\.0\/24$/);
      assert.equal(cond(m, "Ready")?.observedGeneration, m.metadata.generation);
    }
    const table = await env.kubectlOk(["get", "machines"]);
    assert.match(table, /^NAME\s+HOST\s+SUBNET\s+PEERS\s+READY\s+REASON\s+DNS\s+AGE/m);
    for (const h of ["h1", "h2", "h3"]) assert.match(table, new RegExp(`^${h}\\s+198\\.18\\.3\\.\\d+\\s+10\\.210\\.\\d+\\.0/24\\s+2/2\\s+True\\s+Converged`, "m"));

    for (const h of ["h1", "h2", "h3"]) await startHttpd(h);
    await assertFullMesh(["h1", "h2", "h3"]);
    const mesh = await env.getJson<MeshNetwork>(["get", "meshnetwork", "mesh"]);
    assert.equal(mesh.status?.machines, "3/3");
    assert.equal(cond(mesh, "Ready")?.status, "True");
  });

  test("a resync that finds nothing new writes nothing to the API or the host", async () => {
    const before = await machine("h1");
    const stepsBefore = appliedSteps(env.log).length;
    await sleep(12_000); // longer than one resync period (10 s)
    const after = await machine("h1");
    assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion, "status was rewritten by a resync");
    assert.equal(appliedSteps(env.log).length, stepsBefore, "a resync changed a host");
  });

  test("a 4th host joins while a ping runs between hosts 1 and 2: 0 packets lost", async () => {
    // 200 pings at 50 ms between h1's and h2's containers, across the change.
    const pinger = env.lab.exec("h1", ["docker", "run", "--rm", "--network", "mesh", env.lab.image, "ping", "-c", "200", "-i", "0.05", "-W", "1", ips.get("h2")!], { timeoutMs: 120_000 });
    await sleep(1000);
    await env.kubectlOk(["apply", "-f", "-"], env.machineYaml(["h4"]));
    await waitReady(["h4"]);
    await eventually(
      "h1..h3 see 3/3 peers",
      async () => {
        for (const h of ["h1", "h2", "h3"]) if ((await machine(h)).status?.peers !== "3/3") return undefined;
        return true;
      },
      120_000,
    );
    const ping = await pinger;
    assert.match(ping.stdout, /200 packets transmitted, 200 packets received, 0% packet loss/, ping.stdout + ping.stderr);
    const restarts = appliedSteps(env.log).filter((l) => /^h[123] \[#\] wg-quick (up|down)/.test(l));
    assert.deepEqual(
      restarts.filter((l) => !l.includes("up dm0") || false),
      [],
      "no interface restart on existing hosts",
    );
    await startHttpd("h4");
    await assertFullMesh(["h1", "h2", "h3", "h4"]);
  });

  test("deleting host 3's Machine tears it down and removes it from every peer", async () => {
    const pub3 = (await machine("h3")).status?.publicKey;
    assert.ok(pub3);
    await env.kubectlOk(["delete", "machine", "h3", "--timeout=120s"], undefined, 150_000);
    const gone = await env.kubectl(["get", "machine", "h3"]);
    assert.match(gone.stderr, /NotFound|not found/, "the finalizer was released and the Machine is gone");
    const links = await env.lab.exec("h3", ["ip", "link", "show", "dm0"]);
    assert.notEqual(links.code, 0, "dm0 still exists on h3");
    assert.doesNotMatch(await rulesOf("h3"), /dockmesh/, "rules left on h3");
    const nets = await env.lab.execOk("h3", ["docker", "network", "ls", "--format", "{{.Name}}"]);
    assert.doesNotMatch(nets, /^mesh$/m, "network left on h3");
    const files = await env.lab.exec("h3", ["sh", "-c", "ls /etc/wireguard/dm0.conf /etc/systemd/system/wg-quick@dm0.service.d /etc/systemd/system/multi-user.target.wants/wg-quick@dm0.service 2>&1"]);
    assert.doesNotMatch(files.stdout, /^\/etc/m, `unit or config left on h3: ${files.stdout}`);
    await eventually(
      "h3 gone from every peer",
      async () => {
        for (const h of ["h1", "h2", "h4"]) {
          const peers = await env.lab.execOk(h, ["wg", "show", "dm0", "peers"]);
          if (peers.includes(pub3)) return undefined;
        }
        return true;
      },
      60_000,
    );
    const secret = await env.kubectl(["get", "secret", "h3-wireguard"]);
    assert.notEqual(secret.code, 0, "the key Secret of a deleted Machine is removed");
  });

  test("drift: a deleted DOCKER-USER rule and a downed interface are reported, then repaired by the resync", async () => {
    // Watch h1's conditions: the repair must show up as a False → True flip, not silently.
    const watch = env.kubectl(["get", "machine", "h1", "-w", "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].reason}{"\\n"}', "--request-timeout=25s"], undefined, 35_000);
    await sleep(1000);
    await env.lab.execOk("h1", ["iptables", "-D", "DOCKER-USER", "-i", "dm0", "-o", "br-dm0", "-m", "comment", "--comment", "dockmesh:dm0", "-j", "ACCEPT"]);
    await env.lab.execOk("h1", ["ip", "link", "set", "dm0", "down"]);
    await eventually(
      "h1 repaired",
      async () => {
        const rules = await rulesOf("h1");
        const link = await env.lab.execOk("h1", ["ip", "-o", "link", "show", "dm0"]);
        return /-A DOCKER-USER -i dm0 -o br-dm0/.test(rules) && /[<,]UP[,>]/.test(link) ? true : undefined;
      },
      60_000,
    );
    await waitReady(["h1"]);
    const events = await env.kubectlOk(["get", "events", "--field-selector", "involvedObject.name=h1", "-o", 'jsonpath={range .items[*]}{.reason}{"\\n"}{end}']);
    assert.match(events, /^DriftDetected$/m, "a DriftDetected event names the repair");
    const seen = await watch;
    assert.match(seen.stdout, /DriftDetected/, `the condition showed the drift: ${seen.stdout}`);
    await assertReaches("h2", "h1");
    await assertReaches("h1", "h4");
  });

  test("wrong SSH key, unreachable host, changed host key: that Machine says which; the others stay Ready", async () => {
    const other = generateEd25519("not-authorized").privateKey;
    const bad = (name: string, ssh: Record<string, unknown>) =>
      yamlDoc({ apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", metadata: { name, namespace: "default" }, spec: { ssh: { port: 22, privateKeySecretRef: { name: "lab-ssh" }, ...ssh } } });
    await env.kubectlOk(
      ["apply", "-f", "-"],
      [
        yamlDoc({ apiVersion: "v1", kind: "Secret", metadata: { name: "other-key" }, stringData: { "ssh-privatekey": other } }),
        bad("wrongkey", { host: env.lab.host("h5").sshHost, privateKeySecretRef: { name: "other-key" } }),
        bad("nohost", { host: "198.18.3.250" }),
        bad("pinned", { host: env.lab.host("h5").sshHost, hostKey: env.lab.host("h1").hostKey }),
      ].join(""),
    );
    const expect: Record<string, [string, RegExp]> = {
      wrongkey: ["AuthFailed", /key in Secret default\/other-key key ssh-privatekey rejected; add its public key \(ssh-ed25519 .*\) to ~root\/\.ssh\/authorized_keys/],
      nohost: ["Unreachable", /ssh root@198\.18\.3\.250:22: (no route to host|timed out)/],
      pinned: ["HostKeyMismatch", /host key changed: expected SHA256:\S+ \(pinned in spec\.ssh\.hostKey\), got SHA256:\S+; refusing to connect/],
    };
    for (const [name, [reason, msg]] of Object.entries(expect)) {
      const m = await waitReason(name, "Reachable", reason);
      assert.equal(cond(m, "Reachable")?.status, "False");
      assert.match(cond(m, "Reachable")!.message, msg);
      assert.equal(cond(m, "Ready")?.reason, reason);
    }
    // h5's own Machine converges. (A host key that changes after first contact: recorded per SSH
    // endpoint in a controller-owned Secret, see test/security/host-key-record.test.ts; pointing h5
    // at h2's address would now find h2's genuine key recorded by h2's Machine, as known_hosts would.)
    await env.kubectlOk(["apply", "-f", "-"], env.machineYaml(["h5"]));
    await waitReady(["h5"]);
    assert.match((await machine("h5")).status?.hostKeyFingerprint ?? "", /^SHA256:/);
    // The good machines stay Ready; the broken ones are listed but not held against them.
    await sleep(3000);
    for (const h of ["h1", "h2", "h4"]) {
      const m = await machine(h);
      assert.equal(cond(m, "Ready")?.status, "True", `${h}: ${JSON.stringify(cond(m, "Ready"))}`);
    }
    await env.kubectlOk(["delete", "machine", "wrongkey", "nohost", "pinned", "--wait=false"]);
    // One by one: a Machine whose host never had anything of ours may be gone already (NotFound).
    for (const name of ["wrongkey", "nohost", "pinned"]) {
      const r = await env.kubectl(["annotate", "machine", name, "dockmesh.io/release-unreachable=true"]);
      assert.ok(r.code === 0 || /NotFound/.test(r.stderr), `annotate ${name}: ${r.stderr}`);
    }
    await eventually("released machines are gone", async () => ((await env.kubectlOk(["get", "machines", "-o", "name"])).match(/wrongkey|nohost|pinned/) ? undefined : true), 60_000);
    await waitReady(["h5"]);
  });

  test("a host reboot brings the mesh back without the controller", async () => {
    await env.stopController("SIGTERM");
    const report = await env.lab.reboot("h1");
    assert.ok(report, "rebooted");
    await eventually(
      "h1's container is back",
      async () => {
        const r = await env.lab.exec("h1", ["docker", "inspect", "-f", "{{.State.Running}}", "web"]);
        return r.stdout.trim() === "true" ? true : undefined;
      },
      60_000,
    );
    ips.set("h1", await env.lab.containerIp("h1", "web", "mesh"));
    await eventually(
      "h2 reaches h1 after the reboot",
      async () => {
        await assertReaches("h2", "h1");
        return true;
      },
      60_000,
      1000,
    );
    await assertReaches("h1", "h4");
    const rules = (await rulesOf("h1")).split("\n").filter((l) => l.includes("dockmesh:dm0"));
    assert.ok(
      rules.some((l) => /-A DOCKER-USER -i dm0 -o br-dm0 /.test(l)) && rules.some((l) => /-A POSTROUTING -s 10\.210\.\d+\.0\/24 -o dm0 /.test(l)),
      `rules restored by PostUp:\n${rules.join("\n")}`,
    );
    assert.equal(new Set(rules).size, rules.length, `no rule twice:\n${rules.join("\n")}`);
    await env.startController();
  });
});
