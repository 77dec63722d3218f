// Mesh DNS, the resolver half (issue 13): spec defaults and refusals, the containers mode from
// host facts, dnsmasq's config, the firewall rules, the diff (converge and removal), what the
// observe reads, and the DNSReady condition. Table-driven, no I/O.
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveMesh, type ResolvedMesh } from "../../mesh/defaults.js";
import { decideMode, dnsPaths, gatewayOf, planDns, type ResolverFacts } from "../../mesh/dns-plan.js";
import { planAll, type NetworkPlan } from "../../mesh/plan.js";
import { iptablesSaveLine } from "../../mesh/render.js";
import { dnsSteps, dnsRemovalSteps } from "../../hosts/dns-diff.js";
import { diffHost, teardownSteps } from "../../hosts/diff.js";
import { parseObservation, type HostObservation } from "../../hosts/observe.js";
import { dnsCondition, resolverVerdict } from "../../controllers/dns-condition.js";
import { UnsafeValueError } from "../../api/formats.js";
import { renderScript } from "../../hosts/steps.js";
import { mesh, pub } from "../support/fixtures.js";
import { observation, sha256 } from "../support/observations.js";
import { generateKeyPair } from "../../mesh/keys.js";

const noSystemd: ResolverFacts = { dnsmasq: true, resolvedStub: false };
const ubuntu: ResolverFacts = { dnsmasq: true, resolvedStub: true, systemdVersion: 255 };

test("dns spec: defaults, off, and refusals that name the field", () => {
  const cases: Array<[string, Parameters<typeof mesh>[1], (r: ReturnType<typeof resolveMesh>) => void]> = [
    ["defaults", {}, (r) => assert.deepEqual(r.mesh!.dns, { zone: "mesh.internal", ttl: 5, containers: "auto", unreachableGraceSeconds: 300 })],
    ["off", { dns: { enabled: false } }, (r) => assert.equal(r.mesh!.dns, undefined)],
    [
      "set",
      { dns: { zone: "apps.example.internal", ttl: 30, containers: "none", unreachableGraceSeconds: 60 } },
      (r) => assert.deepEqual(r.mesh!.dns, { zone: "apps.example.internal", ttl: 30, containers: "none", unreachableGraceSeconds: 60 }),
    ],
    ["bad zone", { dns: { zone: "Mesh.Internal" } }, (r) => assert.match(r.errors[0]!.field + " " + r.errors[0]!.message, /^spec\.dns\.zone .*lower-case labels/)],
    ["zone with a newline", { dns: { zone: "a.internal\naddress=/#/1.2.3.4" } }, (r) => assert.equal(r.errors[0]!.field, "spec.dns.zone")],
  ];
  for (const [, spec, check] of cases) check(resolveMesh(mesh("mesh", spec)));
  const long = resolveMesh(mesh("m".repeat(60) + "." + "n".repeat(60), { interface: "dm0" }));
  assert.match(`${long.errors[0]?.field}: ${long.errors[0]?.message}`, /^spec\.dns\.zone: the default zone .* set spec\.dns\.zone/);
});

