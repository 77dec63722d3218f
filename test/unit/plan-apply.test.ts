// Issue 12 §6: `dockmesh plan` prints exactly what apply runs. For hosts of every kind of facts,
// the "$ " lines of the rendered plan are the steps hosts/diff.ts gives for a host without any of
// the network, in order and word for word (they are what the controller logs as "[#] …"), and
// what wg-quick up does itself (rules, routes) is listed with the commands apply would re-add it
// with. Before, plan left out the network's --label and the raw-table PREROUTING rule.
// The same comparison on a real lab host: test/e2e/plan-apply.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { planAll } from "../../mesh/plan.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { renderHostPlan } from "../../mesh/render.js";
import { diffHost } from "../../hosts/diff.js";
import { hostFacts, type HostObservation } from "../../hosts/observe.js";
import { mesh, pub, nat } from "../support/fixtures.js";

const names = ["a", "b", "x", "y"];
const keys = new Map(names.map((n, i) => [n, generateKeyPair((len) => new Uint8Array(len).fill(i + 3))]));
const pubs = new Map([...keys].map(([k, v]) => [k, v.publicKey]));

/** A host with Docker and nothing of dockmesh, with the given facts to observe. */
function freshHost(o: { raw: boolean; inputDrop: boolean; systemd: boolean; mtu: number }): HostObservation {
  return {
    tools: { docker: true, wg: true, "wg-quick": true, iptables: true, ip: true, systemctl: o.systemd },
    systemd: o.systemd,
    wireguardImplementation: "kernel",
    iptablesBackend: "nft",
    dockerVersion: "28.1.1",
    links: new Map([["eth0", { name: "eth0", up: true, mtu: o.mtu }]]),
    defaultDev: "eth0",
    routes: [],
    wg: new Map(),
    iptables: new Map<string, string[] | undefined>([
      ["filter/DOCKER-USER", ["-A DOCKER-USER -j RETURN"]],
      ["nat/POSTROUTING", []],
      ["filter/INPUT", []],
      ...(o.raw ? [["raw/PREROUTING", []] as [string, string[]]] : []),
    ]),
    policies: new Map(o.inputDrop ? [["filter/INPUT", "DROP"]] : []),
    ifaces: new Map(),
    networks: new Map(),
    resolver: { dnsmasq: false, resolvedStub: false },
  };
}

const cases = [
  { name: "a typical host (raw table, systemd)", host: { raw: true, inputDrop: false, systemd: true, mtu: 1500 }, machine: "a" },
  { name: "a firewalled host without systemd, jumbo frames", host: { raw: true, inputDrop: true, systemd: false, mtu: 9001 }, machine: "a" },
  { name: "an old host without the raw table", host: { raw: false, inputDrop: false, systemd: true, mtu: 1450 }, machine: "a" },
  { name: "a NAT'd machine, relayed", host: { raw: true, inputDrop: false, systemd: false, mtu: 1500 }, machine: "x" },
];

for (const c of cases) {
  test(`plan = apply: ${c.name}`, () => {
    const obs = freshHost(c.host);
    const facts = hostFacts(obs);
    const machines = [pub("a", 0), pub("b", 1), nat("x"), nat("y")];
    const meshes = [mesh("mesh", { interface: "dm0", dockerNetwork: "apps" }), mesh("blue", { cidr: "10.9.0.0/16", interface: "dm1", listenPort: 51821 })];
    const plan = planAll(meshes, machines, pubs, new Map([[`default/${c.machine}`, facts]]));
    const host = plan.hosts.find((h) => h.machine === c.machine)!;
    assert.equal(host.networks.length, 2);

    const applied = diffHost({ networks: host.networks, privateKey: keys.get(c.machine)!.privateKey, publicKey: pubs.get(c.machine)! }, obs);
    assert.deepEqual(applied.blockers, []);
    const printed = renderHostPlan(host, "ssh x")
      .split("\n")
      .flatMap((l) => (l.startsWith("    $ ") ? [l.slice(6)] : []));
    assert.deepEqual(
      printed,
      applied.steps.map((s) => s.display),
      "the plan's commands are apply's steps, in order",
    );

    // What apply leaves to wg-quick up (no step of its own on a fresh host) is listed under it.
    const text = renderHostPlan(host, "ssh x");
    for (const n of host.networks) {
      for (const r of n.rules) assert.ok(text.includes(`        iptables -t ${r.table} -I ${r.chain} ${r.args.join(" ")}\n`), `rule ${r.table} ${r.chain} listed`);
      for (const r of n.routes) assert.ok(text.includes(`        ip route replace ${r.destination} dev ${r.dev}\n`));
      assert.match(text, new RegExp(`--label dockmesh\\.io/interface=${n.wireguard.interface} `));
      assert.equal(
        n.rules.some((r) => r.table === "raw" && r.chain === "PREROUTING"),
        c.host.raw,
        "the raw-table rule exactly when the host has the table",
      );
    }
  });
}
