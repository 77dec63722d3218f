// Issue 12 §1, a Machine in two (then three) MeshNetworks, with the Machine reconciler writing
// to the real embedded API server (which enforces the CRD's list-map rules: peers keyed by
// machine, networks by meshNetwork) and recording Events there. Hosts are simulated (bench/sim)
// behind a real ssh2 server on loopback. What must hold:
// - the status of a Machine in N meshes is accepted (before: 422 "Duplicate value" on every write);
// - each mesh's peers use that mesh's port;
// - a refused status write is a Warning Event and Ready False StatusWriteFailed on the object;
// - a label change, or deleting a mesh, removes everything of that mesh from the hosts, also when
//   the mesh's status writes had failed (it is on record before it is applied).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { FINALIZER, MACHINES } from "../../controllers/resources.js";
import { MachineReconciler } from "../../controllers/machine.js";
import { generateKeyPair, type KeyPair } from "../../mesh/keys.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { customResourceStatusClient, type StatusClient } from "../../runtime/status.js";
import { eventRecorder } from "../../runtime/events.js";
import { kubeApiClient } from "../../runtime/kube-client.js";
import { silentLogger } from "../../runtime/log.js";
import { Semaphore } from "../../runtime/semaphore.js";
import { realClock } from "../../runtime/clock.js";
import { mesh } from "../support/fixtures.js";
import { b64, fakeHostKeyRecords, fakeInformer, secret } from "../support/reconciler-harness.js";
import { startTestStore, type TestStore } from "./helpers.js";

const NAMES = ["m1", "m2", "m3"];
const sshKey = generateEd25519("multimesh");
const wg = new Map<string, KeyPair>(NAMES.map((n) => [n, generateKeyPair()]));
const MESHES = {
  one: { interface: "dm1", cidr: "10.230.0.0/16", port: 51820, octet: 230 },
  two: { interface: "dm2", cidr: "10.231.0.0/16", port: 51822, octet: 231 },
  three: { interface: "dm3", cidr: "10.232.0.0/16", port: 51823, octet: 232 },
} as const;
type MeshName = keyof typeof MESHES;

let fleet: SimulatedHostFleet;
let store: TestStore;
const machines = fakeInformer<Machine>([]);
const meshes = new Map<string, MeshNetwork>();
const keySecrets = fakeInformer(NAMES.map((n) => secret(`${n}-wireguard`, { privateKey: b64(wg.get(n)!.privateKey), publicKey: b64(wg.get(n)!.publicKey) })));
let real: StatusClient<Machine>;
let recorder: ReturnType<typeof eventRecorder>;
/** Host keys recorded on first contact, shared by every reconciler of this file (as the Secrets would be). */
const hostKeys = fakeHostKeyRecords();
/** Set by a test: a status body to forge before the API server sees it (undefined: sent as is). */
let forge: ((m: Machine) => Machine | undefined) | undefined;

function meshOf(name: MeshName, members: readonly string[]): MeshNetwork {
  const x = MESHES[name];
  return {
    ...mesh(name, { cidr: x.cidr, interface: x.interface, dockerNetwork: name, listenPort: x.port, ...(name === "one" ? {} : { machineSelector: { matchLabels: { [name]: "member" } } }) }),
    status: { allocations: members.map((machine) => ({ machine, subnet: `10.${x.octet}.${NAMES.indexOf(machine)}.0/24` })) },
  };
}

const api = (name: string) => `/apis/dockmesh.io/v1alpha1/namespaces/default/machines/${name}`;
async function stored(name: string): Promise<Machine> {
  const r = await store.http("GET", api(name));
  assert.equal(r.status, 200, r.text);
  return r.json as Machine;
}
/** The Machine as the API server has it, into the reconciler's cache (as the informer would). */
async function sync(name: string): Promise<Machine> {
  const m = await stored(name);
  machines.set(m);
  return m;
}

