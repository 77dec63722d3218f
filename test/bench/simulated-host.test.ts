// The simulated hosts of the scale benchmark against the real planner, diff, apply script and
// observe parser: what a simulated host answers must read back exactly as the controller expects,
// so that a converged simulated host diffs empty and a drifted one diffs to the repair.
import { test } from "node:test";
import assert from "node:assert/strict";
import { planAll, type NetworkPlan } from "../../mesh/plan.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { shJoin, shQuote } from "../../mesh/shell.js";
import { diffHost, type DiffInput, type PreviousNetwork } from "../../hosts/diff.js";
import { hostFacts, parseObservation, type HostObservation } from "../../hosts/observe.js";
import { renderScript, SCRIPT_PRELUDE } from "../../hosts/steps.js";
import { renderWgConfig } from "../../mesh/render.js";
import { SimulatedHost, type SimulatedPeer } from "../../bench/sim/simulated-host.js";
import { renderObservation, type PeerDirectory } from "../../bench/sim/simulated-observe.js";
import { runApplyScript } from "../../bench/sim/simulated-apply.js";
import { runWriteRecords } from "../../bench/sim/simulated-dns.js";
import { parseApplyBody, parseExecCommand, parseWgQuickConfig } from "../../bench/sim/simulated-shell.js";
import { mesh, pub, nat } from "../support/fixtures.js";

const names = ["a", "b", "c", "h"];
const keys = new Map(names.map((n, i) => [n, generateKeyPair((len) => new Uint8Array(len).fill(i + 3))]));
const pubs = new Map([...keys].map(([k, v]) => [k, v.publicKey]));
const machines = [pub("a", 0), pub("b", 1), pub("c", 2), nat("h")];
const nobody: PeerDirectory = { counterpart: () => undefined };
const NOW = 1_800_000_000;

function planOf(name: string, obs?: HostObservation): NetworkPlan[] {
  const facts = new Map(obs ? [[`default/${name}`, hostFacts(obs)]] : []);
  return planAll([mesh("mesh", { interface: "dm0", dockerNetwork: "apps" })], machines, pubs, facts).hosts.find((h) => h.machine === name)!.networks;
}

function observe(host: SimulatedHost, networks: readonly NetworkPlan[], dir: PeerDirectory = nobody, probes = ""): HostObservation {
  const args = [...networks.map((n) => n.wireguard.interface), "--", ...networks.map((n) => n.docker.name)];
  return parseObservation(renderObservation(host, args, probes, NOW, dir));
}

function input(name: string, networks: NetworkPlan[], previous: PreviousNetwork[] = []): DiffInput {
  return { networks, privateKey: keys.get(name)!.privateKey, publicKey: keys.get(name)!.publicKey, previous };
}

/** What the controller's apply does, through the exact command line hosts/ssh.ts sends. */
function apply(host: SimulatedHost, steps: ReturnType<typeof diffHost>["steps"]) {
  const { script, input: stdin } = renderScript(steps);
  const command = ["sh", "-c", script, "sh"].map(shQuote).join(" ");
  const parsed = parseExecCommand(command);
  assert.ok(parsed, "the exec command parses");
  assert.equal(parsed.script, script, "the script survives quoting");
  assert.ok(parsed.script.startsWith(SCRIPT_PRELUDE));
  return runApplyScript(host, parsed.script.slice(SCRIPT_PRELUDE.length), stdin);
}

/** observe → plan (with the host's facts) → diff → apply → observe, as hosts/converge.ts does. */
function converge(host: SimulatedHost, name: string, dir: PeerDirectory = nobody) {
  const first = observe(host, planOf(name));
  const networks = planOf(name, first);
  const before = diffHost(input(name, networks), observe(host, networks));
  const run = apply(host, before.steps);
  const after = observe(host, networks, dir);
  return { networks, before, run, after, remaining: diffHost(input(name, networks), after) };
}

test("shell: the exec command line and the apply script parse back to what was sent", () => {
  const script = "echo 'it''s' \"x\"\nsec() { printf '%s\\n' \"$*\"; }";
  const args = ["dm0", "--", "my net", "it's"];
  const cmd = ["sh", "-c", script, "sh", ...args].map(shQuote).join(" ");
  assert.deepEqual(parseExecCommand(cmd), { script, args });
  assert.deepEqual(parseExecCommand(`sudo -n ${cmd}`), { script, args });
  assert.equal(parseExecCommand("uname -a"), undefined);
  const body = [
    "step 0",
    `ensure_rule ${shJoin(["nat", "POSTROUTING", "-s", "10.0.0.0/24", "-m", "comment", "--comment", "dockmesh:dm0", "-j", "RETURN"])} </dev/null`,
    "step 1",
    "write_file /etc/x 600 700",
    "step done",
  ].join("\n");
  assert.deepEqual(parseApplyBody(body), {
    done: true,
    calls: [
      { index: 0, op: "ensure_rule", args: ["nat", "POSTROUTING", "-s", "10.0.0.0/24", "-m", "comment", "--comment", "dockmesh:dm0", "-j", "RETURN"] },
      { index: 1, op: "write_file", args: ["/etc/x", "600", "700"] },
    ],
  });
});

