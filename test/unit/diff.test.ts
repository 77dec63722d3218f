import { test } from "node:test";
import assert from "node:assert/strict";
import { planAll, type NetworkPlan } from "../../mesh/plan.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { iptablesSaveLine, renderWgConfig } from "../../mesh/render.js";
import { diffHost, type DiffInput } from "../../hosts/diff.js";
import { canonicalRule, hostFacts, parseObservation, splitRuleLine, type HostObservation } from "../../hosts/observe.js";
import { renderScript } from "../../hosts/steps.js";
import { mesh, pub, nat } from "../support/fixtures.js";
import { convergedOnto, observation, sha256 } from "../support/observations.js";

const keys = new Map(["a", "b", "c", "h"].map((n, i) => [n, generateKeyPair((len) => new Uint8Array(len).fill(i + 7))]));
const pubs = new Map([...keys].map(([k, v]) => [k, v.publicKey]));

function planFor(machines = [pub("a", 0), pub("b", 1), nat("h")], dns = false): NetworkPlan {
  return planAll([mesh("mesh", { interface: "dm0", dockerNetwork: "apps", ...(dns ? {} : { dns: { enabled: false } }) })], machines, pubs).hosts.find((h) => h.machine === "a")!.networks[0]!;
}

function input(net: NetworkPlan, extra: Partial<DiffInput> = {}): DiffInput {
  return { networks: [net], privateKey: keys.get("a")!.privateKey, publicKey: keys.get("a")!.publicKey, ...extra };
}

function emptyHost(): HostObservation {
  return observation({
    links: new Map([["eth0", { name: "eth0", up: true, mtu: 1500 }]]),
    iptables: new Map<string, string[] | undefined>([
      ["filter/DOCKER-USER", ["-A DOCKER-USER -j RETURN"]],
      ["nat/POSTROUTING", ["-A POSTROUTING -s 10.210.0.0/24 ! -o br-dm0 -j MASQUERADE"]],
    ]),
  });
}

/** The host exactly as the plan wants it. */
const convergedHost = (net: NetworkPlan): HostObservation => convergedOnto(emptyHost(), net, keys.get("a")!);

const ops = (r: ReturnType<typeof diffHost>) => r.steps.map((s) => `${s.op} ${s.args.join(" ")}`);

test("diff: an empty host gets the whole procedure, in order; wg-quick up's own routes and PostUp rules are not planned twice", () => {
  const net = planFor();
  const r = diffHost(input(net), emptyHost());
  assert.deepEqual(r.blockers, []);
  assert.deepEqual(
    r.steps.map((s) => s.op),
    ["ensure_network", "write_file", "write_file", "wg_up", "enable_unit"],
  );
  // What wg-quick up does instead: a route for every AllowedIPs, every planned rule in PostUp.
  const config = renderWgConfig(net, keys.get("a")!.privateKey);
  for (const route of net.routes)
    assert.ok(
      net.wireguard.peers.some((p) => p.allowedIPs.includes(route.destination)),
      `${route.destination} is some peer's AllowedIPs`,
    );
  assert.equal(config.split("\n").filter((l) => l.startsWith("PostUp = iptables") && l.includes(" -C ")).length, net.rules.length);
  assert.deepEqual(r.steps[0]!.args.slice(0, 5), ["apps", "--driver", "bridge", "--subnet", "10.210.0.0/24"]);
});

test("diff: with the interface gone, a rule of ours behind Docker's MASQUERADE is still moved (PostUp's -C would find it and leave it there)", () => {
  const net = planFor();
  const obs = convergedHost(net);
  obs.links.delete(net.wireguard.interface);
  const ours = obs.iptables.get("nat/POSTROUTING")!.find((l) => l.includes("dockmesh:"))!;
  obs.iptables.set("nat/POSTROUTING", ["-A POSTROUTING -s 10.210.0.0/24 ! -o br-dm0 -j MASQUERADE", ours]);
  assert.deepEqual(
    diffHost(input(net), obs).steps.map((s) => `${s.op} ${s.args.slice(0, 2).join(" ")}`),
    ["wg_up dm0", "replace_rule nat POSTROUTING"],
  );
});

