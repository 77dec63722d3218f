// Issue 17 acceptance on real lab hosts: a host whose only uplink is IPv6 joins a mesh (the
// controller reaches it over SSH on IPv6, its tunnel runs over IPv6), and a host with IPv4 only
// reaches it through a relay: the machine with an endpoint in both families (spec.endpoint and
// spec.endpointV6). Containers on the two talk over IPv4 and IPv6 inside the mesh. The IPv6-only
// host is firewalled (INPUT policy DROP): its WireGuard port is opened in ip6tables.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { MeshEnv, startMeshEnv, eventually, yamlDoc } from "../../lab/mesh-env.js";
import { MeshWeb } from "../support/mesh-web.js";

const PREFIX = "dmup6";
const LABNET = "198.18.71.0/24";
const PORT = 16525;

const meshYaml = yamlDoc({
  apiVersion: "dockmesh.io/v1alpha1",
  kind: "MeshNetwork",
  metadata: { name: "mesh", namespace: "default" },
  spec: { cidr: "10.232.0.0/16", cidrV6: "fd42:d0d::/48", dockerNetwork: "mesh", interface: "dm0" },
});

let env: MeshEnv;
let web: MeshWeb;
const startWeb = (host: string) => web.start(host);
const reaches = (from: string, to: string, family: 4 | 6) => web.reaches(from, to, family);

/** `wg show dm0 endpoints` of a host, as peer public key → endpoint. */
async function wgEndpoints(host: string): Promise<Map<string, string>> {
  const out = await env.lab.execOk(host, ["wg", "show", "dm0", "endpoints"]);
  return new Map(
    out
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => l.split("\t") as [string, string]),
  );
}

describe("IPv6-only uplink (issue 17)", { timeout: 600_000 }, () => {
  before(async () => {
    env = await startMeshEnv({
      prefix: PREFIX,
      labnet: LABNET,
      hosts: [
        { name: "relay", uplink: "dual", dockerIp6tables: true },
        { name: "four", dockerIp6tables: true },
        // Firewalled like a cloud VM (INPUT policy DROP in iptables and ip6tables, SSH let in).
        { name: "six", uplink: "ipv6", dockerIp6tables: true, inputPolicy: "DROP" },
      ],
      port: PORT,
      resyncPeriod: "10s",
    });
    web = new MeshWeb(env);
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("the IPv6-only host joins; the IPv4-only host reaches it through the dual-uplink relay, over both families inside", async () => {
    const six = env.lab.host("six");
    assert.ok(six.address.includes(":"), `six's SSH address is IPv6: ${six.address}`);
    assert.equal((await env.lab.execOk("six", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])).trim(), "", "six has no IPv4 address on its uplink");

    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + meshYaml + env.machineYaml(["relay", "four", "six"]));
    await env.waitReady(["relay", "four", "six"]);
    for (const h of ["relay", "four", "six"]) await startWeb(h);
    for (const [from, to] of [
      ["four", "six"],
      ["six", "four"],
      ["relay", "six"],
      ["six", "relay"],
    ] as const) {
      for (const family of [4, 6] as const) await reaches(from, to, family);
    }

    // The tunnels: six has one peer, the relay, at its IPv6 endpoint; four has no peer for six.
    const key = async (name: string) => ((await env.getJson<Machine>(["get", "machine", name])).status?.publicKey ?? "").trim();
    const [relayKey, sixKey] = [await key("relay"), await key("six")];
    const sixPeers = await wgEndpoints("six");
    assert.deepEqual([...sixPeers.keys()], [relayKey], "six's only peer is the relay");
    assert.match(sixPeers.get(relayKey)!, /^\[fdc6:1218:47::[0-9a-f]+\]:51820$/, "over IPv6");
    const fourPeers = await wgEndpoints("four");
    assert.equal(fourPeers.has(sixKey), false, "four has no tunnel to six");
    assert.match(fourPeers.get(relayKey)!, /^198\.18\.71\.\d+:51820$/, "four reaches the relay over IPv4");
    const relayPeers = await wgEndpoints("relay");
    assert.match(relayPeers.get(sixKey)!, /^\[fdc6:1218:47::[0-9a-f]+\]:51820$/);

    // six's WireGuard port is open in ip6tables (dockmesh's own chain), and the relay's packets came in through it.
    const counters = await env.lab.execOk("six", ["ip6tables", "-w", "-L", "DOCKMESH-INPUT", "-v", "-n", "-x"]);
    const port = counters.split("\n").find((l) => /udp dpt:51820/.test(l));
    assert.ok(port && Number(port.trim().split(/\s+/)[0]) > 0, `packets accepted by dockmesh's ip6tables rule on six:\n${counters}`);

    // Status says it: the pair is relayed, four sees six through the relay.
    const mesh = await env.getJson<MeshNetwork>(["get", "meshnetwork", "mesh"]);
    assert.deepEqual(mesh.status?.relays, [{ machines: ["four", "six"], via: "relay" }]);
    const four = await env.getJson<Machine>(["get", "machine", "four"]);
    const toSix = four.status?.networks?.[0]?.peers?.find((p) => p.machine === "six");
    assert.equal(toSix?.via, "relay");
    assert.equal(toSix?.state, "Relayed");
  });

  test("a host that stops forwarding IPv6 says so (NetworkConfigured=False IPv6ForwardingOff) and recovers when it forwards again", async () => {
    const configured = async () => (await env.getJson<Machine>(["get", "machine", "relay"])).status?.conditions?.find((c) => c.type === "NetworkConfigured");
    await env.lab.execOk("relay", ["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=0"]);
    try {
      const c = await eventually("relay: NetworkConfigured=False IPv6ForwardingOff", async () => ((await configured())?.reason === "IPv6ForwardingOff" ? await configured() : undefined), 60_000, 1000);
      assert.equal(c?.status, "False");
      assert.match(c?.message ?? "", /net\.ipv6\.conf\.all\.forwarding is 0.*accept_ra=2/);
      // dockmesh leaves the host-wide switch to its owner: still off, and IPv4 across the relay still flows.
      assert.equal((await env.lab.execOk("relay", ["sysctl", "-n", "net.ipv6.conf.all.forwarding"])).trim(), "0");
      await reaches("four", "six", 4);
    } finally {
      await env.lab.execOk("relay", ["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
    }
    await eventually("relay: NetworkConfigured=True again", async () => ((await configured())?.status === "True" ? true : undefined), 60_000, 1000);
    await reaches("four", "six", 6);
  });
});
