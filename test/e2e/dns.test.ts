// Issue 13 acceptance on real lab hosts (the records pipeline's own cases, latency of a new
// container, hostile names and the grace period, are in dns-records.test.ts). One lab for every
// case: h1..h3 public, n1 and n2 each behind its own NAT (their pair goes through a relay), all
// in MeshNetwork "a"; h1 and h2 also in MeshNetwork "b" (own cidr, interface, port and zone).
// No systemd runs in a lab host, so containers are started with --dns <their host's resolver>
// (the "none" containers mode), and every lookup is a real query to a real dnsmasq.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { MeshEnv, startMeshEnv, eventually, sleep, yamlDoc, timeUntil } from "../../lab/mesh-env.js";
import { meshLeftovers } from "../../lab/lab-checks.js";

// This file's own lab: prefix, address blocks and port differ from every other test's.
const PREFIX = "dmdna";
const LABNET = "198.18.63.0/24";
const NAT_LANS = { first: 140, last: 149 };
const PORT = 16500;
const PUBLIC = ["h1", "h2", "h3"] as const;
const NATTED = ["n1", "n2"] as const;
const HOSTS = [...PUBLIC, ...NATTED] as const;
const IN_B = ["h1", "h2"] as const;

const NETS = {
  a: { iface: "dm0", cidr: "10.232.0.0/16", zone: "a.internal", port: 51820 },
  b: { iface: "dm1", cidr: "10.233.0.0/16", zone: "b.internal", port: 51822 },
} as const;
type Net = keyof typeof NETS;

const MESHES =
  yamlDoc({
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "MeshNetwork",
    metadata: { name: "a", namespace: "default" },
    spec: { cidr: NETS.a.cidr, subnetPrefixLength: 24, dockerNetwork: "a", interface: NETS.a.iface, natTraversal: "Relay", dns: { enabled: true, zone: NETS.a.zone } },
  }) +
  yamlDoc({
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "MeshNetwork",
    metadata: { name: "b", namespace: "default" },
    spec: {
      cidr: NETS.b.cidr,
      subnetPrefixLength: 24,
      dockerNetwork: "b",
      interface: NETS.b.iface,
      listenPort: NETS.b.port,
      machineSelector: { matchLabels: { b: "member" } },
      dns: { enabled: true, zone: NETS.b.zone },
    },
  });

let env: MeshEnv;
/** "host/net" → that host's resolver address in that mesh (status.networks[].dns.address). */
const resolvers = new Map<string, string>();
const gw = (h: string, net: Net = "a") => resolvers.get(`${h}/${net}`)!;
const page = (h: string) => `hello from ${h}`;
const web = (h: string) => `web-${h}`;
const alias = (h: string) => `site-${h}`;

const machine = (name: string) => env.getJson<Machine>(["get", "machine", name]);

interface Answer {
  addresses: string[];
  nxdomain: boolean;
  raw: string;
}

