// Issue 13, records half, on real lab hosts: `dockmesh up` runs the resolver on every member host
// (dnsmasq on the bridge gateway) and keeps its records file current from Docker's event streams;
// a lookup from a container is the real measure. An alias on several hosts (three addresses, one
// fewer when a container stops) is in the acceptance test, dns.test.ts.
import { createHash } from "node:crypto";
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Machine } from "../../api/types.generated.js";
import { INSPECT_SCRIPT, parseInspect } from "../../hosts/dns-inspect.js";
import { MeshEnv, startMeshEnv, eventually, sleep, yamlDoc, timeUntil } from "../../lab/mesh-env.js";

const PREFIX = "dmdnr";
const LABNET = "198.18.61.0/24";
const PORT = 16490;
const HOSTS = ["h1", "h2", "h3"] as const;
const ZONE = "mesh.internal";
const GRACE_S = 20;
const RECORDS = "/etc/dockmesh/dns/dm0/records/mesh";

const MESH = yamlDoc({
  apiVersion: "dockmesh.io/v1alpha1",
  kind: "MeshNetwork",
  metadata: { name: "mesh", namespace: "default" },
  spec: { cidr: "10.231.0.0/16", subnetPrefixLength: 24, dockerNetwork: "mesh", interface: "dm0", dns: { enabled: true, unreachableGraceSeconds: GRACE_S } },
});

let env: MeshEnv;
const gateways = new Map<string, string>();

const records = async (h: string): Promise<string> => (await env.lab.exec(h, ["cat", RECORDS])).stdout;

/** A lookup from the probe container on `from`, against its own host's resolver. */
async function lookup(from: string, name: string): Promise<string[]> {
  const r = await env.lab.exec(from, ["docker", "exec", "probe", "busybox", "nslookup", name, gateways.get(from)!], { timeoutMs: 10_000 });
  // busybox prints the server first, then "Name: …" and "Address: …" lines of the answer.
  const answer = r.stdout
    .split(/\n\s*\n/)
    .slice(1)
    .join("\n");
  return [...answer.matchAll(/Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).sort();
}

async function run(h: string, name: string, args: readonly string[] = []): Promise<string> {
  await env.lab.exec(h, ["docker", "rm", "-f", name]);
  await env.lab.runContainer(h, name, ["--network", "mesh", ...args, env.lab.image, "sleep", "100000"]);
  return env.lab.containerIp(h, name, "mesh");
}

/** Messages of the InvalidDNSName Events on Machine h2. */
async function invalidNameEvents(): Promise<string[]> {
  const out = await env.kubectlOk(["get", "events", "--field-selector", "involvedObject.name=h2", "-o", 'jsonpath={range .items[*]}{.reason}{" "}{.count}{" "}{.message}{"\\n"}{end}']);
  return out.split("\n").filter((l) => l.startsWith("InvalidDNSName "));
}

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)]!;

