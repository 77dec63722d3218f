import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertGolden, projectRoot } from "../support/golden.js";

const dockmesh = (...args: string[]) => spawnSync(process.execPath, [`${projectRoot}bin/dockmesh.js`, ...args], { encoding: "utf8", cwd: projectRoot });

test("cli: dockmesh --help lists the commands", () => {
  const r = dockmesh("--help");
  assert.equal(r.status, 0);
  for (const c of ["up", "plan"]) assert.match(r.stdout, new RegExp(`^  ${c}\\b`, "m"));
});

test("cli: dockmesh plan -f examples/ prints the expected plan, byte-identical across runs", () => {
  const a = dockmesh("plan", "-f", "examples/");
  const b = dockmesh("plan", "-f", "examples/");
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stderr, "");
  assert.equal(a.stdout, b.stdout);
  assertGolden("plan-examples.txt", a.stdout);
  assert.match(a.stdout, /^ {2}homelab: 10\.210\.2\.0\/24$/m);
  assert.doesNotMatch(a.stdout, /PRIVATE KEY|PrivateKey = [A-Za-z0-9+/]{43}=/);
});

const planDirs: string[] = [];
after(() => planDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function planOf(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-plan-"));
  planDirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, res: dockmesh("plan", "-f", dir) };
}

