// Issue 12 §2, as a user sees it: a MeshNetwork whose pool overlaps another's on the same machines
// (10.210.128.0/17 next to 10.210.0.0/16), and one with the same cidr. Before, both reported
// AllMachinesReady with allocations while nothing was configured for them, and the same /24 was
// handed out twice. Now each is refused — Ready False, reason MeshConflict, on the MeshNetwork and
// on every Machine of it — with the message `dockmesh plan` gives for the same manifests, and it
// allocates nothing. Deleting the mesh that came first lets the next one in.
// Real parts: the embedded API server, the controllers (in process, real HTTP and watches),
// kubectl, and simulated hosts behind a real SSH server on loopback (bench/sim).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { startStore, type StoreHandle } from "../../store/server.js";
import { startControllers, type RunningControllers } from "../../controllers/manager.js";
import { silentLogger } from "../../runtime/log.js";
import { kubeApiClient } from "../../runtime/kube-client.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { kubectlOk } from "./helpers.js";
import { eventually } from "../../lab/mesh-env.js";
import { planErrors } from "../support/plan-cli.js";

const sshKey = generateEd25519("mesh-conflicts");
let stateDir: string;
let store: StoreHandle;
let fleet: SimulatedHostFleet;
let controllers: RunningControllers | undefined;

const kubectl = (args: readonly string[], input = "") => kubectlOk(store.kubeconfigPath, [...args], input);

