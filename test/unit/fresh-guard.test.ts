// The guard of a first converge in one round trip (hosts/fresh-guard.ts), run by a real sh with
// the host's tools stubbed as shell functions: it lets the steps run only on a host without our
// interface and network whose facts are the guessed ones, and otherwise says why and applies
// nothing (exit 3). The facts it checks are those the controller derives from an observe
// (hostFacts, uplinkMtu); the arguments come from hosts/fresh.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { FRESH_PRELUDE, guardArgs, type GuardFacts } from "../../hosts/fresh-guard.js";
import { SCRIPT_PRELUDE } from "../../hosts/steps.js";
import { shJoin } from "../../mesh/shell.js";
import { freshApply, DEFAULT_FRESH_FACTS } from "../../hosts/fresh.js";
import { planAll } from "../../mesh/plan.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { mesh, pub } from "../support/fixtures.js";

const LINKS = [
  "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00",
  "2: eth0@if27: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 42:e3:9a:35:ac:bb brd ff:ff:ff:ff:ff:ff link-netnsid 0",
  "3: docker0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1000 qdisc noqueue state DOWN mode DEFAULT group default",
].join("\n");

/** ip, iptables, wg and docker answer from the environment; every other tool is the real one. */
const STUBS = String.raw`
ip() {
  case "$*" in
    "-o link show") printf '%s\n' "$LINKS" ;;
    "route show default") [ -z "$ROUTE" ] || printf '%s\n' "$ROUTE" ;;
    *) return 1 ;;
  esac
}
iptables() {
  case "$*" in
    "-w -t filter -S DOCKER-USER") [ "$DOCKER_USER" = yes ] ;;
    "-w -t raw -S PREROUTING") [ "$RAW" = yes ] ;;
    "-w -t filter -S INPUT") printf '%s\n' "$INPUT" ;;
    *) return 1 ;;
  esac
}
ip6tables() {
  case "$*" in
    "-w -t filter -S DOCKER-USER") [ "$DOCKER_USER6" = yes ] ;;
    "-w -t raw -S PREROUTING") [ "$RAW6" = yes ] ;;
    *) return 1 ;;
  esac
}
wg() { [ "$*" = "show interfaces" ] && printf '%s\n' "$WGIFS"; return 0; }
docker() {
  case "$1 $2" in
    "network create") for a in "$@"; do n=$a; done; [ "$n" != "$EXISTS" ] ;;
    "network inspect") for a in "$@"; do n=$a; done; [ "$n" = "$EXISTS" ] && echo "$n" ;;
    *) return 1 ;;
  esac
}
`;

interface Case {
  name: string;
  env?: Record<string, string>;
  facts?: Partial<GuardFacts>;
  /** The skip reason expected; undefined: the guard lets the steps run. */
  skip?: string;
}

const base: GuardFacts = { uplinkMtu: 1500, rawTable: true, inputDrops: false };
const env0 = { LINKS, ROUTE: "", DOCKER_USER: "yes", RAW: "yes", DOCKER_USER6: "no", RAW6: "no", INPUT: "-P INPUT ACCEPT", WGIFS: "", EXISTS: "" };

const cases: Case[] = [
  { name: "a host as guessed: the steps run" },
  { name: "our interface is there", env: { LINKS: `${LINKS}\n9: dm0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc noqueue state UNKNOWN` }, skip: "interface dm0 exists" },
  { name: "Docker without DOCKER-USER (iptables off)", env: { DOCKER_USER: "no" }, skip: "iptables chain DOCKER-USER is missing" },
  { name: "no raw table where one was guessed", env: { RAW: "no" }, skip: "iptables raw table: no" },
  { name: "INPUT policy DROP", env: { INPUT: "-P INPUT DROP\n-A INPUT -i lo -j ACCEPT" }, skip: "INPUT drops: yes" },
  { name: "a catch-all REJECT at the end of INPUT", env: { INPUT: "-P INPUT ACCEPT\n-A INPUT -i lo -j ACCEPT\n-A INPUT -j REJECT --reject-with icmp-host-prohibited" }, skip: "INPUT drops: yes" },
  { name: "a REJECT that matches something is no catch-all", env: { INPUT: "-P INPUT ACCEPT\n-A INPUT -p tcp -j REJECT" } },
  { name: "INPUT drops, as guessed", env: { INPUT: "-P INPUT DROP" }, facts: { inputDrops: true } },
  {
    name: "the default route's device sets the uplink MTU",
    env: { ROUTE: "default via 198.18.0.1 dev eth1 proto static", LINKS: `${LINKS}\n4: eth1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc mq state UP` },
    skip: "uplink MTU 9001",
  },
  {
    name: "the last of two default routes counts",
    env: { ROUTE: "default via 198.18.0.1 dev eth1 metric 100\ndefault via 198.18.1.1 dev eth0 metric 200", LINKS: `${LINKS}\n4: eth1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc mq state UP` },
  },
  { name: "a multipath default route is not guessed at", env: { ROUTE: "default proto static metric 100\n\tnexthop via 198.18.0.1 dev eth0 weight 1" }, skip: "a multipath default route" },
  {
    name: "without a default route: the smallest physical link that is up (not down, bridge, veth, WireGuard)",
    env: {
      LINKS: [
        LINKS,
        "4: ens5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc mq state UP",
        "5: ens6: <BROADCAST,MULTICAST> mtu 1200 qdisc mq state DOWN",
        "6: veth12@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1000 qdisc noqueue state UP",
        "7: tun0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1280 qdisc noqueue state UNKNOWN",
        "8: br-1a2b: <BROADCAST,MULTICAST,UP> mtu 1100 qdisc noqueue state UP",
      ].join("\n"),
      WGIFS: "tun0",
    },
    facts: { uplinkMtu: 1450 },
  },
  { name: "no link to go by: the default uplink MTU", env: { LINKS: LINKS.split("\n")[0]! }, facts: { uplinkMtu: 1500 } },
  { name: "the uplink MTU is not checked when it does not matter (-)", env: { ROUTE: "default dev eth1", LINKS: `${LINKS}\n4: eth1: <UP> mtu 9001` }, facts: { uplinkMtu: undefined } },
  { name: "a Docker network of that name exists: nothing applied", env: { EXISTS: "mesh" }, skip: "Docker network mesh exists" },
  { name: "IPv4 only: ip6tables is not looked at", env: { DOCKER_USER6: "yes" } },
  { name: "dual-stack as guessed (DOCKER-USER and raw in ip6tables)", env: { DOCKER_USER6: "yes", RAW6: "yes" }, facts: { ipv6: { rawTable: true } } },
  // The PostUp line picks ip6tables' chain on the host (IptablesRule.userOrForward): both Dockers pass.
  { name: "dual-stack: Docker 20.10's ip6tables has no DOCKER-USER, and that is fine", env: { RAW6: "yes" }, facts: { ipv6: { rawTable: true } } },
  { name: "dual-stack: no raw table in ip6tables", env: { DOCKER_USER6: "yes" }, facts: { ipv6: { rawTable: true } }, skip: "ip6tables raw table: no" },
];