test("diff: a converged host needs nothing (a resync writes nothing)", () => {
  const net = planFor();
  assert.deepEqual(diffHost(input(net), convergedHost(net)), { steps: [], blockers: [] });
});

const driftCases: Array<{ name: string; mutate: (o: HostObservation, n: NetworkPlan) => void; want: string[] }> = [
  {
    name: "a deleted DOCKER-USER rule is re-added, nothing else",
    mutate: (o) => o.iptables.set("filter/DOCKER-USER", ["-A DOCKER-USER -j RETURN"]),
    want: ["ensure_rule filter DOCKER-USER -i dm0 -o br-dm0 -m comment --comment dockmesh:dm0 -j ACCEPT"],
  },
  {
    name: "an interface taken down is brought up and its routes restored",
    mutate: (o) => {
      o.links.get("dm0")!.up = false;
      o.routes = [];
    },
    want: ["link_up dm0", "route_replace 10.210.1.0/24 dm0", "route_replace 10.210.2.0/24 dm0"],
  },
  {
    name: "our RETURN behind Docker's MASQUERADE is moved ahead of it",
    mutate: (o) => o.iptables.set("nat/POSTROUTING", [...o.iptables.get("nat/POSTROUTING")!].reverse()),
    want: ["replace_rule nat POSTROUTING -s 10.210.0.0/24 -o dm0 -m comment --comment dockmesh:dm0 -j RETURN"],
  },
  {
    name: "a duplicated rule is collapsed to one",
    mutate: (o) => {
      const l = o.iptables.get("filter/DOCKER-USER")!;
      o.iptables.set("filter/DOCKER-USER", [l[0]!, ...l]);
    },
    want: ["replace_rule filter DOCKER-USER -i dm0 -o br-dm0 -m comment --comment dockmesh:dm0 -j ACCEPT"],
  },
  {
    name: "a stale rule of ours (old subnet) is deleted",
    mutate: (o) => o.iptables.get("nat/POSTROUTING")!.unshift("-A POSTROUTING -s 10.210.9.0/24 -o dm0 -m comment --comment dockmesh:dm0 -j RETURN"),
    want: ["delete_rule nat POSTROUTING -s 10.210.9.0/24 -o dm0 -m comment --comment dockmesh:dm0 -j RETURN"],
  },
  {
    name: "rules of other interfaces and other software are left alone",
    mutate: (o) => o.iptables.get("nat/POSTROUTING")!.unshift("-A POSTROUTING -s 10.9.0.0/24 -o wg7 -m comment --comment dockmesh:wg7 -j RETURN", "-A POSTROUTING -o eth0 -j ACCEPT"),
    want: [],
  },
  {
    name: "a stray route on the interface is removed",
    mutate: (o) => o.routes.push({ dst: "10.210.77.0/24", dev: "dm0" }),
    want: ["route_del 10.210.77.0/24 dm0"],
  },
  {
    name: "a live peer change (someone ran wg set) is synced without restarting",
    mutate: (o) => o.wg.get("dm0")!.peers.pop(),
    want: ["wg_sync dm0"],
  },
  {
    name: "a changed MTU is set live",
    mutate: (o) => (o.links.get("dm0")!.mtu = 1500),
    want: ["link_mtu dm0 1420"],
  },
  {
    name: "a lost enable symlink is restored",
    mutate: (o) => (o.ifaces.get("dm0")!.enabled = false),
    want: ["enable_unit dm0"],
  },
];
for (const c of driftCases) {
  test(`diff: drift — ${c.name}`, () => {
    const net = planFor();
    const obs = convergedHost(net);
    c.mutate(obs, net);
    assert.deepEqual(ops(diffHost(input(net), obs)), c.want);
  });
}

test("diff: a new peer is a config write + wg syncconf + route, never wg-quick down/up", () => {
  const before = planFor([pub("a", 0), pub("b", 1)]);
  const after = planFor([pub("a", 0), pub("b", 1), nat("h")]);
  const r = diffHost(input(after), convergedHost(before));
  assert.deepEqual(
    r.steps.map((s) => s.op),
    ["write_file", "wg_sync", "route_replace"],
  );
  assert.ok(!r.steps.some((s) => s.op === "wg_up" || s.op === "wg_down"));
});

