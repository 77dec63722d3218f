// The lab's objects in the root namespace: the bridge that is the lab "internet", the
// root ends of the veths, the management routes to the NAT'd LANs, and iptables rules
// (each tagged with the lab's comment) that keep lab traffic inside the lab.
import { runOk, run } from "./proc.js";
import type { LabPlan } from "./plan.js";

const DEAD_END_METRIC = 4095;

const ipt = (...args: string[]): string[] => ["iptables", "-w", ...args];

/** Links in the root namespace whose name starts with `${prefix}-`. */
export async function listPrefixedLinks(prefix: string): Promise<string[]> {
  const out = await runOk(["ip", "-o", "link", "show"]);
  const names: string[] = [];
  for (const line of out.split("\n")) {
    const m = /^\d+: ([^:@]+)[:@]/.exec(line);
    if (m?.[1]?.startsWith(`${prefix}-`)) names.push(m[1]);
  }
  return names;
}

export async function createBridge(plan: LabPlan): Promise<void> {
  await runOk(["ip", "link", "add", plan.bridge, "type", "bridge"]);
  // No IPv6 on the root's lab address: lab hosts must not reach root services over link-local.
  await runOk(["sysctl", "-q", "-w", `net.ipv6.conf.${plan.bridge}.disable_ipv6=1`]);
  await runOk(["ip", "addr", "add", `${plan.bridgeAddress}/24`, "dev", plan.bridge]);
  await runOk(["ip", "link", "set", plan.bridge, "up"]);
}

/** A veth whose root end is enslaved to the bridge and whose other end is eth0 in `netns`. */
export async function plugIntoBridge(plan: LabPlan, rootVeth: string, netns: string, address: string): Promise<void> {
  await runOk(["ip", "link", "add", rootVeth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
  await runOk(["ip", "link", "set", rootVeth, "master", plan.bridge]);
  await runOk(["ip", "link", "set", rootVeth, "up"]);
  await runOk(["ip", "-n", netns, "addr", "add", `${address}/24`, "dev", "eth0"]);
  await runOk(["ip", "-n", netns, "link", "set", "eth0", "up"]);
}

/** Routes in the root namespace's main table for exactly this prefix, as `ip route` prints them. */
async function routesFor(dst: string): Promise<string[]> {
  return (await runOk(["ip", "route", "show", "exact", dst])).split("\n").filter((l) => l.trim() !== "");
}

/** Fails when another lab (or anything else) already routes the lab's block: two labs must not share one. */
export async function checkLabnetFree(plan: LabPlan): Promise<void> {
  const existing = await routesFor(plan.labnetCidr);
  if (existing.length > 0) {
    throw new Error(`the lab net ${plan.labnetCidr} is already routed here (${existing.join("; ")}): another lab uses it; give this lab another block`);
  }
}

export async function addRootRoutes(plan: LabPlan): Promise<void> {
  for (const r of plan.rootRoutes) {
    if (r.via) {
      const existing = (await routesFor(r.dst)).filter((l) => !l.includes(`metric ${DEAD_END_METRIC}`));
      if (existing.length > 0) {
        throw new Error(`the NAT'd LAN ${r.dst} is already routed here (${existing.join("; ")}): another lab uses it; give this lab another natLans range`);
      }
      await runOk(["ip", "route", "add", r.dst, "via", r.via, "dev", plan.bridge]);
    } else {
      // A dead end of low priority for the range's unused LANs (nobody answers on the bridge), so
      // the root's default route never carries a packet meant for the lab. `append` coexists with
      // another lab's route for the same LAN.
      await runOk(["ip", "route", "append", r.dst, "dev", plan.bridge, "metric", String(DEAD_END_METRIC)]);
    }
  }
}

/** The rules, in the order they end up at the top of their chains. */
export function rootRules(plan: LabPlan, physdev: boolean): string[][] {
  const c = ["-m", "comment", "--comment", plan.tag];
  const br = plan.bridge;
  const bridged = physdev ? ["-m", "physdev", "--physdev-is-bridged"] : [];
  return [
    // FORWARD (seen by bridged frames through br_netfilter, and by anything the root would route):
    // lab-to-lab frames on the bridge pass even under a DROP policy; nothing is routed in or out.
    ["FORWARD", "-i", br, "-o", br, ...bridged, ...c, "-j", "ACCEPT"],
    ["FORWARD", "-i", br, ...c, "-j", "DROP"],
    ["FORWARD", "-o", br, ...c, "-j", "DROP"],
    // INPUT: the lab can answer the root namespace but not open connections to it.
    ["INPUT", "-i", br, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", ...c, "-j", "ACCEPT"],
    ...plan.rootPortsForController.map((port) => ["INPUT", "-i", br, "-s", plan.controller.address, "-p", "tcp", "--dport", String(port), ...c, "-j", "ACCEPT"]),
    ["INPUT", "-i", br, ...c, "-j", "DROP"],
  ];
}

/** Inserts the rules at the top of their chains (before any Docker or other lab rules). */
export async function addRootRules(plan: LabPlan, log: (m: string) => void): Promise<void> {
  const probe = await run(ipt("-C", "FORWARD", "-i", plan.bridge, "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"));
  const physdev = !/physdev|No such file|Couldn't load match/i.test(probe.stderr);
  if (!physdev) log(`iptables physdev match unavailable (${probe.stderr.trim()}); FORWARD accepts -i ${plan.bridge} -o ${plan.bridge} without it`);
  const rules = rootRules(plan, physdev);
  const byChain = new Map<string, string[][]>();
  for (const [chain, ...spec] of rules) {
    if (!chain) continue;
    const list = byChain.get(chain) ?? [];
    list.push(spec);
    byChain.set(chain, list);
  }
  for (const [chain, specs] of byChain) {
    for (const spec of [...specs].reverse()) await runOk(ipt("-I", chain, "1", ...spec));
  }
}

/** Deletes every root-namespace rule carrying the lab's comment, in any table and chain. */
export async function removeRootRules(tag: string): Promise<number> {
  let removed = 0;
  for (const table of ["filter", "nat", "mangle", "raw"]) {
    const listing = await run(["iptables", "-w", "-t", table, "-S"]);
    if (listing.code !== 0) continue;
    for (const line of listing.stdout.split("\n")) {
      if (!line.startsWith("-A ")) continue;
      const tokens = line.split(/\s+/).map((t) => t.replace(/^"(.*)"$/, "$1"));
      const i = tokens.indexOf("--comment");
      if (i < 0 || tokens[i + 1] !== tag) continue;
      await runOk(["iptables", "-w", "-t", table, "-D", ...tokens.slice(1)]);
      removed++;
    }
  }
  return removed;
}