const doc = (o: unknown) => `---\n${stringify(o)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const meshDoc = (name: string, spec: Record<string, unknown>) => doc({ apiVersion: "dockmesh.io/v1alpha1", kind: "MeshNetwork", metadata: { name, namespace: "default" }, spec });
const FIRST = meshDoc("mesh", { cidr: "10.210.0.0/16", interface: "dm0", machineSelector: { matchLabels: { site: "a" } } });
const SECOND = meshDoc("second", { cidr: "10.210.128.0/17", interface: "dm1", listenPort: 51822, dockerNetwork: "second" });
const SAME = meshDoc("same", { cidr: "10.210.0.0/16", interface: "dm2", listenPort: 51823, dockerNetwork: "same" });

function machinesDoc(): string {
  return ["m1", "m2", "m3"]
    .map((n) => {
      const h = fleet.get(n)!;
      return doc({
        apiVersion: "dockmesh.io/v1alpha1",
        kind: "Machine",
        metadata: { name: n, namespace: "default", ...(n === "m3" ? {} : { labels: { site: "a" } }) },
        spec: { ssh: { host: h.sshHost, port: h.sshPort, privateKeySecretRef: { name: "ssh" } }, endpoint: `${h.sshHost}:51820` },
      });
    })
    .join("");
}

const mesh = async (name: string) => JSON.parse(await kubectl(["get", "meshnetwork", name, "-o", "json"])) as MeshNetwork;
const machine = async (name: string) => JSON.parse(await kubectl(["get", "machine", name, "-o", "json"])) as Machine;
const cond = (o: Machine | MeshNetwork, type: string) => o.status?.conditions?.find((c) => c.type === type);

before(async () => {
  fleet = await SimulatedHostFleet.start({ names: ["m1", "m2", "m3"], authorizedKey: sshKey.publicKey, addressPrefix: "127.0" });
  stateDir = mkdtempSync(join(tmpdir(), "dockmesh-mesh-conflicts-"));
  store = await startStore({ stateDir, listen: "127.0.0.1:0" });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(store.kubeconfigPath);
  controllers = await startControllers({ api: kubeApiClient(kubeConfig), logger: silentLogger(), resyncMs: 5 * 60_000, pendingRequeueMs: 1_000 });
});

after(async () => {
  await controllers?.stop();
  await store?.close();
  await fleet?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

test("overlapping and identical pools are refused on the MeshNetwork and its Machines, with plan's message; nothing of them allocated or on a host", { timeout: 180_000 }, async () => {
  const secret = doc({ apiVersion: "v1", kind: "Secret", metadata: { name: "ssh", namespace: "default" }, stringData: { "ssh-privatekey": sshKey.privateKey } });
  await kubectl(["apply", "-f", "-"], secret + FIRST + machinesDoc());
  await eventually("mesh Ready", async () => (cond(await mesh("mesh"), "Ready")?.status === "True" ? true : undefined), 90_000);
  await sleep(1_100); // creationTimestamps have whole seconds: the next mesh is the younger one

  const m3Sessions = fleet.get("m3")!.counters.sessions;
  await kubectl(["apply", "-f", "-"], SECOND);
  // Decided either way: refused, or (as before the fix) allocating subnets from the overlapping pool.
  const second = await eventually(
    "second decided",
    async () => {
      const m = await mesh("second");
      return cond(m, "Ready")?.reason === "MeshConflict" || (m.status?.allocations?.length ?? 0) > 0 ? m : undefined;
    },
    90_000,
  );
  assert.equal(cond(second, "Ready")?.reason, "MeshConflict", JSON.stringify(second.status));
  const want = planErrors(FIRST + SECOND + machinesDoc());
  assert.equal(want.length, 1, want.join("\n"));
  assert.match(want[0]!, /^MeshNetwork default\/second: spec\.cidr: pool 10\.210\.128\.0\/17 overlaps the pool 10\.210\.0\.0\/16 of MeshNetwork mesh, .*machines m1, m2 with it/);
  const message = want[0]!.replace("MeshNetwork default/second: ", "");
  assert.equal(cond(second, "Ready")?.status, "False");
  assert.equal(cond(second, "Ready")?.message, message, "the MeshNetwork says what dockmesh plan says");
  assert.deepEqual(second.status?.allocations ?? [], [], "a refused mesh allocates nothing");
  assert.equal(second.status?.machines, "0/3");
  const table = await kubectl(["get", "meshnetworks"]);
  assert.match(table, /^second\s+10\.210\.128\.0\/17\s+0\/3\s+False\s+MeshConflict/m, table);
  const events = await kubectl(["get", "events", "--field-selector", "involvedObject.name=second", "-o", 'jsonpath={range .items[*]}{.type} {.reason}{"\\n"}{end}']);
  assert.match(events, /^Warning MeshConflict$/m);

  // Every Machine of it says so: m3 (only in second: not contacted) and m1, m2 (configured for mesh only).
  for (const n of ["m1", "m2", "m3"]) {
    const m = await eventually(`${n} MeshConflict`, async () => {
      const x = await machine(n);
      return cond(x, "NetworkConfigured")?.reason === "MeshConflict" ? x : undefined;
    });
    assert.equal(cond(m, "NetworkConfigured")?.message, `MeshNetwork second: ${message}`, n);
    assert.equal(cond(m, "Ready")?.status, "False", n);
    const host = fleet.get(n)!.host;
    assert.ok(!host.links.has("dm1") && !host.networks.has("second"), `${n}: nothing of second on the host`);
  }
  assert.ok(fleet.get("m1")!.host.links.has("dm0"), "the first mesh stays configured");
  // The mesh that kept the machines is fine on them: it says so, the conflict is said where it is.
  await eventually(
    "mesh counted ready",
    async () => {
      const m = await mesh("mesh");
      return m.status?.machines === "2/2" && cond(m, "Ready")?.reason === "AllMachinesReady" ? true : undefined;
    },
    30_000,
  );
  console.log(`# kubectl get meshnetworks,machines:\n${(await kubectl(["get", "meshnetworks,machines"])).replace(/^/gm, "# ")}`);
  assert.equal(fleet.get("m3")!.counters.sessions, m3Sessions, "m3 has nothing to configure since: not contacted");

  // The same cidr as the first: refused too, and no /24 handed out twice.
  await sleep(1_100);
  await kubectl(["apply", "-f", "-"], SAME);
  const same = await eventually("same refused", async () => {
    const m = await mesh("same");
    return cond(m, "Ready")?.reason === "MeshConflict" ? m : undefined;
  });
  const wantSame = planErrors(FIRST + SECOND + SAME + machinesDoc()).find((l) => l.startsWith("MeshNetwork default/same: "))!;
  assert.equal(cond(same, "Ready")?.message, wantSame.replace("MeshNetwork default/same: ", ""));
  assert.deepEqual(same.status?.allocations ?? [], []);
  const first = await mesh("mesh");
  assert.deepEqual(
    first.status?.allocations?.map((a) => a.machine),
    ["m1", "m2"],
  );

  // The first mesh goes: second (older than same) takes the machines, same is now refused for second.
  await kubectl(["delete", "meshnetwork", "mesh", "--wait=false"]);
  const taken = await eventually("second allocates", async () => {
    const m = await mesh("second");
    return (m.status?.allocations?.length ?? 0) === 3 ? m : undefined;
  });
  assert.notEqual(cond(taken, "Ready")?.reason, "MeshConflict");
  const now = await eventually("same refused for second", async () => {
    const m = await mesh("same");
    return cond(m, "Ready")?.message?.includes("of MeshNetwork second,") ? m : undefined;
  });
  assert.match(cond(now, "Ready")?.message ?? "", /^spec\.cidr: pool 10\.210\.0\.0\/16 overlaps the pool 10\.210\.128\.0\/17 of MeshNetwork second, .*machines m1, m2, m3/);
  await eventually("m3 configured for second", async () => (fleet.get("m3")!.host.links.has("dm1") ? true : undefined));
});
