// Security finding 1 (issue 11): a value from status reached peers' wg-quick configs verbatim. A
// status patch with a newline in publicKey, then "[Interface]" and "PreUp = <command>", was
// written into the other hosts' config files, and `wg-quick up` ran the command as root.
// Kept here: peers' keys come from the key Secrets the controller generated, never from
// status; every renderer refuses a control character whatever its source, and the refusal is a
// condition that names the field; a forged allocation is not used.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { FINALIZER } from "../../controllers/resources.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { generateEd25519 } from "../../lab/keys.js";
import { planHost, type NetworkPlan } from "../../mesh/plan.js";
import { resolveMesh } from "../../mesh/defaults.js";
import { renderWgConfig } from "../../mesh/render.js";
import { UnsafeValueError } from "../../api/formats.js";
import { checkAllocations } from "../../mesh/allocations.js";
import { renderScript } from "../../hosts/steps.js";
import { diffHost } from "../../hosts/diff.js";
import { parseObservation } from "../../hosts/observe.js";
import { SimulatedHostFleet } from "../../bench/sim/simulated-fleet.js";
import { mesh, pub } from "../support/fixtures.js";
import { b64, machineReconciler, secret } from "../support/reconciler-harness.js";

const INJECT = "\n[Interface]\nPreUp = touch /tmp/dockmesh-pwned\n";
const keys = { a: generateKeyPair(), b: generateKeyPair(), c: generateKeyPair() };

function planned(): NetworkPlan {
  const m = resolveMesh(mesh("mesh", { cidr: "10.210.0.0/16", interface: "dm0" })).mesh!;
  const members = [
    { name: "a", subnet: "10.210.0.0/24", endpoint: "203.0.113.10:51820", publicKey: keys.a.publicKey },
    { name: "b", subnet: "10.210.1.0/24", endpoint: "203.0.113.11:51820", publicKey: keys.b.publicKey },
  ];
  return planHost("default", "a", [{ mesh: m, members }], { inputDrops: true, rawTable: true }).networks[0]!;
}

/** The plan with one value replaced, as a forged or broken input would make it. */
const CASES: Array<{ field: RegExp; change: (n: NetworkPlan) => void }> = [
  { field: /peer b publicKey/, change: (n) => (n.wireguard.peers[0]!.publicKey = `${keys.b.publicKey}${INJECT}`) },
  { field: /peer b publicKey/, change: (n) => (n.wireguard.peers[0]!.publicKey = "not a key") },
  { field: /peer b endpoint/, change: (n) => (n.wireguard.peers[0]!.endpoint = `203.0.113.11:51820${INJECT}`) },
  { field: /peer b allowedIPs/, change: (n) => (n.wireguard.peers[0]!.allowedIPs = [`10.210.1.0/24${INJECT}`]) },
  { field: /peer "b\\n\[Interface\].*" name/, change: (n) => (n.wireguard.peers[0]!.machine = `b${INJECT}`) },
  { field: /peer b relayFor/, change: (n) => (n.wireguard.peers[0]!.relayFor = [`c${INJECT}`]) },
  { field: /^MeshNetwork "mesh\\n\[Interface\].*" name$/, change: (n) => (n.meshNetwork = `mesh${INJECT}`) },
  { field: /MeshNetwork mesh interface/, change: (n) => (n.wireguard.interface = "+") },
  { field: /MeshNetwork mesh rule 1 \(filter DOCKER-USER\) argument/, change: (n) => (n.rules[0]!.args[1] = `dm0${INJECT}`) },
  { field: /MeshNetwork mesh listenPort/, change: (n) => (n.wireguard.listenPort = 70000) },
  { field: /MeshNetwork mesh peer b persistentKeepalive/, change: (n) => (n.wireguard.peers[0]!.persistentKeepalive = 1.5) },
];

