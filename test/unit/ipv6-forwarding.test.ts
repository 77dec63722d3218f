// Issue 17: IPv6 forwarding is one host-wide switch in Linux. Docker turns it on when it creates an
// IPv6 network (unless its ip-forward option is off); dockmesh reads it on dual-stack hosts and,
// where the network has IPv6 but the host does not forward it, says so instead of flipping it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { parseObservation, hostFacts } from "../../hosts/observe.js";
import { OBSERVE_SH } from "../../hosts/scripts.generated.js";
import { planAll, type HostFacts } from "../../mesh/plan.js";
import { ipv6ForwardingText } from "../../controllers/machine-conditions.js";
import { mesh, pub } from "../support/fixtures.js";

test("the observe's system section: ipv6-forwarding 0/1 read, anything else ignored", () => {
  const cases: Array<[string[], boolean | undefined]> = [
    [["ipv6-forwarding 1"], true],
    [["ipv6-forwarding 0"], false],
    [[], undefined],
    [["ipv6-forwarding 2"], undefined],
    [["ipv6-forwarding 1; reboot"], undefined],
  ];
  for (const [lines, want] of cases) {
    const obs = parseObservation(["@@dockmesh system", ...lines, "@@dockmesh end"].join("\n"));
    assert.equal(obs.ipv6Forwarding, want, JSON.stringify(lines));
    assert.equal(hostFacts(obs).ipv6Forwarding, want);
  }
});

test("the observe prints the switch only with --ipv6 (dash's read on /proc fails even when it read the value)", () => {
  const system = (args: string[]) => {
    const r = spawnSync("sh", ["-c", `${OBSERVE_SH.split("\nsec links")[0]}`, "observe", ...args], { encoding: "utf8", timeout: 20_000 });
    return r.stdout.split("\n").filter((l) => l.startsWith("ipv6-forwarding"));
  };
  const have = spawnSync("cat", ["/proc/sys/net/ipv6/conf/all/forwarding"], { encoding: "utf8" }).stdout.trim();
  assert.deepEqual(system(["--ipv6"]), [`ipv6-forwarding ${have}`]);
  assert.deepEqual(system([]), []);
});

test("NetworkPlan.ipv6ForwardingOff: only a dual-stack network Docker made IPv6 on a host that does not forward IPv6", () => {
  const dual = mesh("m", { cidr: "10.230.0.0/16", cidrV6: "fd42:d0c::/48", interface: "dm0", dockerNetwork: "mesh" });
  const v4 = mesh("m", { cidr: "10.230.0.0/16", interface: "dm0", dockerNetwork: "mesh" });
  const ours = { containers: 0, label: "dm0", subnetV6: "fd42:d0c::/64" };
  const cases: Array<[string, typeof dual, HostFacts, boolean]> = [
    ["off, network with IPv6", dual, { ipv6Forwarding: false, dockerNetworks: new Map([["mesh", ours]]) }, true],
    ["on", dual, { ipv6Forwarding: true, dockerNetworks: new Map([["mesh", ours]]) }, false],
    ["not read", dual, { dockerNetworks: new Map([["mesh", ours]]) }, false],
    ["off, network not created yet (Docker turns it on then)", dual, { ipv6Forwarding: false }, false],
    ["off, a network of the name not ours", dual, { ipv6Forwarding: false, dockerNetworks: new Map([["mesh", { ...ours, label: "other" }]]) }, false],
    ["an IPv4-only mesh", v4, { ipv6Forwarding: false, dockerNetworks: new Map([["mesh", ours]]) }, false],
  ];
  for (const [what, m, facts, want] of cases) {
    const net = planAll([m], [pub("a", 0), pub("b", 1)], new Map(), new Map([["default/a", facts]])).hosts.find((h) => h.machine === "a")!.networks[0]!;
    assert.equal(Boolean(net.ipv6ForwardingOff), want, what);
    const text = ipv6ForwardingText([net]);
    if (want)
      assert.match(
        text[0] ?? "",
        /^MeshNetwork m: the host does not forward IPv6 \(net\.ipv6\.conf\.all\.forwarding is 0\).*sysctl -w net\.ipv6\.conf\.all\.forwarding=1.*accept_ra=2.*or remove spec\.cidrV6$/,
      );
    else assert.deepEqual(text, [], what);
  }
});