for (const c of cases) {
  test(`fresh guard: ${c.name}`, () => {
    const args = guardArgs({ ...base, ...c.facts }, ["dm0"]);
    const script = `${SCRIPT_PRELUDE}${FRESH_PRELUDE}${STUBS}\nfresh_guard ${shJoin(args)}\nfresh_network mesh --driver bridge\necho passed\n`;
    const r = spawnSync("sh", ["-c", script], { env: { ...env0, ...c.env }, encoding: "utf8", timeout: 20_000 });
    if (c.skip === undefined) {
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.equal(r.stdout, "passed\n");
    } else {
      assert.equal(r.status, 3, r.stdout + r.stderr);
      assert.equal(r.stdout, `@@fresh-skip ${c.skip}\n`);
    }
  });
}

test("fresh apply: the first-apply steps with the network created by fresh_network; the guard from the guessed facts", () => {
  const m = mesh("mesh", { interface: "dm0", dockerNetwork: "apps", cidr: "10.0.0.0/16" });
  const machines = [pub("m0", 0), pub("m1", 1)];
  const [k0, k1] = [generateKeyPair(), generateKeyPair()];
  const plan = (facts = DEFAULT_FRESH_FACTS) =>
    planAll(
      [m],
      machines,
      new Map([
        ["m0", k0.publicKey],
        ["m1", k1.publicKey],
      ]),
      new Map([["default/m0", facts]]),
    ).hosts.find((h) => h.machine === "m0")!.networks;
  const key = k0.privateKey;
  const fresh = freshApply(plan(), key, key, DEFAULT_FRESH_FACTS)!;
  assert.deepEqual(
    fresh.steps.map((s) => `${s.area} ${s.op}`),
    ["docker fresh_network", "wireguard write_file", "unit write_file", "wireguard wg_up", "unit enable_unit", "dns write_file", "dns write_file", "dns daemon_reload", "dns dns_enable", "dns dns_up"],
    "what a host without the network gets (the mesh DNS resolver on by default): wg-quick up adds its routes and PostUp rules itself; one daemon_reload, after both units are written, runs where systemd does",
  );
  assert.deepEqual(fresh.guard, ["1500", "yes", "no", "yes", "no", "-", "dm0"], "dnsmasq must be there, systemd-resolved not the resolver; systemd is not checked");
  const noDns = freshApply(
    planAll(
      [mesh("mesh", { interface: "dm0", dockerNetwork: "apps", cidr: "10.0.0.0/16", dns: { enabled: false } })],
      machines,
      new Map([
        ["m0", k0.publicKey],
        ["m1", k1.publicKey],
      ]),
    ).hosts.find((h) => h.machine === "m0")!.networks,
    key,
    key,
    DEFAULT_FRESH_FACTS,
  )!;
  assert.deepEqual(noDns.guard, ["1500", "yes", "no", "-", "-", "-", "dm0"], "without DNS the resolver's facts are not checked");
  assert.deepEqual(
    noDns.steps.filter((s) => s.op === "daemon_reload").map((s) => s.area),
    ["unit"],
    "without the DNS unit, the wg-quick drop-in has its own reload",
  );
  const systemdHost = { ...DEFAULT_FRESH_FACTS, systemd: true, uplinkMtu: 9001 };
  const f2 = freshApply(plan(systemdHost), key, key, systemdHost)!;
  assert.deepEqual(f2.guard.slice(0, 3), ["9001", "yes", "no"]);
  assert.deepEqual(
    f2.steps.map((s) => `${s.area} ${s.op}`),
    fresh.steps.map((s) => `${s.area} ${s.op}`),
    "the same steps whether systemd was guessed or not",
  );
  assert.equal(freshApply([], key, key, DEFAULT_FRESH_FACTS), undefined, "nothing planned: no first converge");
  assert.equal(freshApply(plan(), "not a key\n", key, DEFAULT_FRESH_FACTS), undefined, "a refused value: the ordinary pass says why");
});