/** busybox nslookup's output: the server block first, then the answer's "Address:" lines. */
function parseNslookup(out: string): Answer {
  const answer = out
    .split(/\n\s*\n/)
    .slice(1)
    .join("\n");
  const addresses = [...answer.matchAll(/Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).sort();
  return { addresses, nxdomain: /NXDOMAIN/.test(out), raw: out };
}

/**
 * A query from container `container` on `host` to `server`, bounded by `timeoutS` (busybox
 * nslookup retries for long; a name outside the resolver's zone goes to the lab host's upstream,
 * where nothing answers, and gets no reply at all).
 */
async function lookupIn(host: string, container: string, name: string, server: string, timeoutS = 3): Promise<Answer> {
  const r = await env.lab.exec(host, ["docker", "exec", container, "timeout", String(timeoutS), "nslookup", name, server], { timeoutMs: 15_000 });
  return parseNslookup(r.stdout + r.stderr);
}

/** A query from host's own network namespace (not a container): its uplink, or the host itself. */
async function lookupFromHost(host: string, name: string, server: string): Promise<Answer & { code: number }> {
  const r = await env.lab.exec(host, ["timeout", "3", "busybox", "nslookup", name, server], { timeoutMs: 15_000 });
  return { ...parseNslookup(r.stdout + r.stderr), code: r.code ?? -1 };
}

/** A container on `net` of host h, using its host's resolver (the "none" containers mode). */
async function run(h: string, name: string, net: Net, args: readonly string[] = [], cmd: readonly string[] = ["sh", "-c", 'trap "exit 0" TERM; sleep 2147483647 & wait']): Promise<string> {
  await env.lab.exec(h, ["docker", "rm", "-f", name]);
  await env.lab.runContainer(h, name, ["--network", net, "--dns", gw(h, net), ...args, env.lab.image, ...cmd]);
  return env.lab.containerIp(h, name, net);
}

/** busybox httpd serving page(h), named web-h with alias site-h on mesh a; back after a reboot. */
async function serve(h: string): Promise<string> {
  // The page arrives as a positional parameter, never as script text; sh stays PID 1 and exits on TERM.
  const script = 'mkdir -p /www && printf "%s" "$1" > /www/index.html && httpd -f -p 80 -h /www & trap "exit 0" TERM; wait';
  return run(h, web(h), "a", ["--network-alias", alias(h), "--restart", "unless-stopped"], ["sh", "-c", script, "httpd", page(h)]);
}

/** wget by name from web-`from` (the first lookups may wait for a handshake: bounded retries). */
async function fetchByName(from: string, host: string, timeoutMs = 20_000): Promise<string> {
  return eventually(
    `${from} fetches ${host} by name`,
    async () => {
      const r = await env.lab.exec(from, ["docker", "exec", web(from), "timeout", "5", "wget", "-qO-", `http://${host}:80/`], { timeoutMs: 15_000 });
      return r.code === 0 ? r.stdout : undefined;
    },
    timeoutMs,
    300,
  );
}

async function assertFetches(from: string, to: string): Promise<void> {
  for (const name of [`${web(to)}.${to}.${NETS.a.zone}`, `${alias(to)}.${NETS.a.zone}`]) {
    assert.equal(await fetchByName(from, name), page(to), `${from} → ${name}`);
  }
}

/** PIDs of dnsmasq processes in host h's network namespace started with our config for iface. */
async function resolverPids(h: string, iface: string): Promise<number[]> {
  // Lab hosts share the machine's PID namespace: keep the processes of this host's network
  // namespace whose program is dnsmasq (not this script, whose arguments name the config too).
  const self = await env.lab.execOk(h, ["readlink", "/proc/self/ns/net"]);
  const script =
    'me="$1"; conf="$2"; for d in /proc/[0-9]*; do [ "$(readlink "$d/ns/net" 2>/dev/null)" = "$me" ] || continue; c=$(tr "\\0" " " < "$d/cmdline" 2>/dev/null) || continue; case "$c" in dnsmasq\\ *"$conf"*|*/dnsmasq\\ *"$conf"*) echo "${d#/proc/}";; esac; done';
  const out = await env.lab.execOk(h, ["sh", "-c", script, "sh", self.trim(), `/etc/dockmesh/dns/${iface}/dnsmasq.conf`]);
  return out
    .split("\n")
    .filter(Boolean)
    .map(Number)
    .sort((x, y) => x - y);
}

/** Everything of the resolver for iface on host h, as the host shows it; empty: nothing left. */
async function resolverLeftovers(h: string, iface: string): Promise<string[]> {
  const found = (await resolverPids(h, iface)).map((p) => `dnsmasq pid ${p}`);
  const files = await env.lab.exec(h, [
    "sh",
    "-c",
    `ls -d /etc/dockmesh/dns/${iface} /etc/systemd/system/dockmesh-dns-${iface}.service /etc/systemd/system/*/dockmesh-dns-${iface}.service /run/dockmesh-dns-${iface}.pid 2>/dev/null`,
  ]);
  found.push(
    ...files.stdout
      .split("\n")
      .filter(Boolean)
      .map((f) => `file ${f}`),
  );
  for (const table of ["filter", "nat", "raw", "mangle"]) {
    const rules = await env.lab.execOk(h, ["iptables", "-w", "-t", table, "-S"]);
    for (const l of rules.split("\n")) if (l.includes(`dockmesh:${iface}`) && l.includes("--dport 53")) found.push(`${table}: ${l}`);
  }
  return found;
}

async function nothingOfResolver(h: string, iface: string): Promise<void> {
  let last: string[] = [];
  try {
    await eventually(
      `nothing of ${iface}'s resolver on ${h}`,
      async () => {
        last = await resolverLeftovers(h, iface);
        return last.length === 0 ? true : undefined;
      },
      60_000,
      500,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; still there: ${last.join("; ")}`, { cause: err });
  }
}

/** Every table's rules, as `iptables -S` prints them. */
const allRules = (h: string) => env.lab.execOk(h, ["sh", "-c", 'for t in filter nat raw mangle; do echo "## $t"; iptables -w -t $t -S; done']);

/** Machines whose "reconciled" log line appears in the controller's output after offset `from`. */
function reconciledSince(from: number): Set<string> {
  const seen = new Set<string>();
  for (const l of env.log.slice(from).split("\n")) {
    try {
      const o = JSON.parse(l) as { message?: string; machine?: string };
      if (o.message === "reconciled" && o.machine) seen.add(o.machine.replace(/^default\//, ""));
    } catch {
      // not a JSON line
    }
  }
  return seen;
}

describe("mesh DNS acceptance (issue 13) on lab hosts", { timeout: 420_000 }, () => {
  before(async () => {
    const t0 = performance.now();
    env = await startMeshEnv({
      prefix: PREFIX,
      labnet: LABNET,
      natLans: NAT_LANS,
      hosts: [...PUBLIC.map((name) => ({ name })), ...NATTED.map((name) => ({ name, nat: true }))],
      port: PORT,
      resyncPeriod: "10s",
    });
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + MESHES + env.machineYaml([...HOSTS]));
    await env.kubectlOk(["label", "machine", ...IN_B, "b=member"]);
    await eventually(
      "h1, h2 in both meshes",
      async () => {
        const all = await Promise.all(IN_B.map(machine));
        return all.every((m) => m.status?.networks?.map((n) => n.meshNetwork).join() === "a,b") ? true : undefined;
      },
      120_000,
      1000,
    );
    const ready = await env.kubectl(["wait", "--for=condition=Ready", "--timeout=150s", ...HOSTS.map((h) => `machine/${h}`)], undefined, 170_000);
    if (ready.code !== 0) {
      const conds = await env.kubectl(["get", "machines", "-o", 'jsonpath={range .items[*]}{.metadata.name}{" "}{.status.conditions}{"\\n"}{end}']);
      throw new Error(`not every Machine Ready: ${ready.stderr}\n${conds.stdout}\n--- controller log tail ---\n${env.log.slice(-3000)}`);
    }
    for (const h of HOSTS) {
      const m = await machine(h);
      for (const n of m.status?.networks ?? []) {
        const net = n.meshNetwork as Net;
        assert.match(n.dns?.address ?? "", /^10\.23[23]\.\d+\.1$/, `${h} ${net}: resolver address in status: ${JSON.stringify(n.dns)}`);
        resolvers.set(`${h}/${net}`, n.dns!.address!);
      }
    }
    console.log(`# mesh DNS acceptance: lab of ${HOSTS.length} hosts up and every Machine Ready in ${Math.round(performance.now() - t0)} ms`);
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("status: every host serves its meshes' zones in the none containers mode, and says why (no systemd)", async () => {
    for (const h of HOSTS) {
      const m = await machine(h);
      const nets = m.status?.networks ?? [];
      assert.deepEqual(
        nets.map((n) => n.meshNetwork),
        (IN_B as readonly string[]).includes(h) ? ["a", "b"] : ["a"],
        h,
      );
      for (const n of nets) {
        assert.equal(n.dns?.zone, NETS[n.meshNetwork as Net].zone, `${h} ${n.meshNetwork}`);
        assert.equal(n.dns?.containers, "none", `${h} ${n.meshNetwork}: ${JSON.stringify(n.dns)}`);
        assert.match(n.dns?.reason ?? "", /systemd does not run the host/, `${h} ${n.meshNetwork}: reason`);
        assert.match(n.dns?.reason ?? "", new RegExp(`--dns ${n.dns.address!.replace(/\./g, "\\.")}`), `${h} ${n.meshNetwork}: reason names the address to use`);
      }
      const dnsReady = await eventually(
        `${h} DNSReady True`,
        async () => {
          const c = (await machine(h)).status?.conditions?.find((x) => x.type === "DNSReady");
          return c?.status === "True" ? c : undefined;
        },
        30_000,
        500,
      );
      assert.equal(dnsReady.reason, "Serving");
      for (const n of nets) assert.equal((await resolverPids(h, NETS[n.meshNetwork as Net].iface)).length, 1, `${h}: one resolver for ${n.meshNetwork}`);
    }
  });

  test("HTTP by <container>.<machine>.<zone> and by alias: h1 → h2, h3 and back", async () => {
    for (const h of PUBLIC) await serve(h);
    for (const other of ["h2", "h3"]) {
      await assertFetches("h1", other);
      await assertFetches(other, "h1");
    }
  });

  test("the same across the NAT↔NAT pair, whose traffic goes through a relay", async () => {
    const mesh = await env.getJson<MeshNetwork>(["get", "meshnetwork", "a"]);
    const relay = mesh.status?.relays?.find((r) => r.machines.join() === "n1,n2")?.via;
    assert.ok(relay && (PUBLIC as readonly string[]).includes(relay), `n1↔n2 relayed through a public host: ${JSON.stringify(mesh.status?.relays)}`);
    const peer = (await machine("n1")).status?.networks?.[0]?.peers?.find((p) => p.machine === "n2");
    assert.equal(peer?.via, relay, `n1's peer n2 via ${relay}: ${JSON.stringify(peer)}`);
    for (const h of NATTED) await serve(h);
    await assertFetches("n1", "n2");
    await assertFetches("n2", "n1");
    console.log(`# mesh DNS: n1 ↔ n2 (both behind NAT, relayed via ${relay}) fetch each other by name and by alias`);
  });

  test("--network-alias api on three hosts: three addresses; one stops: two within 2 s", async () => {
    const ips: Record<string, string> = {};
    for (const h of PUBLIC) ips[h] = await run(h, `api-${h}`, "a", ["--network-alias", "api"]);
    const all = Object.values(ips).sort();
    const api = `api.${NETS.a.zone}`;
    for (const h of PUBLIC) {
      await timeUntil(`${h}: 3 addresses for ${api}`, async () => (await lookupIn(h, web(h), api, gw(h))).addresses.join() === all.join(), 10_000, 100);
    }
    const t0 = performance.now();
    await env.lab.execOk("h2", ["docker", "stop", "api-h2"]);
    const stopMs = Math.round(performance.now() - t0);
    const rest = [ips.h1!, ips.h3!].sort();
    await timeUntil(`h1: ${api} without api-h2`, async () => (await lookupIn("h1", web("h1"), api, gw("h1"))).addresses.join() === rest.join(), 10_000, 25);
    const ms = Math.round(performance.now() - t0);
    console.log(`# mesh DNS: api-h2 stopped → ${api} answers 2 addresses on h1 after ${ms} ms (docker stop itself took ${stopMs} ms)`);
    assert.ok(ms < 2000, `two addresses after ${ms} ms`);
    for (const h of ["h2", "h3"]) assert.deepEqual((await lookupIn(h, web(h), api, gw(h))).addresses, rest, `${h}: ${api}`);
  });

  test("two meshes on the same hosts: each zone answers only its own containers, from each resolver", async () => {
    // probe-b is on mesh b only; web-* are on mesh a only.
    const bIps: Record<string, string> = {};
    for (const h of IN_B) bIps[h] = await run(h, "probe-b", "b");
    const a = NETS.a.zone;
    const b = NETS.b.zone;
    for (const h of IN_B) {
      // Own zone, own containers (h1's and h2's), from this host's resolver of each mesh.
      for (const x of IN_B) {
        await timeUntil(`${h}: probe-b.${x}.${b}`, async () => (await lookupIn(h, "probe-b", `probe-b.${x}.${b}`, gw(h, "b"))).addresses.join() === bIps[x], 10_000, 100);
        const own = await lookupIn(h, web(h), `${web(x)}.${x}.${a}`, gw(h, "a"));
        assert.equal(own.addresses.length, 1, `${h}: ${web(x)}.${x}.${a} from resolver a:\n${own.raw}`);
      }
      assert.deepEqual((await lookupIn(h, "probe-b", `probe-b.${b}`, gw(h, "b"))).addresses, Object.values(bIps).sort(), `${h}: probe-b.${b}`);
      // The other mesh's containers: NXDOMAIN in this mesh's zone.
      for (const name of [`probe-b.${h}.${a}`, `probe-b.${a}`]) {
        const r = await lookupIn(h, web(h), name, gw(h, "a"));
        assert.ok(r.nxdomain && r.addresses.length === 0, `${h}: ${name} from resolver a must be NXDOMAIN:\n${r.raw}`);
      }
      for (const name of [`${web(h)}.${h}.${b}`, `${alias(h)}.${b}`, `${web("h3")}.h3.${b}`]) {
        const r = await lookupIn(h, "probe-b", name, gw(h, "b"));
        assert.ok(r.nxdomain && r.addresses.length === 0, `${h}: ${name} from resolver b must be NXDOMAIN:\n${r.raw}`);
      }
      // And neither resolver answers the other's zone (forwarded upstream: no reply; 1 s is plenty for a local answer).
      assert.deepEqual((await lookupIn(h, web(h), `probe-b.${h}.${b}`, gw(h, "a"), 1)).addresses, [], `${h}: resolver a answers zone b`);
      assert.deepEqual((await lookupIn(h, "probe-b", `${web(h)}.${h}.${a}`, gw(h, "b"), 1)).addresses, [], `${h}: resolver b answers zone a`);
    }
  });

  test("the resolver answers on the bridge only: not from another host's uplink, not on the host's eth0:53", async () => {
    const name = `${web("h1")}.h1.${NETS.a.zone}`;
    const target = gw("h1");
    const h1eth0 = env.lab.host("h1").address;
    // Controls: the host itself and a container on the bridge get an answer.
    assert.equal((await lookupFromHost("h1", name, target)).addresses.length, 1, "h1 asks its own resolver");
    assert.equal((await lookupIn("h1", web("h1"), name, target)).addresses.length, 1, "a container on h1's bridge asks it");
    // From h2's uplink: a route to h1's resolver address through h1's eth0 (not the tunnel).
    await env.lab.execOk("h2", ["ip", "route", "add", `${target}/32`, "via", h1eth0, "dev", "eth0"]);
    try {
      const blocked = await lookupFromHost("h2", name, target);
      assert.equal(blocked.addresses.length, 0, `h2's uplink got an answer from ${target}:\n${blocked.raw}`);
      // The rule is what stops it: without dockmesh's DROP (udp) the same query is answered.
      const rule = (await env.lab.execOk("h1", ["iptables", "-w", "-S", "INPUT"])).split("\n").find((l) => l.includes("dockmesh:dm0") && l.includes("-p udp") && l.includes("--dport 53"));
      assert.ok(rule, "h1 has dockmesh's port 53 rule");
      const spec = rule
        .replace(/^-A INPUT /, "")
        .match(/"[^"]*"|\S+/g)!
        .map((s) => s.replace(/^"|"$/g, ""));
      const pos =
        (await env.lab.execOk("h1", ["iptables", "-w", "-S", "INPUT"]))
          .split("\n")
          .filter((l) => l.startsWith("-A INPUT"))
          .indexOf(rule) + 1;
      await env.lab.execOk("h1", ["iptables", "-w", "-D", "INPUT", ...spec]);
      try {
        assert.equal((await lookupFromHost("h2", name, target)).addresses.length, 1, "control: without the rule, the uplink query is answered");
      } finally {
        await env.lab.execOk("h1", ["iptables", "-w", "-I", "INPUT", String(pos), ...spec]);
      }
    } finally {
      await env.lab.execOk("h2", ["ip", "route", "del", `${target}/32`, "via", h1eth0, "dev", "eth0"]);
    }
    const onEth0 = await lookupFromHost("h2", name, h1eth0);
    assert.equal(onEth0.addresses.length, 0, `h1's eth0:53 answered:\n${onEth0.raw}`);
    assert.notEqual(onEth0.code, 0, "no answer on eth0:53");
  });

  test("controller SIGKILLed: names keep resolving; restarted: the same iptables rules, one resolver per mesh and host", async () => {
    const rulesBefore = new Map<string, string>();
    for (const h of HOSTS) rulesBefore.set(h, await allRules(h));
    await env.stopController("SIGKILL");
    await sleep(1000);
    assert.equal(await fetchByName("h2", `${web("h1")}.h1.${NETS.a.zone}`), page("h1"), "by name without the controller");
    assert.equal(await fetchByName("n1", `${alias("n2")}.${NETS.a.zone}`), page("n2"), "relayed pair by alias without the controller");
    assert.equal((await lookupIn("h1", "probe-b", `probe-b.h2.${NETS.b.zone}`, gw("h1", "b"))).addresses.length, 1, "zone b without the controller");

    const from = env.log.length;
    const t0 = performance.now();
    await env.startController();
    await eventually("every Machine reconciled after the restart", async () => (HOSTS.every((h) => reconciledSince(from).has(h)) ? true : undefined), 90_000, 250);
    console.log(`# mesh DNS: controller restarted, every Machine reconciled ${Math.round(performance.now() - t0)} ms later`);
    for (const h of HOSTS) {
      assert.equal(await allRules(h), rulesBefore.get(h), `${h}: iptables -S changed across the restart`);
      for (const net of (IN_B as readonly string[]).includes(h) ? (["a", "b"] as const) : (["a"] as const)) {
        const pids = await resolverPids(h, NETS[net].iface);
        assert.equal(pids.length, 1, `${h}: exactly one resolver for mesh ${net}: ${pids.join(", ")}`);
      }
    }
    assert.equal(await fetchByName("h3", `${alias("h1")}.${NETS.a.zone}`), page("h1"));
  });

  test("h3 rebooted: its resolver is back and answers", async () => {
    const before = await resolverPids("h3", NETS.a.iface);
    const report = await env.lab.reboot("h3");
    assert.ok(report.unitsStarted.includes(`dockmesh-dns-${NETS.a.iface}.service`), `units started at boot: ${JSON.stringify(report)}`);
    const after = await resolverPids("h3", NETS.a.iface);
    assert.equal(after.length, 1, `one resolver after the reboot: ${after.join(", ")}`);
    assert.notDeepEqual(after, before, "a new process");
    const ms = await timeUntil("h3's resolver answers after the reboot", async () => (await lookupIn("h3", web("h3"), `${web("h1")}.h1.${NETS.a.zone}`, gw("h3"))).addresses.length === 1, 30_000, 100);
    console.log(`# mesh DNS: h3 rebooted in ${report.ms} ms (units: ${report.unitsStarted.join(", ")}); its resolver answered ${ms} ms after`);
    assert.equal(await fetchByName("h3", `${web("h1")}.h1.${NETS.a.zone}`, 60_000), page("h1"), "h3 → h1 by name after the reboot");
  });

  test("spec.dns.enabled=false on mesh b: nothing of its resolver is left, its traffic keeps working", async () => {
    await env.kubectlOk(["patch", "meshnetwork", "b", "--type", "merge", "-p", JSON.stringify({ spec: { dns: { enabled: false } } })]);
    for (const h of IN_B) await nothingOfResolver(h, NETS.b.iface);
    for (const h of IN_B) {
      await eventually(`${h}: no dns in status of mesh b`, async () => ((await machine(h)).status?.networks?.find((n) => n.meshNetwork === "b")?.dns === undefined ? true : undefined), 30_000, 500);
      assert.equal((await resolverPids(h, NETS.a.iface)).length, 1, `${h}: mesh a's resolver still runs`);
    }
    const ip2 = await env.lab.containerIp("h2", "probe-b", "b");
    const ping = await env.lab.exec("h1", ["docker", "exec", "probe-b", "ping", "-c", "3", "-W", "2", ip2], { timeoutMs: 20_000 });
    assert.equal(ping.code, 0, `mesh b traffic without DNS: ${ping.stdout}${ping.stderr}`);
    assert.equal((await lookupIn("h2", web("h2"), `${web("h1")}.h1.${NETS.a.zone}`, gw("h2"))).addresses.length, 1, "mesh a still answers");
  });

  test("Machine h3 deleted: nothing of the resolver is left on it", async () => {
    await env.kubectlOk(["delete", "machine", "h3", "--timeout=90s"], undefined, 100_000);
    await nothingOfResolver("h3", NETS.a.iface);
    assert.deepEqual(await meshLeftovers(env.lab, "h3", { iface: NETS.a.iface, cidr: NETS.a.cidr, dockerNetwork: "a" }), [], "nothing of the mesh on h3");
    const dir = await env.lab.exec("h3", ["ls", "-A", "/etc/dockmesh/dns"]);
    assert.ok(dir.code !== 0 || dir.stdout.trim() === "", `/etc/dockmesh/dns on h3: ${dir.stdout}`);
  });
});