describe("renderers refuse control characters and malformed values, naming the field", () => {
  test("the unchanged plan renders", () => {
    assert.match(renderWgConfig(planned(), keys.a.privateKey), /^PublicKey = /m);
  });
  for (const c of CASES) {
    test(`refused: ${c.field.source}`, () => {
      const net = planned();
      c.change(net);
      assert.throws(
        () => renderWgConfig(net, keys.a.privateKey),
        (err: unknown) => err instanceof UnsafeValueError && c.field.test(err.field) && !/[\n\r]/.test(err.message),
      );
    });
  }
  test("a private key with a newline is refused", () => {
    assert.throws(() => renderWgConfig(planned(), `${keys.a.privateKey}${INJECT}`), /private key: contains a control character \(U\+000A\)/);
  });
  test("the apply script refuses an argument with a control character", () => {
    assert.throws(() => renderScript([{ op: "route_replace", args: [`10.0.0.0/24${INJECT}`, "dm0"], display: "x" }]), /step route_replace argument 1: contains a control character/);
  });
  test("diff: a refused value blocks that mesh with an UnsafeValue blocker and no steps (nothing half-configured)", () => {
    const net = planned();
    net.wireguard.peers[0]!.publicKey = `${keys.b.publicKey}${INJECT}`;
    const empty = parseObservation("@@dockmesh tools\n@@dockmesh end\n");
    const r = diffHost({ networks: [net], privateKey: keys.a.privateKey, publicKey: keys.a.publicKey }, empty);
    assert.deepEqual(r.steps, []);
    assert.equal(r.blockers.length, 1);
    assert.equal(r.blockers[0]!.reason, "UnsafeValue");
    assert.match(r.blockers[0]!.message, /peer b publicKey: contains a control character \(U\+000A\); refused/);
  });
});

