// Mesh DNS end to end on simulated hosts (bench/sim): the embedded API server, the controllers in
// process (the Machine controller and mesh DNS's records half, real SSH), and Debian-like
// simulated hosts with dnsmasq-base and systemd. With DNS on (the product's default) every
// Machine becomes Ready and DNSReady, each host runs its resolver and holds the mesh's records,
// a container started on one host is named on all, and no command is unknown or fails; turned
// off, the resolver leaves every host and nothing of mesh DNS runs any more. A mesh with DNS off
// from the start runs no DNS command at all.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { startStore, type StoreHandle } from "../../store/server.js";
import { startControllers, type RunningControllers } from "../../controllers/manager.js";
import { GROUP, VERSION } from "../../controllers/resources.js";
import { silentLogger } from "../../runtime/log.js";
import { kubeApiClient } from "../../runtime/kube-client.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { dnsCommands } from "../../bench/scale-run.js";
import { eventually } from "../../lab/mesh-env.js";

const NAMES = ["m1", "m2", "m3"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cond = (m: Machine, type: string) => m.status?.conditions?.find((c) => c.type === type);

/** The store, the controllers and three simulated hosts with one MeshNetwork; `dns` sets spec.dns.enabled (undefined: absent). */
class Env {
  fleet!: SimulatedHostFleet;
  store!: StoreHandle;
  controllers: RunningControllers | undefined;
  custom!: CustomObjectsApi;
  private dir = "";

  async start(label: string, addressPrefix: string, dns: boolean | undefined): Promise<void> {
    const key = generateEd25519(label);
    this.fleet = await SimulatedHostFleet.start({ names: NAMES, authorizedKey: key.publicKey, addressPrefix });
    this.dir = mkdtempSync(join(tmpdir(), `dockmesh-${label}-`));
    this.store = await startStore({ stateDir: this.dir, listen: "127.0.0.1:0" });
    const kc = new KubeConfig();
    kc.loadFromFile(this.store.kubeconfigPath);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.controllers = await startControllers({ api: kubeApiClient(kc), logger: silentLogger(), resyncMs: 5 * 60_000, pendingRequeueMs: 1_000 });
    await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: "default", body: { metadata: { name: "ssh" }, stringData: { "ssh-privatekey": key.privateKey } } });
    const mesh: MeshNetwork = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "MeshNetwork",
      metadata: { name: "mesh", namespace: "default" },
      spec: { cidr: "10.240.0.0/16", interface: "dm0", dockerNetwork: "mesh", ...(dns !== undefined ? { dns: { enabled: dns } } : {}) },
    };
    await this.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "default", plural: "meshnetworks", body: mesh });
    for (const n of NAMES) {
      const h = this.fleet.get(n)!;
      const body: Machine = {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "Machine",
        metadata: { name: n, namespace: "default" },
        spec: { ssh: { host: h.sshHost, port: h.sshPort, privateKeySecretRef: { name: "ssh" } }, endpoint: `198.18.0.${NAMES.indexOf(n) + 1}:51820` },
      };
      await this.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "default", plural: "machines", body });
    }
  }

  async machines(): Promise<Machine[]> {
    const list = (await this.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "default", plural: "machines" })) as { items: Machine[] };
    return list.items;
  }

  /** The Machines once every one has `ok`. */
  async until(what: string, ok: (m: Machine) => boolean, timeoutMs = 90_000): Promise<Machine[]> {
    return eventually(
      what,
      async () => {
        const ms = await this.machines();
        return ms.length === NAMES.length && ms.every(ok) ? ms : undefined;
      },
      timeoutMs,
      250,
    );
  }

  async stop(): Promise<void> {
    await this.controllers?.stop();
    await this.store?.close();
    await this.fleet?.close();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

describe("mesh DNS on (the default), on simulated Debian hosts with dnsmasq-base", () => {
  const env = new Env();
  before(() => env.start("sim-dns-on", "127.3", undefined));
  after(() => env.stop());

  test("every Machine Ready and DNSReady; each host's resolver runs with the mesh's records; no command unknown or failed", { timeout: 120_000 }, async () => {
    const ms = await env.until("Ready and DNSReady", (m) => cond(m, "Ready")?.status === "True" && cond(m, "DNSReady")?.status === "True");
    for (const m of ms) assert.equal(cond(m, "DNSReady")?.reason, "Serving", m.metadata.name);
    const zone = /^(\S+) at /.exec(cond(ms[0]!, "DNSReady")!.message ?? "")?.[1];
    assert.ok(zone, cond(ms[0]!, "DNSReady")?.message);
    for (const n of NAMES) {
      const host = env.fleet.get(n)!.host;
      assert.ok(host.files.has("/etc/dockmesh/dns/dm0/dnsmasq.conf") && host.files.has("/etc/systemd/system/dockmesh-dns-dm0.service"), n);
      assert.ok(host.dnsEnabled.has("dm0"), `${n}: unit enabled`);
      assert.equal([...host.processes.values()].filter((p) => p.unit === "dockmesh-dns-dm0.service").length, 1, `${n}: one dnsmasq`);
      const records = await eventually(`${n}'s records`, async () => host.files.get("/etc/dockmesh/dns/dm0/records/mesh")?.content);
      for (const other of NAMES) assert.match(records, new RegExp(`^10\\.240\\.\\d+\\.1 ${other}\\.${zone.replaceAll(".", "\\.")}$`, "m"), `${n} names ${other}`);
    }
    const t = env.fleet.totals();
    assert.equal(t.unknown, 0, "every command was one of dockmesh's scripts");
    assert.equal(t.failures, 0);
    assert.ok(t.dnsStreams >= NAMES.length && t.dnsInspects >= NAMES.length && t.dnsWrites >= NAMES.length, JSON.stringify(t));
  });

  test("a container started on one host is named in every host's records", { timeout: 60_000 }, async () => {
    const before = env.fleet.totals();
    const web = env.fleet.get("m2")!.host.runContainer("web", "mesh");
    const ip = web.networks.get("mesh")!.ip;
    for (const n of NAMES) {
      await eventually(
        `${n} names web.m2`,
        async () => (new RegExp(`^${ip.replaceAll(".", "\\.")} web\\.m2\\.`, "m").test(env.fleet.get(n)!.host.files.get("/etc/dockmesh/dns/dm0/records/mesh")?.content ?? "") ? true : undefined),
        30_000,
        100,
      );
    }
    const t = env.fleet.totals();
    assert.ok(t.dnsInspects > before.dnsInspects, "the event made the controller look");
    assert.equal(t.dnsStreams, before.dnsStreams, "over the streams already open");
    assert.deepEqual({ unknown: t.unknown, failures: t.failures }, { unknown: 0, failures: 0 });
  });

  test("turned off: the resolver leaves every host, DNSReady goes, and mesh DNS runs nothing more", { timeout: 120_000 }, async () => {
    const mesh = (await env.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "default", plural: "meshnetworks", name: "mesh" })) as MeshNetwork;
    mesh.spec.dns = { enabled: false };
    await env.custom.replaceNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: "default", plural: "meshnetworks", name: "mesh", body: mesh });
    await env.until("DNSReady gone, still Ready", (m) => cond(m, "DNSReady") === undefined && cond(m, "Ready")?.status === "True");
    for (const n of NAMES) {
      const host = env.fleet.get(n)!.host;
      await eventually(`${n} without a resolver`, async () =>
        [...host.files.keys()].some((p) => p.includes("dockmesh-dns") || p.startsWith("/etc/dockmesh/dns")) || host.processes.size > 0 || host.dnsEnabled.size > 0 ? undefined : true,
      );
      assert.ok(host.links.has("dm0"), `${n}: the mesh itself stays`);
    }
    const quiet = env.fleet.totals();
    env.fleet.get("m1")!.host.runContainer("api", "mesh");
    await sleep(1_500);
    const t = env.fleet.totals();
    assert.equal(dnsCommands(t), dnsCommands(quiet), "no stream follows the host's containers any more");
    assert.deepEqual({ unknown: t.unknown, failures: t.failures }, { unknown: 0, failures: 0 });
  });
});

describe("mesh DNS off from the start", () => {
  const env = new Env();
  before(() => env.start("sim-dns-off", "127.4", false));
  after(() => env.stop());

  test("every Machine Ready, no DNSReady, not one DNS command and nothing of it on the hosts", { timeout: 120_000 }, async () => {
    const ms = await env.until("Ready", (m) => cond(m, "Ready")?.status === "True");
    for (const m of ms) assert.equal(cond(m, "DNSReady"), undefined, m.metadata.name);
    const t = env.fleet.totals();
    assert.deepEqual(
      { streams: t.dnsStreams, inspects: t.dnsInspects, writes: t.dnsWrites, unknown: t.unknown, failures: t.failures },
      { streams: 0, inspects: 0, writes: 0, unknown: 0, failures: 0 },
    );
    for (const n of NAMES) assert.ok(![...env.fleet.get(n)!.host.files.keys()].some((p) => p.startsWith("/etc/dockmesh/dns")), n);
  });
});