function reconciler(): MachineReconciler {
  const api = kubeApiClient(store.kc());
  const status: StatusClient<Machine> = {
    get: (ns, name) => real.get(ns, name),
    replaceStatus: async (o) => {
      const written = await real.replaceStatus(forge?.(o) ?? o);
      machines.set(written);
      return written;
    },
  };
  return new MachineReconciler({
    api,
    machines: machines.informer,
    meshes: { get: (k: string) => meshes.get(k.split("/")[1]!), list: () => [...meshes.values()] } as never,
    secrets: keySecrets.informer,
    readSecret: async (_ns, name) => (name === "ssh" ? secret("ssh", { "ssh-privatekey": b64(sshKey.privateKey) }) : undefined),
    hostKeys,
    status,
    events: (recorder = eventRecorder(api, { logger: silentLogger() })),
    sshSlots: new Semaphore(3),
    clock: realClock,
    log: silentLogger(),
    resyncMs: 60_000,
    pendingRequeueMs: 5_000,
  });
}

/** Reconciles every machine, in rounds, until all are Ready (bounded); errors are kept, not thrown. */
async function converge(r: MachineReconciler, names: readonly string[] = NAMES, rounds = 4): Promise<string[]> {
  const errors: string[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const n of names) {
      try {
        await r.reconcile(`default/${n}`);
      } catch (err) {
        errors.push(`${n}: ${(err as Error).message}`);
      }
    }
    const all = await Promise.all(names.map(sync));
    if (all.every((m) => m.status?.conditions?.find((c) => c.type === "Ready")?.status === "True")) break;
  }
  return errors;
}

const host = (n: string) => fleet.get(n)!.host;
/** What a simulated host has of an interface / Docker network: empty when nothing is left. */
function leftovers(n: string, meshName: MeshName): string[] {
  const iface = MESHES[meshName].interface;
  const h = host(n);
  const found: string[] = [];
  if (h.links.has(iface)) found.push(`link ${iface}`);
  if (h.wg.has(iface)) found.push(`wg ${iface}`);
  for (const [chain, c] of h.chains) for (const rule of c.rules) if (rule.includes(`dockmesh:${iface}`)) found.push(`${chain}: ${rule}`);
  for (const r of h.routes) if (r.dev === iface) found.push(`route ${r.dst}`);
  if (h.networks.has(meshName)) found.push(`docker network ${meshName}`);
  for (const f of h.files.keys()) if (f.includes(iface)) found.push(`file ${f}`);
  if (h.enabled.has(iface) || h.enabled.has(`wg-quick@${iface}.service`)) found.push(`unit ${iface}`);
  return found;
}

const ready = (m: Machine) => m.status?.conditions?.find((c) => c.type === "Ready");

async function events(reason: string): Promise<Array<{ message: string; type: string; involvedObject: { name: string } }>> {
  const r = await store.http("GET", "/api/v1/namespaces/default/events");
  return ((r.json.items ?? []) as Array<{ reason: string; message: string; type: string; involvedObject: { name: string } }>).filter((e) => e.reason === reason);
}

