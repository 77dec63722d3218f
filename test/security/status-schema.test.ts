// Security finding 1, the schema half (issue 11): "the CRD's status schema carries patterns for
// every field that has a format". The patterns are the same regular expressions the code checks
// where it reads these values (api/formats.ts), and the API server refuses a status write that
// breaks them: a real kubectl patching machines/status gets a 422 naming the field.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { loadCrd } from "../../api/crd-schema.js";
import {
  crdPattern,
  DNS_ZONE,
  IPV4_ADDRESS,
  DOCKER_NETWORK_NAME,
  DOCKER_VERSION,
  ENDPOINT,
  ENDPOINT_V6,
  INTERFACE_NAME,
  IPV4_CIDR,
  IPV6_CIDR,
  OBJECT_NAME,
  SSH_FINGERPRINT,
  WIREGUARD_KEY,
} from "../../api/formats.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { startTestStore, type TestStore } from "../store/helpers.js";

type Schema = { properties?: Record<string, Schema>; items?: Schema; pattern?: string };

function at(kind: "Machine" | "MeshNetwork", path: string): Schema {
  let s = loadCrd(kind).spec.versions[0]!.schema.openAPIV3Schema as Schema;
  for (const p of path.split(".")) s = p === "[]" ? s.items! : s.properties![p]!;
  return s;
}

const FIELDS: Array<[kind: "Machine" | "MeshNetwork", path: string, format: RegExp]> = [
  ["Machine", "status.hostKeyFingerprint", SSH_FINGERPRINT],
  ["Machine", "status.bastionHostKeyFingerprint", SSH_FINGERPRINT],
  ["Machine", "status.dockerVersion", DOCKER_VERSION],
  ["Machine", "status.publicKey", WIREGUARD_KEY],
  ["Machine", "status.networks.[].meshNetwork", OBJECT_NAME],
  ["Machine", "status.networks.[].subnet", IPV4_CIDR],
  ["Machine", "status.networks.[].subnetV6", IPV6_CIDR],
  ["Machine", "spec.subnetV6", IPV6_CIDR],
  ["Machine", "status.networks.[].dockerNetwork", DOCKER_NETWORK_NAME],
  ["Machine", "status.networks.[].interface", INTERFACE_NAME],
  ["Machine", "status.networks.[].bridge", INTERFACE_NAME],
  ["Machine", "status.networks.[].peers.[].machine", OBJECT_NAME],
  ["Machine", "status.networks.[].peers.[].publicKey", WIREGUARD_KEY],
  ["Machine", "status.networks.[].peers.[].endpoint", ENDPOINT],
  ["Machine", "status.networks.[].peers.[].via", OBJECT_NAME],
  ["Machine", "status.networks.[].dns.zone", DNS_ZONE],
  ["Machine", "status.networks.[].dns.address", IPV4_ADDRESS],
  ["MeshNetwork", "spec.dns.zone", DNS_ZONE],
  ["Machine", "spec.endpoint", ENDPOINT],
  ["Machine", "spec.endpointV6", ENDPOINT_V6],
  ["Machine", "spec.endpointPorts.[].meshNetwork", OBJECT_NAME],
  ["MeshNetwork", "spec.interface", INTERFACE_NAME],
  ["MeshNetwork", "spec.dockerNetwork", DOCKER_NETWORK_NAME],
  ["MeshNetwork", "spec.cidr", IPV4_CIDR],
  ["MeshNetwork", "status.allocations.[].machine", OBJECT_NAME],
  ["MeshNetwork", "status.allocations.[].subnet", IPV4_CIDR],
  ["MeshNetwork", "status.allocations.[].subnetV6", IPV6_CIDR],
  ["MeshNetwork", "spec.cidrV6", IPV6_CIDR],
  ["MeshNetwork", "status.relays.[].via", OBJECT_NAME],
];

describe("the CRDs' patterns are the formats the code checks", () => {
  for (const [kind, path, format] of FIELDS) {
    test(`${kind} ${path}`, () => assert.equal(at(kind, path).pattern, crdPattern(format)));
  }
  test("no pattern uses lookaround or backreferences (kube-apiserver's RE2 has none)", () => {
    for (const [kind, path] of FIELDS) assert.doesNotMatch(at(kind, path).pattern ?? "", /\(\?[=!<]|\\[1-9]/, `${kind} ${path}`);
  });
});

describe("the API server refuses forged status values (real kubectl)", () => {
  let store: TestStore;
  const key = generateKeyPair().publicKey;
  before(async () => {
    store = await startTestStore();
    const m = { apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", metadata: { name: "m1" }, spec: { ssh: { host: "127.0.0.9", privateKeySecretRef: { name: "ssh" } } } };
    const r = await store.kubectl(["apply", "-f", "-"], { input: JSON.stringify(m) });
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => store.dispose());

  const INJECT = "\n[Interface]\nPreUp = touch /tmp/pwned";
  const CASES: Array<{ what: string; status: object; field?: string }> = [
    { what: "publicKey with a PreUp line", status: { publicKey: `${key}${INJECT}` }, field: "status.publicKey" },
    { what: "publicKey not a key", status: { publicKey: "x" }, field: "status.publicKey" },
    { what: "networks[].interface docker0/..", status: { networks: [{ meshNetwork: "gone", interface: "../resolv" }] }, field: "status.networks[0].interface" },
    { what: "networks[].interface +", status: { networks: [{ meshNetwork: "gone", interface: "+" }] }, field: "status.networks[0].interface" },
    { what: "peers[].publicKey with a newline", status: { networks: [{ meshNetwork: "m", peers: [{ machine: "b", publicKey: `${key}\n` }] }] }, field: "status.networks[0].peers[0].publicKey" },
    { what: "dockerVersion with terminal escapes", status: { dockerVersion: "28.0.0\u001b[2J" }, field: "status.dockerVersion" },
    { what: "hostKeyFingerprint not a fingerprint", status: { hostKeyFingerprint: "SHA256:x\nx" }, field: "status.hostKeyFingerprint" },
    {
      what: "a valid status",
      status: { publicKey: key, dockerVersion: "20.10.24+dfsg1", networks: [{ meshNetwork: "m", interface: "dm0", bridge: "br-dm0", subnet: "10.210.0.0/24", dockerNetwork: "apps" }] },
    },
  ];
  for (const c of CASES) {
    test(c.what, async () => {
      const r = await store.kubectl(["patch", "machine", "m1", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: c.status })]);
      if (c.field === undefined) {
        assert.equal(r.code, 0, r.stderr);
        return;
      }
      assert.notEqual(r.code, 0, `accepted: ${r.stdout}`);
      assert.ok(r.stderr.includes(`${c.field}: Invalid value`), r.stderr);
    });
  }
});
