// Security finding 2 (issue 11): status.networks[].interface drove teardown on the host. A status
// entry for a mesh that no longer exists with `interface: docker0` took docker0 down and deleted
// its route; with `interface: ../resolv` it deleted /etc/resolv.conf. Kept here: names read back
// from status are checked as interface / Docker network names, and teardown touches only what the
// host itself shows as dockmesh's (rules tagged dockmesh:<wg>, a network with our label, files that
// start with our "Managed by dockmesh" line, an interface wg lists and whose config is ours).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine } from "../../api/types.generated.js";
import { previousFromStatus } from "../../controllers/previous-networks.js";
import { teardownSteps } from "../../hosts/diff.js";
import { parseObservation } from "../../hosts/observe.js";
import { INTERFACE_NAME } from "../../api/formats.js";
import { resolveMesh } from "../../mesh/defaults.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { mesh, pub } from "../support/fixtures.js";

const withNetworks = (networks: Array<{ meshNetwork: string; interface?: string; dockerNetwork?: string }>): Machine => ({ ...pub("m1", 1), status: { networks } });

describe("names read back from Machine.status are checked before teardown", () => {
  const TABLE: Array<{ iface: string; dockerNetwork?: string; kept: boolean; refused?: RegExp }> = [
    { iface: "dm-old", dockerNetwork: "old", kept: true },
    { iface: "docker0", kept: true }, // a valid name: the host decides (next describe) that it is not ours
    { iface: "../resolv", kept: false, refused: /status\.networks\[0\]\.interface: "\.\.\/resolv" is not an interface name; nothing is torn down for it/ },
    { iface: "..", kept: false, refused: /interface: "\.\." is not an interface name/ },
    { iface: "+", kept: false, refused: /interface: "\+" is not an interface name/ },
    { iface: "wg0\nreboot", kept: false, refused: /interface: "wg0\\nreboot"/ },
    { iface: "a-very-long-interface-name", kept: false, refused: /is not an interface name/ },
    { iface: "dm-old", dockerNetwork: "../x", kept: false, refused: /dockerNetwork: "\.\.\/x" is not a Docker network name/ },
  ];
  for (const c of TABLE) {
    test(`interface ${JSON.stringify(c.iface)}${c.dockerNetwork ? ` network ${JSON.stringify(c.dockerNetwork)}` : ""}`, () => {
      const r = previousFromStatus(withNetworks([{ meshNetwork: "gone", interface: c.iface, ...(c.dockerNetwork ? { dockerNetwork: c.dockerNetwork } : {}) }]), new Set());
      assert.equal(r.previous.length, c.kept ? 1 : 0);
      if (c.refused) assert.match(r.refused.join("\n"), c.refused);
      else assert.deepEqual(r.refused, []);
    });
  }
  test("a mesh still wanted is never torn down, whatever status says", () => {
    assert.deepEqual(previousFromStatus(withNetworks([{ meshNetwork: "live", interface: "docker0" }]), new Set(["live"])).previous, []);
  });
  test("interface names: no + (an iptables wildcard), no leading dot, at most 15 characters", () => {
    for (const ok of ["dm0", "wg-a_b=c.d", "x"]) assert.ok(INTERFACE_NAME.test(ok), ok);
    for (const bad of ["+", "wg+", "dm+0", ".", "..", ".x", "a/b", "a b", "", "0123456789abcdef"]) assert.ok(!INTERFACE_NAME.test(bad), bad);
    assert.match(resolveMesh(mesh("m", { interface: "+" })).errors[0]?.message ?? "", /no "\+", which iptables reads as a wildcard/);
  });
});

/** A host as the observe script reports it: docker0 with a route, a user's own wg0, and dockmesh's dm0. */
const HOST = [
  "@@dockmesh tools",
  "@@dockmesh links",
  JSON.stringify([
    { ifname: "docker0", flags: ["UP"], mtu: 1500, linkinfo: { info_kind: "bridge" } },
    { ifname: "wg0", flags: ["UP"], mtu: 1420 },
    { ifname: "dm0", flags: ["UP"], mtu: 1420 },
  ]),
  "@@dockmesh routes",
  JSON.stringify([
    { dst: "172.17.0.0/16", dev: "docker0" },
    { dst: "10.8.0.0/24", dev: "wg0" },
    { dst: "10.210.1.0/24", dev: "dm0" },
  ]),
  "@@dockmesh wg",
  ["wg0", "(hidden)", generateKeyPair().publicKey, "51820", "off"].join("\t"),
  ["dm0", "(hidden)", generateKeyPair().publicKey, "51821", "off"].join("\t"),
  "@@dockmesh iptables filter:DOCKER-USER",
  "-A DOCKER-USER -i dm0 -o br-dm0 -m comment --comment dockmesh:dm0 -j ACCEPT",
  "-A DOCKER-USER -i wg0 -j ACCEPT",
  "rc=0",
  "@@dockmesh iface docker0",
  "file - /etc/wireguard/docker0.conf",
  "file - /etc/systemd/system/wg-quick@docker0.service.d/dockmesh.conf",
  "enabled no",
  "@@dockmesh iface wg0",
  `file ${"a".repeat(64)} /etc/wireguard/wg0.conf`,
  "file - /etc/systemd/system/wg-quick@wg0.service.d/dockmesh.conf",
  "enabled yes",
  "@@dockmesh iface dm0",
  `file ${"b".repeat(64)} /etc/wireguard/dm0.conf`,
  "mine /etc/wireguard/dm0.conf",
  `file ${"c".repeat(64)} /etc/systemd/system/wg-quick@dm0.service.d/dockmesh.conf`,
  "mine /etc/systemd/system/wg-quick@dm0.service.d/dockmesh.conf",
  "mine /etc/resolv.conf",
  "enabled yes",
  "@@dockmesh end",
].join("\n");

describe("teardown touches only what the host shows as dockmesh's", () => {
  const obs = parseObservation(HOST);
  test("docker0 (a valid name from a forged status): nothing", () => {
    assert.deepEqual(teardownSteps({ meshNetwork: "gone", interface: "docker0" }, obs), []);
  });
  test("the user's own wg0 (enabled, its own config, an untagged rule): nothing", () => {
    assert.deepEqual(teardownSteps({ meshNetwork: "gone", interface: "wg0" }, obs), []);
  });
  test("a name that is no interface name: nothing, even if the host would list files for it", () => {
    assert.deepEqual(teardownSteps({ meshNetwork: "gone", interface: "../resolv" }, obs), []);
  });
  test("dockmesh's dm0: down, its tagged rule, its route, its unit and its two files (and only a path the script was asked about)", () => {
    const steps = teardownSteps({ meshNetwork: "gone", interface: "dm0" }, obs).map((s) => `${s.op} ${s.args.join(" ")}`);
    assert.deepEqual(steps, [
      "wg_down dm0",
      "delete_rule filter DOCKER-USER -i dm0 -o br-dm0 -m comment --comment dockmesh:dm0 -j ACCEPT",
      "route_del 10.210.1.0/24 dm0",
      "disable_unit dm0",
      "remove_file /etc/systemd/system/wg-quick@dm0.service.d/dockmesh.conf",
      "remove_file /etc/wireguard/dm0.conf",
    ]);
  });
});
