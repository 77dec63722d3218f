// Security finding 3: everything a host prints is untrusted. parseObservation keeps only values
// that look like what the host's tools print; a Docker version that is not one refuses the whole
// observation. Before the fix, a 1 MB "version" with terminal escape sequences went into status
// (`kubectl get -o wide` printed it), and names, routes, rules and keys were kept as printed.
/* eslint-disable no-control-regex -- finding control characters in host text is the point */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseObservation, type HostObservation } from "../../hosts/observe.js";

const KEY_HOST = "hF1dBgKvUYQw4R0l7tGMrXc1n9s2e6WjpZ3qaDyOxEA=";
const KEY_PEER = "YxL2gKp7RjW9nQ0t3VbC5mZs8dFh1aE6oUiPqJrTkGg=";
const HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const ESC = "\x1b]0;owned\x07\x1b[2J\x1b[31m";
const MB = "A".repeat(1024 * 1024);

/** A well-formed observe output; `with` replaces the body of a section (by its header line). */
function output(replace: Record<string, string[]> = {}): string {
  const sections: Record<string, string[]> = {
    "@@dockmesh tools": ["docker yes", "wg yes", "wg-quick yes", "iptables yes", "ip yes", "systemctl no"],
    "@@dockmesh docker-version": ["27.5.1", "rc=0"],
    "@@dockmesh links": ['[{"ifname":"eth0","flags":["UP"],"mtu":1500},{"ifname":"dm0","flags":["UP"],"mtu":1420,"linkinfo":{"info_kind":"wireguard"}}]'],
    "@@dockmesh routes": ['[{"dst":"default","dev":"eth0"},{"dst":"10.210.1.0/24","dev":"dm0"}]'],
    "@@dockmesh wg": [`dm0\t(hidden)\t${KEY_HOST}\t51820\toff`, `dm0\t${KEY_PEER}\t(none)\t198.18.0.11:51820\t10.210.1.0/24\t1700000000\t100\t200\t25`],
    "@@dockmesh iptables filter:DOCKER-USER": ["-P DOCKER-USER ACCEPT", "-A DOCKER-USER -j RETURN", "rc=0"],
    "@@dockmesh iface dm0": [`file ${HASH} /etc/wireguard/dm0.conf`, "enabled yes"],
    "@@dockmesh network apps": ['{"Id":"f00d","Name":"apps","IPAM":{"Config":[{"Subnet":"10.210.0.0/24"}]},"Options":{},"Labels":{"dockmesh.io/interface":"dm0"},"Containers":{}}'],
    ...replace,
  };
  return [...Object.entries(sections).flatMap(([h, body]) => [h, ...body]), "@@dockmesh end", ""].join("\n");
}

/** No control character or escape sequence anywhere in what was kept. */
function assertPrintable(obs: HostObservation): void {
  const text = JSON.stringify(obs, (_k, v: unknown) => (v instanceof Map ? [...v] : v));
  assert.doesNotMatch(text, /\\u00(1b|0[0-8]|1[0-9a-f]|7f)|[\x00-\x1f\x7f-\x9f]/, "kept text has control characters");
}

test("hostile observe output: the baseline parses", () => {
  const o = parseObservation(output());
  assert.equal(o.dockerVersion, "27.5.1");
  assert.equal(o.wg.get("dm0")?.peers[0]?.endpoint, "198.18.0.11:51820");
  assert.equal(o.networks.get("apps")?.labels["dockmesh.io/interface"], "dm0");
});

const refused: Array<{ name: string; replace: Record<string, string[]>; error: RegExp }> = [
  { name: "a 1 MB docker version with escape sequences (CLI)", replace: { "@@dockmesh docker-version": [`27.5.1${ESC}${MB}`, "rc=0"] }, error: /Docker version .* is not a version like 27\.5\.1/ },
  { name: "a docker version with escape sequences (API)", replace: { "@@dockmesh docker-version": [`api {"Version":"27.5.1\\u001b[2J"}`] }, error: /Docker version .* is not a version like 27\.5\.1/ },
  { name: "a docker version with a space and more text", replace: { "@@dockmesh docker-version": ["27.5.1 (see https://evil.example)", "rc=0"] }, error: /not a version/ },
];

for (const c of refused) {
  test(`hostile observe output refused: ${c.name}`, () => {
    let err: Error | undefined;
    try {
      parseObservation(output(c.replace));
    } catch (e) {
      err = e as Error;
    }
    assert.ok(err, "the observation is refused");
    assert.match(err.message, c.error);
    assert.doesNotMatch(err.message, /[\x00-\x1f\x7f-\x9f]/, "the message has no control characters");
    assert.ok(err.message.length < 400, `the message is bounded (${err.message.length} characters)`);
  });
}

