// Issue 17 acceptance on real lab hosts (dockerd with ip6tables, WireGuard, ip6tables in network
// namespaces): a dual-stack mesh (spec.cidrV6) where every container pair pings and fetches over
// IPv6 and over IPv4; and spec.cidrV6 removed while an IPv4 ping runs: 0 packets lost, and every
// IPv6 piece leaves the hosts (the Docker network's own IPv6 once its containers are gone).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { MeshEnv, startMeshEnv, eventually, yamlDoc } from "../../lab/mesh-env.js";
import { MeshWeb } from "../support/mesh-web.js";

const PREFIX = "dmsix";
const LABNET = "198.18.68.0/24";
const PORT = 16522;
const HOSTS = ["h1", "h2", "h3"] as const;
const POOL6 = "fd42:d0c::/48";

const meshYaml = (v6: boolean) =>
  yamlDoc({
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "MeshNetwork",
    metadata: { name: "mesh", namespace: "default" },
    spec: { cidr: "10.231.0.0/16", ...(v6 ? { cidrV6: POOL6 } : {}), dockerNetwork: "mesh", interface: "dm0" },
  });

let env: MeshEnv;
let web: MeshWeb;

const machine = (name: string) => env.getJson<Machine>(["get", "machine", name]);
const cond = (m: Machine | MeshNetwork, type: string) => m.status?.conditions?.find((c) => c.type === type);

async function startWeb(host: string): Promise<void> {
  const addr = await web.start(host);
  assert.match(addr, /^fd42:d0c:/, `${host}'s container has an address from the mesh's IPv6 subnet`);
}

const reaches = (from: string, to: string, family: 4 | 6) => web.reaches(from, to, family);

/** Our IPv6 pieces on a host: ip6tables rules tagged dockmesh, IPv6 routes on dm0, IPv6 AllowedIPs. */
async function ipv6Pieces(host: string): Promise<string[]> {
  const rules = (await env.lab.execOk(host, ["ip6tables-save"])).split("\n").filter((l) => l.includes("dockmesh:"));
  const routes = (await env.lab.execOk(host, ["ip", "-6", "route", "show", "dev", "dm0"])).split("\n").filter((l) => l.startsWith("fd42:"));
  const allowed = (await env.lab.execOk(host, ["wg", "show", "dm0", "allowed-ips"])).split("\n").filter((l) => l.includes("fd42:"));
  return [...rules, ...routes, ...allowed];
}

