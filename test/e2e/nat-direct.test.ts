// Issue 19 on real lab hosts: NAT↔NAT pairs go direct where the NATs allow it. Two public hosts
// (p1, p2) and three behind NAT: n1 and n2 behind routers that map ports the same way for every
// destination (Linux MASQUERADE), n3 behind one that maps per destination (MASQUERADE --random).
// - n1↔n2 go direct, and the relay's WireGuard counters for them stay still while they ping;
// - n3's pairs stay relayed, and status says why (the public hosts see n3 at two ports);
// - a ping running across the switches (Relay → Auto → Relay) counts the packets lost;
// - latency relayed against direct;
// - n2's NAT rebinds (its router maps it to a new port): the public hosts see the new mapping, the
//   pair is probed again there, relayed meanwhile, and goes direct again.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MachineStatusNetworkPeer } from "../../api/types.generated.js";
import { MeshEnv, startMeshEnv, eventually, yamlDoc } from "../../lab/mesh-env.js";
import { ensureSystemPackages, inDirs } from "../../lab/requirements.js";
import { runOk } from "../../lab/proc.js";

// This file's own lab: prefix, address blocks and ports differ from every other test's.
const PREFIX = "dmnd";
const LABNET = "198.18.67.0/24";
const NAT_LANS = { first: 168, last: 171 };
const PORT = 16521;
const HOSTS = ["p1", "p2", "n1", "n2", "n3"] as const;

const meshYaml = (natTraversal: "Auto" | "Relay") =>
  yamlDoc({
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "MeshNetwork",
    metadata: { name: "mesh", namespace: "default" },
    spec: { cidr: "10.233.0.0/16", dockerNetwork: "mesh", interface: "dm0", natTraversal },
  });

let env: MeshEnv;

async function peerOf(machine: string, peer: string): Promise<MachineStatusNetworkPeer | undefined> {
  const m = await env.getJson<Machine>(["get", "machine", machine]);
  return m.status?.networks?.[0]?.peers?.find((p) => p.machine === peer);
}

