// Issue 12 §6 on real lab hosts: `dockmesh plan` prints exactly what apply runs. Three hosts (one
// firewalled with INPUT policy DROP, one behind NAT) in one mesh; once they are Ready, every host
// is wiped of dockmesh with the controller stopped, and the controller, started again, configures
// each from nothing, with every peer's key known. For each host, the commands it ran — its
// "[#] …" log lines — are the "$ " lines of `dockmesh plan` for the same manifests and the host's
// facts (observed here with plain commands, not by dockmesh's own code), word for word and in
// order; the files it wrote are the files plan prints (keys aside); the rules and routes on the
// host are the ones plan lists under wg-quick up, the raw-table PREROUTING pass among them; the
// Docker network carries the label plan shows.
// Before the fix plan printed neither the network's --label nor (without facts) the raw-table
// rule, took no host facts, and had no "$ " lines to compare.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Machine } from "../../api/types.generated.js";
import { MeshEnv, startMeshEnv, appliedSteps, eventually, yamlDoc } from "../../lab/mesh-env.js";
import { projectRoot } from "../support/golden.js";

// This file's own lab (issue 12 §6): prefix, address blocks and ports differ from every other test's.
const PREFIX = "dmpl";
const LABNET = "198.18.55.0/24";
const PORT = 16475;
const HOSTS = ["h1", "h2", "h3"];

const MESH = yamlDoc({
  apiVersion: "dockmesh.io/v1alpha1",
  kind: "MeshNetwork",
  metadata: { name: "mesh", namespace: "default" },
  spec: { cidr: "10.210.0.0/16", subnetPrefixLength: 24, dockerNetwork: "mesh", interface: "dm0" },
});

let env: MeshEnv;
let dir: string;

/** What the controller would observe, found out with plain commands on the host. */
async function factsOf(host: string): Promise<Record<string, number | boolean>> {
  const sh = (script: string) => env.lab.exec(host, ["sh", "-c", script]);
  const mtu = await env.lab.execOk(host, [
    "sh",
    "-c",
    // The default route's device; a host without one (behind NAT here) uses its one uplink.
    `d=$(ip route show default | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p' | head -n1); [ -n "$d" ] || d=$(ip -o route get ${LABNET.replace("0/24", "1")} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'); cat /sys/class/net/$d/mtu`,
  ]);
  return {
    uplinkMtu: Number(mtu.trim()),
    rawTable: (await sh("iptables -t raw -S PREROUTING >/dev/null 2>&1")).code === 0,
    inputDrops: (await sh("iptables -S INPUT | grep -qx -- '-P INPUT DROP'")).code === 0,
    systemd: (await sh("test -d /run/systemd/system")).code === 0,
  };
}