const MESH = "apiVersion: dockmesh.io/v1alpha1\nkind: MeshNetwork\nmetadata: {name: mesh}\nspec: {cidr: 10.210.0.0/16}\n";
const machineYaml = (name: string, spec: string) => `apiVersion: dockmesh.io/v1alpha1\nkind: Machine\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
const SSH = "{host: 198.18.0.10, privateKeySecretRef: {name: ssh}}";

const badInputs: Array<{ name: string; files: Record<string, string>; want: RegExp }> = [
  { name: "invalid YAML names the file", files: { "bad.yaml": "kind: Machine\n  nope: [\n" }, want: /bad\.yaml: invalid YAML/ },
  {
    name: "an unknown kind names file and object",
    files: { "x.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n" },
    want: /x\.yaml: Deployment default\/web: kind: apps\/v1\/Deployment is not a dockmesh kind/,
  },
  {
    name: "a missing name",
    files: { "m.yaml": "apiVersion: dockmesh.io/v1alpha1\nkind: Machine\nmetadata: {}\nspec: {}\n" },
    want: /m\.yaml: Machine default\/\(no name\): metadata\.name: Required value/,
  },
  {
    name: "an unaligned pool names spec.cidr",
    files: { "m.yaml": MESH.replace("10.210.0.0/16", "10.210.3.0/16") },
    want: /m\.yaml: MeshNetwork default\/mesh: spec\.cidr: .*network address is 10\.210\.0\.0\/16/,
  },
  {
    name: "a pin outside the pool names the machine and spec.subnet",
    files: { "a.yaml": MESH, "b.yaml": machineYaml("m1", `{ssh: ${SSH}, subnet: 10.99.0.0/24}`) },
    want: /b\.yaml: Machine default\/m1: spec\.subnet: MeshNetwork mesh: subnet 10\.99\.0\.0\/24 is outside/,
  },
  {
    name: "overlapping pins name both machines",
    files: { "a.yaml": MESH, "b.yaml": machineYaml("m1", `{ssh: ${SSH}, subnet: 10.210.4.0/24}`) + "---\n" + machineYaml("m2", `{ssh: ${SSH}, subnet: 10.210.4.0/24}`) },
    want: /m1: spec\.subnet: .*also pinned by m2/,
  },
  {
    name: "a host with shell metacharacters, by the CRD's pattern",
    files: { "m.yaml": machineYaml("m1", '{ssh: {host: "$(reboot)", privateKeySecretRef: {name: ssh}}}') },
    want: /m\.yaml: Machine default\/m1: spec\.ssh\.host: Invalid value: "\$\(reboot\)"/,
  },
  {
    name: "a port out of range",
    files: { "m.yaml": machineYaml("m1", "{ssh: {host: h, port: 70000, privateKeySecretRef: {name: ssh}}}") },
    want: /spec\.ssh\.port: Invalid value: 70000: .*less than or equal to 65535/,
  },
  { name: "an unknown field (strict, like kubectl apply)", files: { "m.yaml": machineYaml("m1", `{ssh: ${SSH}, sbunet: 10.0.0.0/24}`) }, want: /spec\.sbunet: unknown field "spec\.sbunet"/ },
  { name: "a missing required field", files: { "m.yaml": machineYaml("m1", "{ssh: {host: h}}") }, want: /spec\.ssh\.privateKeySecretRef: Required value/ },
  {
    name: "an interface name over 15 characters",
    files: { "m.yaml": MESH.replace("{cidr: 10.210.0.0/16}", "{cidr: 10.210.0.0/16, interface: wireguard-mesh-01}") },
    want: /spec\.interface: Too long/,
  },
  { name: "a name declared twice", files: { "a.yaml": MESH, "b.yaml": MESH }, want: /b\.yaml: MeshNetwork default\/mesh: metadata\.name: declared twice \(also in .*a\.yaml\)/ },
];
for (const c of badInputs) {
  test(`cli: plan refuses ${c.name}, exit code 1`, () => {
    const { res } = planOf(c.files);
    assert.equal(res.status, 1, res.stdout + res.stderr);
    assert.match(res.stderr, c.want);
  });
}

test("cli: plan of a missing path says so", () => {
  const r = dockmesh("plan", "-f", "/nonexistent/dir");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /\/nonexistent\/dir: no such file or directory/);
});

test("cli: on a conflict plan prints the errors first, and the refused mesh as refused, not as 'not a member' or allocations", () => {
  const second = "apiVersion: dockmesh.io/v1alpha1\nkind: MeshNetwork\nmetadata: {name: second}\nspec: {cidr: 10.210.128.0/17, interface: dm1, listenPort: 51822, dockerNetwork: second}\n";
  const { dir } = planOf({ "a.yaml": MESH, "b.yaml": second, "c.yaml": machineYaml("m1", `{ssh: ${SSH}}`) });
  // One stream, as in a terminal: what comes first is what is read first.
  const r = spawnSync("sh", ["-c", `"$0" "$1" plan -f "$2" 2>&1`, process.execPath, `${projectRoot}bin/dockmesh.js`, dir], { encoding: "utf8" });
  assert.equal(r.status, 1, r.stdout);
  const lines = r.stdout.split("\n");
  assert.match(lines[0]!, /^error: .*b\.yaml: MeshNetwork default\/second: spec\.cidr: pool 10\.210\.128\.0\/17 overlaps the pool 10\.210\.0\.0\/16 of MeshNetwork mesh, .* shares machine m1 with it/);
  assert.equal(lines.filter((l) => l.startsWith("error: ")).length, 1, "said once, not once per machine");
  assert.match(r.stdout, /^ {2}REFUSED \(spec\.cidr, see the errors\): nothing allocated, configured on no machine$/m);
  assert.match(r.stdout, /^ {2}MeshNetwork default\/second: REFUSED \(spec\.cidr, see the errors\): nothing of it configured on this machine$/m);
  assert.doesNotMatch(r.stdout, /not a member|10\.210\.128\.0\/24/);
});

const factsCases: Array<{ name: string; facts: string; want: RegExp }> = [
  { name: "an unknown fact", facts: "m1: {rawtable: true}\n", want: /facts\.yaml\.txt: m1\.rawtable: unknown host fact; known: uplinkMtu, rawTable, inputDrops, systemd/ },
  { name: "an MTU out of range", facts: "m1: {uplinkMtu: 70000}\n", want: /m1\.uplinkMtu: 70000 is not an MTU; give an integer from 576 to 65535/ },
  { name: "a fact that is no boolean", facts: "m1: {inputDrops: yes-please}\n", want: /m1\.inputDrops: "yes-please" is not true or false/ },
  { name: "a machine not in the manifests", facts: "m9: {systemd: false}\n", want: /facts\.yaml\.txt: default\/m9: no such Machine in the manifests/ },
  { name: "no mapping", facts: "- m1\n", want: /host facts must be a mapping from Machine name to facts, e\.g\. h1: \{uplinkMtu: 1500/ },
];
for (const c of factsCases) {
  test(`cli: plan --host-facts refuses ${c.name}, naming the field`, () => {
    const { dir } = planOf({ "a.yaml": MESH, "b.yaml": machineYaml("m1", `{ssh: ${SSH}}`) });
    writeFileSync(join(dir, "facts.yaml.txt"), c.facts);
    const r = dockmesh("plan", "-f", dir, "--host-facts", join(dir, "facts.yaml.txt"));
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, c.want);
  });
}

test("cli: plan --host-facts plans each host for its facts and says where they came from", () => {
  const { dir } = planOf({ "a.yaml": MESH, "b.yaml": machineYaml("m1", `{ssh: ${SSH}}`) + "---\n" + machineYaml("m2", `{ssh: ${SSH}}`) });
  writeFileSync(join(dir, "facts.yaml.txt"), "m1: {uplinkMtu: 9001, rawTable: false, inputDrops: true, systemd: false}\n");
  const r = dockmesh("plan", "-f", dir, "--host-facts", join(dir, "facts.yaml.txt"));
  assert.equal(r.status, 0, r.stderr);
  const [m1, m2] = r.stdout.split(/^Machine /m).slice(1) as [string, string];
  assert.match(m1, /host facts \(from .*facts\.yaml\.txt\): uplinkMtu=9001 rawTable=false inputDrops=true systemd=false/);
  assert.match(m1, /mtu 8921/);
  assert.match(m1, /iptables -t filter -I DOCKMESH-INPUT -p udp -m udp --dport 51820 /);
  assert.doesNotMatch(m1, /-t raw|daemon-reload/);
  assert.match(m2, /host facts \(assumed; set with --host-facts FILE\): uplinkMtu=1500 rawTable=true inputDrops=false systemd=true/);
  assert.match(m2, /iptables -t raw -I PREROUTING /);
  assert.match(m2, /^ {4}\$ systemctl daemon-reload$/m);
});

test("cli: dockmesh plan shows both families of a dual-stack mesh (spec.cidrV6)", () => {
  const mesh6 = "apiVersion: dockmesh.io/v1alpha1\nkind: MeshNetwork\nmetadata: {name: mesh}\nspec: {cidr: 10.210.0.0/16, cidrV6: 'fd42:d0c::/48', interface: dm0}\n";
  const { res } = planOf({ "m.yaml": mesh6, "a.yaml": machineYaml("a", `{ssh: ${SSH}, endpoint: "203.0.113.10:51820"}`), "b.yaml": machineYaml("b", `{ssh: ${SSH}}`) });
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, /^MeshNetwork default\/mesh: pool 10\.210\.0\.0\/16, \/24 per machine, IPv6 pool fd42:d0c::\/48, \/64 per machine, 2 member\(s\)$/m);
  assert.match(res.stdout, /^ {2}a: 10\.210\.0\.0\/24 fd42:d0c::\/64$/m);
  assert.match(res.stdout, /^ {2}b: 10\.210\.1\.0\/24 fd42:d0c:0:1::\/64$/m);
  assert.match(res.stdout, /MeshNetwork default\/mesh: subnet 10\.210\.0\.0\/24, IPv6 subnet fd42:d0c::\/64, interface dm0/);
  assert.match(res.stdout, /\$ docker network create --driver bridge --subnet 10\.210\.0\.0\/24 --ipv6 --subnet fd42:d0c::\/64 /);
  assert.match(res.stdout, /AllowedIPs = 10\.210\.1\.0\/24, fd42:d0c:0:1::\/64/);
  assert.match(res.stdout, /PostUp = ip6tables -t nat -C POSTROUTING -s fd42:d0c::\/64/);
});