/** Waits until both sides of the pair show this path; returns the ms it took. */
async function bothPaths(a: string, b: string, path: "Direct" | "Relayed", timeoutMs = 60_000): Promise<number> {
  const t0 = Date.now();
  let last: unknown;
  try {
    await eventually(
      `${a}↔${b} ${path} on both sides`,
      async () => {
        const [x, y] = await Promise.all([peerOf(a, b), peerOf(b, a)]);
        last = { [a]: x, [b]: y };
        return x?.path === path && y?.path === path ? true : undefined;
      },
      timeoutMs,
      250,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`, { cause: err });
  }
  return Date.now() - t0;
}

async function gateway(machine: string): Promise<string> {
  const m = await env.getJson<Machine>(["get", "machine", machine]);
  const subnet = m.status?.networks?.[0]?.subnet ?? "";
  return subnet.replace(/\.0\/\d+$/, ".1");
}

/** A ping from `from`'s bridge gateway to `to`'s, through the tunnel: sent, received, least and average RTT in ms. */
async function ping(from: string, to: string, count: number, intervalS: number): Promise<{ sent: number; received: number; minMs: number; avgMs: number }> {
  const [src, dst] = await Promise.all([gateway(from), gateway(to)]);
  // -w: a deadline, so the summary comes even when an outage slows the sending (ping waits on
  // unanswered packets), rather than the command being killed without one.
  const deadlineS = Math.ceil(count * intervalS) + 15;
  const r = await env.lab.exec(from, ["ping", "-n", "-q", "-I", src, "-i", String(intervalS), "-W", "1", "-w", String(deadlineS), "-c", String(count), dst], { timeoutMs: (deadlineS + 30) * 1000 });
  const sum = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  const rtt = /= ([\d.]+)\/([\d.]+)\//.exec(r.stdout);
  assert.ok(sum, `ping ${from} → ${to}: ${r.stdout}${r.stderr}`);
  return { sent: Number(sum[1]), received: Number(sum[2]), minMs: rtt ? Number(rtt[1]) : NaN, avgMs: rtt ? Number(rtt[2]) : NaN };
}

/** Bytes received + sent on `host`'s WireGuard peers for these machines, by their public keys. */
async function transfer(host: string, machines: readonly string[]): Promise<number> {
  const keys = await Promise.all(machines.map(async (m) => (await env.getJson<Machine>(["get", "machine", m])).status?.publicKey ?? ""));
  const out = await env.lab.execOk(host, ["wg", "show", "dm0", "transfer"]);
  let total = 0;
  for (const line of out.trim().split("\n")) {
    const [key, rx, tx] = line.split("\t");
    if (keys.includes(key ?? "")) total += Number(rx) + Number(tx);
  }
  return total;
}

describe("NAT↔NAT direct paths on lab hosts (issue 19)", { timeout: 900_000 }, () => {
  before(async () => {
    // conntrack(8) forgets a router's mappings, as a NAT rebinding does.
    await ensureSystemPackages({ requirements: [{ binary: "conntrack", paths: inDirs("conntrack"), pkg: "conntrack" }], purpose: "the NAT rebinding test" });
    env = await startMeshEnv({
      prefix: PREFIX,
      labnet: LABNET,
      natLans: NAT_LANS,
      hosts: [{ name: "p1" }, { name: "p2" }, { name: "n1", nat: true }, { name: "n2", nat: true }, { name: "n3", nat: true, natMapping: "per-destination" }],
      port: PORT,
      resyncPeriod: "10s",
      extraArgs: ["--ready-check-period", "3s"],
    });
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + meshYaml("Auto") + env.machineYaml([...HOSTS]));
    await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", ...HOSTS.map((h) => `machine/${h}`)], undefined, 200_000);
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("n1↔n2 (endpoint-independent NATs) go direct; the relay's counters for them stay still while they ping", async () => {
    const ms = await bothPaths("n1", "n2", "Direct", 90_000);
    const n1 = (await peerOf("n1", "n2"))!;
    console.log(`# NAT↔NAT: n1↔n2 Direct ${ms} ms after every Machine was Ready; n1 says: ${n1.pathReason}`);
    assert.equal(n1.state, "Connected");
    assert.equal(n1.via, undefined);
    assert.match(n1.endpoint ?? "", /^198\.18\.67\.\d+:51820$/, "n2's mapping as the public hosts see it");
    assert.ok(n1.pathSince, "since when");
    const relay =
      (await peerOf("n1", "n2"))?.via ??
      (await env.getJson<{ status?: { relays?: Array<{ machines: string[]; via: string }> } }>(["get", "meshnetwork", "mesh"])).status?.relays?.find((r) => r.machines.join() === "n1,n2")?.via;
    assert.ok(relay === "p1" || relay === "p2", `the pair's relay: ${relay}`);
    const before = await transfer(relay, ["n1", "n2"]);
    const directBefore = await transfer("n1", ["n2"]);
    const p = await ping("n1", "n2", 50, 0.02);
    const moved = (await transfer(relay, ["n1", "n2"])) - before;
    const direct = (await transfer("n1", ["n2"])) - directBefore;
    console.log(`# NAT↔NAT direct: 50 pings n1 → n2, ${p.received} answered; relay ${relay}'s counters for n1 and n2 moved ${moved} B, n1's direct peer n2 ${direct} B`);
    assert.equal(p.received, 50);
    assert.ok(direct >= 50 * 2 * 100, `the pings crossed the direct peer: ${direct} B`);
    // Keepalives (32 B) and perhaps a handshake: far below the 50 × 2 × 116 B the pings would be.
    assert.ok(moved < 1000, `the relay carried ${moved} B`);
  });

  test("n3 (a NAT that maps per destination) stays relayed with both, and status says why; its traffic flows through the relay", async () => {
    for (const other of ["n1", "n2"]) {
      const seen = await eventually(
        `${other}'s peer n3 relayed with a reason`,
        async () => {
          const p = await peerOf(other, "n3");
          return p?.path === "Relayed" && /maps per destination/.test(p.pathReason ?? "") ? p : undefined;
        },
        60_000,
        500,
      );
      assert.equal(seen.state, "Relayed");
      assert.ok(seen.via === "p1" || seen.via === "p2");
      console.log(`# NAT↔NAT: ${other}↔n3 relayed via ${seen.via}: ${seen.pathReason}`);
    }
    const p = await ping("n1", "n3", 20, 0.05);
    assert.equal(p.received, 20);
  });

  test("switching: relayed → direct → relayed under a running ping; lost packets counted; latency relayed against direct", async () => {
    const direct = await ping("n1", "n2", 200, 0.01);
    // Relay only: the pair falls back; a ping runs across the switch.
    const toRelay = ping("n1", "n2", 1000, 0.01);
    await new Promise((r) => setTimeout(r, 1000));
    await env.kubectlOk(["apply", "-f", "-"], meshYaml("Relay"));
    const relayMs = await bothPaths("n1", "n2", "Relayed");
    const down = await toRelay;
    const relayed = await ping("n1", "n2", 200, 0.01);
    // Back to Auto: probed again and direct; a ping runs across that switch too.
    const toDirect = ping("n1", "n2", 1500, 0.01);
    await new Promise((r) => setTimeout(r, 1000));
    await env.kubectlOk(["apply", "-f", "-"], meshYaml("Auto"));
    const directMs = await bothPaths("n1", "n2", "Direct", 60_000);
    const up = await toDirect;
    console.log(`# NAT↔NAT switch direct → relayed: ${down.sent - down.received} of ${down.sent} pings lost (10 ms apart), both sides relayed ${relayMs} ms after the apply`);
    console.log(`# NAT↔NAT switch relayed → direct: ${up.sent - up.received} of ${up.sent} pings lost (10 ms apart), both sides direct ${directMs} ms after the apply`);
    console.log(
      `# NAT↔NAT latency n1 → n2 (200 pings each): direct ${direct.avgMs.toFixed(3)} ms (least ${direct.minMs.toFixed(3)}), relayed ${relayed.avgMs.toFixed(3)} ms (least ${relayed.minMs.toFixed(3)}) (${(relayed.avgMs / direct.avgMs).toFixed(2)}×)`,
    );
    assert.equal(direct.received, 200);
    assert.equal(relayed.received, 200);
    // The least RTT: the path itself. The mean also carries the machine's scheduling (wireguard-go
    // in user space): one CI run on a busy machine measured direct 1.120 ms, relayed 1.050 ms.
    assert.ok(relayed.minMs > direct.minMs, `the relay adds a hop: least RTT relayed ${relayed.minMs} ms, direct ${direct.minMs} ms`);
    // The two sides switch in separate reconciles: a few packets in the gap, not a stall.
    assert.ok(down.sent - down.received <= 50, `lost switching to the relay: ${down.sent - down.received}`);
    assert.ok(up.sent - up.received <= 50, `lost switching to direct: ${up.sent - up.received}`);
  });

  test("n2's NAT rebinds to a new port: seen by the public hosts, probed again there (relayed meanwhile), direct again; pings lost counted", async () => {
    await bothPaths("n1", "n2", "Direct", 60_000);
    const before = (await peerOf("n1", "n2"))!.endpoint ?? "";
    const router = `${PREFIX}-gw-n2`;
    const lan = env.lab.host("n2").sshHost; // its LAN address (198.19.x.2)
    const ping$ = ping("n1", "n2", 6000, 0.01); // 60 s
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    // The router now maps n2 to port 40000, and forgets the mappings it had.
    await runOk([
      "ip",
      "netns",
      "exec",
      router,
      "iptables",
      "-w",
      "-t",
      "nat",
      "-I",
      "POSTROUTING",
      "1",
      "-s",
      `${lan}/32`,
      "-o",
      "eth0",
      "-p",
      "udp",
      "-m",
      "comment",
      "--comment",
      "dockmesh-lab rebinding",
      "-j",
      "MASQUERADE",
      "--to-ports",
      "40000",
    ]);
    await runOk(["ip", "netns", "exec", router, "conntrack", "-D", "-p", "udp", "-s", lan]).catch(() => undefined); // exits 1 when nothing matched
    const seen = await eventually(
      "n1 direct with n2 at its new mapping",
      async () => {
        const [x, y] = await Promise.all([peerOf("n1", "n2"), peerOf("n2", "n1")]);
        return x?.path === "Direct" && y?.path === "Direct" && x.endpoint?.endsWith(":40000") ? x : undefined;
      },
      120_000,
      250,
    );
    const ms = Date.now() - t0;
    const p = await ping$;
    console.log(
      `# NAT↔NAT rebinding: n2 mapped from ${before} to ${seen.endpoint}; direct again ${ms} ms later (n2's next keepalive, 25 s apart, shows the public hosts the new port); ${p.sent - p.received} of ${p.sent} pings lost (10 ms apart)`,
    );
    assert.match(before, /:51820$/);
    assert.ok(p.received > 0);
    const q = await ping("n1", "n2", 50, 0.02);
    assert.equal(q.received, 50, "direct at the new mapping carries traffic");
  });
});
