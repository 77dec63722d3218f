// Issue 12's whole scenario, end to end on lab hosts, as a new user meets it, with status checked
// at each step (READY and PEERS never contradict each other):
// 1. three hosts, one behind NAT, in two meshes (the second on its own port): Ready, containers
//    reach each other on both networks;
// 2. a third mesh whose pool overlaps the first: refused with dockmesh plan's message, on the
//    MeshNetwork and its Machines; the other two keep working; deleting it brings Ready back;
// 3. deleting the second mesh leaves nothing of it on any host;
// 4. a host going away: Ready=False within a minute, the others stay Ready; back: Ready again;
// 5. a Machine that never connected is deleted without an annotation;
// 6. deleting a Machine tears its host down and takes it off its peers.
// The controller runs with the default 5-minute resync: what happens between resyncs is events
// and the Ready check.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { MeshEnv, eventually, startMeshEnv, yamlDoc } from "../../lab/mesh-env.js";
import { meshLeftovers } from "../../lab/lab-checks.js";
import { machineColumns } from "../support/columns.js";
import { planErrors } from "../support/plan-cli.js";

const PREFIX = "dmscn";
const LABNET = "198.18.57.0/24";
const NAT_LANS = { first: 120, last: 121 };
const PORT = 16477;
const HOSTS = ["h1", "h2", "n1"] as const;
/** The bound the README states for Ready to follow a host (Ready check 30 s + connect timeout), with slack for a loaded machine. */
const READY_BOUND_MS = 75_000;

const NETS = {
  one: { iface: "dm1", cidr: "10.240.0.0/16", dockerNetwork: "one" },
  two: { iface: "dm2", cidr: "10.241.0.0/16", dockerNetwork: "two" },
} as const;
type Net = keyof typeof NETS;
const meshDoc = (name: string, spec: Record<string, unknown>) => yamlDoc({ apiVersion: "dockmesh.io/v1alpha1", kind: "MeshNetwork", metadata: { name, namespace: "default" }, spec });
const MESHES = meshDoc("one", { cidr: NETS.one.cidr, dockerNetwork: "one", interface: "dm1" }) + meshDoc("two", { cidr: NETS.two.cidr, dockerNetwork: "two", interface: "dm2", listenPort: 51822 });
const OVERLAPPING = meshDoc("three", { cidr: "10.240.128.0/17", dockerNetwork: "three", interface: "dm3", listenPort: 51823 });

let env: MeshEnv;
const ips = new Map<string, string>();
const machine = (name: string) => env.getJson<Machine>(["get", "machine", name]);
const cond = (o: Machine | MeshNetwork, type: string) => o.status?.conditions?.find((c) => c.type === type);

const columns = () => machineColumns((args) => env.getJson(args));

const allReady = (names: readonly string[]) => async () => {
  const c = await columns();
  return names.every((n) => c.get(n)?.ready === "True") ? true : undefined;
};

async function startContainer(host: string, net: Net): Promise<void> {
  const name = `c-${net}`;
  await env.lab.exec(host, ["docker", "rm", "-f", name]);
  await env.lab.runContainer(host, name, ["--network", net, env.lab.image, "sleep", "3600"]);
  ips.set(`${host}/${net}`, await env.lab.containerIp(host, name, net));
}

/** A ping from host's container to `to`'s on the network, retried while a first handshake completes (bounded). */
async function pings(from: string, to: string, net: Net, ms = 30_000): Promise<void> {
  const ip = ips.get(`${to}/${net}`)!;
  await eventually(
    `${from} pings ${to} on ${net} (${ip})`,
    async () => {
      const r = await env.lab.exec(from, ["docker", "exec", `c-${net}`, "ping", "-c", "1", "-W", "2", ip], { timeoutMs: 10_000 });
      return r.code === 0 ? true : undefined;
    },
    ms,
    500,
  );
}

