// IPv6 uplinks in the lab's plan (LabHostOptions.uplink), without creating anything (no root
// needed): the addresses derived from the lab net, the refusals, the root's ip6tables rules, the
// sshd config and the Machine manifests of IPv6-only and dual hosts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { loadCrd } from "../../api/crd-schema.js";
import type { Machine } from "../../api/types.generated.js";
import { applySchema } from "../../store/validation.js";
import { renderSshdConfig } from "../../lab/host-files.js";
import { hostFirewallRules6 } from "../../lab/host-network.js";
import { addr6, formatIpv6, labnet6Of } from "../../lab/ipv6.js";
import { parseBlock24 } from "../../lab/ipv4.js";
import { describeHosts } from "../../lab/lab-host.js";
import { labManifestFiles } from "../../lab/manifests.js";
import type { LabOptions, Uplink } from "../../lab/options.js";
import { planLab, uplinkCidrs } from "../../lab/plan.js";
import { rootRules, rootRules6 } from "../../lab/root-network.js";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOlf2LzhqH7bXole9bevPf7OSWVO1QYFZkMuOImj4M7j";

test("ipv6: RFC 5952 text, as `ip` prints it", () => {
  const cases: [number[], string][] = [
    [[0xfdc6, 0x1218, 0x45, 0, 0, 0, 0, 0xb], "fdc6:1218:45::b"],
    [[0xfdc6, 0x1218, 0, 0, 0, 0, 0, 0xa], "fdc6:1218::a"],
    [[0xfdc6, 0x1218, 0, 0, 0, 0, 0, 0], "fdc6:1218::"],
    [[0, 0, 0, 0, 0, 0, 0, 1], "::1"],
    [[0, 0, 0, 0, 0, 0, 0, 0], "::"],
    [[1, 0, 2, 3, 4, 5, 6, 7], "1:0:2:3:4:5:6:7"],
    [[1, 0, 0, 2, 0, 0, 0, 3], "1:0:0:2::3"],
    [[1, 0, 0, 2, 3, 0, 0, 4], "1::2:3:0:0:4"],
  ];
  for (const [groups, text] of cases) assert.equal(formatIpv6(groups), text, groups.join(","));
  assert.throws(() => formatIpv6([1, 2, 3]), /eight 16-bit groups/);
});

test("ipv6: the lab's /64 and addresses follow its IPv4 lab net", () => {
  const cases: [string, number, string, string][] = [
    // labnet, host number, /64, address
    ["198.18.69.0/24", 11, "fdc6:1218:45::/64", "fdc6:1218:45::b"],
    ["198.18.70.0/24", 2, "fdc6:1218:46::/64", "fdc6:1218:46::2"],
    ["198.18.0.0/24", 10, "fdc6:1218::/64", "fdc6:1218::a"],
    ["198.18.255.0/24", 254, "fdc6:1218:ff::/64", "fdc6:1218:ff::fe"],
  ];
  for (const [labnet, n, cidr, a] of cases) {
    const block = parseBlock24(labnet);
    assert.equal(labnet6Of(block), cidr, labnet);
    assert.equal(addr6(block, n), a, `${labnet} .${n}`);
  }
  assert.throws(() => addr6(parseBlock24("198.18.1.0/24"), 255), /outside 1-254/);
  assert.throws(() => labnet6Of(parseBlock24("198.19.1.0/24")), /198\.18\.0\.0\/16/);
});

type HostRow = [name: string, uplink: Uplink, address: string, address6: string | undefined, sshHost: string, cidrs: string[]];

