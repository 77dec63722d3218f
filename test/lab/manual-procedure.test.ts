// The lab proving itself: the seed article's manual procedure, run over real SSH on lab hosts,
// makes containers on different hosts (one behind NAT) fetch pages from each other by their
// private IPs; the lab's isolation, reboot and cut/heal behave as a controller will rely on.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createLab, type Lab } from "../../lab/lab.js";
import { runManualProcedure, type ManualReport } from "../../lab/manual.js";
import { ensureSystemPackages } from "../../lab/requirements.js";
import { waitFor } from "../../lab/proc.js";

// This file's lab: its own prefix and address blocks, so it never meets another lab.
const PREFIX = "dmlab";
const LABNET = "198.18.2.0/24";
const NAT_LANS = { first: 20, last: 29 };
const NETWORK = "multi-host";
const SUBNETS = { h1: "10.200.1.0/24", h2: "10.200.2.0/24", h3: "10.200.3.0/24" } as const;

const page = (host: string): string => `hello from a container on ${host}`;
const url = (ip: string): string => `http://${ip}:80/`;

/** A small Node program run inside a namespace: connect to host:port, print the outcome and the time it took. */
function connectProbe(host: string, port: number, timeoutMs: number): string[] {
  const src = `
    const net = require("node:net"); const t0 = Date.now();
    const s = net.connect({ host: ${JSON.stringify(host)}, port: ${port} });
    const done = (what) => { console.log(JSON.stringify({ what, ms: Date.now() - t0 })); process.exit(0); };
    s.setTimeout(${timeoutMs}, () => done("timeout"));
    s.once("data", (d) => done("data:" + d.toString().split("\\r")[0]));
    s.once("error", (e) => done(e.code));`;
  return [process.execPath, "-e", src];
}

function parseProbe(stdout: string): { what: string; ms: number } {
  return JSON.parse(stdout.trim()) as { what: string; ms: number };
}

