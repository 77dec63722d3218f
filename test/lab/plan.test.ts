// The lab's layout and its checks, without creating anything (no root needed).
import { test } from "node:test";
import assert from "node:assert/strict";
import { planLab, stateDirFor } from "../../lab/plan.js";
import { rootRules } from "../../lab/root-network.js";
import { routerRules } from "../../lab/router.js";
import { hostFirewallRules } from "../../lab/host-network.js";
import { renderSshdConfig } from "../../lab/host-files.js";
import { ensureSystemPackages, isStaticElf, packagesFor, type Requirement } from "../../lab/requirements.js";
import { generateEd25519 } from "../../lab/keys.js";
import { shellJoin } from "../../lab/ssh.js";
import ssh2 from "ssh2";
import { parseAllDocuments } from "yaml";
import { describeHosts } from "../../lab/lab-host.js";
import { labManifestFiles } from "../../lab/manifests.js";
import { loadCrd } from "../../api/crd-schema.js";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { applySchema } from "../../store/validation.js";

const base = { prefix: "dmt", labnet: "198.18.7.0/24", natLans: { first: 40, last: 41 } } as const;

test("plan: names carry the prefix, public hosts sit on the lab net, NAT'd ones behind a router", () => {
  const p = planLab({ ...base, hosts: [{ name: "a" }, { name: "b", nat: true }, { name: "c" }] });
  assert.equal(p.bridge, "dmt-br");
  assert.equal(p.bridgeAddress, "198.18.7.1");
  assert.equal(p.controller.address, "198.18.7.2");
  assert.equal(p.tag, "dockmesh-lab:dmt");
  assert.equal(p.stateDir, stateDirFor("dmt"));
  const [a, b, c] = p.hosts;
  assert.deepEqual([a?.netns, a?.address, a?.rootVeth, a?.routes], ["dmt-a", "198.18.7.10", "dmt-h0", []]);
  assert.deepEqual([c?.address, c?.rootVeth], ["198.18.7.12", "dmt-h2"]);
  assert.equal(b?.nat, true);
  assert.equal(b?.router?.netns, "dmt-gw-b");
  assert.equal(b?.router?.wanAddress, "198.18.7.100");
  assert.equal(b?.router?.lanCidr, "198.19.40.0/24");
  assert.equal(b?.address, "198.19.40.2");
  assert.deepEqual(b?.routes, [{ dst: "198.18.7.0/24", via: "198.19.40.1" }], "a NAT'd host has no default route either");
  assert.deepEqual(b?.router?.managementSources, ["198.18.7.1", "198.18.7.2"]);
  // The controller reaches the NAT'd LAN through its router; the root also dead-ends the unused LAN.
  assert.deepEqual(p.controller.routes, [{ dst: "198.19.40.0/24", via: "198.18.7.100" }]);
  assert.deepEqual(p.rootRoutes, [
    { dst: "198.19.40.0/24", via: "198.18.7.100" },
    { dst: "198.19.41.0/24", via: undefined },
  ]);
  for (const name of [p.bridge, ...p.hosts.map((h) => h.rootVeth ?? h.router?.rootVeth ?? "")]) assert.ok(name.length <= 15, name);
});

test("plan: a bastion-only host is routed from its bastion alone", () => {
  const p = planLab({ ...base, hosts: [{ name: "pub" }, { name: "home", nat: true, bastionOnly: true }, { name: "vm", bastionOnly: true, bastion: "pub" }] });
  const [pub, home, vm] = p.hosts;
  assert.equal(home?.bastion, "pub");
  assert.deepEqual(home?.router?.managementSources, ["198.18.7.10"]);
  assert.deepEqual(pub?.routes, [{ dst: "198.19.40.0/24", via: "198.18.7.100" }]);
  assert.deepEqual(p.controller.routes, [], "the controller has no route into a bastion-only LAN");
  assert.equal(vm?.sshOnlyFrom, "198.18.7.10");
  assert.deepEqual(hostFirewallRules(vm), [["-t", "raw", "-A", "PREROUTING", "-p", "tcp", "--dport", "22", "!", "-s", "198.18.7.10", "-m", "comment", "--comment", "dockmesh-lab", "-j", "DROP"]]);
});

