// IPv6 uplinks on real namespaces (LabHostOptions.uplink): an IPv6-only host (no IPv4 address on
// eth0) that the controller namespace reaches over SSH on IPv6, a dual host that pings it, an
// IPv4-only host as before, a firewalled dual host that drops IPv6 too, a reboot that brings the
// IPv6 address back, and a cleanup that removes the root's tagged ip6tables rules.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLab, type Lab, type LabOptions } from "../../lab/lab.js";
import { listNetns } from "../../lab/netns.js";
import { run, runOk } from "../../lab/proc.js";
import { ensureSystemPackages } from "../../lab/requirements.js";
import { listPrefixedLinks } from "../../lab/root-network.js";

// This file's lab: a prefix and address block of its own.
const LAB: Omit<LabOptions, "hosts"> = { prefix: "dmv6t", labnet: "198.18.70.0/24" };
const HOSTS: LabOptions["hosts"] = [{ name: "v4" }, { name: "d1", uplink: "dual" }, { name: "s6", uplink: "ipv6" }, { name: "f6", uplink: "dual", inputPolicy: "DROP" }];
const NET6 = "fdc6:1218:46::/64";
const TAG = "dockmesh-lab:dmv6t";

const tagged = async (cmd: "iptables-save" | "ip6tables-save"): Promise<string[]> => (await runOk([cmd])).split("\n").filter((l) => l.includes(TAG));

async function sshOver6(lab: Lab, host: string): Promise<{ hostname: string; client: string }> {
  const s = await lab.ssh(host);
  try {
    const out = (await s.run("hostname; echo $SSH_CONNECTION")).stdout.trim().split("\n");
    return { hostname: out[0] ?? "", client: (out[1] ?? "").split(" ")[0] ?? "" };
  } finally {
    s.close();
  }
}

