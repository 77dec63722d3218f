// Issue 12 §5, the lab demo: `lab:up` made new host keys every time (the manifests applied before
// then failed with HostKeyMismatch), its ssh examples needed a terminal to answer ssh's host key
// question, and it required sudo on a machine where one is root already.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { demoKeys, knownHosts, sshConfig } from "../../lab/demo-files.js";
import { DEMO_REQUIREMENTS } from "../../lab/demo.js";
import type { LabHost } from "../../lab/lab-host.js";
import { projectRoot } from "../support/golden.js";

test("lab:up keeps its keys: a second run in the same directory gets the same client and host keys", () => {
  const dir = mkdtempSync(join(tmpdir(), "dm-demo-keys-"));
  try {
    const a = demoKeys(dir, "dmdemo", ["m1", "m2"]);
    const b = demoKeys(dir, "dmdemo", ["m1", "m2", "m3"]);
    assert.equal(b.client.privateKey, a.client.privateKey);
    assert.equal(b.hosts.get("m1")?.publicKey, a.hosts.get("m1")?.publicKey);
    assert.equal(b.hosts.get("m2")?.privateKey, a.hosts.get("m2")?.privateKey);
    assert.ok(b.hosts.get("m3"), "a new host gets a key");
    assert.notEqual(b.hosts.get("m3")?.publicKey, b.hosts.get("m1")?.publicKey);
    assert.equal(statSync(join(dir, "keys.json")).mode & 0o777, 0o600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const host = (name: string, sshHost: string, sshPort = 22): LabHost =>
  ({ name, sshHost, sshPort, sshUser: "root", hostKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${name.toUpperCase().repeat(10).slice(0, 43)} ${name}`, bastion: undefined }) as unknown as LabHost;

test("ssh_config and known_hosts: `ssh -F DIR/ssh_config m1 CMD` asks nothing (no terminal needed)", () => {
  const hosts = [host("m1", "198.18.1.10"), host("m2", "198.18.1.11", 2222)];
  const cfg = sshConfig("/x/demo", hosts);
  for (const line of [
    "Host m1",
    "  HostName 198.18.1.10",
    "  Port 2222",
    "  User root",
    '  IdentityFile "/x/demo/id_ed25519"',
    '  UserKnownHostsFile "/x/demo/known_hosts"',
    "  StrictHostKeyChecking yes",
    "  BatchMode yes",
  ]) {
    assert.ok(cfg.split("\n").includes(line), `ssh_config has "${line}":\n${cfg}`);
  }
  const kh = knownHosts(hosts).trim().split("\n");
  assert.equal(kh.length, 2);
  assert.match(kh[0]!, /^198\.18\.1\.10 ssh-ed25519 AAAA\S+$/);
  assert.match(kh[1]!, /^\[198\.18\.1\.11\]:2222 ssh-ed25519 AAAA\S+$/);
  // A directory with a space stays one value; one with a quote or a line break is refused.
  assert.ok(sshConfig("/x/my demo", hosts).split("\n").includes('  IdentityFile "/x/my demo/id_ed25519"'));
  assert.throws(() => sshConfig('/x/a"b', hosts), /quote or a line break/);
  assert.throws(() => sshConfig("/x/a\nHost *", hosts), /quote or a line break/);
});

test("the demo needs no sudo on the machine (its hosts log in as root)", () => {
  assert.ok(DEMO_REQUIREMENTS.length > 10);
  assert.ok(!DEMO_REQUIREMENTS.some((r) => r.binary === "sudo" || r.pkg === "sudo"));
});

test("docs/lab.md: root without sudo, ssh through the written config, wget bounded by timeout, keys kept", () => {
  const doc = readFileSync(join(projectRoot, "docs/lab.md"), "utf8");
  assert.doesNotMatch(doc, /\$ sudo npm run lab:up/, "lab:up does not need sudo");
  assert.doesNotMatch(doc, /^\S* ?ssh -i /m, "ssh examples use -F .state/lab-demo/ssh_config (no host key question)");
  assert.match(doc, /ssh -F \.state\/lab-demo\/ssh_config m2/);
  assert.doesNotMatch(doc, /wget -T/);
  for (const m of doc.matchAll(/dockmesh-lab\/busybox ([^\n]*wget[^\n]*)/g)) assert.match(m[1]!, /^timeout \d+ wget /, m[0]);
  assert.match(doc, /The lab keeps its keys/);
  assert.match(doc, /re-apply the\s+manifests/);
});
