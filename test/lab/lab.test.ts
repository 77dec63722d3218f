// The lab's life cycle on real namespaces: leftovers of a crashed run are cleared, two labs
// coexist, destroy() leaves nothing behind, a firewalled host drops what it did not ask for.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { cgroupRoots } from "../../lab/cgroups.js";
import { createLab, type Lab, type LabOptions } from "../../lab/lab.js";
import { listNetns, pidsInNetns } from "../../lab/netns.js";
import { isRunning, runOk } from "../../lab/proc.js";
import { ensureSystemPackages } from "../../lab/requirements.js";
import { listPrefixedLinks } from "../../lab/root-network.js";

// This file's labs: prefixes and address blocks of their own.
const MAIN: Omit<LabOptions, "hosts"> = { prefix: "dmlab", labnet: "198.18.2.0/24", natLans: { first: 20, last: 24 } };
const OTHER: Omit<LabOptions, "hosts"> = { prefix: "dmlabx", labnet: "198.18.22.0/24", natLans: { first: 25, last: 29 } };
const HOSTS: LabOptions["hosts"] = [{ name: "h1" }, { name: "h2", nat: true }, { name: "h3", inputPolicy: "DROP" }];

/** Everything of a prefix that can outlive a process, as the machine shows it. */
async function footprint(prefix: string, stateDir: string): Promise<{ netns: string[]; links: string[]; rules: string[]; cgroups: string[]; stateDir: boolean }> {
  const save = await runOk(["iptables-save"]);
  return {
    netns: listNetns().filter((n) => n.startsWith(`${prefix}-`)),
    links: await listPrefixedLinks(prefix),
    rules: save.split("\n").filter((l) => l.includes(`"dockmesh-lab:${prefix}"`) || l.includes(` dockmesh-lab:${prefix} `)),
    cgroups: cgroupRoots().flatMap((r) => {
      try {
        return readdirSync(r).filter((e) => e.startsWith(`${prefix}-`));
      } catch {
        return [];
      }
    }),
    stateDir: existsSync(stateDir),
  };
}

const EMPTY = { netns: [], links: [], rules: [], cgroups: [], stateDir: false };

async function sshHostname(lab: Lab, host: string): Promise<string> {
  const s = await lab.ssh(host);
  try {
    return (await s.run(["hostname"])).stdout.trim();
  } finally {
    s.close();
  }
}

describe("lab: life cycle", { timeout: 300_000 }, () => {
  let lab: Lab | undefined;
  let other: Lab | undefined;
  after(async () => {
    await other?.destroy();
    await lab?.destroy();
  });

  test("createLab clears what a crashed run with the same prefix left behind", async () => {
    await ensureSystemPackages();
    const crashed = await createLab({ ...MAIN, hosts: HOSTS });
    await crashed.runContainer("h1", "sleeper", [crashed.image, "sleep", "3600"]);
    const containerPid = Number(await crashed.execOk("h1", ["docker", "inspect", "--format", "{{.State.Pid}}", "sleeper"]));
    const hostPids = crashed.hosts.flatMap((h) => pidsInNetns(h.netns));
    assert.ok(containerPid > 0 && hostPids.length >= 9, "dockerd, containerd, sshd, holders are running");
    // The crash: the Lab object is dropped, destroy() never runs. The next run starts over.
    const log: string[] = [];
    lab = await createLab({ ...MAIN, hosts: HOSTS, log: (m) => log.push(m) });
    console.log(`# 3-host lab created in ${lab.timings.createMs} ms, leftovers included`);
    assert.ok(
      log.some((l) => /removed leftovers of an earlier run: .*namespaces dmlab-controller/.test(l)),
      log.join("\n"),
    );
    for (const pid of [containerPid, ...hostPids]) assert.ok(!isRunning(pid), `old PID ${pid} is gone`);
    assert.equal(await sshHostname(lab, "h1"), "h1");
    assert.equal((await lab.execOk("h1", ["docker", "ps", "-aq"])).trim(), "", "the new host starts with no containers");
  });

  test("a firewalled host (INPUT policy DROP) drops unsolicited connections; an open one refuses them", async () => {
    assert.ok(lab);
    const h1 = lab.host("h1");
    const h3 = lab.host("h3");
    const t0 = Date.now();
    const toFirewalled = await lab.exec("h1", ["busybox", "nc", "-w", "2", h3.address, "9"], { timeoutMs: 10_000 });
    assert.notEqual(toFirewalled.code, 0);
    assert.match(toFirewalled.stderr, /timed out/i, "silently dropped");
    assert.ok(Date.now() - t0 >= 1900);
    const toOpen = await lab.exec("h3", ["busybox", "nc", "-w", "2", h1.address, "9"], { timeoutMs: 10_000 });
    assert.match(toOpen.stderr, /refused/i, "an open host answers with a reset");
    assert.equal(await sshHostname(lab, "h3"), "h3", "SSH stays open");
  });

  test("a second lab with another prefix and block coexists; destroying it leaves the first alone", async () => {
    assert.ok(lab);
    other = await createLab({ ...OTHER, hosts: [{ name: "h1" }, { name: "h2", nat: true }] });
    assert.equal(await sshHostname(other, "h1"), "h1");
    assert.equal(await sshHostname(other, "h2"), "h2");
    assert.notEqual(other.host("h1").sshHost, lab.host("h1").sshHost);
    // One lab's hosts do not reach the other's.
    const cross = await other.exec("h1", ["busybox", "nc", "-w", "2", lab.host("h1").address, "22"], { timeoutMs: 10_000 });
    assert.match(cross.stderr, /unreachable/i);
    await other.destroy();
    assert.deepEqual(await footprint(OTHER.prefix, other.stateDir), EMPTY);
    other = undefined;
    assert.equal(await sshHostname(lab, "h1"), "h1");
    assert.equal(await sshHostname(lab, "h2"), "h2");
  });

  test("a lab refuses an address block that another lab uses, and leaves nothing behind", async () => {
    assert.ok(lab);
    await assert.rejects(createLab({ prefix: "dmlaby", labnet: MAIN.labnet, natLans: { first: 28, last: 29 }, hosts: [{ name: "h1" }] }), (e: Error) => {
      assert.match(`${e.message} ${(e.cause as Error | undefined)?.message}`, /198\.18\.2\.0\/24 is already routed here/);
      return true;
    });
    assert.deepEqual(await footprint("dmlaby", "/tmp/dmlaby-lab"), EMPTY);
  });

  test("destroy() stops every process and removes namespaces, links, rules, cgroups and the state directory", async () => {
    assert.ok(lab);
    await lab.runContainer("h1", "sleeper", [lab.image, "sleep", "3600"]);
    const pids = lab.hosts.flatMap((h) => pidsInNetns(h.netns));
    const stateDir = lab.stateDir;
    assert.notDeepEqual(await footprint(MAIN.prefix, stateDir), EMPTY);
    await lab.destroy();
    console.log(`# 3-host lab destroyed in ${lab.timings.destroyMs} ms`);
    lab = undefined;
    assert.deepEqual(await footprint(MAIN.prefix, stateDir), EMPTY);
    for (const pid of pids) assert.ok(!isRunning(pid), `PID ${pid} stopped`);
  });
});
