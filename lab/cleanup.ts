// Removal of everything carrying a lab prefix: what destroy() does after stopping the hosts,
// and what createLab() does first, for the leftovers of a crashed run. Objects are matched by
// "<prefix>-" (the prefix itself never contains "-"), so labs with other prefixes are untouched.
import { existsSync, readdirSync, rmSync } from "node:fs";
import { cgroupRoots, sweepCgroup } from "./cgroups.js";
import { deleteNetns, listNetns, pidsInNetns } from "./netns.js";
import { PREFIX_PATTERN, tagFor } from "./plan.js";
import { run, stopPids } from "./proc.js";
import { listPrefixedLinks, removeRootRoute6, removeRootRules } from "./root-network.js";

export interface CleanupReport {
  processes: number;
  containerProcesses: number;
  namespaces: string[];
  links: string[];
  /** Root-namespace iptables rules carrying the lab's tag. */
  rules: number;
  /** Root-namespace ip6tables rules carrying the lab's tag (a lab with IPv6 uplinks). */
  rules6: number;
  /** The root's unreachable route for the lab's IPv6 /64 (a lab with IPv6 uplinks), when it was there. */
  route6: string | undefined;
  stateDir: boolean;
}

export function isEmptyReport(r: CleanupReport): boolean {
  return r.processes + r.containerProcesses + r.namespaces.length + r.links.length + r.rules + r.rules6 === 0 && r.route6 === undefined && !r.stateDir;
}

function prefixedCgroups(prefix: string): string[] {
  const names = new Set<string>();
  for (const root of cgroupRoots()) {
    try {
      for (const e of readdirSync(root)) if (e.startsWith(`${prefix}-`)) names.add(e);
    } catch {
      // hierarchy not readable
    }
  }
  return [...names];
}

export async function clearLab(prefix: string, stateDir: string): Promise<CleanupReport> {
  if (!PREFIX_PATTERN.test(prefix)) throw new Error(`refusing to clean up lab prefix "${prefix}"`);
  const report: CleanupReport = { processes: 0, containerProcesses: 0, namespaces: [], links: [], rules: 0, rules6: 0, route6: undefined, stateDir: false };
  const namespaces = listNetns().filter((n) => n.startsWith(`${prefix}-`));
  // Everything running in the lab's namespaces: dockerd, containerd, shims, sshd and its
  // sessions, wireguard-go, holders. Found by namespace, never by process name. SIGKILL at
  // once: everything they kept is deleted next.
  const pids = [...new Set(namespaces.flatMap(pidsInNetns))];
  report.processes = pids.length;
  await stopPids(pids, 0);
  for (const cg of prefixedCgroups(prefix)) report.containerProcesses += await sweepCgroup(cg);
  for (const ns of namespaces) {
    await deleteNetns(ns);
    report.namespaces.push(ns);
  }
  // Root ends of veths vanish with their peers' namespaces; the bridge (and any stray veth) goes here.
  for (const link of await listPrefixedLinks(prefix)) {
    const r = await run(["ip", "link", "delete", link]);
    if (r.code === 0) report.links.push(link);
    // Gone meanwhile: a veth vanishes when its peer's namespace is deleted, which the kernel may finish after the listing.
    else if (!/Cannot find device|No such device/.test(r.stderr)) throw new Error(`ip link delete ${link}: ${r.stderr.trim()}`);
  }
  report.rules = await removeRootRules(tagFor(prefix));
  report.rules6 = await removeRootRules(tagFor(prefix), "ip6tables");
  report.route6 = await removeRootRoute6(stateDir);
  if (existsSync(stateDir)) {
    try {
      rmSync(stateDir, { recursive: true, force: true, maxRetries: 3 });
      report.stateDir = true;
    } catch (e) {
      throw new Error(`removing the lab's state directory ${stateDir}`, { cause: e });
    }
  }
  return report;
}

export function describeCleanup(r: CleanupReport): string {
  const parts: string[] = [];
  if (r.processes) parts.push(`${r.processes} processes`);
  if (r.containerProcesses) parts.push(`${r.containerProcesses} container processes`);
  if (r.namespaces.length) parts.push(`namespaces ${r.namespaces.join(" ")}`);
  if (r.links.length) parts.push(`links ${r.links.join(" ")}`);
  if (r.rules) parts.push(`${r.rules} iptables rules`);
  if (r.rules6) parts.push(`${r.rules6} ip6tables rules`);
  if (r.route6) parts.push(`the IPv6 route ${r.route6}`);
  if (r.stateDir) parts.push("the state directory");
  return parts.join(", ") || "nothing";
}