test("diff: a Docker network dockmesh did not create is never touched", () => {
  const net = planFor();
  const obs = emptyHost();
  obs.networks.set("apps", { id: "x", name: "apps", subnet: "172.30.0.0/16", options: {}, labels: {}, containers: 0 });
  const r = diffHost(input(net), obs);
  assert.deepEqual(
    r.blockers.map((b) => b.reason),
    ["NetworkNameTaken"],
  );
  assert.match(r.blockers[0]!.message, /spec\.dockerNetwork/);
  assert.deepEqual(r.steps, [], "a blocked mesh gets no half configuration");
});

test("diff: our network with another subnet is recreated when empty, reported when in use", () => {
  const net = planFor();
  const obs = convergedHost(net);
  obs.networks.get("apps")!.subnet = "10.210.5.0/24";
  obs.networks.get("apps")!.containers = 0;
  assert.deepEqual(
    diffHost(input(net), obs).steps.map((s) => s.op),
    ["remove_network", "ensure_network"],
  );
  obs.networks.get("apps")!.containers = 3;
  const r = diffHost(input(net), obs);
  assert.deepEqual(
    r.blockers.map((b) => b.reason),
    ["NetworkInUse"],
  );
  assert.match(r.blockers[0]!.message, /3 container\(s\) attached/);
  assert.deepEqual(r.steps, []);
});

test("diff: a mesh the machine left is torn down completely", () => {
  const old = planFor();
  const obs = convergedHost(old);
  const r = diffHost({ networks: [], privateKey: keys.get("a")!.privateKey, publicKey: keys.get("a")!.publicKey, previous: [{ meshNetwork: "mesh", interface: "dm0", dockerNetwork: "apps" }] }, obs);
  assert.deepEqual(
    r.steps.map((s) => s.op),
    ["wg_down", "delete_rule", "delete_rule", "route_del", "route_del", "remove_network", "disable_unit", "remove_file", "remove_file"],
  );
});

test("steps: the apply script carries no key; file contents travel on stdin", () => {
  const net = planFor();
  const r = diffHost(input(net), emptyHost());
  const { script, input: stdin } = renderScript(r.steps);
  const priv = keys.get("a")!.privateKey;
  assert.ok(!script.includes(priv), "private key in the script text");
  assert.ok(!r.steps.some((s) => s.display.includes(priv)), "private key in a step's display");
  const files = stdin
    .trim()
    .split("\n")
    .map((l) => Buffer.from(l, "base64").toString());
  assert.equal(files.length, 2);
  assert.ok(files[0]!.includes(`PrivateKey = ${priv}`));
});

