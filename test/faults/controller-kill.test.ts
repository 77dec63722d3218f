// Fault suite (issue 7): `dockmesh up` (store and controllers in one process) killed with SIGKILL
// at a random point of a converge, five times, on real lab hosts. Each trial creates a mesh of
// three Machines in a namespace of its own (its own interface, Docker network, pool and port),
// kills the process at a random moment — 150-1250 ms after the apply, or 0-500 ms after the
// first host finished its apply script — starts it again, and waits for every Machine to be Ready. Then on
// every host: each dockmesh rule of that interface exactly once, exactly one Docker network of
// that name, the two other Machines as WireGuard peers (their current keys), no temporary file
// left in /etc/wireguard, and a container reaching another host's container.
// The PRNG is seeded: the seed is printed, and DOCKMESH_FAULT_SEED=<seed> replays a failing run.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Machine } from "../../api/types.generated.js";
import { MeshEnv, startMeshEnv, sleep, yamlDoc } from "../../lab/mesh-env.js";
import { dockmeshRules } from "../../lab/lab-checks.js";

const PREFIX = "dmfkill";
const LABNET = "198.18.40.0/24";
const PORT = 16460;
const HOSTS = ["h1", "h2", "h3"] as const;
const TRIALS = 5;

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.DOCKMESH_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const random = prng(SEED);
let env: MeshEnv;

/** Whether an apply step ("[#] …") was logged after `offset` in the controller's output. */
function firstStepAfter(offset: number): boolean {
  return env.log.slice(offset).includes('"[#] ');
}

describe("fault suite: the controller killed at random points of a converge", { timeout: 420_000 }, () => {
  before(async () => {
    console.log(`# seed ${SEED} (replay with DOCKMESH_FAULT_SEED=${SEED})`);
    env = await startMeshEnv({ prefix: PREFIX, labnet: LABNET, natLans: { first: 90, last: 91 }, hosts: HOSTS.map((name) => ({ name })), port: PORT, resyncPeriod: "30s" });
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  for (let t = 1; t <= TRIALS; t++) {
    test(`trial ${t}: killed, restarted, converged; nothing twice`, async () => {
      const ns = `kill${t}`;
      const iface = `dmk${t}`;
      const net = `net${t}`;
      // Decide the kill point before anything runs, so the seed alone replays the trial.
      const afterStep = random() < 0.5;
      // Windows where the hosts are being worked on: from the API writes before SSH, through the
      // apply scripts (a SIGKILL drops the SSH connection: a script is cut off mid-way), to the
      // status writes after.
      const delayMs = Math.round(afterStep ? random() * 500 : 150 + random() * 1100);
      console.log(`# trial ${t}: SIGKILL ${delayMs} ms after ${afterStep ? "the first apply step a host finished" : "kubectl apply"}`);

      const secret = env.sshSecretYaml().replace("namespace: default", `namespace: ${ns}`);
      const mesh = yamlDoc({
        apiVersion: "dockmesh.io/v1alpha1",
        kind: "MeshNetwork",
        metadata: { name: "mesh", namespace: ns },
        spec: { cidr: `10.${100 + t}.0.0/16`, interface: iface, dockerNetwork: net, listenPort: 51820 + t },
      });
      const machines = env.machineYaml([...HOSTS], (n) => ({ endpoint: `${env.lab.host(n).publicEndpoint}:${51820 + t}` })).replaceAll("namespace: default", `namespace: ${ns}`);
      const logFrom = env.log.length;
      await env.kubectlOk(["apply", "-f", "-"], yamlDoc({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }) + secret + mesh + machines);
      if (afterStep) {
        for (let i = 0; i < 600 && !firstStepAfter(logFrom); i++) await sleep(25);
      }
      await sleep(delayMs);
      const stepsBeforeKill = (env.log.slice(logFrom).match(/"\[#\] /g) ?? []).length;
      await env.stopController("SIGKILL");
      console.log(`# trial ${t}: killed after ${stepsBeforeKill} apply step(s) were logged`);
      await env.startController();
      await env.kubectlOk(["-n", ns, "wait", "--for=condition=Ready", "--timeout=120s", ...HOSTS.map((h) => `machine/${h}`)], undefined, 150_000);

      const keys = new Map<string, string>();
      for (const h of HOSTS) keys.set(h, (await env.getJson<Machine>(["-n", ns, "get", "machine", h])).status?.publicKey ?? "");
      for (const h of HOSTS) {
        const rules = await dockmeshRules(env.lab, h, iface);
        assert.equal(new Set(rules).size, rules.length, `${h}: a rule twice:\n${rules.join("\n")}`);
        assert.equal(rules.filter((l) => /^-A DOCKER-USER -i dmk\d -o br-dmk\d /.test(l)).length, 1, `${h}: DOCKER-USER accept:\n${rules.join("\n")}`);
        assert.equal(rules.filter((l) => /^-A POSTROUTING -s 10\.\d+\.\d+\.0\/24 -o dmk\d /.test(l)).length, 1, `${h}: nat RETURN:\n${rules.join("\n")}`);
        assert.equal(rules.filter((l) => /^-A PREROUTING -d 10\.\d+\.\d+\.0\/24 -i dmk\d /.test(l)).length, 1, `${h}: raw accept:\n${rules.join("\n")}`);
        assert.equal(
          rules.filter((l) => /^-A INPUT -d 10\.\d+\.\d+\.1\/32 ! -i br-dmk\d .* --dport 53 .*-j DROP$/.test(l)).length,
          2,
          `${h}: the resolver's port closed, udp and tcp:\n${rules.join("\n")}`,
        );
        assert.equal(rules.length, 5, `${h}: only dockmesh's five rules for ${iface} (three for the tunnel, two for the resolver):\n${rules.join("\n")}`);
        const nets = (await env.lab.execOk(h, ["docker", "network", "ls", "--filter", `name=^${net}$`, "--format", "{{.Name}}"])).trim().split("\n");
        assert.deepEqual(nets, [net], `${h}: exactly one Docker network ${net}`);
        const peers = (await env.lab.execOk(h, ["wg", "show", iface, "peers"])).trim().split("\n").sort();
        assert.deepEqual(
          peers,
          HOSTS.filter((x) => x !== h)
            .map((x) => keys.get(x)!)
            .sort(),
          `${h}: peers are the two others, with their current keys`,
        );
        const temp = await env.lab.exec(h, ["sh", "-c", "ls /etc/wireguard/*.dockmesh.* /etc/systemd/system/*/*.dockmesh.* 2>/dev/null"]);
        assert.equal(temp.stdout.trim(), "", `${h}: a temporary file was left behind`);
      }
      // Containers on two hosts reach each other through the new interface.
      const { ip } = await env.lab.startHttpd("h2", { name: `web${t}`, network: net, content: `trial ${t}` });
      assert.equal(await env.lab.fetchOk("h1", { network: net, url: `http://${ip}:80/`, timeoutSec: 5 }), `trial ${t}`);
    });
  }
});