describe("mesh DNS records on real hosts", { timeout: 600_000 }, () => {
  before(async () => {
    env = await startMeshEnv({ prefix: PREFIX, labnet: LABNET, natLans: { first: 130, last: 134 }, hosts: HOSTS.map((name) => ({ name })), port: PORT, resyncPeriod: "10s" });
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + MESH + env.machineYaml([...HOSTS]));
    await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", ...HOSTS.map((h) => `machine/${h}`)], undefined, 200_000);
    // The resolver is the converge's: its address is in status, its process runs our config.
    for (const h of HOSTS) {
      const m = await env.getJson<Machine>(["get", "machine", h]);
      const gw = m.status?.networks?.[0]?.dns?.address ?? "";
      assert.match(gw, /^10\.231\.\d+\.1$/, `${h}: resolver address in status: ${JSON.stringify(m.status?.networks?.[0]?.dns)}`);
      assert.equal(m.status?.dns, `${gw} ${ZONE}`, "the DNS column");
      gateways.set(h, gw);
      await run(h, "probe");
    }
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("every host's file names every machine's gateway", async () => {
    for (const h of HOSTS) {
      await eventually(
        `${h}: gateways in ${RECORDS}`,
        async () => {
          const text = await records(h);
          return HOSTS.every((x) => text.includes(`${gateways.get(x)} ${x}.${ZONE}\n`)) ? text : undefined;
        },
        30_000,
        200,
      );
      const text = await records(h);
      assert.ok(text.startsWith(`# Managed by dockmesh: zone ${ZONE}\n`), text);
    }
    assert.deepEqual(await lookup("h2", `h1.${ZONE}`), [gateways.get("h1")]);
  });

  test("the look at a host reports its records file's digest (a resync sends only a file that differs)", async () => {
    // The script as the controller sends it, on the real host's sh, sha256sum and Docker: dm9 has no resolver.
    const r = await env.lab.exec("h2", ["sh", "-c", INSPECT_SCRIPT, "sh", "2", "dm0", "dm9", "mesh"]);
    assert.equal(r.code, 0, r.stderr);
    const parsed = parseInspect(r.stdout, ["mesh"], ["dm0", "dm9"]);
    assert.deepEqual(
      [...parsed.files],
      [
        [
          "dm0",
          createHash("sha256")
            .update(await records("h2"))
            .digest("hex"),
        ],
      ],
    );
    assert.ok(
      parsed.networks.get("mesh")?.some((c) => c.name === "/probe"),
      r.stdout,
    );
    assert.equal(parsed.dropped, 0, r.stdout);
  });

  test("a container started on h1 resolves from h2 and is in h3's file within 2 s; removed, it is gone within 2 s", async () => {
    const up: number[] = [];
    const down: number[] = [];
    for (let i = 0; i < 5; i++) {
      const name = `web${i}`;
      const t0 = performance.now();
      const ip = await run("h1", name);
      await timeUntil(`${name} resolves from h2`, async () => (await lookup("h2", `${name}.h1.${ZONE}`)).includes(ip));
      up.push(Math.round(performance.now() - t0));
      // The hosts' files are written in parallel: h3's may land a few ms after h2's.
      await timeUntil(`${name} in h3's file too`, async () => (await records("h3")).includes(`${ip} ${name}.h1.${ZONE}\n`), 2000);
      assert.deepEqual(await lookup("h2", `${name}.${ZONE}`), [ip], "short name");
      const t1 = performance.now();
      await env.lab.execOk("h1", ["docker", "rm", "-f", name]);
      await timeUntil(`${name} gone from h2`, async () => (await lookup("h2", `${name}.h1.${ZONE}`)).length === 0);
      down.push(Math.round(performance.now() - t1));
      await timeUntil(`${name} gone from h3's file too`, async () => !(await records("h3")).includes(`${name}.h1.${ZONE}`), 2000);
    }
    console.log(`# mesh DNS: start on h1 → resolves on h2 (docker run included): ${up.join(", ")} ms, p95 ${p95(up)} ms; removal → gone: ${down.join(", ")} ms, p95 ${p95(down)} ms`);
    assert.ok(p95(up) < 2000, `appearance p95 ${p95(up)} ms`);
    assert.ok(p95(down) < 2000, `removal p95 ${p95(down)} ms`);
  });

  test("names DNS forbids: a Warning Event, nothing in any file", async () => {
    // "bad_" normalises to "bad-" (ends with "-"); the alias carries a newline and a dnsmasq directive.
    await run("h2", "bad_", ["--network-alias", "evil\naddress=/#/6.6.6.6", "--network-alias", "has space"]);
    const events = await eventually(
      "InvalidDNSName events",
      async () => {
        const out = await invalidNameEvents();
        return out.length >= 3 ? out.join("\n") : undefined;
      },
      15_000,
      300,
    );
    assert.match(events, /container name "\/bad_"/);
    assert.match(events, /has space/);
    await sleep(500);
    for (const h of HOSTS) {
      const text = await records(h);
      assert.doesNotMatch(text, /bad|evil|address=|space|6\.6\.6\.6/, `${h}:\n${text}`);
      for (const line of text.split("\n").slice(1, -1)) assert.match(line, /^\d+\.\d+\.\d+\.\d+ [a-z0-9.-]+$/, `${h}: ${line}`);
    }
    const before = (await invalidNameEvents()).length;
    await env.lab.execOk("h2", ["docker", "network", "disconnect", "mesh", "probe"]);
    await env.lab.execOk("h2", ["docker", "network", "connect", "mesh", "probe"]);
    await sleep(1500);
    const afterCount = (await invalidNameEvents()).length;
    assert.equal(afterCount, before, "an event once per container and name, not per look");
  });

  test("controller stopped: files stay; restarted with h3 cut off: no partial file before the grace period, then h3's records go, and come back", async () => {
    const h3ip = await run("h3", "keeper");
    await eventually("keeper on h1", async () => ((await records("h1")).includes(`${h3ip} keeper.h3.${ZONE}`) ? true : undefined), 10_000, 100);
    const snapshot = new Map<string, string>();
    for (const h of HOSTS) snapshot.set(h, await records(h));
    await env.stopController("SIGTERM");
    await sleep(1000);
    for (const h of HOSTS) assert.equal(await records(h), snapshot.get(h), `${h}: file unchanged after the controller stopped`);
    assert.deepEqual(await lookup("h2", `keeper.h3.${ZONE}`), [h3ip], "names keep resolving without the controller");

    await env.lab.cut("h3");
    try {
      const started = performance.now();
      await env.startController();
      // Before the grace period: h1's file still has h3's records (no partial write).
      while (performance.now() - started < (GRACE_S - 6) * 1000) {
        assert.ok((await records("h1")).includes(`keeper.h3.${ZONE}`), `h1's file lost h3's records ${Math.round(performance.now() - started)} ms after the restart`);
        await sleep(1000);
      }
      const gone = await timeUntil("h3's records withdrawn", async () => !(await records("h1")).includes(`keeper.h3.${ZONE}`), 30_000, 250);
      console.log(`# mesh DNS: h3 unreachable since the restart; its records withdrawn ${Math.round((performance.now() - started) / 1000)} s after the restart (grace ${GRACE_S} s)`);
      assert.ok(gone >= 0);
      assert.ok((await records("h1")).includes(`h3.${ZONE}\n`), "h3's gateway name stays (it is the mesh's, not the host's word)");
    } finally {
      await env.lab.heal("h3");
    }
    await eventually("h3's records back after it is reachable", async () => ((await records("h1")).includes(`${h3ip} keeper.h3.${ZONE}`) ? true : undefined), 60_000, 500);
  });
});
