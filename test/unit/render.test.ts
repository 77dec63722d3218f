import { canonicalRule } from "../../hosts/observe.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { planAll } from "../../mesh/plan.js";
import { dockerNetworkCreateArgv, iptablesSaveLine, renderWgConfig } from "../../mesh/render.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { shJoin, shQuote } from "../../mesh/shell.js";
import { mesh, pub, nat } from "../support/fixtures.js";
import { assertGolden } from "../support/golden.js";

// Fixed keys so the golden files are stable (derived from constant seeds, not random).
const fixedKey = (seed: number) => generateKeyPair((n) => new Uint8Array(n).fill(seed));

function relayScenario() {
  const machines = [pub("r1", 0), pub("r2", 1), nat("x"), nat("y"), nat("z")];
  const keys = new Map(machines.map((m, i) => [m.metadata.name!, fixedKey(i + 1)]));
  const pubs = new Map([...keys].map(([k, v]) => [k, v.publicKey]));
  return { plan: planAll([mesh("mesh", { interface: "dm0", dockerNetwork: "apps" })], machines, pubs), keys };
}

test("render: wg-quick config of a NAT'd machine with relayed peers (golden)", () => {
  const { plan, keys } = relayScenario();
  const x = plan.hosts.find((h) => h.machine === "x")!.networks[0]!;
  assertGolden("wg-nat-relayed.conf", renderWgConfig(x, keys.get("x")!.privateKey));
});

test("render: wg-quick config of a relay (golden)", () => {
  const { plan, keys } = relayScenario();
  const r = plan.hosts.find((h) => h.machine === "r1")!.networks[0]!;
  assertGolden("wg-relay.conf", renderWgConfig(r, keys.get("r1")!.privateKey));
});

test("render: a config rendered without the private key carries no key material", () => {
  const { plan, keys } = relayScenario();
  for (const h of plan.hosts) {
    const text = renderWgConfig(h.networks[0]!, undefined);
    assert.match(text, /^PrivateKey = \(redacted\)$/m);
    for (const k of keys.values()) assert.ok(!text.includes(k.privateKey));
  }
});

test("render: rule lines match iptables -S's canonical form and docker's argv", () => {
  const { plan } = relayScenario();
  const r = plan.hosts.find((h) => h.machine === "r1")!.networks[0]!;
  assert.deepEqual(r.rules.map(iptablesSaveLine), [
    "-A DOCKER-USER -i dm0 -o br-dm0 -m comment --comment dockmesh:dm0 -j ACCEPT",
    "-A POSTROUTING -s 10.210.0.0/24 -o dm0 -m comment --comment dockmesh:dm0 -j RETURN",
    "-A DOCKER-USER -s 10.210.0.0/16 -d 10.210.0.0/16 -i dm0 -o dm0 -m comment --comment dockmesh:dm0 -j ACCEPT",
    // The mesh DNS resolver's port, closed to all but the bridge and the host; iptables -S prints
    // `! -i br-dm0 -p udp -m addrtype ! --src-type LOCAL -m udp --dport 53` (seen with iptables
    // 1.8.9), which canonicalRule quotes the same way.
    "-A INPUT -d 10.210.0.1/32 '!' -i br-dm0 -p udp -m addrtype '!' --src-type LOCAL -m udp --dport 53 -m comment --comment dockmesh:dm0 -j DROP",
    "-A INPUT -d 10.210.0.1/32 '!' -i br-dm0 -p tcp -m addrtype '!' --src-type LOCAL -m tcp --dport 53 -m comment --comment dockmesh:dm0 -j DROP",
  ]);
  assert.equal(
    canonicalRule('-A INPUT -d 10.210.0.1/32 ! -i br-dm0 -p udp -m addrtype ! --src-type LOCAL -m udp --dport 53 -m comment --comment "dockmesh:dm0" -j DROP'),
    iptablesSaveLine(r.rules[3]!),
  );
  assert.deepEqual(dockerNetworkCreateArgv(r), [
    "docker",
    "network",
    "create",
    "--driver",
    "bridge",
    "--subnet",
    "10.210.0.0/24",
    "--label",
    "dockmesh.io/interface=dm0",
    "-o",
    "com.docker.network.bridge.name=br-dm0",
    "-o",
    "com.docker.network.bridge.trusted_host_interfaces=dm0",
    "-o",
    "com.docker.network.driver.mtu=1420",
    "apps",
  ]);
});

for (const [input, want] of [
  ["plain", "plain"],
  ["10.0.0.0/24", "10.0.0.0/24"],
  ["", "''"],
  ["a b", "'a b'"],
  ["it's", "'it'\\''s'"],
  ["$(reboot)", "'$(reboot)'"],
  ["`id`;rm -rf /", "'`id`;rm -rf /'"],
] as const) {
  test(`shell: ${JSON.stringify(input)} quotes as ${want}`, () => assert.equal(shQuote(input), want));
}

test("shell: quoted arguments survive a real shell unchanged", async () => {
  const { execFileSync } = await import("node:child_process");
  const nasty = ["a b", "it's", "$(echo pwned)", "`id`", "x;y", "\\n", "*", "-n"];
  const out = execFileSync("sh", ["-c", `printf '%s\\0' ${shJoin(nasty)}`]);
  assert.deepEqual(out.toString().split("\0").slice(0, -1), nasty);
});