test("plan: invalid options are refused with what to change", () => {
  const bad: [object, RegExp][] = [
    [{ ...base, prefix: "dm-x", hosts: [{ name: "a" }] }, /prefix "dm-x"/],
    [{ ...base, prefix: "toolongprefix", hosts: [{ name: "a" }] }, /2-8/],
    [{ ...base, labnet: "10.0.0.0/24", hosts: [{ name: "a" }] }, /198\.18\.0\.0/],
    [{ ...base, labnet: "198.18.7.0/16", hosts: [{ name: "a" }] }, /\/24/],
    [{ ...base, hosts: [{ name: "a" }, { name: "a" }] }, /used twice/],
    [{ ...base, hosts: [{ name: "A" }] }, /host name "A"/],
    [
      {
        ...base,
        hosts: [
          { name: "a", nat: true },
          { name: "b", nat: true },
          { name: "c", nat: true },
        ],
      },
      /3 NAT'd hosts need 3 LANs/,
    ],
    [{ ...base, hosts: [{ name: "a", nat: true, bastionOnly: true }] }, /no public host to be its bastion/],
    [{ ...base, hosts: [{ name: "a" }, { name: "b", bastion: "a" }] }, /bastionOnly is not/],
    [{ ...base, hosts: [{ name: "a", sshUser: "Bad User" }] }, /sshUser/],
    [{ ...base, hosts: [{ name: "a", forceCommand: "true\nPermitRootLogin yes" }] }, /forceCommand must be one non-empty line/],
    [{ ...base, hosts: [{ name: "a", forceCommand: " " }] }, /forceCommand must be one non-empty line/],
    [{ ...base, hosts: [] }, /at least one host/],
  ];
  for (const [opts, re] of bad) assert.throws(() => planLab(opts as Parameters<typeof planLab>[0]), re, JSON.stringify(opts));
});

test("plan: the root namespace keeps lab traffic in the lab, and lets the lab open nothing to it", () => {
  const p = planLab({ ...base, hosts: [{ name: "a" }], rootPortsForController: [6443] });
  const rules = rootRules(p, true).map((r) => r.join(" "));
  assert.deepEqual(rules, [
    "FORWARD -i dmt-br -o dmt-br -m physdev --physdev-is-bridged -m comment --comment dockmesh-lab:dmt -j ACCEPT",
    "FORWARD -i dmt-br -m comment --comment dockmesh-lab:dmt -j DROP",
    "FORWARD -o dmt-br -m comment --comment dockmesh-lab:dmt -j DROP",
    "INPUT -i dmt-br -m conntrack --ctstate ESTABLISHED,RELATED -m comment --comment dockmesh-lab:dmt -j ACCEPT",
    "INPUT -i dmt-br -s 198.18.7.2 -p tcp --dport 6443 -m comment --comment dockmesh-lab:dmt -j ACCEPT",
    "INPUT -i dmt-br -m comment --comment dockmesh-lab:dmt -j DROP",
  ]);
});

test("plan: a NAT router masquerades its LAN and forwards in only replies and management traffic", () => {
  const p = planLab({ ...base, hosts: [{ name: "a", nat: true }] });
  const rules = routerRules(p.hosts[0]!.router!).map((r) => r.join(" "));
  assert.ok(rules.includes("-t nat -A POSTROUTING -s 198.19.40.0/24 -o eth0 -m comment --comment dockmesh-lab router -j MASQUERADE"));
  assert.ok(rules.includes("-P FORWARD DROP"));
  assert.ok(rules.at(-1)?.startsWith("-A FORWARD -i eth0 -o lan0 -m comment"), "anything else into the LAN is rejected last");
  assert.ok(rules.includes("-A INPUT -i eth0 -m comment --comment dockmesh-lab router -j DROP"), "nothing unsolicited for the router itself");
  const perDest = routerRules(planLab({ ...base, hosts: [{ name: "a", nat: true, natMapping: "per-destination" }] }).hosts[0]!.router!).map((r) => r.join(" "));
  assert.ok(perDest.includes("-t nat -A POSTROUTING -s 198.19.40.0/24 -o eth0 -m comment --comment dockmesh-lab router -j MASQUERADE --random"), "a port per destination");
});

test("plan: firewalled host and sshd config", () => {
  const p = planLab({ ...base, hosts: [{ name: "fw", inputPolicy: "DROP", sshUser: "deploy" }] });
  const fw = p.hosts[0]!;
  assert.deepEqual(
    hostFirewallRules(fw).map((r) => r.join(" ")),
    ["-A INPUT -i lo -j ACCEPT", "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", "-A INPUT -p tcp --dport 22 -j ACCEPT", "-P INPUT DROP"],
  );
  const cfg = renderSshdConfig(p, fw, "/k");
  assert.match(cfg, /^ListenAddress 198\.18\.7\.10$/m);
  assert.match(cfg, /^HostKey \/k$/m);
  assert.match(cfg, /^PidFile \/run\/sshd\.pid$/m);
  assert.match(cfg, new RegExp(`^AuthorizedKeysFile ${stateDirFor("dmt")}/authorized_keys$`, "m"));
  assert.match(cfg, /^PasswordAuthentication no$/m);
});

