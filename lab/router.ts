// A NAT router namespace in front of one NAT'd host, like a home router: MASQUERADE out
// of its uplink, nothing in except replies and the management network (or the bastion).
import { addNetns, inNetns } from "./netns.js";
import { runOk } from "./proc.js";
import type { HostPlan, LabPlan, RouterPlan } from "./plan.js";
import { plugIntoBridge } from "./root-network.js";

export function routerRules(r: RouterPlan): string[][] {
  const c = ["-m", "comment", "--comment", "dockmesh-lab router"];
  return [
    ["-t", "nat", "-A", "POSTROUTING", "-s", r.lanCidr, "-o", "eth0", ...c, "-j", "MASQUERADE", ...(r.mapping === "per-destination" ? ["--random"] : [])],
    // Nothing unsolicited for the router itself, as home routers do. Accepting it would also let a
    // NAT'd peer's first probe claim the router's port in conntrack (an entry for a packet to the
    // router itself), so the host behind it would be mapped to another port and could never be
    // reached directly (issue 19).
    ["-A", "INPUT", "-i", "eth0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", ...c, "-j", "ACCEPT"],
    ["-A", "INPUT", "-i", "eth0", ...c, "-j", "DROP"],
    ["-P", "FORWARD", "DROP"],
    ["-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", ...c, "-j", "ACCEPT"],
    ["-A", "FORWARD", "-i", "lan0", "-o", "eth0", ...c, "-j", "ACCEPT"],
    ...r.managementSources.map((src) => ["-A", "FORWARD", "-i", "eth0", "-o", "lan0", "-s", src, ...c, "-j", "ACCEPT"]),
    // Anyone else trying to get into the LAN learns at once that it cannot (no silent drop to wait out).
    ["-A", "FORWARD", "-i", "eth0", "-o", "lan0", ...c, "-j", "REJECT", "--reject-with", "icmp-net-unreachable"],
  ];
}

/** Creates the router namespace and the LAN link; the host namespace must exist already. */
export async function createRouter(plan: LabPlan, host: HostPlan): Promise<void> {
  const r = host.router;
  if (!r) throw new Error(`host ${host.name} is not behind NAT`);
  await addNetns(r.netns);
  await plugIntoBridge(plan, r.rootVeth, r.netns, [`${r.wanAddress}/24`]);
  await runOk(["ip", "-n", r.netns, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", host.netns]);
  await runOk(["ip", "-n", r.netns, "addr", "add", `${r.lanRouterAddress}/24`, "dev", "lan0"]);
  await runOk(["ip", "-n", r.netns, "link", "set", "lan0", "up"]);
  await runOk(inNetns(r.netns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]));
  for (const rule of routerRules(r)) await runOk(inNetns(r.netns, ["iptables", "-w", ...rule]));
}
