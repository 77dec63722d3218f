// A lab host's own network state: eth0 and its routes (the lab's addresses only, never a
// default route), the firewall it "boots" with, and the reset a reboot does. A host with an
// IPv6 uplink also gets its IPv6 address (no duplicate address detection) and ip6tables rules.
import { inNetns } from "./netns.js";
import { run, runOk } from "./proc.js";
import { uplinkCidrs, type HostPlan } from "./plan.js";
import { addrFlags } from "./root-network.js";

const TAG = ["-m", "comment", "--comment", "dockmesh-lab"];

/** Rules the host has from boot: a firewalled cloud VM's INPUT policy, a security group's SSH limit. */
export function hostFirewallRules(host: HostPlan): string[][] {
  const rules: string[][] = [];
  if (host.inputPolicy === "DROP") {
    rules.push(
      ["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"],
      ["-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
      ["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
      ["-P", "INPUT", "DROP"],
    );
  }
  if (host.sshOnlyFrom) {
    rules.push(["-t", "raw", "-A", "PREROUTING", "-p", "tcp", "--dport", "22", "!", "-s", host.sshOnlyFrom, ...TAG, "-j", "DROP"]);
  }
  return rules;
}

/**
 * The ip6tables side of hostFirewallRules for a host with an IPv6 uplink (none otherwise): the same
 * INPUT policy, with neighbour discovery let in (ARP, its IPv4 counterpart, never meets iptables).
 */
export function hostFirewallRules6(host: HostPlan): string[][] {
  if (host.address6 === undefined || host.inputPolicy !== "DROP") return [];
  return [
    ["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"],
    ["-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
    ["-A", "INPUT", "-p", "ipv6-icmp", "--icmpv6-type", "neighbour-solicitation", "-j", "ACCEPT"],
    ["-A", "INPUT", "-p", "ipv6-icmp", "--icmpv6-type", "neighbour-advertisement", "-j", "ACCEPT"],
    ["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
    ["-P", "INPUT", "DROP"],
  ];
}

export async function applyHostNetwork(host: HostPlan): Promise<void> {
  const ip = (...a: string[]): Promise<string> => runOk(["ip", "-n", host.netns, ...a]);
  await ip("link", "set", "lo", "up");
  if (host.address6 !== undefined) await runOk(inNetns(host.netns, ["sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0"]));
  for (const cidr of uplinkCidrs(host)) await ip("addr", "replace", cidr, "dev", "eth0", ...addrFlags(cidr));
  await ip("link", "set", "eth0", "up");
  for (const r of host.routes) await ip("route", "replace", r.dst, "via", r.via, "dev", "eth0");
}

export async function applyHostFirewall(host: HostPlan): Promise<void> {
  for (const rule of hostFirewallRules(host)) await runOk(inNetns(host.netns, ["iptables", "-w", ...rule]));
  for (const rule of hostFirewallRules6(host)) await runOk(inNetns(host.netns, ["ip6tables", "-w", ...rule]));
}

/** What a reboot loses: every link but lo and eth0, addresses, routes, policy rules, iptables, sysctls. */
export async function resetHostNetwork(host: HostPlan): Promise<void> {
  const ns = host.netns;
  const links = await runOk(["ip", "-n", ns, "-o", "link", "show"]);
  for (const line of links.split("\n")) {
    const name = /^\d+: ([^:@]+)[:@]/.exec(line)?.[1];
    if (!name || name === "lo" || name === "eth0") continue;
    const r = await run(["ip", "-n", ns, "link", "delete", name]);
    // A veth is gone once its peer is; anything else failing is an error.
    if (r.code !== 0 && !/Cannot find device/.test(r.stderr)) throw new Error(`ip -n ${ns} link delete ${name}: ${r.stderr.trim()}`);
  }
  await runOk(["ip", "-n", ns, "addr", "flush", "dev", "eth0"]);
  await runOk(["ip", "-n", ns, "route", "flush", "table", "main"]);
  await runOk(["ip", "-n", ns, "rule", "flush"]);
  await runOk(["ip", "-n", ns, "rule", "add", "pref", "32766", "lookup", "main"]);
  await runOk(["ip", "-n", ns, "rule", "add", "pref", "32767", "lookup", "default"]);
  await runOk(inNetns(ns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"]));
  for (const table of ["filter", "nat", "mangle", "raw", "security"]) {
    await runOk(inNetns(ns, ["iptables", "-w", "-t", table, "-F"]));
    await runOk(inNetns(ns, ["iptables", "-w", "-t", table, "-X"]));
  }
  for (const chain of ["INPUT", "FORWARD", "OUTPUT"]) await runOk(inNetns(ns, ["iptables", "-w", "-P", chain, "ACCEPT"]));
  // ip6tables too on a host with an IPv6 uplink (its boot firewall has ip6tables rules).
  if (host.address6 !== undefined) {
    for (const table of ["filter", "nat", "mangle", "raw", "security"]) {
      await runOk(inNetns(ns, ["ip6tables", "-w", "-t", table, "-F"]));
      await runOk(inNetns(ns, ["ip6tables", "-w", "-t", table, "-X"]));
    }
    for (const chain of ["INPUT", "FORWARD", "OUTPUT"]) await runOk(inNetns(ns, ["ip6tables", "-w", "-P", chain, "ACCEPT"]));
  }
}