describe("forged allocations in MeshNetwork status are not used", () => {
  const m = resolveMesh(mesh("mesh", { cidr: "10.210.0.0/16", subnetPrefixLength: 24 })).mesh!;
  const TABLE: Array<{ what: string; allocations: Array<{ machine: string; subnet: string }>; valid: string[]; refused: RegExp[] }> = [
    {
      what: "all fine",
      allocations: [
        { machine: "a", subnet: "10.210.0.0/24" },
        { machine: "b", subnet: "10.210.1.0/24" },
      ],
      valid: ["a", "b"],
      refused: [],
    },
    {
      what: "everything routed into the tunnel",
      allocations: [{ machine: "a", subnet: "0.0.0.0/0" }],
      valid: [],
      refused: [/allocations\[0\]\.subnet: "0\.0\.0\.0\/0" is not a \/24 inside the pool/],
    },
    { what: "outside the pool", allocations: [{ machine: "a", subnet: "10.99.0.0/24" }], valid: [], refused: [/allocations\[0\]\.subnet/] },
    { what: "wrong size", allocations: [{ machine: "a", subnet: "10.210.0.0/16" }], valid: [], refused: [/allocations\[0\]\.subnet/] },
    { what: "host bits", allocations: [{ machine: "a", subnet: "10.210.0.1/24" }], valid: [], refused: [/allocations\[0\]\.subnet/] },
    { what: "a newline", allocations: [{ machine: "a", subnet: `10.210.0.0/24${INJECT}` }], valid: [], refused: [/allocations\[0\]\.subnet: "10\.210\.0\.0\/24\\n/] },
    { what: "a bad machine name", allocations: [{ machine: `a${INJECT}`, subnet: "10.210.0.0/24" }], valid: [], refused: [/allocations\[0\]\.machine/] },
    {
      what: "one subnet twice",
      allocations: [
        { machine: "a", subnet: "10.210.0.0/24" },
        { machine: "b", subnet: "10.210.0.0/24" },
        { machine: "c", subnet: "10.210.2.0/24" },
      ],
      valid: ["c"],
      refused: [/allocations\[0\]\.subnet: 10\.210\.0\.0\/24 is also allocated/, /allocations\[1\]\.subnet/],
    },
    {
      what: "one machine twice",
      allocations: [
        { machine: "a", subnet: "10.210.0.0/24" },
        { machine: "a", subnet: "10.210.1.0/24" },
      ],
      valid: ["a"],
      refused: [/allocations\[1\]\.machine: a has more than one allocation/],
    },
  ];
  for (const c of TABLE) {
    test(c.what, () => {
      const r = checkAllocations(m, c.allocations);
      assert.deepEqual(
        r.valid.map((a) => a.machine),
        c.valid,
      );
      assert.equal(r.refused.length, c.refused.length, r.refused.join("\n"));
      c.refused.forEach((re, i) => assert.match(r.refused[i]!, re));
    });
  }
});

describe("a peer's key comes from its key Secret, not from its status (reconciler on a simulated host)", () => {
  const sshKey = generateEd25519("security-injection");
  let fleet: SimulatedHostFleet;
  before(async () => {
    fleet = await SimulatedHostFleet.start({ names: ["m0"], authorizedKey: sshKey.publicKey, addressPrefix: "127.3" });
  });
  after(() => fleet.close());

  test("a forged status.publicKey with a PreUp line reaches no config; the key in m1's Secret does", async () => {
    const host = fleet.get("m0")!;
    const m0: Machine = {
      ...pub("m0", 0, { spec: { ssh: { host: host.sshHost, port: host.sshPort, privateKeySecretRef: { name: "ssh" } } } }),
      metadata: { name: "m0", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "1" },
      status: { publicKey: keys.a.publicKey },
    };
    const m1: Machine = {
      ...pub("m1", 1),
      metadata: { name: "m1", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "2" },
      status: { publicKey: `${keys.c.publicKey}${INJECT}` },
    };
    const meshObj: MeshNetwork = {
      ...mesh("mesh", { cidr: "10.0.0.0/16", interface: "dm0", dockerNetwork: "apps" }),
      status: {
        allocations: [
          { machine: "m0", subnet: "10.0.0.0/24" },
          { machine: "m1", subnet: "10.0.1.0/24" },
          { machine: "m2", subnet: "0.0.0.0/0" },
        ],
      },
    };
    const m2: Machine = { ...pub("m2", 2), metadata: { name: "m2", namespace: "default", finalizers: [FINALIZER], generation: 1, resourceVersion: "3" } };
    const h = machineReconciler(
      [m0, m1, m2],
      [meshObj],
      [
        secret("ssh", { "ssh-privatekey": b64(sshKey.privateKey) }),
        secret("m0-wireguard", { privateKey: b64(keys.a.privateKey), publicKey: b64(keys.a.publicKey) }),
        secret("m1-wireguard", { privateKey: b64(keys.b.privateKey), publicKey: b64(keys.b.publicKey) }),
        secret("m2-wireguard", { privateKey: b64(keys.c.privateKey), publicKey: b64(keys.c.publicKey) }),
      ],
    );
    await h.reconciler.reconcile("default/m0").catch(() => undefined);
    const config = host.host.files.get("/etc/wireguard/dm0.conf")?.content ?? "";
    assert.match(config, new RegExp(`^PublicKey = ${keys.b.publicKey.replace(/[+/]/g, "\\$&")}$`, "m"), "m1 is configured with the key from its Secret");
    assert.doesNotMatch(config, /PreUp|dockmesh-pwned/, "nothing of the forged status is in the config");
    assert.doesNotMatch(config, /0\.0\.0\.0\/0/, "the forged allocation is not used");
    assert.deepEqual([...(host.host.wg.get("dm0")?.peers.keys() ?? [])], [keys.b.publicKey]);
    const nc = h.statuses.at(-1)!.status?.conditions?.find((c) => c.type === "NetworkConfigured");
    assert.equal(nc?.status, "False");
    assert.equal(nc?.reason, "UnsafeValue");
    assert.match(nc?.message ?? "", /MeshNetwork mesh status\.allocations\[2\]\.subnet: "0\.0\.0\.0\/0" is not a \/24 inside the pool 10\.0\.0\.0\/16; ignored/);
  });
});