test("a fresh simulated host gets the whole procedure; afterwards it diffs empty", () => {
  const host = new SimulatedHost({ name: "a" });
  const r = converge(host, "a");
  assert.deepEqual(r.before.blockers, []);
  assert.deepEqual([...new Set(r.before.steps.map((s) => s.op))], ["ensure_network", "write_file", "wg_up", "enable_unit", "daemon_reload", "dns_enable", "dns_up"]);
  assert.equal(r.run.code, 0, r.run.stderr);
  assert.equal(r.run.completed, r.before.steps.length);
  assert.match(r.run.stdout, /@@step done\n$/);
  assert.deepEqual(r.remaining, { steps: [], blockers: [] }, "a converged simulated host needs nothing");
  // What the controller reads back: the interface with our key, peers, routes, the raw table rule.
  const wg = r.after.wg.get("dm0")!;
  assert.equal(wg.publicKey, keys.get("a")!.publicKey);
  assert.equal(wg.listenPort, 51820);
  assert.deepEqual(wg.peers.map((p) => p.publicKey).sort(), [pubs.get("b"), pubs.get("c"), pubs.get("h")].sort());
  assert.ok(r.after.iptables.get("raw/PREROUTING")!.some((l) => l.includes("dockmesh:dm0")));
  assert.equal(r.after.dockerVersion, "27.5.1");
  assert.equal(r.after.iptablesBackend, "nft");
  assert.deepEqual(hostFacts(r.after), { uplinkMtu: 1500, inputDrops: false, rawTable: true, systemd: true, resolver: { dnsmasq: true, resolvedStub: false, systemdVersion: 252 } });
  // Mesh DNS's resolver: its files, its unit enabled, dnsmasq running with our config.
  const f = r.after.ifaces.get("dm0")!;
  assert.deepEqual({ enabled: f.dnsEnabled, running: f.dnsRunning }, { enabled: true, running: true });
  assert.deepEqual([...f.mine].sort(), [
    "/etc/dockmesh/dns/dm0/dnsmasq.conf",
    "/etc/systemd/system/dockmesh-dns-dm0.service",
    "/etc/systemd/system/wg-quick@dm0.service.d/dockmesh.conf",
    "/etc/wireguard/dm0.conf",
  ]);
  assert.equal(networks(r)[0]!.dns?.mode.mode, "none", "a Debian host without systemd-resolved: containers are given --dns");
});

const networks = (r: ReturnType<typeof converge>) => r.networks;

test("mesh DNS: the resolver's facts as a host prints them decide the plan", () => {
  const cases: Array<{ name: string; opts: Partial<ConstructorParameters<typeof SimulatedHost>[0]>; resolver: object; mode: string | undefined }> = [
    { name: "Debian 12, dnsmasq-base", opts: {}, resolver: { dnsmasq: true, resolvedStub: false, systemdVersion: 252 }, mode: "none" },
    { name: "Ubuntu, systemd-resolved", opts: { nameservers: ["127.0.0.53"], systemdVersion: 255 }, resolver: { dnsmasq: true, resolvedStub: true, systemdVersion: 255 }, mode: "resolved" },
    { name: "no dnsmasq", opts: { dnsmasq: false }, resolver: { dnsmasq: false, resolvedStub: false, systemdVersion: 252 }, mode: "none" },
    { name: "no systemd", opts: { systemd: false }, resolver: { dnsmasq: true, resolvedStub: false }, mode: "none" },
  ];
  for (const c of cases) {
    const host = new SimulatedHost({ name: "a", ...c.opts });
    const r = converge(host, "a");
    assert.deepEqual(r.after.resolver, c.resolver, c.name);
    assert.equal(r.networks[0]!.dns?.mode.mode, c.mode, c.name);
    assert.equal(r.run.code, 0, `${c.name}: ${r.run.stderr}`);
    assert.deepEqual(r.remaining, { steps: [], blockers: [] }, `${c.name}: converged`);
    const f = r.after.ifaces.get("dm0")!;
    assert.equal(f.dnsRunning, c.opts.dnsmasq !== false, `${c.name}: the resolver runs when it can`);
    assert.equal(f.files.get("/etc/systemd/resolved.conf.d/dockmesh-dm0.conf") !== undefined, c.mode === "resolved", `${c.name}: the drop-in only for systemd-resolved`);
  }
});

