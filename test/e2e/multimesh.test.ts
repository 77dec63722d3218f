// Issue 12 §1 on real lab hosts: three hosts, one behind NAT, in two MeshNetworks at once (the
// second with its own cidr and listenPort 51822). Every container pair pings on both Docker
// networks; each mesh's peers use that mesh's port; every Machine's status (two networks, the
// same peers in each) is accepted by the API server. A label change takes a Machine out of the
// second mesh, then the second mesh is deleted: nothing of it is left on any host, checked by
// looking at the hosts themselves.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { MeshEnv, startMeshEnv, eventually, yamlDoc } from "../../lab/mesh-env.js";
import { meshLeftovers } from "../../lab/lab-checks.js";

// This file's own lab: prefix, address blocks and ports differ from every other test's.
const PREFIX = "dmmm";
const LABNET = "198.18.54.0/24";
const NAT_LANS = { first: 114, last: 115 };
const PORT = 16474;
const METRICS_PORT = 18474;
const HOSTS = ["a1", "a2", "n1"] as const;

const NETS = {
  one: { iface: "dm1", port: 51820, cidr: "10.230.0.0/16" },
  two: { iface: "dm2", port: 51822, cidr: "10.231.0.0/16" },
} as const;
type Net = keyof typeof NETS;

const MESHES =
  yamlDoc({
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "MeshNetwork",
    metadata: { name: "one", namespace: "default" },
    spec: { cidr: NETS.one.cidr, dockerNetwork: "one", interface: NETS.one.iface },
  }) +
  yamlDoc({
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "MeshNetwork",
    metadata: { name: "two", namespace: "default" },
    spec: { cidr: NETS.two.cidr, dockerNetwork: "two", interface: NETS.two.iface, listenPort: NETS.two.port, machineSelector: { matchLabels: { two: "member" } } },
  });

let env: MeshEnv;
/** host/net → the address of that host's container on that network. */
const ips = new Map<string, string>();

const machine = (name: string) => env.getJson<Machine>(["get", "machine", name]);
const cond = (m: Machine | MeshNetwork, type: string) => m.status?.conditions?.find((c) => c.type === type);
const container = (net: Net) => `c-${net}`;

async function waitReady(names: readonly string[], timeout = "180s"): Promise<void> {
  await env.kubectlOk(["wait", "--for=condition=Ready", `--timeout=${timeout}`, ...names.map((n) => `machine/${n}`)], undefined, 200_000);
}

async function startContainer(host: string, net: Net): Promise<void> {
  await env.lab.exec(host, ["docker", "rm", "-f", container(net)]);
  await env.lab.runContainer(host, container(net), ["--network", net, env.lab.image, "sleep", "3600"]);
  ips.set(`${host}/${net}`, await env.lab.containerIp(host, container(net), net));
}

/** A ping from host's container to `to`'s on the network, retried while a first handshake completes (bounded). */
async function pings(from: string, to: string, net: Net, ms = 30_000): Promise<void> {
  const ip = ips.get(`${to}/${net}`)!;
  await eventually(
    `${from} pings ${to} on ${net} (${ip})`,
    async () => {
      const r = await env.lab.exec(from, ["docker", "exec", container(net), "ping", "-c", "1", "-W", "2", ip], { timeoutMs: 10_000 });
      return r.code === 0 ? true : undefined;
    },
    ms,
    500,
  );
}

const leftovers = (host: string, net: Net): Promise<string[]> => meshLeftovers(env.lab, host, { iface: NETS[net].iface, cidr: NETS[net].cidr, dockerNetwork: net });