describe("dual-stack mesh (issue 17)", { timeout: 900_000 }, () => {
  before(async () => {
    env = await startMeshEnv({
      prefix: PREFIX,
      labnet: LABNET,
      hosts: HOSTS.map((name) => ({ name, dockerIp6tables: true })),
      port: PORT,
      resyncPeriod: "10s",
    });
    web = new MeshWeb(env);
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("3 dual-stack hosts: every container pair pings and fetches over IPv6 and over IPv4; AAAA answers across hosts", async () => {
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + meshYaml(true) + env.machineYaml([...HOSTS]));
    await env.waitReady([...HOSTS]);
    for (const h of HOSTS) await startWeb(h);
    for (const from of HOSTS) for (const to of HOSTS) if (from !== to) for (const family of [6, 4] as const) await reaches(from, to, family);

    // Status and kubectl show both families.
    const m1 = await machine("h1");
    const net = m1.status?.networks?.[0];
    assert.match(net?.subnetV6 ?? "", /^fd42:d0c:[0-9a-f:]*\/64$/);
    assert.equal(m1.status?.subnetV6, net?.subnetV6);
    const mesh = await env.getJson<MeshNetwork>(["get", "meshnetwork", "mesh"]);
    assert.deepEqual(
      mesh.status?.allocations?.map((a) => Boolean(a.subnetV6)),
      [true, true, true],
    );
    assert.match(await env.kubectlOk(["get", "machines", "-o", "wide"]), /SUBNET6[\s\S]*fd42:d0c:/);
    assert.match(await env.kubectlOk(["get", "meshnetworks", "-o", "wide"]), /CIDRV6[\s\S]*fd42:d0c::\/48/);
    for (const h of HOSTS) assert.ok((await ipv6Pieces(h)).length > 0, `${h} has its IPv6 pieces`);

    // AAAA beside A: from h1's container, at h1's resolver, every other host's container by name.
    const resolver = net?.dns?.address;
    assert.ok(resolver, "h1 has a resolver address");
    for (const to of ["h2", "h3"]) {
      const answer = await eventually(
        `AAAA of web.${to}.mesh.internal at h1's resolver`,
        async () => {
          const r = await env.lab.exec("h1", ["docker", "exec", "web", "nslookup", "-type=AAAA", `web.${to}.mesh.internal`, resolver], { timeoutMs: 10_000 });
          return r.stdout.includes(web.v6.get(to)!) ? r.stdout : undefined;
        },
        60_000,
        1000,
      );
      assert.ok(answer.includes(web.v6.get(to)!), answer);
      const a = await env.lab.execOk("h1", ["docker", "exec", "web", "nslookup", "-type=A", `web.${to}.mesh.internal`, resolver]);
      assert.ok(a.includes(web.v4.get(to)!), `A record too: ${a}`);
    }
  });

  test("spec.cidrV6 removed while IPv4 traffic flows: 0 packets lost; every IPv6 piece goes, the network's own once its containers stop", async () => {
    // 20 ms apart, h1 → h2 over IPv4, across the change.
    const pinger = env.lab.exec("h1", ["docker", "exec", "web", "ping", "-4", "-c", "400", "-i", "0.02", "-W", "1", web.v4.get("h2")!], { timeoutMs: 120_000 });
    await new Promise((r) => setTimeout(r, 1000));
    await env.kubectlOk(["apply", "-f", "-"], meshYaml(false));
    for (const h of HOSTS) {
      await eventually(`${h} without IPv6 rules, routes and AllowedIPs`, async () => ((await ipv6Pieces(h)).length === 0 ? true : undefined), 90_000, 1000);
    }
    const ping = await pinger;
    assert.match(ping.stdout, /400 packets transmitted, 400 packets received, 0% packet loss/, ping.stdout + ping.stderr);
    console.log(`cidrV6 removed: ${/\d+ packets transmitted, \d+ packets received, \d+% packet loss/.exec(ping.stdout)?.[0]}`);

    // The Docker network keeps its IPv6 under the running containers, and says why.
    const held = await eventually(
      "NetworkConfigured=False IPv6ChangePending on h1",
      async () => {
        const c = cond(await machine("h1"), "NetworkConfigured");
        return c?.reason === "IPv6ChangePending" ? c : undefined;
      },
      60_000,
      1000,
    );
    assert.match(held.message, /should lose its IPv6/);
    for (const h of HOSTS) await reaches(h === "h3" ? "h1" : "h3", h, 4);

    // Containers gone: the network is recreated IPv4 only, and the hosts are Ready again.
    for (const h of HOSTS) {
      await env.lab.execOk(h, ["docker", "rm", "-f", "web"]);
      await env.lab.exec(h, ["docker", "rm", "-f", "lab-fetch-mesh"]);
    }
    await env.waitReady([...HOSTS]);
    for (const h of HOSTS) {
      const enabled = (await env.lab.execOk(h, ["docker", "network", "inspect", "-f", "{{.EnableIPv6}}", "mesh"])).trim();
      assert.equal(enabled, "false", `${h}'s Docker network is IPv4 only`);
      assert.equal((await machine(h)).status?.subnetV6, undefined);
    }
    for (const h of HOSTS) await startWeb4(h);
    for (const from of HOSTS) for (const to of HOSTS) if (from !== to) await reaches(from, to, 4);
  });
});

async function startWeb4(host: string): Promise<void> {
  await web.start(host, false);
}