test("containers mode: what the host shows decides, and says why", () => {
  const gw = "10.210.0.1";
  const cases: Array<[string, "auto" | "resolved" | "none", ResolverFacts, string, boolean, RegExp]> = [
    ["auto, systemd-resolved", "auto", ubuntu, "resolved", false, /systemd-resolved \(systemd 255\) is the host's resolver: it sends the zone to 10\.210\.0\.1/],
    ["auto, no systemd", "auto", noSystemd, "none", false, /^systemd does not run the host: run containers with --dns 10\.210\.0\.1 \(Compose: dns: \[10\.210\.0\.1\]\)$/],
    [
      "auto, systemd without the stub",
      "auto",
      { dnsmasq: true, resolvedStub: false, systemdVersion: 252 },
      "none",
      false,
      /systemd 252 runs the host, but \/etc\/resolv\.conf does not point at systemd-resolved's stub/,
    ],
    ["none asked", "none", ubuntu, "none", false, /^spec\.dns\.containers is none: run containers with --dns 10\.210\.0\.1/],
    ["resolved asked, not there", "resolved", noSystemd, "none", true, /^spec\.dns\.containers is resolved, but systemd does not run the host; until it does, run containers with --dns/],
    ["resolved asked, there", "resolved", ubuntu, "resolved", false, /systemd-resolved/],
  ];
  for (const [name, want, facts, mode, unavailable, reason] of cases) {
    const d = decideMode(want, facts, gw);
    assert.equal(d.mode, mode, name);
    assert.equal(d.unavailable, unavailable, name);
    assert.match(d.reason, reason, name);
  }
});

test("dnsmasq's config: the gateway only, the zone local, upstream as the host resolves; a forged value never reaches it", () => {
  const m = resolveMesh(mesh("mesh", { interface: "dm0" })).mesh!;
  assert.equal(gatewayOf("10.210.3.0/24"), "10.210.3.1");
  assert.equal(gatewayOf("10.210.0.128/25"), "10.210.0.129");
  const none = planDns(m, "10.210.3.0/24", noSystemd)!;
  const lines = none.conf.content.split("\n");
  for (const want of [
    "listen-address=10.210.3.1",
    "bind-dynamic",
    "no-hosts",
    "local=/mesh.internal/",
    "local-ttl=5",
    "hostsdir=/etc/dockmesh/dns/dm0/records",
    "resolv-file=/etc/resolv.conf",
    "pid-file=/run/dockmesh-dns-dm0.pid",
  ]) {
    assert.ok(lines.includes(want), `${want} in\n${none.conf.content}`);
  }
  assert.ok(lines[0]!.startsWith("# Managed by dockmesh"), "ours: teardown finds it");
  assert.equal(none.resolvedDropIn, undefined);
  assert.match(none.unit.content, /^ExecStart=\/usr\/sbin\/dnsmasq --keep-in-foreground --conf-file=\/etc\/dockmesh\/dns\/dm0\/dnsmasq\.conf$/m);
  const resolved = planDns(m, "10.210.3.0/24", ubuntu)!;
  assert.ok(resolved.conf.content.includes("resolv-file=/run/systemd/resolve/resolv.conf\n"), "never loops back through the stub");
  assert.equal(resolved.resolvedDropIn?.content.split("\n").slice(1, 4).join("|"), "[Resolve]|DNS=10.210.3.1|Domains=~mesh.internal");
  // Values that went around resolveMesh (a forged object) are refused where they are used.
  const forged: ResolvedMesh = { ...m, dns: { ...m.dns!, zone: "x.internal\naddress=/#/6.6.6.6" } };
  assert.throws(
    () => planDns(forged, "10.210.3.0/24", noSystemd),
    (e: unknown) => e instanceof UnsafeValueError && /spec\.dns\.zone/.test(e.message),
  );
  assert.throws(() => planDns({ ...m, interface: "dm0;reboot" }, "10.210.3.0/24", noSystemd), UnsafeValueError);
  assert.equal(planDns({ ...m, dns: undefined }, "10.210.3.0/24", noSystemd), undefined);
});

function netOf(facts: ResolverFacts, inputDrops = false, dns: Record<string, unknown> = {}): NetworkPlan {
  const plan = planAll(
    [mesh("mesh", { interface: "dm0", dns })],
    [pub("a", 0), pub("b", 1)],
    new Map(),
    new Map([["default/a", { resolver: facts, inputDrops, systemd: facts.systemdVersion !== undefined }]]),
  );
  return plan.hosts.find((h) => h.machine === "a")!.networks[0]!;
}

test("firewall: port 53 on the gateway closed to all but the bridge and the host; opened on firewalled hosts; none without dnsmasq", () => {
  const rules = (n: NetworkPlan) => n.rules.filter((r) => r.args.includes("53")).map((r) => `${r.table}/${r.chain} ${iptablesSaveLine(r)}`);
  assert.deepEqual(rules(netOf(noSystemd)), [
    "filter/INPUT -A INPUT -d 10.210.0.1/32 '!' -i br-dm0 -p udp -m addrtype '!' --src-type LOCAL -m udp --dport 53 -m comment --comment dockmesh:dm0 -j DROP",
    "filter/INPUT -A INPUT -d 10.210.0.1/32 '!' -i br-dm0 -p tcp -m addrtype '!' --src-type LOCAL -m tcp --dport 53 -m comment --comment dockmesh:dm0 -j DROP",
  ]);
  assert.deepEqual(rules(netOf(noSystemd, true)).slice(2), [
    "filter/DOCKMESH-INPUT -A DOCKMESH-INPUT -d 10.210.0.1/32 -i br-dm0 -p udp -m udp --dport 53 -m comment --comment dockmesh:dm0 -j ACCEPT",
    "filter/DOCKMESH-INPUT -A DOCKMESH-INPUT -d 10.210.0.1/32 -i br-dm0 -p tcp -m tcp --dport 53 -m comment --comment dockmesh:dm0 -j ACCEPT",
  ]);
  assert.deepEqual(rules(netOf({ dnsmasq: false, resolvedStub: false })), []);
  assert.deepEqual(rules(netOf(noSystemd, false, { enabled: false })), []);
});

const host = (over: Partial<HostObservation> = {}): HostObservation => observation({ resolver: noSystemd, ...over });

/** The host with the resolver exactly as planned (and `extra` files of ours). */
function served(net: NetworkPlan, running = true, extra: Record<string, string> = {}): HostObservation {
  const d = net.dns!;
  const files = new Map<string, string | undefined>([
    [d.conf.path, sha256(d.conf.content)],
    [d.unit.path, sha256(d.unit.content)],
    ...Object.entries(extra).map(([p, c]) => [p, sha256(c)] as [string, string]),
  ]);
  return host({ ifaces: new Map([["dm0", { files, mine: new Set(files.keys()), enabled: true, dnsEnabled: true, dnsRunning: running }]]) });
}

const ops = (steps: ReadonlyArray<{ op: string; args: string[] }>) => steps.map((s) => `${s.op} ${s.args[0] ?? ""}`.trim());

test("diff: the resolver converged, started, restarted on a new config, left alone without dnsmasq", () => {
  const net = netOf(noSystemd);
  const p = dnsPaths("dm0");
  assert.deepEqual(ops(dnsSteps("dm0", net.dns, host())), [`write_file ${p.conf}`, `write_file ${p.unitPath}`, "dns_enable dm0", "dns_up dm0"], "a host without it");
  assert.deepEqual(dnsSteps("dm0", net.dns, served(net)), [], "converged: nothing");
  assert.deepEqual(ops(dnsSteps("dm0", net.dns, served(net, false))), ["dns_up dm0"], "stopped: started");
  const changed = netOf(noSystemd, false, { ttl: 60 });
  assert.deepEqual(ops(dnsSteps("dm0", changed.dns, served(net))), [`write_file ${p.conf}`, "dns_up dm0"], "new config: restarted");
  assert.deepEqual(dnsSteps("dm0", net.dns, host({ resolver: { dnsmasq: false, resolvedStub: false } })), [], "no dnsmasq: nothing (DNSReady says what to install)");
  const withSystemd = netOf(ubuntu);
  assert.deepEqual(ops(dnsSteps("dm0", withSystemd.dns, host({ systemd: true, resolver: ubuntu }))), [
    `write_file ${p.conf}`,
    `write_file ${p.unitPath}`,
    "daemon_reload",
    `write_file ${p.resolvedDropIn}`,
    "resolved_reload",
    "dns_enable dm0",
    "dns_up dm0",
  ]);
});

test("diff: DNS turned off, or the mesh left: every piece of ours goes, the resolver first, its directories last", () => {
  const net = netOf(noSystemd);
  const p = dnsPaths("dm0");
  const obs = served(net, true, { [p.records]: "# Managed by dockmesh: zone mesh.internal\n" });
  const off = ops(dnsSteps("dm0", undefined, obs));
  assert.deepEqual(off, ["dns_down dm0", "dns_disable dm0", `remove_file ${p.conf}`, `remove_file ${p.records}`, `remove_file ${p.unitPath}`, "dns_clean dm0"]);
  assert.deepEqual(ops(dnsRemovalSteps("dm0", host())), [], "nothing there: nothing to do");
  // A user's own files at our paths (no "Managed by dockmesh" line) are not touched.
  const foreign = served(net, false);
  foreign.ifaces.get("dm0")!.mine.clear();
  assert.deepEqual(ops(dnsRemovalSteps("dm0", foreign)), []);
  // The whole mesh's teardown: the resolver's steps come after the interface's, once each.
  const all = ops(teardownSteps({ meshNetwork: "mesh", interface: "dm0" }, obs));
  assert.deepEqual(all.slice(-6), off);
  assert.equal(all.filter((s) => s.startsWith("remove_file")).length, 3, "each file once");
  // The apply script carries them as fixed functions with single-quoted arguments.
  assert.match(renderScript(dnsSteps("dm0", undefined, obs)).script, /\ndns_down dm0 <\/dev\/null\n/);
});

test("observe: the resolver's facts, files and process as the host prints them; anything else ignored", () => {
  const text = [
    "@@dockmesh system",
    "systemd yes",
    "dnsmasq yes",
    "systemd-version 255",
    "nameserver 127.0.0.53",
    "@@dockmesh iface dm0",
    `file ${"a".repeat(64)} /etc/dockmesh/dns/dm0/dnsmasq.conf`,
    "mine /etc/dockmesh/dns/dm0/dnsmasq.conf",
    "file - /etc/dockmesh/dns/dm0/records/mesh",
    `file ${"b".repeat(64)} /etc/elsewhere`,
    "mine /etc/elsewhere",
    "dns-enabled yes",
    "dns-running yes",
    "@@dockmesh end",
  ].join("\n");
  const obs = parseObservation(text);
  assert.deepEqual(obs.resolver, { dnsmasq: true, resolvedStub: true, systemdVersion: 255 });
  const f = obs.ifaces.get("dm0")!;
  assert.deepEqual([...f.mine], ["/etc/dockmesh/dns/dm0/dnsmasq.conf"]);
  assert.equal(f.dnsEnabled && f.dnsRunning, true);
  const cases: Array<[string[], Partial<ResolverFacts>]> = [
    [["systemd no", "nameserver 127.0.0.53"], { resolvedStub: true, systemdVersion: undefined }],
    [["systemd yes", "systemd-version 255", "nameserver 127.0.0.53", "nameserver 1.1.1.1"], { resolvedStub: false, systemdVersion: 255 }],
    [["systemd yes", "systemd-version 99999", "systemd-version x"], { resolvedStub: false, systemdVersion: undefined }],
    [[], { dnsmasq: false, resolvedStub: false }],
  ];
  for (const [lines, want] of cases) {
    const r = parseObservation(["@@dockmesh system", ...lines, "@@dockmesh end"].join("\n")).resolver;
    for (const [k, v] of Object.entries(want)) assert.equal(r[k as keyof ResolverFacts], v, `${lines.join(" | ")}: ${k}`);
  }
});

test("DNSReady: from the resolver's verdict and the records stream, never counts or times", () => {
  const net = netOf(noSystemd);
  const obs = served(net);
  const verdict = resolverVerdict([net], obs)!;
  assert.deepEqual(verdict, { serving: ["mesh.internal at 10.210.0.1 (containers: none)"] });
  const at = (stream: "Connected" | "Connecting" | "Unreachable", withdrawn = false) => ({ stream, since: 1, withdrawn, records: 3 });
  const cases: Array<[string, ReturnType<typeof dnsCondition>, string, string]> = [
    ["serving", dnsCondition(verdict, at("Connected"), 300), "True", "Serving"],
    ["first look pending", dnsCondition(verdict, undefined, 300), "Unknown", "RecordsPending"],
    ["stream lost", dnsCondition(verdict, at("Unreachable"), 300), "False", "RecordsHeld"],
    ["withdrawn", dnsCondition(verdict, at("Unreachable", true), 300), "False", "RecordsWithdrawn"],
    ["no dnsmasq", dnsCondition(resolverVerdict([net], host({ resolver: { dnsmasq: false, resolvedStub: false } })), at("Connected"), 300), "False", "ResolverMissing"],
    ["not running", dnsCondition(resolverVerdict([net], served(net, false)), at("Connected"), 300), "False", "ResolverNotRunning"],
    ["resolved asked, unavailable", dnsCondition(resolverVerdict([netOf(noSystemd, false, { containers: "resolved" })], obs), at("Connected"), 300), "False", "ContainersModeUnavailable"],
  ];
  for (const [name, c, status, reason] of cases) {
    assert.equal(c?.type, "DNSReady", name);
    assert.equal(`${c?.status} ${c?.reason}`, `${status} ${reason}`, name);
    assert.doesNotMatch(c.message, /\d{4}-\d\d-\d\d|records: \d/, `${name}: no times or counts`);
  }
  assert.match(cases[3]![1]!.message, /300s \(spec\.dns\.unreachableGraceSeconds\)/);
  assert.match(cases[4]![1]!.message, /apt-get install dnsmasq-base/);
  assert.equal(dnsCondition(resolverVerdict([netOf(noSystemd, false, { enabled: false })], obs), at("Connected"), 300), undefined, "no mesh with DNS: no condition");
});

test("two meshes' resolver DROP rules on one host never move ahead of each other (found on lab hosts: a converge loop)", () => {
  const plan = planAll(
    [mesh("one", { cidr: "10.230.0.0/16", interface: "dm1" }), mesh("two", { cidr: "10.231.0.0/16", interface: "dm2", listenPort: 51821 })],
    [pub("a", 0), pub("b", 1)],
    new Map(),
    new Map([["default/a", { resolver: noSystemd }]]),
  );
  const nets = plan.hosts.find((h) => h.machine === "a")!.networks;
  assert.equal(nets.length, 2);
  const input = nets.flatMap((n) => n.rules.filter((r) => r.chain === "INPUT").map(iptablesSaveLine));
  for (const order of [input, [...input].reverse()]) {
    const obs = host({
      iptables: new Map([
        ["filter/INPUT", order],
        ["filter/DOCKER-USER", []],
        ["nat/POSTROUTING", []],
      ]),
    });
    const kp = generateKeyPair((len) => new Uint8Array(len).fill(3));
    const diff = diffHost({ networks: nets, privateKey: kp.privateKey, publicKey: kp.publicKey }, obs);
    assert.deepEqual(diff.blockers, []);
    const moved = diff.steps.filter((s) => s.area === "rules" && s.args[1] === "INPUT");
    assert.deepEqual(
      moved.map((s) => s.display),
      [],
      "nothing to move",
    );
  }
});