const dropped: Array<{ name: string; replace: Record<string, string[]>; check: (o: HostObservation) => void }> = [
  {
    name: "docker's own error with escape sequences, 1 MB",
    replace: { "@@dockmesh docker-version": [`${ESC}Cannot connect to the Docker daemon${MB}`, "rc=1"] },
    check: (o) => {
      assert.equal(o.dockerVersion, undefined);
      assert.match(o.dockerError ?? "", /^Cannot connect to the Docker daemon/);
      assert.ok((o.dockerError ?? "").length <= 300, `dockerError is bounded (${o.dockerError?.length})`);
    },
  },
  {
    name: "WireGuard keys that are not keys",
    replace: {
      "@@dockmesh wg": [
        `dm0\t(hidden)\tPUBKEY0=\t51820\toff`,
        `dm1\t(hidden)\t${KEY_HOST}\t51821\toff`,
        `dm1\t${KEY_PEER.slice(0, -2)}Z=\t(none)\t(none)\t10.0.0.0/24\t0\t0\t0\toff`,
        `dm1\t${KEY_PEER}\x1b[2J\t(none)\t(none)\t10.0.0.0/24\t0\t0\t0\toff`,
      ],
    },
    check: (o) => {
      assert.equal(o.wg.has("dm0"), false, "an interface whose key is not a key is dropped");
      assert.deepEqual(o.wg.get("dm1")?.peers, [], "peers whose keys are not keys are dropped");
    },
  },
  {
    name: "peer endpoint, allowed IPs, counters and keepalive that are not what wg prints",
    replace: {
      "@@dockmesh wg": [
        `dm0\t(hidden)\t${KEY_HOST}\t99999\toff`,
        `dm1\t(hidden)\t${KEY_HOST}\t51820\toff`,
        `dm1\t${KEY_PEER}\t(none)\t$(reboot):51820\t10.0.0.0/24,$(reboot),10.0.0.0/99,fd00::/64\t1e309\t-5\t${"9".repeat(30)}\t70000`,
      ],
    },
    check: (o) => {
      assert.equal(o.wg.has("dm0"), false, "listen port 99999 is not a port");
      assert.deepEqual(o.wg.get("dm1")?.peers, [{ publicKey: KEY_PEER, allowedIPs: ["10.0.0.0/24", "fd00::/64"], latestHandshake: 0, rxBytes: 0, txBytes: 0 }]);
    },
  },
  {
    name: "link names that are not Linux interface names",
    replace: {
      "@@dockmesh links": [
        JSON.stringify([
          { ifname: "../../etc" },
          { ifname: "a b" },
          { ifname: `dm0${ESC}` },
          { ifname: "x".repeat(16) },
          { ifname: "." },
          { ifname: "eth0:1" },
          { ifname: "ok0", mtu: 1e12, linkinfo: { info_kind: ESC } },
          "junk",
          null,
        ]),
      ],
    },
    check: (o) => assert.deepEqual([...o.links.values()], [{ name: "ok0", up: false, mtu: 0 }]),
  },
  {
    name: "routes whose destination is not a CIDR or whose device is not a name",
    replace: {
      "@@dockmesh routes": [
        JSON.stringify([
          { dst: "default", dev: "evil name" },
          { dst: "10.0.0.0/24; reboot", dev: "dm0" },
          { dst: "10.0.0.0/24", dev: "x/y" },
          { dst: "300.0.0.0/8", dev: "dm0" },
          { dst: 7, dev: "dm0" },
          { dst: "10.1.0.0/16", dev: "dm0" },
        ]),
      ],
    },
    check: (o) => {
      assert.equal(o.defaultDev, undefined);
      assert.deepEqual(o.routes, [{ dst: "10.1.0.0/16", dev: "dm0" }]);
    },
  },
  {
    name: "iptables lines that are too long or hold control characters, and chains not of iptables",
    replace: {
      "@@dockmesh iptables filter:DOCKER-USER": [
        "-P DOCKER-USER DROP\x1b[2J",
        `-A DOCKER-USER -m comment --comment "${"x".repeat(5000)}" -j ACCEPT`,
        `-A DOCKER-USER -m comment --comment "${ESC}" -j ACCEPT`,
        "-A DOCKER-USER -j RETURN",
        "rc=0",
      ],
      "@@dockmesh iptables filter:INPUT;reboot": ["-A INPUT -j ACCEPT", "rc=0"],
    },
    check: (o) => {
      assert.deepEqual(o.iptables.get("filter/DOCKER-USER"), ["-A DOCKER-USER -j RETURN"]);
      assert.equal(o.policies.get("filter/DOCKER-USER"), undefined);
      assert.deepEqual([...o.iptables.keys()], ["filter/DOCKER-USER"]);
    },
  },
  {
    name: "file hashes that are not sha256, and files the script never asked for",
    replace: {
      "@@dockmesh iface dm0": [`file ${ESC} /etc/wireguard/dm0.conf`, `file ${HASH} /etc/shadow`, `file ${HASH.toUpperCase()} /etc/systemd/system/wg-quick@dm0.service.d/dockmesh.conf`],
      "@@dockmesh iface ../x": ["enabled yes"],
    },
    check: (o) => {
      assert.deepEqual([...o.ifaces.get("dm0")!.files], []);
      assert.deepEqual([...o.ifaces.keys()], ["dm0"]);
    },
  },
  {
    name: "IPv6 routes, allowed IPs and ip6tables sections (a dual-stack observe): bad ones dropped, good ones in one spelling",
    replace: {
      // The kernel's link-local and multicast routes are not the mesh's: not kept (a diff would delete them).
      "@@dockmesh routes6": [
        '[{"dst":"fe80::/64","dev":"dm0","protocol":"kernel"},{"dst":"ff00::/8","dev":"dm0"},{"dst":"FD42:D0C:0:1::/64","dev":"dm0"},{"dst":"fd42::1","dev":"dm0"},{"dst":"fd42::/64 dev x","dev":"dm0"},{"dst":"fd42::1::2/64","dev":"dm0"},{"dst":"::ffff:10.0.0.1/128","dev":"dm0"}]',
      ],
      "@@dockmesh wg": [
        `dm0\t(hidden)\t${KEY_HOST}\t51820\toff`,
        `dm0\t${KEY_PEER}\t(none)\t[2001:db8::7]:51820\t10.210.1.0/24,FD42:D0C:0:1::/64,fd42::/64;x,::ffff:10.0.0.1/128\t1700000000\t100\t200\t25`,
      ],
      "@@dockmesh iptables filter6:DOCKER-USER": ["-N DOCKER-USER", "-A DOCKER-USER -j RETURN", "rc=0"],
      "@@dockmesh iptables filter7:DOCKER-USER": ["-N DOCKER-USER", "rc=0"],
    },
    check: (o) => {
      assert.deepEqual(
        o.routes.filter((r) => r.dst.includes(":")),
        [
          { dst: "fd42:d0c:0:1::/64", dev: "dm0" },
          { dst: "fd42::1/128", dev: "dm0" },
        ],
      );
      const peer = o.wg.get("dm0")!.peers[0]!;
      assert.deepEqual(peer.allowedIPs, ["10.210.1.0/24", "fd42:d0c:0:1::/64"]);
      assert.equal(peer.endpoint, "[2001:db8::7]:51820");
      assert.deepEqual(o.iptables.get("filter6/DOCKER-USER"), ["-A DOCKER-USER -j RETURN"]);
      assert.ok(![...o.iptables.keys()].some((k) => k.startsWith("filter7")));
    },
  },
  {
    name: "Docker network JSON with a bad id, name, subnet, labels and options",
    replace: {
      "@@dockmesh network apps": [
        JSON.stringify({
          Id: "f00d",
          Name: "apps",
          IPAM: { Config: [{ Subnet: "fd00::/64" }, { Subnet: "10.210.0.0/24" }] },
          Options: { "com.docker.network.driver.mtu": "1".repeat(2000), ok: "1" },
          Labels: { "dockmesh.io/interface": `dm0${ESC}`, [`k${ESC}`]: "v" },
          Containers: { a: {} },
        }),
      ],
      "@@dockmesh network other": [JSON.stringify({ Id: "../../x", Name: "other" })],
      // An IPv6 subnet that is no CIDR, or not in its one spelling: dropped, or written the one way.
      "@@dockmesh network v6": [JSON.stringify({ Id: "f00f", Name: "v6", IPAM: { Config: [{ Subnet: "fd00::/64 -o x" }, { Subnet: "FD00:0::1:0/112" }] } })],
      "@@dockmesh network bad;name": [JSON.stringify({ Id: "f00d", Name: "bad;name" })],
      // Not the network asked for (a name with an escape, or Docker's match by id prefix): none.
      "@@dockmesh network mesh": [JSON.stringify({ Id: "f00e", Name: `mesh${ESC}`, IPAM: { Config: [{ Subnet: "10.210.1.0/24" }] } })],
    },
    check: (o) => {
      assert.deepEqual(o.networks.get("apps"), { id: "f00d", name: "apps", subnet: "10.210.0.0/24", subnetV6: "fd00::/64", options: { ok: "1" }, labels: {}, containers: 1 });
      assert.equal(o.networks.get("v6")?.subnetV6, "fd00::1:0/112");
      assert.equal(o.networks.get("mesh"), undefined);
      assert.equal(o.networks.get("other"), undefined);
      assert.equal(o.networks.has("bad;name"), false);
    },
  },
  {
    name: "a tool name that is an object property",
    replace: { "@@dockmesh tools": ["constructor yes", "__proto__ yes", "docker yes"] },
    check: (o) => assert.deepEqual(Object.keys(o.tools).sort(), ["docker", "ip", "iptables", "systemctl", "wg", "wg-quick"]),
  },
];

for (const c of dropped) {
  test(`hostile observe output dropped: ${c.name}`, () => {
    const o = parseObservation(output(c.replace));
    c.check(o);
    assertPrintable(o);
  });
}