test("keys: OpenSSH ed25519 keys that ssh2 parses and that sign and verify, every time", () => {
  for (let i = 0; i < 300; i++) {
    const k = generateEd25519(`t${i}`);
    const priv = ssh2.utils.parseKey(k.privateKey);
    assert.ok(!(priv instanceof Error), `key ${i}: ${priv instanceof Error ? priv.message : ""}`);
    const pubKey = Array.isArray(priv) ? priv[0] : priv;
    assert.equal(pubKey?.getPublicSSH().toString("base64"), k.publicKey.split(" ")[1]);
    if (i % 100 === 0) {
      const pub = ssh2.utils.parseKey(k.publicKey);
      assert.ok(!(pub instanceof Error) && !Array.isArray(pub));
      assert.ok(pub.verify(Buffer.from("m"), pubKey!.sign(Buffer.from("m"))));
    }
  }
});

test("ssh: argv words reach the remote shell exactly", () => {
  assert.equal(shellJoin(["iptables", "-I", "INPUT", "-j", "ACCEPT"]), "iptables -I INPUT -j ACCEPT");
  assert.equal(shellJoin(["sh", "-c", 'umask 077 && cat > "$1"', "sh", "/etc/wireguard/wg0.conf"]), `sh -c 'umask 077 && cat > "$1"' sh /etc/wireguard/wg0.conf`);
  assert.equal(shellJoin(["echo", "it's; rm -rf /"]), `echo 'it'\\''s; rm -rf /'`);
});

test("requirements: without root, a missing package is an error naming the apt-get command", async () => {
  const fake: Requirement[] = [
    { binary: "nonexistent-tool", paths: ["/nonexistent/bin/tool"], pkg: "fake-pkg" },
    { binary: "other-tool", paths: ["/nonexistent/bin/other"], pkg: "another-pkg" },
  ];
  assert.deepEqual(packagesFor(fake), ["another-pkg", "fake-pkg"]);
  await assert.rejects(ensureSystemPackages({ uid: 1000, requirements: fake, log: () => undefined }), (e: Error) => {
    assert.match(e.message, /nonexistent-tool \(package fake-pkg\)/);
    assert.match(e.message, /apt-get install -y --no-install-recommends another-pkg fake-pkg/);
    return true;
  });
  assert.equal(isStaticElf(process.execPath), false, "node is dynamically linked");
});

test("manifests: the demo's Secret, MeshNetwork and Machines validate against the CRDs", () => {
  const p = planLab({ ...base, hosts: [{ name: "m1" }, { name: "m3", nat: true }, { name: "m4", nat: true, bastionOnly: true }] });
  const keys = new Map(p.hosts.map((h) => [h.name, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOlf2LzhqH7bXole9bevPf7OSWVO1QYFZkMuOImj4M7j"]));
  const hosts = describeHosts(p, keys);
  const files = labManifestFiles(hosts, "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n");
  assert.deepEqual(Object.keys(files), ["00-ssh-key-secret.yaml", "10-meshnetwork.yaml", "20-machines.yaml"]);
  const docs = <T>(name: string): T[] => parseAllDocuments(files[name] ?? "").map((d) => d.toJS() as T);
  const secret = docs<{ metadata: { name: string }; stringData: Record<string, string> }>("00-ssh-key-secret.yaml");
  assert.equal(secret[0]?.metadata.name, "lab-ssh");
  assert.match(secret[0]?.stringData["ssh-privatekey"] ?? "", /^-----BEGIN OPENSSH PRIVATE KEY-----/);
  const machines = docs<Machine>("20-machines.yaml");
  assert.deepEqual(
    machines.map((m) => [m.metadata.name, m.spec.endpoint]),
    [
      ["m1", "198.18.7.10:51820"],
      ["m3", undefined],
      ["m4", undefined],
    ],
  );
  assert.deepEqual(machines[0]?.spec.ssh.privateKeySecretRef, { name: "lab-ssh", key: "ssh-privatekey" });
  assert.equal(machines[2]?.spec.ssh.bastion?.host, "198.18.7.10");
  const mesh = docs<MeshNetwork>("10-meshnetwork.yaml");
  assert.equal(mesh[0]?.spec.cidr, "10.210.0.0/16");
  for (const [kind, objs] of [
    ["Machine", machines],
    ["MeshNetwork", mesh],
  ] as const) {
    const schema = loadCrd(kind).spec.versions[0]!.schema.openAPIV3Schema;
    for (const obj of objs) {
      const out: { causes: unknown[]; unknown: string[] } = { causes: [], unknown: [] };
      applySchema(schema, structuredClone(obj), "", out as Parameters<typeof applySchema>[3]);
      // metadata is checked by the API server apart from the schema.
      assert.deepEqual({ ...out, unknown: out.unknown.filter((u) => !u.startsWith("metadata.")) }, { causes: [], unknown: [] }, `${kind} ${obj.metadata.name}`);
    }
  }
});
