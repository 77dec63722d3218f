// Every command dockmesh runs on a host to configure a mesh network, built from the plan in one
// place: the apply (hosts/diff.ts picks the ones a host needs) and `dockmesh plan` (which prints
// what a first apply runs) both take them from here, so what plan prints is what apply runs.
// Each is an op of the apply script (hosts/steps.ts) with its arguments, and the command it
// amounts to as a person reads it (the "[#] …" lines of the controller's log). Pure.
import { shJoin } from "./shell.js";
import { tableToken, toolOfTable, type HostFacts, type IptablesRule, type NetworkPlan, type Route } from "./plan.js";
import { dnsPaths, type DnsPlan } from "./dns-plan.js";

export type StepOp =
  | "ensure_network"
  /** A first converge's network (hosts/fresh.ts): created, or nothing applied when one of that name exists. */
  | "fresh_network"
  | "remove_network"
  | "write_file"
  | "remove_file"
  | "wg_up"
  | "wg_down"
  | "wg_sync"
  | "link_up"
  | "link_mtu"
  | "route_replace"
  | "route_del"
  | "ensure_rule"
  | "replace_rule"
  | "delete_rule"
  | "drop_chain"
  | "enable_unit"
  | "disable_unit"
  | "daemon_reload"
  | "dns_up"
  | "dns_down"
  | "dns_enable"
  | "dns_disable"
  | "dns_clean"
  | "resolved_reload";

export interface Step {
  op: StepOp;
  args: string[];
  /** What a person would read: the command it amounts to. Never holds secrets. */
  display: string;
  /** write_file only: the file's content, sent over stdin. */
  content?: string;
}