describe("issue 12's scenario as a new user meets it, on lab hosts", { timeout: 1_200_000 }, () => {
  before(async () => {
    env = await startMeshEnv({ prefix: PREFIX, labnet: LABNET, natLans: NAT_LANS, hosts: [{ name: "h1" }, { name: "h2" }, { name: "n1", nat: true }], port: PORT, resyncPeriod: "5m" });
  });
  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("1. two meshes over three hosts (one behind NAT): Ready, and containers reach each other on both networks", async () => {
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + MESHES + env.machineYaml([...HOSTS]));
    await eventually(
      "all Ready in both meshes",
      async () => {
        const ms = await Promise.all(HOSTS.map(machine));
        return ms.every((m) => m.status?.networks?.map((n) => n.meshNetwork).join() === "one,two") && (await allReady(HOSTS)()) ? true : undefined;
      },
      180_000,
      1000,
    );
    const c = await columns();
    for (const h of HOSTS) assert.equal(c.get(h)?.peers, "4/4", `${h}: two peers in each of two meshes`);
    for (const h of HOSTS) for (const net of ["one", "two"] as const) await startContainer(h, net);
    for (const net of ["one", "two"] as const) {
      await pings("n1", "h2", net);
      await pings("h2", "n1", net);
      await pings("h1", "h2", net);
    }
  });

  test("2. an overlapping pool is refused with plan's message, on the mesh and its machines; deleting it brings Ready back", async () => {
    await env.kubectlOk(["apply", "-f", "-"], OVERLAPPING);
    const three = await eventually(
      "three refused",
      async () => {
        const m = await env.getJson<MeshNetwork>(["get", "meshnetwork", "three"]);
        return cond(m, "Ready")?.reason === "MeshConflict" ? m : undefined;
      },
      60_000,
      500,
    );
    const plan = planErrors(MESHES + OVERLAPPING + env.machineYaml([...HOSTS])).find((l) => l.startsWith("MeshNetwork default/three: "));
    assert.ok(plan, "dockmesh plan refuses the same mesh");
    assert.equal(cond(three, "Ready")?.message, plan.replace(/^MeshNetwork default\/three: /, ""), "the controller says what plan says");
    assert.match(plan, /spec\.cidr: pool 10\.240\.128\.0\/17 overlaps the pool 10\.240\.0\.0\/16 of MeshNetwork one/);
    assert.deepEqual(three.status?.allocations ?? [], [], "nothing allocated");
    for (const h of HOSTS) {
      const m = await eventually(
        `${h} says MeshConflict`,
        async () => {
          const x = await machine(h);
          return cond(x, "NetworkConfigured")?.reason === "MeshConflict" ? x : undefined;
        },
        60_000,
        500,
      );
      assert.match(cond(m, "NetworkConfigured")!.message, /MeshNetwork three: .*overlaps the pool 10\.240\.0\.0\/16 of MeshNetwork one/);
      assert.notEqual((await env.lab.exec(h, ["ip", "link", "show", "dev", "dm3"])).code, 0, `nothing of three on ${h}`);
    }
    await pings("n1", "h2", "one");
    await pings("h1", "n1", "two");
    await env.kubectlOk(["delete", "meshnetwork", "three"]);
    await eventually("Ready again without three", allReady(HOSTS), 90_000, 1000);
  });

  test("3. deleting the second mesh leaves nothing of it on any host; the first keeps working", async () => {
    for (const h of HOSTS) await env.lab.exec(h, ["docker", "rm", "-f", "c-two"]);
    await env.kubectlOk(["delete", "meshnetwork", "two", "--timeout=120s"], undefined, 150_000);
    for (const h of HOSTS) {
      let last: string[] = [];
      await eventually(
        `nothing of two on ${h}`,
        async () => {
          last = await meshLeftovers(env.lab, h, NETS.two);
          return last.length === 0 ? true : undefined;
        },
        90_000,
        1000,
      ).catch((err: Error) => assert.fail(`${err.message}; still there: ${last.join("; ")}`));
    }
    await eventually("Ready with one mesh", allReady(HOSTS), 90_000, 1000);
    // The host is clean before its status is written (the resolver's teardown is part of it): wait for the write.
    await eventually("h1 counts one mesh's peers", async () => ((await columns()).get("h1")?.peers === "2/2" ? true : undefined), 30_000, 500);
    await pings("n1", "h1", "one");
  });

  test("4. a host going away is Ready=False within the bound and alone; back, it is Ready again", async () => {
    await env.lab.cut("h2");
    let healed = false;
    const heal = async () => {
      if (!healed) await env.lab.heal("h2");
      healed = true;
    };
    try {
      await away();
    } finally {
      await heal();
    }
    const t1 = Date.now();
    await eventually("h2 Ready again", allReady(HOSTS), READY_BOUND_MS + 30_000, 1000).catch(async (err: Error) => assert.fail(`${err.message}\n${await whyNotReady()}`));
    console.log(`# h2 Ready again ${((Date.now() - t1) / 1000).toFixed(1)} s after it came back`);
    await pings("h2", "n1", "one");
  });

  /** What a failed wait for Ready shows: each host's conditions and the controller's last lines about it. */
  async function whyNotReady(): Promise<string> {
    const out: string[] = [];
    for (const h of HOSTS) {
      const m = await machine(h).catch((e: Error) => e);
      if (m instanceof Error) out.push(`${h}: ${m.message}`);
      else out.push(`${h}: ${(m.status?.conditions ?? []).map((c) => `${c.type}=${c.status} ${c.reason ?? ""}: ${c.message ?? ""}`).join(" | ")}`);
    }
    const lines = env.log
      .split("\n")
      .filter((l) => l.includes("default/h2"))
      .slice(-40);
    return `${out.join("\n")}\n--- controller lines about default/h2 ---\n${lines.join("\n")}`;
  }

  /** Step 4 while h2 is cut off. */
  async function away(): Promise<void> {
    const t0 = Date.now();
    await eventually("h2 Ready=False", async () => ((await columns()).get("h2")?.ready === "False" ? true : undefined), READY_BOUND_MS, 1000);
    const down = await machine("h2");
    assert.equal(cond(down, "Reachable")?.status, "False", JSON.stringify(down.status?.conditions));
    console.log(`# h2 Ready=False ${((Date.now() - t0) / 1000).toFixed(1)} s after it went away`);
    const c = await columns();
    assert.equal(c.get("h1")?.ready, "True", "h1 stays Ready");
    assert.equal(c.get("n1")?.ready, "True", "n1 stays Ready");
    await pings("n1", "h1", "one");
  }

  test("5. a Machine that never connected is deleted without an annotation", async () => {
    const ghost = yamlDoc({
      apiVersion: "dockmesh.io/v1alpha1",
      kind: "Machine",
      metadata: { name: "ghost", namespace: "default" },
      spec: { ssh: { host: "198.18.57.250", privateKeySecretRef: { name: "lab-ssh" } } },
    });
    await env.kubectlOk(["apply", "-f", "-"], ghost);
    await eventually("ghost unreachable", async () => (cond(await machine("ghost"), "Reachable")?.status === "False" ? true : undefined), 90_000, 1000);
    await env.kubectlOk(["delete", "machine", "ghost", "--timeout=60s"], undefined, 90_000);
    assert.match((await env.kubectl(["get", "machine", "ghost"])).stderr, /NotFound|not found/);
    await eventually("the others Ready", allReady(HOSTS), 90_000, 1000);
  });

  test("6. deleting a Machine tears its host down and takes it off its peers", async () => {
    const key = (await machine("h2")).status?.publicKey;
    await env.lab.exec("h2", ["docker", "rm", "-f", "c-one"]);
    await env.kubectlOk(["delete", "machine", "h2", "--timeout=120s"], undefined, 150_000);
    assert.deepEqual(await meshLeftovers(env.lab, "h2", NETS.one), [], "nothing of mesh one on h2");
    await eventually(
      "h2 off every peer",
      async () => {
        for (const h of ["h1", "n1"]) if ((await env.lab.execOk(h, ["wg", "show", "dm1", "peers"])).includes(key!)) return undefined;
        return true;
      },
      60_000,
      1000,
    );
    await eventually("h1 and n1 Ready", allReady(["h1", "n1"]), 90_000, 1000);
    assert.equal((await columns()).get("h1")?.peers, "1/1");
    await pings("n1", "h1", "one");
  });
});
