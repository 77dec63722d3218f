// An MTU change is not forced on a Docker network with containers attached: the planner keeps
// the MTU the network has (and the tunnel's) from the host's Docker network facts, and says what
// it held (NetworkPlan.mtuHeld); NetworkConfigured words it (machine-conditions.ts mtuHeldText).
import { test } from "node:test";
import assert from "node:assert/strict";
import { planAll, type DockerNetworkFacts, type HostFacts } from "../../mesh/plan.js";
import { mtuHeldText } from "../../controllers/machine-conditions.js";
import { dockerNetworkFacts, emptyObservation } from "../../hosts/observe.js";
import { machine, mesh } from "../support/fixtures.js";

const meshes = [mesh("mesh", { interface: "dm0", dockerNetwork: "apps", cidr: "10.0.0.0/16", mtu: 1380 })];
const machines = [machine("a", { endpoint: "203.0.113.1" }), machine("b", { endpoint: "203.0.113.2" })];

function planned(apps: DockerNetworkFacts | undefined) {
  const facts: HostFacts = { uplinkMtu: 1500, ...(apps ? { dockerNetworks: new Map([["apps", apps]]) } : {}) };
  return planAll(meshes, machines, new Map(), new Map([["default/a", facts]])).hosts.find((h) => h.machine === "a")!.networks[0]!;
}

const cases: Array<{ name: string; apps: DockerNetworkFacts | undefined; mtu: number; held: boolean }> = [
  { name: "no such network yet", apps: undefined, mtu: 1380, held: false },
  { name: "ours, no containers: recreated with the new MTU", apps: { containers: 0, mtu: 1420, label: "dm0" }, mtu: 1380, held: false },
  { name: "ours, containers attached, same MTU", apps: { containers: 2, mtu: 1380, label: "dm0" }, mtu: 1380, held: false },
  { name: "ours, containers attached, another MTU: held", apps: { containers: 2, mtu: 1420, label: "dm0" }, mtu: 1420, held: true },
  { name: "not ours (another label): the diff refuses it, no hold", apps: { containers: 2, mtu: 1420, label: "other" }, mtu: 1380, held: false },
  { name: "no MTU option recorded", apps: { containers: 2, label: "dm0" }, mtu: 1380, held: false },
];

for (const c of cases) {
  test(`MTU hold: ${c.name}`, () => {
    const n = planned(c.apps);
    assert.equal(n.docker.mtu, c.mtu);
    assert.equal(n.wireguard.mtu, c.mtu, "the tunnel keeps the network's MTU");
    assert.equal(n.docker.options["com.docker.network.driver.mtu"], String(c.mtu));
    assert.equal(Boolean(n.mtuHeld), c.held);
    assert.deepEqual(
      mtuHeldText([n]),
      c.held
        ? [
            "MeshNetwork mesh: the MTU should be 1380 but Docker network apps has 2 container(s) attached and keeps 1420 (tunnel too) until they are stopped or disconnected; then it is recreated with 1380",
          ]
        : [],
    );
  });
}

// The network's MTU option is host output: only a plain integer an interface can have may be
// held (it reaches the WireGuard config's MTU line and `ip link set mtu`); anything else holds nothing.
for (const [option, mtu] of [
  ["1420", 1420],
  ["1420.5", undefined],
  ["1e4", undefined],
  ["99999999", undefined],
  ["-1", undefined],
  ["1420\nPostUp = id", undefined],
] as const) {
  test(`MTU hold: the host says its network's MTU is ${JSON.stringify(option)}: ${mtu ?? "not held"}`, () => {
    const obs = emptyObservation();
    obs.networks.set("apps", { id: "x", name: "apps", options: { "com.docker.network.driver.mtu": option }, labels: { "dockmesh.io/interface": "dm0" }, containers: 2 });
    const apps = dockerNetworkFacts(obs).get("apps")!;
    assert.equal(apps.mtu, mtu);
    const n = planned(apps);
    assert.equal(Boolean(n.mtuHeld), mtu !== undefined);
    assert.equal(n.wireguard.mtu, mtu ?? 1380);
  });
}