describe("lab: IPv6 uplinks", { timeout: 300_000 }, () => {
  let lab: Lab | undefined;
  before(async () => {
    await ensureSystemPackages();
    lab = await createLab({ ...LAB, hosts: HOSTS });
    console.log(`# 4-host lab with IPv6 uplinks created in ${lab.timings.createMs} ms`);
  });
  after(async () => {
    await lab?.destroy();
  });

  test("the plan's addresses are on the hosts: an IPv6-only host has no IPv4 address on eth0", async () => {
    assert.ok(lab);
    const addrs = async (host: string, family: "-4" | "-6"): Promise<string[]> =>
      (await lab!.execOk(host, ["ip", family, "-o", "addr", "show", "dev", "eth0", "scope", "global"])).split("\n").filter(Boolean);
    assert.deepEqual(await addrs("s6", "-4"), [], "no IPv4 address");
    const s6 = await addrs("s6", "-6");
    assert.equal(s6.length, 1);
    assert.match(s6[0] ?? "", /inet6 fdc6:1218:46::c\/64 /);
    assert.doesNotMatch(s6[0] ?? "", /tentative/, "usable at once (no duplicate address detection)");
    assert.equal(lab.host("s6").sshHost, "fdc6:1218:46::c");
    assert.match((await addrs("d1", "-4"))[0] ?? "", /inet 198\.18\.70\.11\/24 /);
    assert.match((await addrs("d1", "-6"))[0] ?? "", /inet6 fdc6:1218:46::b\/64 /);
    assert.match((await addrs("v4", "-4"))[0] ?? "", /inet 198\.18\.70\.10\/24 /);
    assert.deepEqual(await addrs("v4", "-6"), [], "an IPv4 uplink has no IPv6 address but its link-local one");
    assert.equal(lab.controllerAddress6, "fdc6:1218:46::2");
    const ctl = await lab.execInControllerNs(["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"]);
    assert.match(ctl.stdout, /inet6 fdc6:1218:46::2\/64 /);
  });

  test("the controller namespace reaches the IPv6-only host's sshd over IPv6", async () => {
    assert.ok(lab);
    const s6 = lab.host("s6");
    // OpenSSH from the controller namespace, host key checked.
    const known = join(lab.stateDir, "known_hosts-v6test");
    writeFileSync(known, `${s6.sshHost} ${s6.hostKey}\n`);
    const ssh = await lab.execInControllerNs(
      [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        join(lab.stateDir, "id_ed25519"),
        "-o",
        `UserKnownHostsFile=${known}`,
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        `root@${s6.sshHost}`,
        "hostname; echo $SSH_CONNECTION",
      ],
      { timeoutMs: 20_000 },
    );
    assert.equal(ssh.code, 0, ssh.stderr);
    const [hostname, conn] = ssh.stdout.trim().split("\n");
    assert.equal(hostname, "s6");
    assert.equal(conn?.split(" ")[0], "fdc6:1218:46::2", "the client is the controller namespace's IPv6 address");
    assert.equal(conn?.split(" ")[2], "fdc6:1218:46::c");
    // Lab.ssh() goes the same way (the root namespace has no lab IPv6 address).
    assert.deepEqual(await sshOver6(lab, "s6"), { hostname: "s6", client: "fdc6:1218:46::2" });
    // A dual host's SSH stays IPv4; its sshd listens on IPv6 too.
    assert.equal(lab.host("d1").sshHost, "198.18.70.11");
    const d1v6 = await lab.exec("s6", ["busybox", "nc", "-w", "3", "fdc6:1218:46::b", "22"], { timeoutMs: 10_000 });
    assert.match(d1v6.stdout, /^SSH-2\.0-/, `d1's sshd answers on IPv6: ${d1v6.stderr}`);
  });

  test("a dual host pings the IPv6-only host over IPv6; an IPv4-only host has no route to it", async () => {
    assert.ok(lab);
    const ping = await lab.exec("d1", ["ping", "-6", "-c", "2", "-W", "2", "fdc6:1218:46::c"], { timeoutMs: 15_000 });
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    assert.match(ping.stdout, / 0% packet loss/);
    const fromV4 = await lab.exec("v4", ["ping", "-6", "-c", "1", "-W", "1", "fdc6:1218:46::c"], { timeoutMs: 10_000 });
    assert.notEqual(fromV4.code, 0);
    assert.match(fromV4.stdout + fromV4.stderr, /unreachable/i);
  });

  test("a firewalled dual host drops unsolicited IPv6 as it drops IPv4, and keeps SSH open", async () => {
    assert.ok(lab);
    const t0 = Date.now();
    const dropped = await lab.exec("s6", ["busybox", "nc", "-w", "2", "fdc6:1218:46::d", "9"], { timeoutMs: 10_000 });
    assert.notEqual(dropped.code, 0);
    assert.match(dropped.stderr, /timed out/i, "silently dropped");
    assert.ok(Date.now() - t0 >= 1900);
    const ssh = await lab.exec("s6", ["busybox", "nc", "-w", "3", "fdc6:1218:46::d", "22"], { timeoutMs: 10_000 });
    assert.match(ssh.stdout, /^SSH-2\.0-/);
  });

  test("the root namespace has no lab IPv6 address, and its own packets for the lab's /64 fail at once", async () => {
    assert.ok(lab);
    assert.equal((await runOk(["sysctl", "-n", "net.ipv6.conf.dmv6t-br.disable_ipv6"])).trim(), "1");
    assert.doesNotMatch(await runOk(["ip", "-6", "-o", "addr", "show"]), /fdc6:1218:46:/);
    assert.match(await runOk(["ip", "-6", "route", "show", "type", "unreachable", "exact", NET6]), /unreachable fdc6:1218:46::\/64/);
    const get = await run(["ip", "-6", "route", "get", "fdc6:1218:46::c"]);
    assert.notEqual(get.code, 0, get.stdout);
    assert.match(get.stderr, /No route to host|unreachable/i);
  });

  test("a reboot brings the IPv6-only host back on IPv6", async () => {
    assert.ok(lab);
    await lab.reboot("s6");
    assert.deepEqual(await sshOver6(lab, "s6"), { hostname: "s6", client: "fdc6:1218:46::2" });
    assert.equal((await lab.execOk("s6", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])).trim(), "");
    await lab.reboot("f6");
    assert.match(await lab.execOk("f6", ["ip6tables", "-S", "INPUT"]), /^-P INPUT DROP$/m, "the boot firewall again, once");
    assert.equal((await lab.execOk("f6", ["ip6tables", "-S", "INPUT"])).split("\n").filter((l) => l.includes("--dport 22")).length, 1);
  });

  test("destroy() removes the root's tagged ip6tables rules, its IPv6 route and everything else", async () => {
    assert.ok(lab);
    const rules6 = await tagged("ip6tables-save");
    assert.equal(rules6.length, 4, rules6.join("\n"));
    assert.ok(
      rules6.some((l) => l.includes("-A FORWARD -i dmv6t-br -o dmv6t-br") && l.includes("-j ACCEPT")),
      rules6.join("\n"),
    );
    const stateDir = lab.stateDir;
    await lab.destroy();
    lab = undefined;
    assert.deepEqual(await tagged("ip6tables-save"), []);
    assert.deepEqual(await tagged("iptables-save"), []);
    assert.equal((await runOk(["ip", "-6", "route", "show", "type", "unreachable", "exact", NET6])).trim(), "");
    assert.deepEqual(
      listNetns().filter((n) => n.startsWith("dmv6t-")),
      [],
    );
    assert.deepEqual(await listPrefixedLinks("dmv6t"), []);
    assert.equal(existsSync(stateDir), false);
  });
});