describe("lab: the manual WireGuard procedure on simulated hosts", { timeout: 600_000 }, () => {
  let lab: Lab;
  let manual: ManualReport;
  const ips: Record<string, string> = {};

  before(async () => {
    await ensureSystemPackages();
    lab = await createLab({
      prefix: PREFIX,
      labnet: LABNET,
      natLans: NAT_LANS,
      hosts: [{ name: "h1" }, { name: "h2", sshUser: "deploy", inputPolicy: "DROP" }, { name: "h3", nat: true }, { name: "h4", nat: true, bastionOnly: true }],
      log: (m) => console.log(`# ${m}`),
    });
  });

  after(async () => {
    await lab?.destroy();
  });

  test("the article's steps mesh two public hosts and a NAT'd one over real SSH", async () => {
    manual = await runManualProcedure(lab, [
      { host: lab.host("h1"), subnet: SUBNETS.h1 },
      { host: lab.host("h2"), subnet: SUBNETS.h2 },
      { host: lab.host("h3"), subnet: SUBNETS.h3 },
    ]);
    console.log(`# manual procedure: ${manual.steps.length} commands in ${manual.totalMs} ms`);
    assert.deepEqual(manual.skippedPairs, []);
    // The state the article describes, as the hosts report it (not over SSH).
    for (const h of ["h1", "h2", "h3"] as const) {
      const conf = await lab.execOk(h, ["wg", "showconf", "wg0"]);
      assert.match(conf, /ListenPort = 51820/);
      const rules = await lab.execOk(h, ["iptables", "-S", "DOCKER-USER"]);
      assert.match(rules, new RegExp(`-A DOCKER-USER -i wg0 -o ${manual.bridge} -j ACCEPT`));
      const nat = await lab.execOk(h, ["iptables", "-t", "nat", "-S", "POSTROUTING"]);
      assert.match(nat, new RegExp(`-A POSTROUTING -s ${SUBNETS[h].replace(/\./g, "\\.")} -o wg0 -j RETURN`));
      ips[h] = (await lab.startHttpd(h, { name: "web", network: NETWORK, content: page(h), restart: "unless-stopped" })).ip;
      // Containers never send packets the tunnel cannot carry.
      assert.equal((await lab.execOk(h, ["docker", "exec", "web", "cat", "/sys/class/net/eth0/mtu"])).trim(), "1420");
      assert.match(await lab.execOk(h, ["ip", "-o", "link", "show", manual.bridge]), /mtu 1420/);
    }
  });

  test("a container on h1 fetches a page from a container on h2 by its private IP, and back", async () => {
    assert.equal(await lab.fetchOk("h1", { network: NETWORK, url: url(ips.h2 ?? "") }), page("h2"));
    assert.equal(await lab.fetchOk("h2", { network: NETWORK, url: url(ips.h1 ?? "") }), page("h1"));
    assert.ok(ips.h1?.startsWith("10.200.1.") && ips.h2?.startsWith("10.200.2."));
  });

  test("the NAT'd host, sending first with PersistentKeepalive, and a public host reach each other both ways", async () => {
    const h3Key = manual.publicKeys.h3 ?? "";
    const router = lab.host("h3").routerAddress ?? "";
    // h1 has no Endpoint for h3; it learns one, the router's address, when h3's packets arrive.
    const endpoint = await waitFor(
      async () => {
        const out = await lab.execOk("h1", ["wg", "show", "wg0", "endpoints"]);
        const line = out.split("\n").find((l) => l.startsWith(h3Key));
        const ep = line?.split("\t")[1];
        return ep && ep !== "(none)" ? ep : undefined;
      },
      { what: "h1 to learn h3's endpoint", timeoutMs: 30_000, intervalMs: 250 },
    );
    assert.match(endpoint, new RegExp(`^${router.replace(/\./g, "\\.")}:\\d+$`), "h3 is seen from behind its router");
    assert.equal(await lab.fetchOk("h3", { network: NETWORK, url: url(ips.h1 ?? "") }), page("h1"));
    assert.equal(await lab.fetchOk("h1", { network: NETWORK, url: url(ips.h3 ?? "") }), page("h3"));
    assert.equal(await lab.fetchOk("h2", { network: NETWORK, url: url(ips.h3 ?? "") }), page("h3"));
  });

  test("isolation: a public host cannot open a connection to a NAT'd host's LAN address", async () => {
    const lan = lab.host("h3").lanAddress ?? "";
    const direct = await lab.exec("h2", ["busybox", "nc", "-w", "3", lan, "22"], { timeoutMs: 10_000 });
    assert.notEqual(direct.code, 0);
    assert.match(direct.stderr, /unreachable/i, "no route from a public host to a private LAN");
    // Even with a route through the router (as if it tried), the router lets nothing in.
    await lab.execOk("h2", ["ip", "route", "add", `${lan}/32`, "via", lab.host("h3").routerAddress ?? ""]);
    try {
      const routed = await lab.exec("h2", ["busybox", "nc", "-w", "3", lan, "22"], { timeoutMs: 10_000 });
      assert.notEqual(routed.code, 0);
      assert.doesNotMatch(routed.stdout, /SSH-2\.0/);
    } finally {
      await lab.execOk("h2", ["ip", "route", "del", `${lan}/32`]);
    }
  });

  test("isolation: the controller namespace reaches the lab (NAT'd LANs included) and nothing else", async () => {
    const routes = await lab.execInControllerNs(["ip", "route", "get", "198.51.100.1"]);
    assert.notEqual(routes.code, 0, "no route outside the lab");
    assert.match(routes.stderr, /unreachable/i);
    const out = parseProbe((await lab.execInControllerNs(connectProbe("198.51.100.1", 22, 5000))).stdout);
    assert.equal(out.what, "ENETUNREACH");
    assert.ok(out.ms < 1000, `failed at once (${out.ms} ms)`);
    const dnsSrc = `require("node:dns").lookup("hostile.example.com", (e, a) => { console.log(e ? e.code : "resolved " + a); });`;
    const t0 = Date.now();
    const dns = await lab.execInControllerNs([process.execPath, "-e", dnsSrc], { timeoutMs: 10_000 });
    assert.doesNotMatch(dns.stdout, /resolved/);
    assert.ok(Date.now() - t0 < 5000, `DNS failed fast (${Date.now() - t0} ms)`);
    // The management network: SSH banners of a public and a NAT'd host; not the bastion-only one.
    for (const h of ["h1", "h3"]) {
      const r = parseProbe((await lab.execInControllerNs(connectProbe(lab.host(h).sshHost, 22, 5000))).stdout);
      assert.match(r.what, /^data:SSH-2\.0-/, `controller reaches ${h}`);
    }
    const h4 = parseProbe((await lab.execInControllerNs(connectProbe(lab.host("h4").sshHost, 22, 5000))).stdout);
    assert.equal(h4.what, "ENETUNREACH");
  });

  test("a bastion-only host is reached over SSH through its bastion, as a non-root user elsewhere", async () => {
    const h4 = lab.host("h4");
    assert.equal(h4.bastion?.name, "h1");
    const direct = parseProbe((await lab.execInControllerNs(connectProbe(h4.sshHost, 22, 3000))).stdout);
    assert.notEqual(direct.what.slice(0, 5), "data:");
    const s = await lab.ssh(h4);
    try {
      assert.equal((await s.run(["hostname"])).stdout.trim(), "h4");
    } finally {
      s.close();
    }
    const d = await lab.ssh("h2");
    try {
      assert.equal((await d.run(["id", "-un"])).stdout.trim(), "deploy");
      assert.match((await d.run(["sudo", "-n", "iptables", "-S", "INPUT"])).stdout, /-P INPUT DROP/);
    } finally {
      d.close();
    }
  });

  test("lab.reboot: after a reboot, wg-quick@wg0 (enabled in step 5) brings the tunnel back and traffic flows", async () => {
    const report = await lab.reboot("h1");
    assert.deepEqual(report.unitsFailed, []);
    assert.deepEqual(report.unitsStarted, ["wg-quick@wg0.service"]);
    // The reboot lost the rules; PostUp put them back.
    assert.match(await lab.execOk("h1", ["iptables", "-S", "DOCKER-USER"]), /-i wg0 -o br-multi-host -j ACCEPT/);
    // The httpd came back by its restart policy; ask for its address again.
    const ip = await waitFor(async () => lab.containerIp("h1", "web", NETWORK), { what: "h1's httpd to run again", timeoutMs: 20_000, intervalMs: 250 });
    // The rebooted host speaks first: its new WireGuard session replaces the one h2 still holds
    // (h2 alone would keep using the old session until its 15 s rekey timeout).
    const t0 = Date.now();
    const body = await waitFor(
      async () => {
        const r = await lab.fetch("h1", { network: NETWORK, url: url(ips.h2 ?? ""), timeoutSec: 2 });
        return r.code === 0 ? r.stdout : undefined;
      },
      { what: "h1 to fetch h2's page after the reboot", timeoutMs: 40_000, intervalMs: 250 },
    );
    assert.equal(body, page("h2"));
    assert.equal(await lab.fetchOk("h2", { network: NETWORK, url: url(ip) }), page("h1"));
    console.log(`# reboot: ${report.ms} ms to boot, traffic again ${Date.now() - t0} ms later`);
  });

  test("lab.cut / lab.heal: a cut host is unreachable, and reachable again once healed", async () => {
    await lab.cut("h2");
    const t0 = Date.now();
    try {
      const r = await lab.fetch("h1", { network: NETWORK, url: url(ips.h2 ?? ""), timeoutSec: 2 });
      assert.notEqual(r.code, 0, "no page from a cut host");
      const probe = parseProbe((await lab.execInControllerNs(connectProbe(lab.host("h2").sshHost, 22, 1500))).stdout);
      assert.notEqual(probe.what.slice(0, 5), "data:", "no SSH to a cut host");
    } finally {
      await lab.heal("h2");
    }
    console.log(`# cut/heal: healed after ${Date.now() - t0} ms`);
    const body = await waitFor(
      async () => {
        const r = await lab.fetch("h1", { network: NETWORK, url: url(ips.h2 ?? ""), timeoutSec: 2 });
        return r.code === 0 ? r.stdout : undefined;
      },
      { what: "h1 to fetch h2's page after healing", timeoutMs: 40_000, intervalMs: 250 },
    );
    assert.equal(body, page("h2"));
    console.log(`# cut/heal: ${Date.now() - t0} ms from cut to a page again`);
  });
});