test("plan: uplinks give each host the addresses its families ask for, and the controller an IPv6 one when any host has it", () => {
  const cases: { labnet: string; hosts: LabOptions["hosts"]; labnet6: string | undefined; controller6: string | undefined; rows: HostRow[] }[] = [
    {
      labnet: "198.18.69.0/24",
      hosts: [{ name: "v4" }, { name: "d", uplink: "dual" }, { name: "s", uplink: "ipv6" }, { name: "n", nat: true }],
      labnet6: "fdc6:1218:45::/64",
      controller6: "fdc6:1218:45::2",
      rows: [
        ["v4", "ipv4", "198.18.69.10", undefined, "198.18.69.10", ["198.18.69.10/24"]],
        ["d", "dual", "198.18.69.11", "fdc6:1218:45::b", "198.18.69.11", ["198.18.69.11/24", "fdc6:1218:45::b/64"]],
        ["s", "ipv6", "fdc6:1218:45::c", "fdc6:1218:45::c", "fdc6:1218:45::c", ["fdc6:1218:45::c/64"]],
        ["n", "ipv4", "198.19.0.2", undefined, "198.19.0.2", ["198.19.0.2/24"]],
      ],
    },
    {
      labnet: "198.18.0.0/24",
      hosts: [{ name: "s", uplink: "ipv6" }],
      labnet6: "fdc6:1218::/64",
      controller6: "fdc6:1218::2",
      rows: [["s", "ipv6", "fdc6:1218::a", "fdc6:1218::a", "fdc6:1218::a", ["fdc6:1218::a/64"]]],
    },
    {
      labnet: "198.18.7.0/24",
      hosts: [{ name: "a", uplink: "ipv4" }, { name: "b" }],
      labnet6: undefined,
      controller6: undefined,
      rows: [
        ["a", "ipv4", "198.18.7.10", undefined, "198.18.7.10", ["198.18.7.10/24"]],
        ["b", "ipv4", "198.18.7.11", undefined, "198.18.7.11", ["198.18.7.11/24"]],
      ],
    },
  ];
  for (const c of cases) {
    const p = planLab({ prefix: "dmt", labnet: c.labnet, hosts: c.hosts });
    assert.equal(p.labnet6Cidr, c.labnet6, c.labnet);
    assert.equal(p.controller.address6, c.controller6, c.labnet);
    assert.deepEqual(uplinkCidrs(p.controller), [`${p.controller.address}/24`, ...(c.controller6 ? [`${c.controller6}/64`] : [])]);
    assert.deepEqual(
      p.hosts.map((h): HostRow => [h.name, h.uplink, h.address, h.address6, h.sshHost, uplinkCidrs(h)]),
      c.rows,
      c.labnet,
    );
  }
});

test("plan: a lab of IPv4 uplinks plans exactly what it did before uplinks existed", () => {
  const p = planLab({ prefix: "dmt", labnet: "198.18.7.0/24", natLans: { first: 40, last: 41 }, hosts: [{ name: "a" }, { name: "b", nat: true }, { name: "c", inputPolicy: "DROP" }] });
  assert.ok(!("labnet6Cidr" in p), "no IPv6 block");
  assert.deepEqual(Object.keys(p.controller), ["netns", "rootVeth", "address", "routes"]);
  for (const h of p.hosts) {
    assert.ok(!("address6" in h), h.name);
    assert.equal(h.uplink, "ipv4");
    assert.deepEqual(hostFirewallRules6(h), [], `${h.name}: no ip6tables rules`);
  }
  assert.deepEqual(rootRules6(p, true), [], "no ip6tables rules in the root namespace");
  assert.equal(rootRules(p, true).length, 5);
});