test("observe: parses real command output (wg dump with the key blanked, ip -j, iptables -S)", () => {
  const text = [
    "@@dockmesh tools",
    "docker yes",
    "wg yes",
    "wg-quick yes",
    "iptables yes",
    "ip yes",
    "systemctl no",
    "@@dockmesh system",
    "systemd no",
    "wireguard userspace",
    "iptables nft",
    "@@dockmesh docker-version",
    "20.10.24+dfsg1",
    "rc=0",
    "@@dockmesh links",
    '[{"ifname":"eth0","flags":["UP"],"mtu":1500},{"ifname":"dm0","flags":["POINTOPOINT","NOARP","UP","LOWER_UP"],"mtu":1420,"linkinfo":{"info_kind":"tun"}}]',
    "@@dockmesh routes",
    '[{"dst":"198.18.0.0/15","dev":"eth0"},{"dst":"10.210.1.0/24","dev":"dm0","scope":"link"},{"dst":"10.9.9.9","dev":"dm0"}]',
    "@@dockmesh wg",
    "dm0\t(hidden)\thF1dBgKvUYQw4R0l7tGMrXc1n9s2e6WjpZ3qaDyOxEA=\t51820\toff",
    "dm0\tYxL2gKp7RjW9nQ0t3VbC5mZs8dFh1aE6oUiPqJrTkGg=\t(none)\t198.18.0.11:51820\t10.210.1.0/24,10.210.3.0/24\t1700000000\t100\t200\t25",
    "dm0\tb0Ma8sHYqgN3c7WkTz2PjLfR9vE1xUoD5iQhCtKyVnw=\t(none)\t(none)\t10.210.2.0/24\t0\t0\t0\toff",
    "@@dockmesh iptables filter:DOCKER-USER",
    "-N DOCKER-USER",
    '-A DOCKER-USER -i dm0 -o br-dm0 -m comment --comment "dockmesh:dm0" -j ACCEPT',
    "-A DOCKER-USER -j RETURN",
    "rc=0",
    "@@dockmesh iptables raw:PREROUTING",
    "iptables: No chain/target/match by that name.",
    "rc=1",
    "@@dockmesh iface dm0",
    "file 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 /etc/wireguard/dm0.conf",
    "file - /etc/systemd/system/wg-quick@dm0.service.d/dockmesh.conf",
    "enabled yes",
    "@@dockmesh network apps",
    '{"Id":"f00","Name":"apps","IPAM":{"Config":[{"Subnet":"10.210.0.0/24"}]},"Options":{"com.docker.network.bridge.name":"br-dm0"},"Labels":{"dockmesh.io/interface":"dm0"},"Containers":{"c1":{},"c2":{}}}',
    "@@dockmesh network gone",
    "{}",
    "@@dockmesh end",
  ].join("\n");
  const o = parseObservation(text);
  assert.equal(o.dockerVersion, "20.10.24+dfsg1");
  assert.equal(o.tools.systemctl, false);
  assert.equal(o.iptablesBackend, "nft");
  assert.deepEqual(o.links.get("dm0"), { name: "dm0", up: true, mtu: 1420, kind: "tun" });
  assert.deepEqual(o.routes, [
    { dst: "198.18.0.0/15", dev: "eth0" },
    { dst: "10.210.1.0/24", dev: "dm0" },
    { dst: "10.9.9.9/32", dev: "dm0" },
  ]);
  assert.deepEqual(o.wg.get("dm0"), {
    publicKey: "hF1dBgKvUYQw4R0l7tGMrXc1n9s2e6WjpZ3qaDyOxEA=",
    listenPort: 51820,
    peers: [
      {
        publicKey: "YxL2gKp7RjW9nQ0t3VbC5mZs8dFh1aE6oUiPqJrTkGg=",
        endpoint: "198.18.0.11:51820",
        allowedIPs: ["10.210.1.0/24", "10.210.3.0/24"],
        latestHandshake: 1700000000,
        rxBytes: 100,
        txBytes: 200,
        persistentKeepalive: 25,
      },
      { publicKey: "b0Ma8sHYqgN3c7WkTz2PjLfR9vE1xUoD5iQhCtKyVnw=", allowedIPs: ["10.210.2.0/24"], latestHandshake: 0, rxBytes: 0, txBytes: 0 },
    ],
  });
  assert.deepEqual(o.iptables.get("filter/DOCKER-USER"), ["-A DOCKER-USER -i dm0 -o br-dm0 -m comment --comment dockmesh:dm0 -j ACCEPT", "-A DOCKER-USER -j RETURN"]);
  assert.equal(o.iptables.get("raw/PREROUTING"), undefined);
  assert.deepEqual(
    [...o.ifaces.get("dm0")!.files],
    [
      ["/etc/wireguard/dm0.conf", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
      ["/etc/systemd/system/wg-quick@dm0.service.d/dockmesh.conf", undefined],
    ],
  );
  assert.equal(o.networks.get("apps")!.containers, 2);
  assert.equal(o.networks.get("gone"), undefined);
  assert.throws(() => parseObservation("@@dockmesh tools\n"), /truncated/);
});

test("observe: iptables-nft's quoted comments and legacy's bare ones read the same", () => {
  assert.equal(canonicalRule('-A X -m comment --comment "dockmesh:dm0" -j ACCEPT'), canonicalRule("-A X -m comment --comment dockmesh:dm0 -j ACCEPT"));
  assert.deepEqual(splitRuleLine('-A X -m comment --comment "a \\"b\\" c" -j ACCEPT'), ["-A", "X", "-m", "comment", "--comment", 'a "b" c', "-j", "ACCEPT"]);
  // The canonical form quotes "!" POSIX-style; it must split back to the same words.
  const docker28 = "-A PREROUTING -d 10.220.4.2/32 ! -i br-dm0 -j DROP";
  assert.deepEqual(splitRuleLine(canonicalRule(docker28)), splitRuleLine(docker28));
  assert.deepEqual(splitRuleLine(canonicalRule('-A X -m comment --comment "it\'s here" -j ACCEPT')).at(-3), "it's here");
});

function planWith(facts: { inputDrops?: boolean; rawTable?: boolean }, iface = "dm0", listenPort = 51820): NetworkPlan {
  return planAll([mesh("mesh", { interface: iface, dockerNetwork: "apps", listenPort, dns: { enabled: false } })], [pub("a", 0), pub("b", 1)], pubs, new Map([["default/a", facts]])).hosts.find(
    (h) => h.machine === "a",
  )!.networks[0]!;
}

test("plan: a firewalled host opens the WireGuard port in dockmesh's chain; the raw table gets a pass for Docker 28", () => {
  const net = planWith({ inputDrops: true, rawTable: true });
  assert.deepEqual(
    net.rules.slice(2).map((r) => `${r.table} ${iptablesSaveLine(r)}`),
    [
      "raw -A PREROUTING -d 10.210.0.0/24 -i dm0 -m comment --comment dockmesh:dm0 -j ACCEPT",
      "filter -A DOCKMESH-INPUT -p udp -m udp --dport 51820 -m comment --comment dockmesh:dm0 -j ACCEPT",
      "filter -A INPUT -m comment --comment dockmesh -j DOCKMESH-INPUT",
    ],
  );
  const conf = renderWgConfig(net, undefined);
  assert.match(conf, /^PostUp = iptables -t filter -N DOCKMESH-INPUT 2>\/dev\/null \|\| true$/m);
  assert.doesNotMatch(conf, /PostDown = .*-j DOCKMESH-INPUT/, "the shared jump is not removed by one interface going down");
  assert.equal(planWith({}).rules.length, 2, "nothing extra on an open host with no raw table");
});

test("observe: facts — INPUT policy DROP or a catch-all DROP means the port must be opened", () => {
  const obs = emptyHost();
  assert.deepEqual(hostFacts(obs), { uplinkMtu: 1500, inputDrops: false, rawTable: false, systemd: false, resolver: { dnsmasq: false, resolvedStub: false } });
  obs.policies.set("filter/INPUT", "DROP");
  obs.iptables.set("raw/PREROUTING", []);
  obs.systemd = true;
  assert.deepEqual(hostFacts(obs), { uplinkMtu: 1500, inputDrops: true, rawTable: true, systemd: true, resolver: { dnsmasq: false, resolvedStub: false } });
  obs.policies.set("filter/INPUT", "ACCEPT");
  obs.iptables.set("filter/INPUT", ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", "-A INPUT -j REJECT --reject-with icmp-host-prohibited"]);
  assert.equal(hostFacts(obs).inputDrops, true);
  obs.links.set("eth0", { name: "eth0", up: true, mtu: 1400 });
  assert.equal(hostFacts(obs).uplinkMtu, 1400);
});

test("diff: Docker 28's raw DROP for a container ahead of our pass is moved behind it", () => {
  const net = planWith({ rawTable: true });
  const obs = convergedHost(net);
  obs.iptables.set("raw/PREROUTING", [canonicalRule("-A PREROUTING -d 10.210.0.2/32 ! -i br-dm0 -j DROP"), ...obs.iptables.get("raw/PREROUTING")!]);
  assert.deepEqual(ops(diffHost(input(net), obs)), ["replace_rule raw PREROUTING -d 10.210.0.0/24 -i dm0 -m comment --comment dockmesh:dm0 -j ACCEPT"]);
});

test("diff: the shared INPUT chain goes with the last mesh that uses it, not before", () => {
  const blue = planWith({ inputDrops: true }, "wg-blue", 51820);
  const obs = convergedHost(blue);
  const other = "-A DOCKMESH-INPUT -p udp -m udp --dport 51821 -m comment --comment dockmesh:wg-red -j ACCEPT";
  obs.iptables.get("filter/DOCKMESH-INPUT")!.push(other);
  const prev = [{ meshNetwork: "mesh", interface: "wg-blue", dockerNetwork: "apps" }];
  const leaving = diffHost({ networks: [], privateKey: "", publicKey: "", previous: prev }, obs);
  assert.ok(leaving.steps.some((s) => s.op === "delete_rule" && s.args.includes("dockmesh:wg-blue")));
  assert.ok(!leaving.steps.some((s) => s.op === "drop_chain" || (s.op === "delete_rule" && s.args[1] === "INPUT")), "red still needs the chain");
  obs.iptables.set(
    "filter/DOCKMESH-INPUT",
    obs.iptables.get("filter/DOCKMESH-INPUT")!.filter((l) => l !== other),
  );
  const last = diffHost({ networks: [], privateKey: "", publicKey: "", previous: prev }, obs);
  assert.deepEqual(
    last.steps.filter((s) => s.args[1] === "INPUT" || s.op === "drop_chain").map((s) => s.op),
    ["delete_rule", "drop_chain"],
  );
});

test("diff: two meshes with DNS on one host: neither's port-53 DROPs move ahead of the other's (a converged host needs nothing)", () => {
  const nets = planAll(
    [mesh("one", { interface: "dm0", dockerNetwork: "one" }), mesh("two", { interface: "dm1", dockerNetwork: "two", cidr: "10.211.0.0/16", listenPort: 51822 })],
    [pub("a", 0), pub("b", 1)],
    pubs,
  ).hosts.find((h) => h.machine === "a")!.networks;
  assert.deepEqual(
    nets.map((n) => Boolean(n.dns)),
    [true, true],
  );
  const drops = (n: NetworkPlan) => n.rules.filter((r) => r.chain === "INPUT").map(iptablesSaveLine);
  const pairs: [NetworkPlan, NetworkPlan][] = [
    [nets[0]!, nets[1]!],
    [nets[1]!, nets[0]!],
  ];
  for (const [first, second] of pairs) {
    const obs = convergedHost(first);
    obs.iptables.set("filter/INPUT", [...drops(second), ...drops(first)]);
    const steps = ops(diffHost(input(first), obs)).filter((s) => s.includes("INPUT"));
    assert.deepEqual(steps, [], `${first.wireguard.interface} behind ${second.wireguard.interface}'s rules`);
  }
  // Nor behind a DROP that is not ours: it drops what ours would (a DROP of ours needs no place).
  const obs = convergedHost(nets[0]!);
  obs.iptables.set("filter/INPUT", [canonicalRule("-A INPUT -p udp -m udp --dport 53 -j DROP"), ...drops(nets[0]!)]);
  assert.equal(ops(diffHost(input(nets[0]!), obs)).filter((s) => s.startsWith("replace_rule filter INPUT")).length, 0);
});

// On a systemd host every `systemctl daemon-reload` makes PID 1 reload every unit: the wg-quick
// drop-in and the mesh DNS unit, both changed in one apply, get one reload after both are written.
const reloadCases: Array<{ name: string; dropIn: boolean; dnsUnit: boolean; want: string[] }> = [
  { name: "both changed: one reload, after the DNS unit", dropIn: true, dnsUnit: true, want: ["write_file unit", "write_file dns", "write_file dns", "daemon_reload dns"] },
  { name: "the drop-in alone: its own reload", dropIn: true, dnsUnit: false, want: ["write_file unit", "daemon_reload unit"] },
  { name: "the DNS unit alone: its own reload", dropIn: false, dnsUnit: true, want: ["write_file dns", "write_file dns", "daemon_reload dns"] },
];
for (const c of reloadCases) {
  test(`diff: daemon-reload on a systemd host, ${c.name}`, () => {
    const net = planFor([pub("a", 0), pub("b", 1)], true);
    const obs = convergedHost(net);
    obs.systemd = true;
    obs.resolver = { dnsmasq: true, resolvedStub: false };
    const files = obs.ifaces.get("dm0")!.files;
    if (c.dropIn) files.set(net.unit.dropInPath, "0".repeat(64));
    if (!c.dnsUnit) for (const f of [net.dns!.conf, net.dns!.unit]) files.set(f.path, sha256(f.content));
    Object.assign(obs.ifaces.get("dm0")!, { dnsEnabled: true, dnsRunning: true });
    const steps = diffHost(input(net), obs).steps.filter((s) => s.op === "write_file" || s.op === "daemon_reload");
    assert.deepEqual(
      steps.map((s) => `${s.op} ${s.area}`),
      c.want,
    );
  });
}