/** `dockmesh plan` of the manifests with these facts: per machine, its "$ " commands and the text under each. */
function plan(manifests: string, facts: Record<string, Record<string, number | boolean>>): Map<string, Array<{ command: string; below: string[] }>> {
  writeFileSync(join(dir, "manifests", "all.yaml"), manifests);
  writeFileSync(join(dir, "facts.yaml"), JSON.stringify(facts));
  const r = spawnSync(process.execPath, [join(projectRoot, "bin/dockmesh.js"), "plan", "-f", join(dir, "manifests"), "--host-facts", join(dir, "facts.yaml")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const out = new Map<string, Array<{ command: string; below: string[] }>>();
  let cur: Array<{ command: string; below: string[] }> | undefined;
  for (const line of r.stdout.split("\n")) {
    const m = /^Machine default\/(\S+) /.exec(line);
    if (m) out.set(m[1]!, (cur = []));
    else if (line.startsWith("    $ ")) cur?.push({ command: line.slice(6), below: [] });
    else if (line.startsWith("        ") || (line === "" && cur?.length)) cur?.at(-1)?.below.push(line.slice(8));
  }
  return out;
}

/** Removes everything of dockmesh from a host, as on a host that never had it. */
async function wipe(host: string): Promise<void> {
  await env.lab.execOk(host, [
    "sh",
    "-c",
    [
      "wg-quick down dm0 >/dev/null 2>&1 || ip link del dm0 2>/dev/null || true",
      "docker network rm mesh >/dev/null",
      "rm -rf /etc/wireguard/dm0.conf /etc/systemd/system/wg-quick@dm0.service.d /etc/systemd/system/multi-user.target.wants/wg-quick@dm0.service",
      // Rules PostDown left (none expected), the shared INPUT jump and chain.
      "for t in filter nat raw; do iptables -t $t -S | grep -- '--comment dockmesh' | sed 's/^-A/-D/' | while read -r r; do eval iptables -t $t $r; done; done",
      "iptables -F DOCKMESH-INPUT 2>/dev/null || true; iptables -X DOCKMESH-INPUT 2>/dev/null || true",
      // The mesh DNS resolver: its process, unit and files.
      'p=$(cat /run/dockmesh-dns-dm0.pid 2>/dev/null) && kill "$p" 2>/dev/null; rm -f /run/dockmesh-dns-dm0.pid',
      "rm -rf /etc/dockmesh/dns /etc/systemd/system/dockmesh-dns-dm0.service /etc/systemd/system/multi-user.target.wants/dockmesh-dns-dm0.service",
    ].join("\n"),
  ]);
  const left = await env.lab.execOk(host, ["sh", "-c", "iptables-save | grep -c dockmesh || true; ip link show dm0 2>/dev/null | wc -l; docker network ls -q -f name=^mesh$ | wc -l"]);
  assert.deepEqual(left.trim().split(/\s+/), ["0", "0", "0"], `${host} wiped`);
}

/** The config as plan prints it: no private key, peers' keys by machine. */
function asPlanned(conf: string): string[] {
  const lines = conf.replace(/\n$/, "").split("\n");
  return lines.map((l, i) => {
    if (l.startsWith("PrivateKey = ")) return "PrivateKey = (redacted)";
    const peer = /^# (\S+)/.exec(lines[i - 1] ?? "");
    if (l.startsWith("PublicKey = ") && peer) return `PublicKey = (public key of ${peer[1]}, generated on first apply)`;
    return l;
  });
}

describe("dockmesh plan = what apply runs, on lab hosts", { timeout: 900_000 }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "dmpl-plan-"));
    spawnSync("mkdir", [join(dir, "manifests")]);
    env = await startMeshEnv({
      prefix: PREFIX,
      labnet: LABNET,
      natLans: { first: 116, last: 117 },
      hosts: [{ name: "h1" }, { name: "h2", inputPolicy: "DROP" }, { name: "h3", nat: true }],
      port: PORT,
      resyncPeriod: "10s",
    });
  });

  after(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("a first apply runs the plan's commands, writes its files, and leaves its rules and routes", async () => {
    const manifests = MESH + env.machineYaml(HOSTS);
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + manifests);
    const wait = () => env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", ...HOSTS.map((h) => `machine/${h}`)], undefined, 200_000);
    await wait();

    // Every host from nothing, with every key known: the controller stopped, the hosts wiped.
    await env.stopController("SIGTERM");
    for (const h of HOSTS) await wipe(h);
    const from = appliedSteps(env.log).length;
    await env.startController();
    // Ready in status may still be the one from before the wipe: wait for each host's apply to end first.
    await eventually(
      "every host re-applied",
      async () => {
        const lines = appliedSteps(env.log).slice(from);
        return HOSTS.every((h) => lines.includes(`default/${h} [#] systemctl enable wg-quick@dm0.service`)) ? true : undefined;
      },
      180_000,
    );
    await wait();

    const facts: Record<string, Record<string, number | boolean>> = {};
    for (const h of HOSTS) facts[h] = await factsOf(h);
    console.log(`# host facts: ${JSON.stringify(facts)}`);
    assert.equal(facts.h2!.inputDrops, true);
    assert.equal(facts.h1!.inputDrops, false);
    const planned = plan(manifests, facts);
    const ran = appliedSteps(env.log).slice(from);
    const status = new Map<string, Machine>();
    for (const h of HOSTS) status.set(h, await env.getJson<Machine>(["get", "machine", h]));

    for (const h of HOSTS) {
      const steps = planned.get(h) ?? [];
      const mine = ran.filter((l) => l.startsWith(`default/${h} [#] `)).map((l) => l.slice(`default/${h} [#] `.length));
      console.log(`# ${h}: ${mine.length} command(s) applied, ${steps.length} planned`);
      assert.deepEqual(
        mine,
        steps.map((s) => s.command),
        `${h}: apply ran exactly the plan's commands, in order`,
      );

      const create = steps.find((s) => s.command.startsWith("docker network create "))!;
      assert.match(create.command, / --label dockmesh\.io\/interface=dm0 /);
      const labels = await env.lab.execOk(h, ["docker", "network", "inspect", "mesh", "-f", "{{json .Labels}}"]);
      assert.deepEqual(JSON.parse(labels), { "dockmesh.io/interface": "dm0" });
      assert.equal(status.get(h)?.status?.subnet, / --subnet (\S+) /.exec(create.command)?.[1], `${h}: the subnet plan allocated`);

      // Files: as plan prints them (the private key redacted, peers' keys named).
      const conf = steps.find((s) => s.command === "write /etc/wireguard/dm0.conf (mode 0600)")!;
      const onHost = await env.lab.execOk(h, ["cat", "/etc/wireguard/dm0.conf"]);
      assert.deepEqual(
        asPlanned(onHost),
        conf.below.filter((l, i, all) => i < all.length - 1 || l !== ""),
        `${h}: wg-quick config`,
      );
      const dropIn = steps.find((s) => s.command.startsWith("write /etc/systemd/system/wg-quick@dm0.service.d/"))!;
      assert.equal(await env.lab.execOk(h, ["cat", "/etc/systemd/system/wg-quick@dm0.service.d/dockmesh.conf"]), dropIn.below.join("\n").replace(/\n*$/, "\n"), `${h}: unit drop-in`);

      // Rules and routes wg-quick up made: the ones plan lists under it, and no others of ours.
      const up = steps.find((s) => s.command === "wg-quick up dm0")!;
      // plan quotes "!" (bash would expand it in an interactive shell); iptables -S prints it bare.
      const rules = up.below.filter((l) => l.startsWith("iptables ")).map((l) => l.replaceAll("'!'", "!"));
      const routes = up.below.filter((l) => l.startsWith("ip route replace ")).map((l) => l.replace("ip route replace ", "").replace(" dev dm0", ""));
      const tagged: string[] = [];
      for (const t of ["filter", "nat", "raw"]) {
        for (const l of (await env.lab.execOk(h, ["iptables", "-t", t, "-S"])).split("\n")) if (l.includes("dockmesh")) tagged.push(`iptables -t ${t} -I ${l.replace(/^-A /, "").replace(/"/g, "")}`);
      }
      assert.deepEqual([...tagged].sort(), [...rules].sort(), `${h}: the rules on the host are the planned ones`);
      assert.equal(
        rules.some((r) => r.startsWith("iptables -t raw -I PREROUTING ")),
        facts[h]!.rawTable,
        `${h}: the raw-table pass exactly when the host has the table`,
      );
      const live = (await env.lab.execOk(h, ["ip", "-o", "route", "show", "dev", "dm0"]))
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split(" ")[0]!);
      assert.deepEqual(live.sort(), routes.sort(), `${h}: routes`);
    }
  });
});