test("plan: IPv6 uplinks are refused where the lab cannot give them", () => {
  const base = { prefix: "dmt", labnet: "198.18.7.0/24" };
  const bad: [LabOptions["hosts"], RegExp][] = [
    [[{ name: "a", nat: true, uplink: "dual" }], /host a: uplink "dual" is for a public host; a NAT'd host \(nat: true\) has an IPv4 uplink only/],
    [[{ name: "a", nat: true, uplink: "ipv6" }], /host a: uplink "ipv6" is for a public host; a NAT'd host/],
    [[{ name: "p" }, { name: "a", bastionOnly: true, uplink: "ipv6" }], /host a: uplink "ipv6" is for a public host; a bastionOnly host/],
    [[{ name: "p" }, { name: "a", bastionOnly: true, uplink: "dual" }], /host a: uplink "dual" is for a public host; a bastionOnly host/],
    [
      [
        { name: "p", uplink: "ipv6" },
        { name: "a", bastionOnly: true, bastion: "p" },
      ],
      /host a: its bastion p has an IPv6-only uplink/,
    ],
    [
      [
        { name: "p", uplink: "ipv6" },
        { name: "a", nat: true, bastionOnly: true },
      ],
      /host a is bastionOnly but the lab has no public host to be its bastion/,
    ],
    [[{ name: "a", uplink: "ipv5" as Uplink }], /host a: uplink "ipv5" must be "ipv4", "dual" or "ipv6"/],
  ];
  for (const [hosts, re] of bad) assert.throws(() => planLab({ ...base, hosts }), re, JSON.stringify(hosts));
  // The default bastion is the first public host that has IPv4.
  const p = planLab({
    ...base,
    hosts: [
      { name: "s", uplink: "ipv6" },
      { name: "d", uplink: "dual" },
      { name: "b", bastionOnly: true },
    ],
  });
  assert.equal(p.hosts[2]?.bastion, "d");
  assert.equal(p.hosts[2]?.sshOnlyFrom, "198.18.7.11", "the bastion's IPv4 address");
});

test("plan: the root's ip6tables rules, tagged, mirror the iptables ones for a lab with IPv6", () => {
  const p = planLab({ prefix: "dmt", labnet: "198.18.7.0/24", hosts: [{ name: "a", uplink: "ipv6" }] });
  const tag = "-m comment --comment dockmesh-lab:dmt";
  assert.deepEqual(
    rootRules6(p, true).map((r) => r.join(" ")),
    [`FORWARD -i dmt-br -o dmt-br -m physdev --physdev-is-bridged ${tag} -j ACCEPT`, `FORWARD -i dmt-br ${tag} -j DROP`, `FORWARD -o dmt-br ${tag} -j DROP`, `INPUT -i dmt-br ${tag} -j DROP`],
  );
  assert.equal(rootRules6(p, false)[0]?.join(" "), `FORWARD -i dmt-br -o dmt-br ${tag} -j ACCEPT`);
});

test("plan: sshd listens on every address of the uplink; a firewalled IPv6 host drops in ip6tables too", () => {
  const p = planLab({
    prefix: "dmt",
    labnet: "198.18.7.0/24",
    hosts: [{ name: "v4" }, { name: "d", uplink: "dual" }, { name: "s", uplink: "ipv6", inputPolicy: "DROP" }],
  });
  const listen = (i: number) => renderSshdConfig(p, p.hosts[i]!, "/k").match(/^ListenAddress .*$/gm);
  assert.deepEqual(listen(0), ["ListenAddress 198.18.7.10"]);
  assert.deepEqual(listen(1), ["ListenAddress 198.18.7.11", "ListenAddress fdc6:1218:7::b"]);
  assert.deepEqual(listen(2), ["ListenAddress fdc6:1218:7::c"]);
  assert.deepEqual(hostFirewallRules6(p.hosts[1]!), [], "an open host has no ip6tables rules");
  assert.deepEqual(
    hostFirewallRules6(p.hosts[2]!).map((r) => r.join(" ")),
    [
      "-A INPUT -i lo -j ACCEPT",
      "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
      "-A INPUT -p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT",
      "-A INPUT -p ipv6-icmp --icmpv6-type neighbour-advertisement -j ACCEPT",
      "-A INPUT -p tcp --dport 22 -j ACCEPT",
      "-P INPUT DROP",
    ],
  );
});

test("manifests: an IPv6-only host's SSH host and endpoint are IPv6, a dual one adds spec.endpointV6, and all validate", () => {
  const p = planLab({ prefix: "dmt", labnet: "198.18.69.0/24", hosts: [{ name: "v4" }, { name: "d", uplink: "dual" }, { name: "s", uplink: "ipv6" }, { name: "n", nat: true }] });
  const hosts = describeHosts(p, new Map(p.hosts.map((h) => [h.name, KEY])));
  assert.deepEqual(
    hosts.map((h) => [h.name, h.uplink, h.address6, h.publicEndpoint, h.publicEndpointV6]),
    [
      ["v4", "ipv4", undefined, "198.18.69.10", undefined],
      ["d", "dual", "fdc6:1218:45::b", "198.18.69.11", "[fdc6:1218:45::b]"],
      ["s", "ipv6", "fdc6:1218:45::c", "[fdc6:1218:45::c]", undefined],
      ["n", "ipv4", undefined, undefined, undefined],
    ],
  );
  const files = labManifestFiles(hosts, "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n", { listenPort: 51830 });
  const machines = parseAllDocuments(files["20-machines.yaml"] ?? "").map((d) => d.toJS() as Machine);
  assert.deepEqual(
    machines.map((m) => [m.metadata.name, m.spec.ssh.host, m.spec.endpoint, m.spec.endpointV6]),
    [
      ["v4", "198.18.69.10", "198.18.69.10:51830", undefined],
      ["d", "198.18.69.11", "198.18.69.11:51830", "[fdc6:1218:45::b]:51830"],
      ["s", "fdc6:1218:45::c", "[fdc6:1218:45::c]:51830", undefined],
      ["n", "198.19.0.2", undefined, undefined],
    ],
  );
  assert.ok(!("endpointV6" in machines[0]!.spec), "an IPv4 host's manifest has no endpointV6 key");
  const schema = loadCrd("Machine").spec.versions[0]!.schema.openAPIV3Schema;
  for (const m of machines) {
    const out: { causes: unknown[]; unknown: string[] } = { causes: [], unknown: [] };
    applySchema(schema, structuredClone(m), "", out as Parameters<typeof applySchema>[3]);
    assert.deepEqual({ ...out, unknown: out.unknown.filter((u) => !u.startsWith("metadata.")) }, { causes: [], unknown: [] }, m.metadata.name);
  }
});