test("mesh DNS: a changed config restarts dnsmasq (a new pid); stopped behind our back, it is started again", () => {
  const host = new SimulatedHost({ name: "a" });
  const { networks } = converge(host, "a");
  const pidOf = () => Number(host.files.get("/run/dockmesh-dns-dm0.pid")?.content);
  const first = pidOf();
  assert.ok(host.processes.get(first)?.argv.join(" ").includes("--conf-file=/etc/dockmesh/dns/dm0/dnsmasq.conf"));
  // Edited by hand: the diff writes it back and restarts.
  host.files.get("/etc/dockmesh/dns/dm0/dnsmasq.conf")!.content += "port=5353\n";
  const d = diffHost(input("a", networks), observe(host, networks));
  assert.deepEqual(
    d.steps.map((s) => s.op),
    ["write_file", "dns_up"],
  );
  assert.equal(apply(host, d.steps).code, 0);
  assert.notEqual(pidOf(), first);
  assert.equal(host.processes.has(first), false, "the old one was stopped");
  // Killed: not running any more; the diff starts it.
  host.kill(pidOf());
  const again = diffHost(input("a", networks), observe(host, networks));
  assert.deepEqual(
    again.steps.map((s) => s.op),
    ["dns_up"],
  );
  assert.equal(apply(host, again.steps).code, 0);
  assert.equal(observe(host, networks).ifaces.get("dm0")!.dnsRunning, true);
});

test("mesh DNS: dnsmasq refuses a config line it does not know; systemd needs the unit's file", () => {
  const host = new SimulatedHost({ name: "a", systemd: false });
  host.files.set("/etc/dockmesh/dns/dm0/dnsmasq.conf", { content: "# Managed by dockmesh\nlisten-address=10.0.0.1\nno-such-option\n", mode: "644" });
  const r = runApplyScript(host, "step 0\ndns_up dm0 </dev/null\nstep done\n", "");
  assert.equal(r.code, 1);
  assert.match(r.stdout, /dnsmasq: bad option at line 3 of \/etc\/dockmesh\/dns\/dm0\/dnsmasq.conf/);
  const withSystemd = new SimulatedHost({ name: "b" });
  const u = runApplyScript(withSystemd, "step 0\ndns_up dm0 </dev/null\nstep done\n", "");
  assert.equal(u.code, 5);
  assert.match(u.stdout, /Unit dockmesh-dns-dm0.service not found/);
  const e = runApplyScript(withSystemd, "step 0\ndns_enable dm0 </dev/null\nstep done\n", "");
  assert.equal(e.code, 1);
  assert.match(e.stdout, /Unit file dockmesh-dns-dm0.service does not exist/);
});

test("wg-quick PostUp lines are run: rules exist even when only the interface comes up", () => {
  const host = new SimulatedHost({ name: "a" });
  const networks = planOf("a", observe(host, planOf("a")));
  const steps = diffHost(input("a", networks), observe(host, networks)).steps.filter((s) => s.op !== "ensure_rule");
  assert.equal(apply(host, steps).code, 0);
  assert.deepEqual(diffHost(input("a", networks), observe(host, networks)), { steps: [], blockers: [] });
});

test("drift on a simulated host diffs to exactly its repair", () => {
  const host = new SimulatedHost({ name: "a" });
  const { networks } = converge(host, "a");
  assert.ok(host.dropFirstRule("filter/DOCKER-USER", "dockmesh:dm0"));
  host.links.get("dm0")!.up = false;
  const d = diffHost(input("a", networks), observe(host, networks));
  assert.deepEqual(
    d.steps.map((s) => s.op),
    ["link_up", "route_replace", "route_replace", "route_replace", "ensure_rule"],
  );
  assert.equal(apply(host, d.steps).code, 0);
  assert.deepEqual(diffHost(input("a", networks), observe(host, networks)).steps, []);
});

test("a new peer is synced live: existing handshakes survive, the new peer has none", () => {
  const host = new SimulatedHost({ name: "a" });
  const { networks } = converge(host, "a");
  const bKey = pubs.get("b")!;
  host.wg.get("dm0")!.peers.get(bKey)!.handshake = NOW - 10;
  machines.push(pub("d", 3));
  keys.set(
    "d",
    generateKeyPair((len) => new Uint8Array(len).fill(40)),
  );
  pubs.set("d", keys.get("d")!.publicKey);
  try {
    const more = planOf("a", observe(host, networks));
    const d = diffHost(input("a", more), observe(host, more));
    assert.deepEqual(
      d.steps.map((s) => s.op),
      ["write_file", "wg_sync", "route_replace"],
    );
    assert.equal(apply(host, d.steps).code, 0);
    const obs = observe(host, more);
    assert.equal(obs.wg.get("dm0")!.peers.find((p) => p.publicKey === bKey)!.latestHandshake, NOW - 10);
    assert.equal(obs.wg.get("dm0")!.peers.find((p) => p.publicKey === pubs.get("d"))!.latestHandshake, 0);
    assert.deepEqual(diffHost(input("a", more), obs).steps, []);
  } finally {
    machines.pop();
  }
});

