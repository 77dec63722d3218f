// The lab's objects in the root namespace: the bridge that is the lab "internet", the
// root ends of the veths, the management routes to the NAT'd LANs, and iptables rules
// (each tagged with the lab's comment) that keep lab traffic inside the lab; ip6tables rules
// too when the lab has IPv6 uplinks.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inNetns } from "./netns.js";
import { runOk, run } from "./proc.js";
import type { LabPlan } from "./plan.js";

const DEAD_END_METRIC = 4095;

type IptablesCmd = "iptables" | "ip6tables";

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

/** `ip addr` flags of an address on a lab eth0: an IPv6 one is usable at once (no duplicate address detection). */
export const addrFlags = (cidr: string): string[] => (cidr.includes(":") ? ["nodad"] : []);

/**
 * A veth whose root end is enslaved to the bridge and whose other end is eth0 in `netns`, with
 * these addresses ("198.18.0.10/24", and/or "fdc6:1218::a/64": see uplinkCidrs). With an IPv6
 * address, eth0 skips duplicate address detection, so sshd can bind the address at once.
 */
export async function plugIntoBridge(plan: LabPlan, rootVeth: string, netns: string, cidrs: readonly string[]): Promise<void> {
  await runOk(["ip", "link", "add", rootVeth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
  await runOk(["ip", "link", "set", rootVeth, "master", plan.bridge]);
  await runOk(["ip", "link", "set", rootVeth, "up"]);
  if (cidrs.some((c) => c.includes(":"))) await runOk(inNetns(netns, ["sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0"]));
  for (const cidr of cidrs) await runOk(["ip", "-n", netns, "addr", "add", cidr, "dev", "eth0", ...addrFlags(cidr)]);
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

/** File in the state directory naming the lab's IPv6 /64, so that cleanup finds its root route after a crash. */
const LABNET6_FILE = "labnet6";
const LABNET6_PATTERN = /^fdc6:1218:(?:[0-9a-f]{1,2}:)?:\/64$/;

/**
 * A lab with IPv6 uplinks: an `unreachable` route for its /64 in the root namespace, so that a
 * packet the root itself sends to a lab IPv6 address fails at once ("no route to host") instead
 * of leaving by the root's default IPv6 route (the root has no lab IPv6 address and the bridge no
 * IPv6; lab-to-lab IPv6 is bridged and never meets this route). Nothing for an IPv4-only lab.
 */
export async function addRootRoute6(plan: LabPlan): Promise<void> {
  if (plan.labnet6Cidr === undefined) return;
  writeFileSync(join(plan.stateDir, LABNET6_FILE), `${plan.labnet6Cidr}\n`, { mode: 0o644 });
  await runOk(["ip", "-6", "route", "replace", "unreachable", plan.labnet6Cidr]);
}

/** Removes the route addRootRoute6 added for the lab of this state directory; returns its /64, if there was one. */
export async function removeRootRoute6(stateDir: string): Promise<string | undefined> {
  const file = join(stateDir, LABNET6_FILE);
  if (!existsSync(file)) return undefined;
  const cidr = readFileSync(file, "utf8").trim();
  if (!LABNET6_PATTERN.test(cidr)) throw new Error(`${file} holds ${JSON.stringify(cidr)}, not a lab IPv6 block; remove the file and its route by hand`);
  const existing = (await runOk(["ip", "-6", "route", "show", "type", "unreachable", "exact", cidr])).trim();
  if (existing === "") return undefined;
  await runOk(["ip", "-6", "route", "del", "unreachable", cidr]);
  return cidr;
}

/** The rules, in the order they end up at the top of their chains. */
export function rootRules(plan: LabPlan, physdev: boolean): string[][] {
  const c = ["-m", "comment", "--comment", plan.tag];
  const br = plan.bridge;
  const bridged = physdev ? ["-m", "physdev", "--physdev-is-bridged"] : [];
  return [
    ...bridgeForwardRules(br, bridged, c),
    // INPUT: the lab can answer the root namespace but not open connections to it.
    ["INPUT", "-i", br, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", ...c, "-j", "ACCEPT"],
    ...plan.rootPortsForController.map((port) => ["INPUT", "-i", br, "-s", plan.controller.address, "-p", "tcp", "--dport", String(port), ...c, "-j", "ACCEPT"]),
    ["INPUT", "-i", br, ...c, "-j", "DROP"],
  ];
}

/**
 * The ip6tables rules of a lab with IPv6 uplinks (none otherwise), in the order they end up at the
 * top of their chains. Bridged IPv6 frames cross the root's ip6tables FORWARD when br_netfilter's
 * bridge-nf-call-ip6tables is 1 (its policy may be DROP): lab-to-lab frames pass, nothing is routed
 * in or out of the bridge, and nothing from the lab reaches the root itself (which has no lab IPv6
 * address: the bridge keeps disable_ipv6=1).
 */
export function rootRules6(plan: LabPlan, physdev: boolean): string[][] {
  if (plan.labnet6Cidr === undefined) return [];
  const c = ["-m", "comment", "--comment", plan.tag];
  const br = plan.bridge;
  const bridged = physdev ? ["-m", "physdev", "--physdev-is-bridged"] : [];
  return [...bridgeForwardRules(br, bridged, c), ["INPUT", "-i", br, ...c, "-j", "DROP"]];
}

/**
 * FORWARD (seen by bridged frames through br_netfilter, and by anything the root would route):
 * lab-to-lab frames on the bridge pass even under a DROP policy; nothing is routed in or out.
 * The same for iptables and ip6tables.
 */
function bridgeForwardRules(br: string, bridged: readonly string[], c: readonly string[]): string[][] {
  return [
    ["FORWARD", "-i", br, "-o", br, ...bridged, ...c, "-j", "ACCEPT"],
    ["FORWARD", "-i", br, ...c, "-j", "DROP"],
    ["FORWARD", "-o", br, ...c, "-j", "DROP"],
  ];
}

/** True when `cmd` has the physdev match (probed with a -C that never matches a real rule). */
async function hasPhysdev(cmd: IptablesCmd, plan: LabPlan, log: (m: string) => void): Promise<boolean> {
  const probe = await run([cmd, "-w", "-C", "FORWARD", "-i", plan.bridge, "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"]);
  const physdev = !/physdev|No such file|Couldn't load match/i.test(probe.stderr);
  if (!physdev) log(`${cmd} physdev match unavailable (${probe.stderr.trim()}); FORWARD accepts -i ${plan.bridge} -o ${plan.bridge} without it`);
  return physdev;
}

async function insertRules(cmd: IptablesCmd, rules: readonly string[][]): Promise<void> {
  const byChain = new Map<string, string[][]>();
  for (const [chain, ...spec] of rules) {
    if (!chain) continue;
    const list = byChain.get(chain) ?? [];
    list.push(spec);
    byChain.set(chain, list);
  }
  for (const [chain, specs] of byChain) {
    for (const spec of [...specs].reverse()) await runOk([cmd, "-w", "-I", chain, "1", ...spec]);
  }
}

/** Inserts the rules at the top of their chains (before any Docker or other lab rules); ip6tables ones only for a lab with IPv6. */
export async function addRootRules(plan: LabPlan, log: (m: string) => void): Promise<void> {
  await insertRules("iptables", rootRules(plan, await hasPhysdev("iptables", plan, log)));
  if (plan.labnet6Cidr !== undefined) await insertRules("ip6tables", rootRules6(plan, await hasPhysdev("ip6tables", plan, log)));
}

/**
 * Deletes every root-namespace rule carrying the lab's comment, in any table and chain, of
 * iptables (default) or ip6tables. Only rules whose comment is exactly the tag: never by position.
 */
export async function removeRootRules(tag: string, cmd: IptablesCmd = "iptables"): Promise<number> {
  let removed = 0;
  for (const table of ["filter", "nat", "mangle", "raw"]) {
    let listing;
    try {
      listing = await run([cmd, "-w", "-t", table, "-S"]);
    } catch {
      return removed; // not installed: it holds no rules of ours
    }
    if (listing.code !== 0) continue;
    for (const line of listing.stdout.split("\n")) {
      if (!line.startsWith("-A ")) continue;
      const tokens = line.split(/\s+/).map((t) => t.replace(/^"(.*)"$/, "$1"));
      const i = tokens.indexOf("--comment");
      if (i < 0 || tokens[i + 1] !== tag) continue;
      await runOk([cmd, "-w", "-t", table, "-D", ...tokens.slice(1)]);
      removed++;
    }
  }
  return removed;
}