async function nothingLeft(host: string, net: Net): Promise<void> {
  let last: string[] = [];
  try {
    await eventually(
      `nothing of ${net} on ${host}`,
      async () => {
        last = await leftovers(host, net);
        return last.length === 0 ? true : undefined;
      },
      90_000,
      1000,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; still there: ${last.join("; ")}`, { cause: err });
  }
}

/** The WireGuard endpoints a host configured on an interface: peer key → host:port. */
async function endpoints(host: string, iface: string): Promise<Map<string, string>> {
  const out = await env.lab.execOk(host, ["wg", "show", iface, "endpoints"]);
  return new Map(
    out
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("\t") as [string, string]),
  );
}

describe("a Machine in two MeshNetworks, on lab hosts", { timeout: 900_000 }, () => {
  before(async () => {
    env = await startMeshEnv({
      prefix: PREFIX,
      labnet: LABNET,
      natLans: NAT_LANS,
      hosts: [{ name: "a1" }, { name: "a2" }, { name: "n1", nat: true }],
      port: PORT,
      resyncPeriod: "10s",
      extraArgs: ["--metrics-bind-address", `127.0.0.1:${METRICS_PORT}`],
    });
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("three hosts, one behind NAT, in two meshes: Ready, each mesh on its own port, every pair pings on both networks", async () => {
    // Endpoints are written host:51820, as for one mesh: the second mesh's peers must use :51822.
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + MESHES + env.machineYaml([...HOSTS]));
    await env.kubectlOk(["label", "machine", ...HOSTS, "two=member"]);
    await eventually(
      "every machine has a network in both meshes",
      async () => {
        const all = await Promise.all(HOSTS.map(machine));
        return all.every((m) => m.status?.networks?.map((n) => n.meshNetwork).join() === "one,two") ? true : undefined;
      },
      180_000,
      1000,
    );
    await waitReady([...HOSTS]);

    for (const h of HOSTS) {
      const m = await machine(h);
      // Each network lists each other member once (the status the API server refused with 422 before).
      for (const n of m.status!.networks!)
        assert.deepEqual(
          n.peers?.map((p) => p.machine),
          HOSTS.filter((x) => x !== (h as string)),
          `${h} ${n.meshNetwork} peers`,
        );
      const two = m.status!.networks!.find((n) => n.meshNetwork === "two")!;
      assert.equal(two.listenPort, 51822);
      for (const p of two.peers ?? []) if (p.machine !== "n1") assert.match(p.endpoint ?? "", /:51822$/, `${h}: peer ${p.machine} in mesh two`);
      const one = m.status!.networks!.find((n) => n.meshNetwork === "one")!;
      for (const p of one.peers ?? []) if (p.machine !== "n1") assert.match(p.endpoint ?? "", /:51820$/, `${h}: peer ${p.machine} in mesh one`);
    }
    // On the hosts: n1 sends mesh two's traffic to the public hosts' port 51822.
    const keys = new Map<string, string>(await Promise.all(HOSTS.map(async (h) => [h, (await machine(h)).status!.publicKey!] as const)));
    const onN1 = await endpoints("n1", NETS.two.iface);
    for (const h of ["a1", "a2"]) assert.equal(onN1.get(keys.get(h)!), `${env.lab.host(h).publicEndpoint}:51822`, `n1's endpoint for ${h} on ${NETS.two.iface}`);
    assert.match(await env.lab.execOk("a1", ["wg", "show", NETS.two.iface, "listen-port"]), /^51822\s*$/);

    for (const h of HOSTS) for (const net of ["one", "two"] as const) await startContainer(h, net);
    let count = 0;
    const t0 = Date.now();
    for (const a of HOSTS)
      for (const b of HOSTS)
        if (a !== b)
          for (const net of ["one", "two"] as const) {
            await pings(a, b, net);
            count++;
          }
    // No status write was refused on the way (before: every one, 422 Duplicate value).
    const events = await env.getJson<{ items: Array<{ reason?: string; message?: string }> }>(["get", "events"]);
    assert.deepEqual(
      events.items.filter((e) => e.reason === "StatusWriteFailed").map((e) => e.message),
      [],
    );
    console.log(`two meshes: ${count} container pairs ping (${HOSTS.length} hosts × 2 networks) in ${Date.now() - t0} ms`);
  });

  test("a label change takes n1 out of mesh two: nothing of it is left on n1, the others drop it, mesh one still works", async () => {
    const n1key = (await machine("n1")).status!.publicKey!;
    // Containers on the network are removed first: what teardown does with attached containers is
    // decided elsewhere (issue 12 §3); this test is about dockmesh's own things.
    await env.lab.execOk("n1", ["docker", "rm", "-f", container("two")]);
    await env.kubectlOk(["label", "machine", "n1", "two-"]);
    await nothingLeft("n1", "two");
    for (const h of ["a1", "a2"]) {
      await eventually(`${h} drops n1 from ${NETS.two.iface}`, async () => ((await env.lab.execOk(h, ["wg", "show", NETS.two.iface, "peers"])).includes(n1key) ? undefined : true), 60_000, 1000);
    }
    await eventually("n1's status lists mesh one only", async () => ((await machine("n1")).status?.networks?.map((n) => n.meshNetwork).join() === "one" ? true : undefined), 60_000, 1000);
    await waitReady([...HOSTS]);
    for (const h of ["a1", "a2"])
      assert.deepEqual(
        (await machine(h)).status?.networks?.find((n) => n.meshNetwork === "two")?.peers?.map((p) => p.machine),
        ["a1", "a2"].filter((x) => x !== h),
      );
    await pings("n1", "a1", "one");
    await pings("a2", "n1", "one");
    await pings("a1", "a2", "two");
  });

  test("deleting mesh two removes everything of it from every host; mesh one is untouched", async () => {
    for (const h of ["a1", "a2"]) await env.lab.execOk(h, ["docker", "rm", "-f", container("two")]);
    await env.kubectlOk(["delete", "meshnetwork", "two", "--timeout=60s"]);
    for (const h of HOSTS) await nothingLeft(h, "two");
    await eventually(
      "no status lists mesh two",
      async () => {
        const all = await Promise.all(HOSTS.map(machine));
        return all.every((m) => m.status?.networks?.map((n) => n.meshNetwork).join() === "one") ? true : undefined;
      },
      60_000,
      1000,
    );
    await waitReady([...HOSTS]);
    for (const h of HOSTS) assert.equal(cond(await machine(h), "Ready")?.status, "True");
    for (const a of HOSTS) for (const b of HOSTS) if (a !== b) await pings(a, b, "one");
    // Mesh one's own things are all there still.
    for (const h of HOSTS) assert.ok((await leftovers(h, "one")).length >= 5, `${h} keeps mesh one`);
  });
});