const sorted = (o: Record<string, string>) => Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** `docker network create` arguments between "create" and the name: driver, subnet(s), labels, options (sorted). */
export function networkCreateArgs(net: NetworkPlan): string[] {
  return [
    "--driver",
    "bridge",
    "--subnet",
    net.docker.subnet,
    ...(net.docker.subnetV6 !== undefined ? ["--ipv6", "--subnet", net.docker.subnetV6] : []),
    ...sorted(net.docker.labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
    ...sorted(net.docker.options).flatMap(([k, v]) => ["-o", `${k}=${v}`]),
  ];
}

export const createNetwork = (net: NetworkPlan): Step => {
  const args = networkCreateArgs(net);
  return { op: "ensure_network", args: [net.docker.name, ...args], display: shJoin(["docker", "network", "create", ...args, net.docker.name]) };
};

/** `why`: what differs, shown after the command. */
export const removeNetwork = (name: string, why: string): Step => ({ op: "remove_network", args: [name], display: `${shJoin(["docker", "network", "rm", name])}  # ${why}` });

/** The wg-quick config; mode 0600, it holds the private key (which the display never shows). */
export const writeWgConfig = (net: NetworkPlan, content: string): Step => ({
  op: "write_file",
  args: [net.wireguard.configPath, "600", "700"],
  display: `write ${net.wireguard.configPath} (mode 0600)`,
  content,
});

export const writeDropIn = (net: NetworkPlan): Step => ({ op: "write_file", args: [net.unit.dropInPath, "644", "755"], display: `write ${net.unit.dropInPath}`, content: net.unit.dropInContent });

export const wgUp = (iface: string): Step => ({ op: "wg_up", args: [iface], display: `wg-quick up ${iface}` });
export const linkUp = (iface: string): Step => ({ op: "link_up", args: [iface], display: `ip link set dev ${iface} up` });
export const wgSync = (iface: string): Step => ({ op: "wg_sync", args: [iface], display: `wg syncconf ${iface} <(wg-quick strip ${iface})` });
export const linkMtu = (iface: string, mtu: number): Step => ({ op: "link_mtu", args: [iface, String(mtu)], display: `ip link set dev ${iface} mtu ${mtu}` });

export const routeReplace = (r: Route): Step => ({ op: "route_replace", args: [r.destination, r.dev], display: `ip route replace ${r.destination} dev ${r.dev}` });
export const routeDel = (dst: string, dev: string): Step => ({ op: "route_del", args: [dst, dev], display: `ip route del ${dst} dev ${dev}` });

// Rule steps name the table by its token (plan.ts tableToken: "filter6" is ip6tables' filter).
const ruleDisplay = (r: IptablesRule) => shJoin([toolOfTable(tableToken(r)).tool, "-t", r.table, "-I", r.chain, ...r.args]);
export const ensureRule = (r: IptablesRule): Step => ({ op: "ensure_rule", args: [tableToken(r), r.chain, ...r.args], display: ruleDisplay(r) });
/** Deleted wherever it is and inserted at the top; `why` is shown after the command. */
export const replaceRule = (r: IptablesRule, why: string): Step => ({ op: "replace_rule", args: [tableToken(r), r.chain, ...r.args], display: `${ruleDisplay(r)}  # ${why}` });
/** `table`: a table token, as an observation's key names it. */
export const deleteRule = (table: string, chain: string, args: readonly string[]): Step => {
  const t = toolOfTable(table);
  return { op: "delete_rule", args: [table, chain, ...args], display: shJoin([t.tool, "-t", t.table, "-D", chain, ...args]) };
};

export const enableUnit = (net: NetworkPlan): Step => ({ op: "enable_unit", args: [net.wireguard.interface], display: `systemctl enable ${net.unit.unit}` });
export const daemonReload = (): Step => ({ op: "daemon_reload", args: [], display: "systemctl daemon-reload" });

// The mesh DNS resolver (mesh/dns-plan.ts): its files, its process, its unit.
export const writeDnsFile = (path: string, content: string): Step => ({ op: "write_file", args: [path, "644", "755"], display: `write ${path}`, content });
/** Starts the resolver, or restarts it on a changed config. */
export const dnsUp = (d: DnsPlan): Step => ({ op: "dns_up", args: [d.iface], display: `start ${d.unit.name} (dnsmasq --conf-file=${d.conf.path})` });
export const dnsDown = (iface: string): Step => ({ op: "dns_down", args: [iface], display: `stop ${dnsPaths(iface).unit} (dnsmasq)` });
export const dnsEnable = (d: DnsPlan): Step => ({ op: "dns_enable", args: [d.iface], display: `systemctl enable ${d.unit.name}` });
export const dnsDisable = (iface: string): Step => ({ op: "dns_disable", args: [iface], display: `systemctl disable ${dnsPaths(iface).unit}` });
export const dnsClean = (iface: string): Step => ({ op: "dns_clean", args: [iface], display: `rmdir ${dnsPaths(iface).recordsDir} ${dnsPaths(iface).dir}` });
export const resolvedReload = (): Step => ({ op: "resolved_reload", args: [], display: "systemctl try-reload-or-restart systemd-resolved" });

export interface FirstApply {
  /** The steps, in order, that apply runs on a host that has nothing of this network yet. */
  run: Step[];
  /**
   * What `wg-quick up` does itself from the config (its PostUp rules, a route per AllowedIPs),
   * as the commands apply runs to re-add any one of them that goes missing later.
   */
  byWgQuick: Step[];
}

/**
 * A first apply of one network: what hosts/diff.ts gives for a host without any of it (checked
 * by test/unit/plan-apply.test.ts, and on a lab host by test/e2e/plan-apply.test.ts).
 */
export function firstApply(net: NetworkPlan, config: string, facts: HostFacts): FirstApply {
  const dns = net.dns && facts.resolver?.dnsmasq !== false ? firstDnsApply(net.dns, facts) : [];
  return {
    run: [createNetwork(net), writeWgConfig(net, config), writeDropIn(net), wgUp(net.wireguard.interface), enableUnit(net), ...(facts.systemd ? reloadUnlessLater(dns) : []), ...dns],
    byWgQuick: [...net.rules.map(ensureRule), ...net.routes.map(routeReplace)],
  };
}

/**
 * The wg-quick drop-in's `systemctl daemon-reload`, unless `later` (the same interface's DNS steps,
 * which come after the drop-in is written) has one: one reload reads both units, and on a
 * systemd host each costs PID 1 a reload of every unit. Should a step fail before the reload,
 * the DNS unit, written right before it, is not written yet, so the next converge plans both again.
 */
export const reloadUnlessLater = (later: readonly Step[]): Step[] => (later.some((s) => s.op === "daemon_reload") ? [] : [daemonReload()]);

/** A first apply of a mesh's resolver (hosts/dns-diff.ts gives the same for a host without it). */
export function firstDnsApply(d: DnsPlan, facts: HostFacts): Step[] {
  return [
    writeDnsFile(d.conf.path, d.conf.content),
    writeDnsFile(d.unit.path, d.unit.content),
    ...(facts.systemd ? [daemonReload()] : []),
    ...(d.resolvedDropIn ? [writeDnsFile(d.resolvedDropIn.path, d.resolvedDropIn.content), resolvedReload()] : []),
    dnsEnable(d),
    dnsUp(d),
  ];
}