test("handshakes: a probed peer handshakes once both sides have each other, and both record it", () => {
  const hosts = new Map(["a", "b"].map((n) => [n, new SimulatedHost({ name: n })]));
  const dir: PeerDirectory = {
    counterpart(host, iface, peerKey): SimulatedPeer | undefined {
      const other = [...hosts.values()].find((h) => h !== host && h.wg.get("dm0")?.publicKey === peerKey);
      return other?.wg.get("dm0")?.peers.get(host.wg.get(iface)!.publicKey);
    },
  };
  const a = converge(hosts.get("a")!, "a", dir);
  const probes = (n: string) => `dm0 10.210.0.1 ${pubs.get(n)} 10.210.1.1\n`;
  assert.equal(
    observe(hosts.get("a")!, a.networks, dir, probes("b"))
      .wg.get("dm0")!
      .peers.find((p) => p.publicKey === pubs.get("b"))!.latestHandshake,
    0,
    "b has no interface yet",
  );
  converge(hosts.get("b")!, "b", dir);
  const seen = observe(hosts.get("a")!, a.networks, dir, probes("b"));
  assert.equal(seen.wg.get("dm0")!.peers.find((p) => p.publicKey === pubs.get("b"))!.latestHandshake, NOW);
  assert.equal(seen.wg.get("dm0")!.peers.find((p) => p.publicKey === pubs.get("c"))!.latestHandshake, 0, "c is not there");
  assert.equal(hosts.get("b")!.wg.get("dm0")!.peers.get(pubs.get("a")!)!.handshake, NOW, "the other side saw it too");
});

test("teardown on a simulated host leaves nothing behind", () => {
  const host = new SimulatedHost({ name: "a" });
  converge(host, "a");
  const records = Buffer.from("# Managed by dockmesh: zone mesh.internal\n");
  assert.equal(runWriteRecords(host, [String(records.length), "dm0", String(records.length)], records).code, 0);
  assert.ok(host.files.has("/etc/dockmesh/dns/dm0/records/mesh"));
  const previous: PreviousNetwork[] = [{ meshNetwork: "mesh", interface: "dm0", dockerNetwork: "apps" }];
  const obs = () => parseObservation(renderObservation(host, ["dm0", "--", "apps"], "", NOW, nobody));
  const steps = diffHost({ networks: [], privateKey: "", publicKey: "", previous }, obs()).steps;
  assert.ok(steps.length > 0);
  assert.equal(apply(host, steps).code, 0);
  assert.deepEqual(diffHost({ networks: [], privateKey: "", publicKey: "", previous }, obs()).steps, []);
  assert.equal(host.links.has("dm0"), false);
  assert.equal(host.networks.has("apps"), false);
  assert.deepEqual([...host.files.keys()], []);
  assert.deepEqual([...host.processes.values()], [], "the resolver was stopped");
  assert.deepEqual([...host.dnsEnabled], []);
  assert.ok(!host.chains.get("nat/POSTROUTING")!.rules.some((r) => r.includes("dockmesh")));
});

test("failures read like a shell's: unknown functions exit 127, a failed step stops the script", () => {
  const host = new SimulatedHost({ name: "a" });
  const unknown = runApplyScript(host, "step 0\nrm_everything / </dev/null\nstep done\n", "");
  assert.equal(unknown.code, 127);
  assert.match(unknown.stderr, /rm_everything: not found/);
  const failed = runApplyScript(host, "step 0\nlink_up dm0 </dev/null\nstep 1\nenable_unit dm0 </dev/null\nstep done\n", "");
  assert.equal(failed.code, 1);
  assert.equal(failed.stdout, "@@step 0\n");
  assert.match(failed.stderr, /Cannot find device "dm0"/);
  assert.equal(host.enabled.size, 0, "nothing after the failed step ran");
});

test("wg-quick configs as mesh/render.ts writes them parse completely", () => {
  const [net] = planOf("h");
  const cfg = parseWgQuickConfig(renderWgConfig(net!, keys.get("h")!.privateKey));
  assert.equal(cfg.privateKey, keys.get("h")!.privateKey);
  assert.equal(cfg.listenPort, 51820);
  assert.ok(cfg.postUp.length >= 2 && cfg.postDown.length >= 2);
  assert.ok(cfg.peers.length > 0 && cfg.peers.every((p) => p.persistentKeepalive === 25), "a NAT'd host keeps its peers alive");
});
