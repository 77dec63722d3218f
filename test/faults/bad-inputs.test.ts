// Fault suite, bad inputs (issue 7): more than 30 invalid manifests, applied with real kubectl
// to `dockmesh up` on lab hosts. Each is refused by the API server with a 422 naming the field
// (the CRD schema), or 404 naming a missing namespace, or accepted and answered by a condition
// naming the field (checks a schema cannot express). And none of them makes anything happen on a
// host: no SSH login is accepted by any lab host, no apply step is logged, and every host's
// iptables, links, routes, Docker networks, /etc/wireguard and /etc/systemd/system are as before.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { generateEd25519 } from "../../lab/keys.js";
import { MeshEnv, startMeshEnv, eventually, appliedSteps, yamlDoc } from "../../lab/mesh-env.js";
import { hostState, sshLogins } from "../../lab/lab-checks.js";

const PREFIX = "dmfbad";
const LABNET = "198.18.42.0/24";
const PORT = 16462;
const HOSTS = ["h1", "h2"] as const;

let env: MeshEnv;
let stateBefore: Map<string, string>;

const machineDoc = (name: string, spec: Record<string, unknown>, namespace = "default") => yamlDoc({ apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", metadata: { name, namespace }, spec });
const meshDoc = (name: string, spec: Record<string, unknown>, namespace = "default") => yamlDoc({ apiVersion: "dockmesh.io/v1alpha1", kind: "MeshNetwork", metadata: { name, namespace }, spec });
/** A valid Machine spec for lab host h1, changed by `patch` (dotted paths; undefined removes). */
function machineSpec(patch: Record<string, unknown> = {}): Record<string, unknown> {
  const spec: Record<string, unknown> = { ssh: { host: env.lab.host("h1").sshHost, port: 22, privateKeySecretRef: { name: "lab-ssh" } }, endpoint: `${env.lab.host("h1").sshHost}:51820` };
  for (const [path, value] of Object.entries(patch)) {
    const keys = path.split(".");
    let o = spec;
    for (const k of keys.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
    if (value === undefined) delete o[keys.at(-1)!];
    else o[keys.at(-1)!] = value;
  }
  return spec;
}
const meshSpec = (patch: Record<string, unknown> = {}) => ({ cidr: "10.210.0.0/16", interface: "dm0", ...patch });

interface SchemaCase {
  what: string;
  doc: () => string;
  /** HTTP status of the create request. */
  code: number;
  /** What kubectl prints: the field and the offending value. */
  error: RegExp;
}

const long = (n: number, c = "a") => c.repeat(n);
const field = (f: string) => f.replace(/[.[\]]/g, (c) => `\\${c}`);
const invalid = (f: string) => new RegExp(`${field(f)}: (Invalid value|Too long|Required value|Unsupported value)`);

const SCHEMA: SchemaCase[] = [
  // Machine: shell metacharacters, sizes and ranges in every string the controller would use.
  ...["$(reboot)", "h1; reboot", "`reboot`", "'h1'", '"h1"', "h1 h2", "h1\nreboot", "h1|reboot", "h1&&reboot"].map((host) => ({
    what: `ssh.host ${JSON.stringify(host)}`,
    doc: () => machineDoc("bad", machineSpec({ "ssh.host": host })),
    code: 422,
    error: invalid("spec.ssh.host"),
  })),
  { what: "ssh.host of 300 characters", doc: () => machineDoc("bad", machineSpec({ "ssh.host": long(300) })), code: 422, error: /spec\.ssh\.host: Too long/ },
  { what: "ssh.host empty", doc: () => machineDoc("bad", machineSpec({ "ssh.host": "" })), code: 422, error: invalid("spec.ssh.host") },
  { what: "ssh.port 0", doc: () => machineDoc("bad", machineSpec({ "ssh.port": 0 })), code: 422, error: invalid("spec.ssh.port") },
  { what: "ssh.port 70000", doc: () => machineDoc("bad", machineSpec({ "ssh.port": 70000 })), code: 422, error: invalid("spec.ssh.port") },
  { what: 'ssh.user "root;id"', doc: () => machineDoc("bad", machineSpec({ "ssh.user": "root;id" })), code: 422, error: invalid("spec.ssh.user") },
  { what: "ssh.user of 40 characters", doc: () => machineDoc("bad", machineSpec({ "ssh.user": long(40) })), code: 422, error: /spec\.ssh\.user: Too long/ },
  {
    what: 'privateKeySecretRef.name "../etc/shadow"',
    doc: () => machineDoc("bad", machineSpec({ "ssh.privateKeySecretRef.name": "../etc/shadow" })),
    code: 422,
    error: invalid("spec.ssh.privateKeySecretRef.name"),
  },
  { what: 'privateKeySecretRef.key "a/b"', doc: () => machineDoc("bad", machineSpec({ "ssh.privateKeySecretRef.key": "a/b" })), code: 422, error: invalid("spec.ssh.privateKeySecretRef.key") },
  { what: 'ssh.hostKey "ssh-ed25519 $(reboot)"', doc: () => machineDoc("bad", machineSpec({ "ssh.hostKey": "ssh-ed25519 $(reboot)" })), code: 422, error: invalid("spec.ssh.hostKey") },
  {
    what: 'ssh.bastion.host "$(reboot)"',
    doc: () => machineDoc("bad", machineSpec({ "ssh.bastion": { host: "$(reboot)", privateKeySecretRef: { name: "lab-ssh" } } })),
    code: 422,
    error: invalid("spec.ssh.bastion.host"),
  },
  { what: 'endpoint "198.18.42.10:51820; reboot"', doc: () => machineDoc("bad", machineSpec({ endpoint: "198.18.42.10:51820; reboot" })), code: 422, error: invalid("spec.endpoint") },
  { what: 'endpoint "$(reboot):51820"', doc: () => machineDoc("bad", machineSpec({ endpoint: "$(reboot):51820" })), code: 422, error: invalid("spec.endpoint") },
  { what: "endpoint without a port", doc: () => machineDoc("bad", machineSpec({ endpoint: "198.18.42.10" })), code: 422, error: invalid("spec.endpoint") },
  { what: "endpoint port 70000", doc: () => machineDoc("bad", machineSpec({ endpoint: "198.18.42.10:70000" })), code: 422, error: invalid("spec.endpoint") },
  { what: "endpoint of 300 characters", doc: () => machineDoc("bad", machineSpec({ endpoint: `${long(290)}:51820` })), code: 422, error: /spec\.endpoint: Too long/ },
  { what: "subnet 10.0.0.0/33", doc: () => machineDoc("bad", machineSpec({ subnet: "10.0.0.0/33" })), code: 422, error: invalid("spec.subnet") },
  { what: "subnet fd00::/64", doc: () => machineDoc("bad", machineSpec({ subnet: "fd00::/64" })), code: 422, error: invalid("spec.subnet") },
  { what: "no spec.ssh", doc: () => machineDoc("bad", machineSpec({ ssh: undefined })), code: 422, error: /spec\.ssh: Required value/ },
  { what: "no privateKeySecretRef", doc: () => machineDoc("bad", machineSpec({ "ssh.privateKeySecretRef": undefined })), code: 422, error: /spec\.ssh\.privateKeySecretRef: Required value/ },
  { what: 'name "h1;reboot"', doc: () => machineDoc("h1;reboot", machineSpec()), code: 422, error: /metadata\.name: Invalid value: "h1;reboot"/ },
  { what: "an unknown field spec.sshh", doc: () => machineDoc("bad", { ...machineSpec(), sshh: {} }), code: 400, error: /unknown field "spec\.sshh"/ },
  // MeshNetwork.
  { what: "cidr 10.0.0.0/33", doc: () => meshDoc("bad", meshSpec({ cidr: "10.0.0.0/33" })), code: 422, error: invalid("spec.cidr") },
  { what: "cidr fd00::/8", doc: () => meshDoc("bad", meshSpec({ cidr: "fd00::/8" })), code: 422, error: invalid("spec.cidr") },
  { what: "cidr without a prefix length", doc: () => meshDoc("bad", meshSpec({ cidr: "10.0.0.0" })), code: 422, error: invalid("spec.cidr") },
  { what: "no cidr", doc: () => meshDoc("bad", { interface: "dm0" }), code: 422, error: /spec\.cidr: Required value/ },
  { what: 'interface "dm0;reboot"', doc: () => meshDoc("bad", meshSpec({ interface: "dm0;reboot" })), code: 422, error: invalid("spec.interface") },
  { what: "interface of 20 characters", doc: () => meshDoc("bad", meshSpec({ interface: long(20, "d") })), code: 422, error: /spec\.interface: Too long/ },
  { what: 'dockerNetwork "$(reboot)"', doc: () => meshDoc("bad", meshSpec({ dockerNetwork: "$(reboot)" })), code: 422, error: invalid("spec.dockerNetwork") },
  { what: "listenPort 70000", doc: () => meshDoc("bad", meshSpec({ listenPort: 70000 })), code: 422, error: invalid("spec.listenPort") },
  { what: "mtu 100", doc: () => meshDoc("bad", meshSpec({ mtu: 100 })), code: 422, error: invalid("spec.mtu") },
  { what: 'mtu "big"', doc: () => meshDoc("bad", meshSpec({ mtu: "big" })), code: 422, error: invalid("spec.mtu") },
  { what: "subnetPrefixLength 31", doc: () => meshDoc("bad", meshSpec({ subnetPrefixLength: 31 })), code: 422, error: invalid("spec.subnetPrefixLength") },
  { what: "persistentKeepalive -1", doc: () => meshDoc("bad", meshSpec({ persistentKeepalive: -1 })), code: 422, error: invalid("spec.persistentKeepalive") },
  {
    what: 'machineSelector operator "Like"',
    doc: () => meshDoc("bad", meshSpec({ machineSelector: { matchExpressions: [{ key: "a", operator: "Like" }] } })),
    code: 422,
    error: invalid("spec.machineSelector.matchExpressions[0].operator"),
  },
  // A namespace that does not exist.
  { what: 'a Machine in namespace "nope", which does not exist', doc: () => machineDoc("bad", machineSpec(), "nope"), code: 404, error: /namespaces "nope" not found/ },
];

interface SemanticCase {
  what: string;
  /** Objects of the case, in its own namespace (the Secret lab-ssh is there too). */
  docs: (ns: string) => string;
  /** The Machine whose condition is checked, and the condition. */
  machine: string;
  condition: "NetworkConfigured" | "Reachable";
  reason: string;
  message: RegExp;
  /** The MeshNetwork's Ready message, where the mesh reports it too. */
  mesh?: RegExp;
}

const h = (n: "h1" | "h2") => env.lab.host(n).sshHost;
const m = (ns: string, name: string, host: "h1" | "h2", patch: Record<string, unknown> = {}) =>
  machineDoc(name, { ...machineSpec({ "ssh.host": host === "h1" ? h("h1") : h("h2"), endpoint: `${h(host)}:51820`, ...patch }) }, ns);

const SEMANTIC: SemanticCase[] = [
  {
    what: "MeshNetwork cidr 10.0.1.0/16 (host bits set)",
    docs: (ns) => meshDoc("mesh", meshSpec({ cidr: "10.0.1.0/16" }), ns) + m(ns, "a", "h1"),
    machine: "a",
    condition: "NetworkConfigured",
    reason: "InvalidSpec",
    message: /MeshNetwork mesh is invalid: spec\.cidr: 10\.0\.1\.0\/16 has host bits set; the pool's network address is 10\.0\.0\.0\/16/,
    mesh: /^spec\.cidr: /,
  },
  {
    what: "subnetPrefixLength 12 in a /16 pool",
    docs: (ns) => meshDoc("mesh", meshSpec({ subnetPrefixLength: 12 }), ns) + m(ns, "a", "h1"),
    machine: "a",
    condition: "NetworkConfigured",
    reason: "InvalidSpec",
    message: /spec\.subnetPrefixLength: \/12 subnets do not fit in the \/16 pool/,
    mesh: /^spec\.subnetPrefixLength: /,
  },
  {
    what: "a default interface name over 15 characters",
    docs: (ns) => meshDoc("a-long-mesh-name", { cidr: "10.210.0.0/16" }, ns) + m(ns, "a", "h1"),
    machine: "a",
    condition: "NetworkConfigured",
    reason: "InvalidSpec",
    message: /spec\.interface: the default interface name dm-a-long-mesh-name is longer than 15 characters; set spec\.interface/,
    mesh: /^spec\.interface: /,
  },
  // A pin goes to the machine holding it, and is refused to both when neither does (mesh/ipam.ts).
  // Which of the two the mesh controller sees first is up to the watch: b is created first, so a
  // is refused either way. b points at 127.0.0.1 (nothing of the lab), in case it holds the pin.
  {
    what: "two Machines pinning the same subnet",
    docs: (ns) => m(ns, "b", "h2", { subnet: "10.210.5.0/24", "ssh.host": "127.0.0.1" }) + meshDoc("mesh", meshSpec(), ns) + m(ns, "a", "h1", { subnet: "10.210.5.0/24" }),
    machine: "a",
    condition: "NetworkConfigured",
    reason: "InvalidSpec",
    message: /^MeshNetwork mesh refuses this machine a subnet: spec\.subnet: subnet 10\.210\.5\.0\/24 is also pinned by b( \(which holds it\))?; pin a different subnet on one of them$/,
    mesh: /a: spec\.subnet: .*also pinned by b/,
  },
  {
    what: "a pin outside the pool",
    docs: (ns) => meshDoc("mesh", meshSpec(), ns) + m(ns, "a", "h1", { subnet: "10.99.0.0/24" }),
    machine: "a",
    condition: "NetworkConfigured",
    reason: "InvalidSpec",
    message: /^MeshNetwork mesh refuses this machine a subnet: spec\.subnet: subnet 10\.99\.0\.0\/24 is outside the mesh's pool 10\.210\.0\.0\/16; pin a subnet inside it or remove spec\.subnet$/,
    mesh: /a: spec\.subnet: /,
  },
  {
    what: "a pin with host bits set",
    docs: (ns) => meshDoc("mesh", meshSpec(), ns) + m(ns, "a", "h1", { subnet: "10.210.5.1/24" }),
    machine: "a",
    condition: "NetworkConfigured",
    reason: "InvalidSpec",
    message: /^MeshNetwork mesh refuses this machine a subnet: spec\.subnet: subnet 10\.210\.5\.1\/24 has host bits set; use 10\.210\.5\.0\/24$/,
    mesh: /a: spec\.subnet: /,
  },
  {
    what: "a pin of the wrong size",
    docs: (ns) => meshDoc("mesh", meshSpec(), ns) + m(ns, "a", "h1", { subnet: "10.210.0.0/25" }),
    machine: "a",
    condition: "NetworkConfigured",
    reason: "InvalidSpec",
    message: /^MeshNetwork mesh refuses this machine a subnet: spec\.subnet: subnet 10\.210\.0\.0\/25 is a \/25 but the mesh allocates \/24 subnets; pin a \/24$/,
    mesh: /a: spec\.subnet: /,
  },
  {
    what: "a Secret that does not exist",
    docs: (ns) => meshDoc("mesh", meshSpec(), ns) + m(ns, "a", "h1", { "ssh.privateKeySecretRef.name": "nosuch" }),
    machine: "a",
    condition: "Reachable",
    reason: "SecretNotFound",
    message: /^spec\.ssh\.privateKeySecretRef: Secret s\d+\/nosuch not found; create it: kubectl -n s\d+ create secret generic nosuch --from-file=ssh-privatekey=PATH_TO_PRIVATE_KEY$/,
  },
  {
    what: "a Secret without the key named",
    docs: (ns) => meshDoc("mesh", meshSpec(), ns) + m(ns, "a", "h1", { "ssh.privateKeySecretRef.key": "id_rsa" }),
    machine: "a",
    condition: "Reachable",
    reason: "SecretKeyMissing",
    message: /^spec\.ssh\.privateKeySecretRef: Secret s\d+\/lab-ssh has no key id_rsa \(it has ssh-privatekey\); set spec\.ssh\.privateKeySecretRef\.key$/,
  },
  {
    what: "a Secret whose key is not a private key",
    docs: (ns) =>
      yamlDoc({ apiVersion: "v1", kind: "Secret", metadata: { name: "junk", namespace: ns }, stringData: { "ssh-privatekey": "not a key $(reboot)" } }) +
      m(ns, "a", "h1", { "ssh.privateKeySecretRef.name": "junk" }),
    machine: "a",
    condition: "Reachable",
    reason: "KeyInvalid",
    message: /^Secret s\d+\/junk key ssh-privatekey is not a usable SSH private key \(.*\); store an unencrypted OpenSSH or PEM private key there$/,
  },
  {
    what: "a Secret with a key the host does not accept",
    docs: (ns) =>
      yamlDoc({ apiVersion: "v1", kind: "Secret", metadata: { name: "other", namespace: ns }, stringData: { "ssh-privatekey": generateEd25519("not-authorized").privateKey } }) +
      m(ns, "a", "h1", { "ssh.privateKeySecretRef.name": "other" }),
    machine: "a",
    condition: "Reachable",
    reason: "AuthFailed",
    message: /key in Secret s\d+\/other key ssh-privatekey rejected; add its public key \(ssh-ed25519 .*\) to ~root\/\.ssh\/authorized_keys on 198\.18\.42\.10/,
  },
  {
    what: "a bastion whose Secret does not exist",
    docs: (ns) => m(ns, "a", "h1", { "ssh.bastion": { host: h("h2"), privateKeySecretRef: { name: "nosuch" } } }),
    machine: "a",
    condition: "Reachable",
    reason: "SecretNotFound",
    message: /^spec\.ssh\.bastion\.privateKeySecretRef: Secret s\d+\/nosuch not found/,
  },
  {
    what: "a host key pin that is not the host's",
    docs: (ns) => m(ns, "a", "h1", { "ssh.hostKey": env.lab.host("h2").hostKey }),
    machine: "a",
    condition: "Reachable",
    reason: "HostKeyMismatch",
    message: /host key changed: expected SHA256:\S+ \(pinned in spec\.ssh\.hostKey\), got SHA256:\S+; refusing to connect/,
  },
];

/** The status code of the write request (kubectl -v=6 logs one line per request). */
function writeCode(stderr: string): number | undefined {
  const lines = [...stderr.matchAll(/\] (POST|PUT|PATCH) https:\/\/\S+ (\d{3}) /g)];
  const last = lines.at(-1);
  return last ? Number(last[2]) : undefined;
}

const cond = (o: Machine | MeshNetwork | undefined, type: string) => o?.status?.conditions?.find((c) => c.type === type);

describe("fault suite: bad inputs", { timeout: 300_000 }, () => {
  before(async () => {
    env = await startMeshEnv({ prefix: PREFIX, labnet: LABNET, natLans: { first: 92, last: 93 }, hosts: HOSTS.map((name) => ({ name })), port: PORT, resyncPeriod: "15s" });
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml());
    stateBefore = await hostState(env.lab, HOSTS);
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test(`${SCHEMA.length} manifests the API server refuses, each naming the field`, async () => {
    assert.ok(SCHEMA.length + SEMANTIC.length >= 30);
    const failures: string[] = [];
    for (const c of SCHEMA) {
      const r = await env.kubectl(["apply", "-v=6", "-f", "-"], c.doc());
      const message = r.stderr
        .split("\n")
        .filter((l) => !/^I\d{4} /.test(l))
        .join("\n")
        .trim();
      const code = writeCode(r.stderr);
      if (r.code === 0 || code !== c.code || !c.error.test(message)) failures.push(`${c.what}: exit ${r.code}, HTTP ${code}, said: ${message || r.stdout}`);
      else
        console.log(
          `# ${c.what} → ${code}: ${message
            .split("\n")
            .find((l) => c.error.test(l))
            ?.slice(0, 160)}`,
        );
    }
    assert.deepEqual(failures, []);
    const left = await env.kubectlOk(["get", "machines,meshnetworks", "-A", "-o", "name"]);
    assert.equal(left.trim(), "", "nothing was created");
  });

  test(`${SEMANTIC.length} manifests the API server accepts: a condition names the field, the host is not touched`, async () => {
    // Every case in a namespace of its own, all at once; then each condition is awaited.
    const docs = SEMANTIC.map((c, i) => {
      const ns = `s${i}`;
      const secret = env.sshSecretYaml().replace("namespace: default", `namespace: ${ns}`);
      return yamlDoc({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }) + secret + c.docs(ns);
    });
    await env.kubectlOk(["apply", "-f", "-"], docs.join(""));
    const failures: string[] = [];
    await Promise.all(
      SEMANTIC.map(async (c, i) => {
        const ns = `s${i}`;
        let seen: unknown;
        try {
          const mach = await eventually(
            `${c.what}: ${c.machine} ${c.condition}=${c.reason}`,
            async () => {
              const x = await env.getJson<Machine>(["-n", ns, "get", "machine", c.machine]);
              seen = cond(x, c.condition);
              return cond(x, c.condition)?.reason === c.reason ? x : undefined;
            },
            60_000,
            300,
          );
          const got = cond(mach, c.condition)!;
          if (got.status !== "False" || !c.message.test(got.message)) failures.push(`${c.what}: ${c.condition}=${got.status}/${got.reason}: ${got.message}`);
          else console.log(`# ${c.what} → ${c.condition}=False/${got.reason}: ${got.message.slice(0, 200)}`);
          if (c.condition === "NetworkConfigured" && cond(mach, "Reachable")?.reason !== "NotContacted")
            failures.push(`${c.what}: the host was contacted (${JSON.stringify(cond(mach, "Reachable"))})`);
          if (c.mesh) {
            const meshes = await env.getJson<{ items: MeshNetwork[] }>(["-n", ns, "get", "meshnetworks"]);
            const meshMsg = cond(meshes.items[0], "Ready")?.message ?? "";
            if (!c.mesh.test(meshMsg)) failures.push(`${c.what}: MeshNetwork says: ${meshMsg}`);
          }
        } catch (err) {
          failures.push(`${(err as Error).message}; last seen: ${JSON.stringify(seen)}`);
        }
      }),
    );
    assert.deepEqual(failures, []);
  });

  test("nothing ran on any host: no SSH login, no apply step, hosts unchanged, nothing hostile reached the controller", async () => {
    for (const host of HOSTS) assert.equal(sshLogins(env.lab, host), 0, `${host} accepted an SSH login`);
    assert.deepEqual(appliedSteps(env.log), []);
    const after = await hostState(env.lab, HOSTS);
    for (const host of HOSTS) assert.equal(after.get(host), stateBefore.get(host), `${host} changed`);
    assert.doesNotMatch(env.log, /reboot/, "a refused value reached the controller");
  });
});