describe("a Machine in several MeshNetworks, status through the real API server", { timeout: 120_000 }, () => {
  before(async () => {
    fleet = await SimulatedHostFleet.start({ names: NAMES, authorizedKey: sshKey.publicKey, addressPrefix: "127.54" });
    store = await startTestStore();
    real = customResourceStatusClient<Machine>(kubeApiClient(store.kc()), MACHINES);
    for (const [i, n] of NAMES.entries()) {
      const e = fleet.get(n)!;
      const body = {
        apiVersion: "dockmesh.io/v1alpha1",
        kind: "Machine",
        metadata: { name: n, namespace: "default", finalizers: [FINALIZER], labels: { two: "member", three: "member" } },
        // Written as for one mesh: host:51820.
        spec: { ssh: { host: e.sshHost, port: e.sshPort, privateKeySecretRef: { name: "ssh" } }, endpoint: `203.0.113.${10 + i}:51820` },
      };
      const r = await store.http("POST", "/apis/dockmesh.io/v1alpha1/namespaces/default/machines", body);
      assert.equal(r.status, 201, r.text);
      await sync(n);
    }
    meshes.set("one", meshOf("one", NAMES));
    meshes.set("two", meshOf("two", NAMES));
  });
  after(async () => {
    await store?.dispose();
    await fleet?.close();
  });

  test("kubectl explain states the endpoint rule and the per-mesh port override", async () => {
    const r = await store.kubectl(["explain", "machine.spec.endpoint"]);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout.replace(/\s+/g, " ");
    assert.match(
      text,
      /the port spec\.endpointPorts gives for that mesh; else this port, if the mesh's listenPort is this port, or if none of the machine's meshes listens on this port \(a port forward/,
    );
    assert.match(text, /host:51820 in meshes listening on 51820 and 51822 gives host:51820 and host:51822/);
    const ports = await store.kubectl(["explain", "machine.spec.endpointPorts"]);
    assert.equal(ports.code, 0, ports.stderr);
    assert.match(ports.stdout.replace(/\s+/g, " "), /Per-MeshNetwork port of spec\.endpoint, for a host behind a port forward/);
  });

  test("two meshes over the same machines: every status write is accepted; each network lists each peer once, on that mesh's port", async () => {
    const errors = await converge(reconciler());
    assert.deepEqual(errors, [], "no reconcile failed (before: 422 Duplicate value on every status write)");
    for (const [i, n] of NAMES.entries()) {
      const m = await stored(n);
      assert.equal(ready(m)?.status, "True", `${n}: ${JSON.stringify(ready(m))}`);
      assert.deepEqual(
        m.status?.networks?.map((x) => x.meshNetwork),
        ["one", "two"],
      );
      for (const net of m.status.networks) {
        const port = MESHES[net.meshNetwork as MeshName].port;
        assert.deepEqual(
          net.peers?.map((p) => p.machine),
          NAMES.filter((x) => x !== n),
          `${n} ${net.meshNetwork}`,
        );
        assert.deepEqual(
          net.peers?.map((p) => p.endpoint),
          NAMES.flatMap((x, j) => (x === n ? [] : [`203.0.113.${10 + j}:${port}`])),
          `${n} ${net.meshNetwork} endpoints`,
        );
      }
      // And on the host: mesh two's peers are configured at :51822.
      const two = [...host(n).wg.get("dm2")!.peers.values()].map((p) => p.endpoint).sort();
      assert.deepEqual(
        two,
        NAMES.flatMap((x, j) => (x === n ? [] : [`203.0.113.${10 + j}:51822`])),
        `${n} dm2 endpoints (i=${i})`,
      );
    }
  });

  test("a label change takes m3 out of mesh two: its host has nothing of it left, the others drop m3", async () => {
    const r = await store.http("PATCH", api("m3"), { metadata: { labels: { two: null } } }, { "Content-Type": "application/merge-patch+json" });
    assert.equal(r.status, 200, r.text);
    await sync("m3");
    // The MeshNetwork controller drops m3's allocation (its own test covers that).
    meshes.set("two", meshOf("two", ["m1", "m2"]));
    const errors = await converge(reconciler());
    assert.deepEqual(errors, []);
    assert.deepEqual(leftovers("m3", "two"), [], "nothing of mesh two on m3");
    assert.deepEqual(
      (await stored("m3")).status?.networks?.map((x) => x.meshNetwork),
      ["one"],
    );
    for (const n of ["m1", "m2"])
      assert.deepEqual(
        (await stored(n)).status?.networks?.find((x) => x.meshNetwork === "two")?.peers?.map((p) => p.machine),
        ["m1", "m2"].filter((x) => x !== n),
      );
    assert.ok(leftovers("m1", "one").length > 0 && leftovers("m3", "one").length > 0, "mesh one stays");
  });

  test("mesh two turned invalid (a typo): its host state and its status entry stay, so that a later delete still finds it", async () => {
    const valid = meshes.get("two")!;
    meshes.set("two", { ...valid, spec: { ...valid.spec, cidr: "10.231.0.1/16" } });
    const errors = await converge(reconciler(), ["m1", "m2"], 1);
    assert.deepEqual(errors, []);
    for (const n of ["m1", "m2"]) {
      const m = await stored(n);
      assert.equal(m.status?.conditions?.find((c) => c.type === "NetworkConfigured")?.reason, "WaitingForSubnet", n);
      assert.deepEqual(
        m.status?.networks?.map((x) => x.meshNetwork),
        ["one", "two"],
        `${n} keeps mesh two on record (before: dropped, and deleting the mesh then left it all on the host)`,
      );
      assert.ok(leftovers(n, "two").length > 0, `${n} keeps mesh two on the host`);
    }
  });

  test("deleting mesh two (while invalid) removes everything of it from every host", async () => {
    meshes.delete("two");
    const errors = await converge(reconciler());
    assert.deepEqual(errors, []);
    for (const n of NAMES) {
      assert.deepEqual(leftovers(n, "two"), [], `nothing of mesh two on ${n}`);
      assert.deepEqual(
        (await stored(n)).status?.networks?.map((x) => x.meshNetwork),
        ["one"],
      );
    }
  });

  test("a status write the API server refuses is a Warning Event and Ready False StatusWriteFailed; a mesh applied meanwhile is still torn down", async () => {
    // Mesh three over m1 and m2. The API server refuses every status of m1 that lists mesh three's
    // peers (a forged duplicate: the refusal is the real server's 422).
    meshes.set("three", meshOf("three", ["m1", "m2"]));
    forge = (o) => {
      const nets = o.status?.networks;
      const three = nets?.find((x) => x.meshNetwork === "three");
      if (o.metadata?.name !== "m1" || !three?.peers?.length) return undefined;
      return { ...o, status: { ...o.status, networks: nets!.map((x) => (x === three ? { ...x, peers: [...x.peers!, x.peers![0]!] } : x)) } };
    };
    const r = reconciler();
    let failure: Error | undefined;
    try {
      await r.reconcile("default/m1");
    } catch (err) {
      failure = err as Error;
    }
    assert.match(failure?.message ?? "", /Duplicate value/, "the reconcile fails with the API server's error");
    assert.ok(leftovers("m1", "three").length > 0, "mesh three was applied to m1's host");
    const m1 = await stored("m1");
    assert.equal(ready(m1)?.status, "False");
    assert.equal(ready(m1)?.reason, "StatusWriteFailed");
    assert.match(ready(m1)!.message, /status\.networks\[\d\]\.peers\[\d\]: Duplicate value/, "the condition names the field and the error");
    // On record before it was applied: status lists mesh three, so its teardown knows what to remove.
    assert.deepEqual(
      m1.status?.networks?.map((x) => x.meshNetwork),
      ["one", "three"],
    );
    await recorder.flush();
    const ev = await events("StatusWriteFailed");
    assert.ok(
      ev.some((e) => e.involvedObject.name === "m1" && e.type === "Warning" && /Duplicate value/.test(e.message)),
      `a Warning Event: ${JSON.stringify(ev)}`,
    );

    // Deleting mesh three (the writes still failing had left its interface, network, rules and files before).
    meshes.delete("three");
    machines.set(m1);
    forge = undefined;
    const errors = await converge(reconciler(), ["m1"]);
    assert.deepEqual(errors, []);
    assert.deepEqual(leftovers("m1", "three"), [], "nothing of mesh three on m1");
    const after = await stored("m1");
    assert.equal(ready(after)?.status, "True", "a good write replaces StatusWriteFailed");
    assert.deepEqual(
      after.status?.networks?.map((x) => x.meshNetwork),
      ["one"],
    );
  });

  test("when even the stored status is refused, a minimal one is written: the networks' names (for teardown), the key, Ready False StatusWriteFailed", async () => {
    // The server refuses every status of m2 that lists a peer, the stored one included.
    forge = (o) =>
      o.metadata?.name === "m2" && o.status?.networks?.some((x) => x.peers?.length)
        ? { ...o, status: { ...o.status, networks: o.status.networks.map((x) => ({ ...x, peers: [...(x.peers ?? []), ...(x.peers ?? []).slice(0, 1)] })) } }
        : undefined;
    const before = await stored("m2");
    // Something to write: the stored peer count is stale.
    const put = await store.http("PUT", `${api("m2")}/status`, { ...before, status: { ...before.status, peers: "0/0" } });
    assert.equal(put.status, 200, put.text);
    await sync("m2");
    let failure: Error | undefined;
    try {
      await reconciler().reconcile("default/m2");
    } catch (err) {
      failure = err as Error;
    }
    assert.match(failure?.message ?? "", /Duplicate value/);
    const m2 = await stored("m2");
    assert.equal(ready(m2)?.reason, "StatusWriteFailed");
    assert.deepEqual(m2.status?.networks, [{ meshNetwork: "one", interface: "dm1", dockerNetwork: "one" }]);
    assert.equal(m2.status?.publicKey, wg.get("m2")!.publicKey);
    forge = undefined;
    await sync("m2");
    assert.deepEqual(await converge(reconciler(), ["m2"]), []);
    const back = await stored("m2");
    assert.equal(ready(back)?.status, "True");
    assert.deepEqual(
      back.status?.networks?.[0]?.peers?.map((p) => p.machine),
      ["m1", "m3"],
    );
  });
});
