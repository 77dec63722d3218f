import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
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

function planOf(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-plan-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, res: dockmesh("plan", "-f", dir) };
}

const MESH = "apiVersion: dockmesh.io/v1alpha1\nkind: MeshNetwork\nmetadata: {name: mesh}\nspec: {cidr: 10.210.0.0/16}\n";
const machineYaml = (name: string, spec: string) => `apiVersion: dockmesh.io/v1alpha1\nkind: Machine\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
const SSH = "{host: 198.18.0.10, privateKeySecretRef: {name: ssh}}";

const badInputs: Array<{ name: string; files: Record<string, string>; want: RegExp }> = [
  { name: "invalid YAML names the file", files: { "bad.yaml": "kind: Machine\n  nope: [\n" }, want: /bad\.yaml: invalid YAML/ },
  { name: "an unknown kind names file and object", files: { "x.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n" }, want: /x\.yaml: Deployment default\/web: kind: apps\/v1\/Deployment is not a dockmesh kind/ },
  { name: "a missing name", files: { "m.yaml": "apiVersion: dockmesh.io/v1alpha1\nkind: Machine\nmetadata: {}\nspec: {}\n" }, want: /m\.yaml: Machine default\/\(no name\): metadata\.name: Required value/ },
  { name: "an unaligned pool names spec.cidr", files: { "m.yaml": MESH.replace("10.210.0.0/16", "10.210.3.0/16") }, want: /m\.yaml: MeshNetwork default\/mesh: spec\.cidr: .*network address is 10\.210\.0\.0\/16/ },
  { name: "a pin outside the pool names the machine and spec.subnet", files: { "a.yaml": MESH, "b.yaml": machineYaml("m1", `{ssh: ${SSH}, subnet: 10.99.0.0/24}`) }, want: /b\.yaml: Machine default\/m1: spec\.subnet: MeshNetwork mesh: subnet 10\.99\.0\.0\/24 is outside/ },
  { name: "overlapping pins name both machines", files: { "a.yaml": MESH, "b.yaml": machineYaml("m1", `{ssh: ${SSH}, subnet: 10.210.4.0/24}`) + "---\n" + machineYaml("m2", `{ssh: ${SSH}, subnet: 10.210.4.0/24}`) }, want: /m1: spec\.subnet: .*also pinned by m2/ },
  { name: "a host with shell metacharacters, by the CRD's pattern", files: { "m.yaml": machineYaml("m1", '{ssh: {host: "$(reboot)", privateKeySecretRef: {name: ssh}}}') }, want: /m\.yaml: Machine default\/m1: spec\.ssh\.host: Invalid value: "\$\(reboot\)"/ },
  { name: "a port out of range", files: { "m.yaml": machineYaml("m1", "{ssh: {host: h, port: 70000, privateKeySecretRef: {name: ssh}}}") }, want: /spec\.ssh\.port: Invalid value: 70000: .*less than or equal to 65535/ },
  { name: "an unknown field (strict, like kubectl apply)", files: { "m.yaml": machineYaml("m1", `{ssh: ${SSH}, sbunet: 10.0.0.0/24}`) }, want: /spec\.sbunet: unknown field "spec\.sbunet"/ },
  { name: "a missing required field", files: { "m.yaml": machineYaml("m1", "{ssh: {host: h}}") }, want: /spec\.ssh\.privateKeySecretRef: Required value/ },
  { name: "an interface name over 15 characters", files: { "m.yaml": MESH.replace("{cidr: 10.210.0.0/16}", "{cidr: 10.210.0.0/16, interface: wireguard-mesh-01}") }, want: /spec\.interface: Too long/ },
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
