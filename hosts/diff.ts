// Decide: the plan against what a host has now → the steps that converge it, and the
// conflicts it must not resolve by force. Pure. An empty result means the host is converged.
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import type { NetworkPlan, IptablesRule } from "../mesh/plan.js";
import { INPUT_CHAIN, NETWORK_LABEL, RULE_COMMENT_PREFIX, tableToken, toolOfTable } from "../mesh/plan.js";
import {
  createNetwork,
  enableUnit,
  reloadUnlessLater,
  ensureRule,
  linkMtu,
  linkUp,
  removeNetwork,
  replaceRule,
  deleteRule,
  routeDel,
  routeReplace,
  wgSync,
  wgUp,
  writeDropIn,
  writeWgConfig,
} from "../mesh/commands.js";
import { shJoin } from "../mesh/shell.js";
import { iptablesSaveLine, renderWgConfig } from "../mesh/render.js";
import { DOCKER_NETWORK_NAME, INTERFACE_NAME, UnsafeValueError } from "../api/formats.js";
import { displayArgv, type Step } from "./steps.js";
import { splitRuleLine, type HostObservation, type WgInterfaceState } from "./observe.js";
import { dnsRemovalSteps, dnsSteps } from "./dns-diff.js";
import { dnsPaths } from "../mesh/dns-plan.js";

export type Area = "docker" | "wireguard" | "rules" | "routes" | "unit" | "dns" | "teardown";

export interface AreaStep extends Step {
  area: Area;
  meshNetwork: string;
}

export interface Blocker {
  meshNetwork: string;
  area: Area;
  reason: string;
  message: string;
}

/** What was configured for a mesh before (from Machine.status), so leftovers can be removed. */
export interface PreviousNetwork {
  meshNetwork: string;
  interface: string;
  dockerNetwork?: string;
  /** It was dual-stack: ip6tables and IPv6 routes are looked at for its pieces too. */
  ipv6?: boolean;
}

export interface DiffInput {
  networks: readonly NetworkPlan[];
  privateKey: string;
  publicKey: string;
  previous?: readonly PreviousNetwork[];
}

export interface DiffResult {
  steps: AreaStep[];
  blockers: Blocker[];
}

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** The rule's words after "-A CHAIN". */
const ruleLineArgs = (line: string): string[] => splitRuleLine(line).slice(2);

function isOurs(line: string, iface: string): boolean {
  return ruleLineArgs(line).some((a, i, all) => a === `${RULE_COMMENT_PREFIX}${iface}` && all[i - 1] === "--comment");
}

/** The value after a non-negated option, e.g. "-o" → "dm0". */
function optionOf(words: readonly string[], opt: string): string | undefined {
  const i = words.indexOf(opt);
  return i > 0 && words[i - 1] !== "!" ? words[i + 1] : undefined;
}

/**
 * Whether an earlier rule can decide our rule's packets first: a verdict that ends the walk
 * (Docker's MASQUERADE, DOCKER-USER's final RETURN, a DROP) and does not pin another interface.
 * No dockmesh rule blocks another, of this mesh or of another one on the host: each matches its
 * own interface, bridge, subnet or resolver address only (two meshes' port-53 DROPs, which pin
 * no interface, would otherwise each move ahead of the other on every converge).
 */
function blocksOurs(line: string, ours: readonly string[]): boolean {
  // A DROP of ours (the DNS resolver's port) comes after nothing: an earlier verdict only decides
  // packets it drops too, or that it lets through to the chain's end.
  if (optionOf(ours, "-j") === "DROP") return false;
  const words = splitRuleLine(line);
  if (words.some((w, i) => words[i - 1] === "--comment" && w.startsWith(RULE_COMMENT_PREFIX))) return false;
  if (!/^(MASQUERADE|SNAT|DROP|REJECT|RETURN)$/.test(optionOf(words, "-j") ?? "")) return false;
  for (const opt of ["-i", "-o"]) {
    const theirs = optionOf(words, opt);
    const mine = optionOf(ours, opt);
    if (theirs !== undefined && mine !== undefined && theirs !== mine) return false;
  }
  return true;
}

function liveMatches(plan: NetworkPlan, live: WgInterfaceState | undefined, publicKey: string): boolean {
  if (!live) return false;
  if (live.publicKey !== publicKey || live.listenPort !== plan.wireguard.listenPort) return false;
  const want = plan.wireguard.peers.filter((p) => p.publicKey);
  if (want.length !== live.peers.length) return false;
  const byKey = new Map(live.peers.map((p) => [p.publicKey, p]));
  return want.every((p) => {
    const l = byKey.get(p.publicKey!);
    if (!l) return false;
    if ([...p.allowedIPs].sort().join(",") !== l.allowedIPs.join(",")) return false;
    if ((p.persistentKeepalive ?? 0) !== (l.persistentKeepalive ?? 0)) return false;
    // A configured IP endpoint must be live; a DNS one is resolved by wg, so it cannot be compared.
    if (p.endpoint && isIP(p.endpoint.replace(/^\[|\]?:\d+$/g, "")) && l.endpoint !== p.endpoint) return false;
    return true;
  });
}

function networkSteps(net: NetworkPlan, obs: HostObservation, privateKey: string, publicKey: string, steps: AreaStep[], blockers: Blocker[]): void {
  const mesh = net.meshNetwork;
  const iface = net.wireguard.interface;
  const add = (area: Area, s: Step) => steps.push({ ...s, area, meshNetwork: mesh });

  // The config first: a value it refuses (a key with a newline, a name that is no interface name)
  // blocks the whole mesh on this host, so nothing of it is half-configured.
  let config: string;
  try {
    config = renderWgConfig(net, privateKey);
  } catch (err) {
    if (!(err instanceof UnsafeValueError)) throw err;
    blockers.push({ meshNetwork: mesh, area: "wireguard", reason: "UnsafeValue", message: `refused to configure it: ${err.message}` });
    return;
  }

  // Every command comes from the plan (mesh/commands.ts); here only which ones this host needs.
  // 1. Docker network.
  const existing = obs.networks.get(net.docker.name);
  const ensure = createNetwork(net);
  if (!existing) {
    add("docker", ensure);
  } else {
    const differs: string[] = [];
    if (existing.subnet !== net.docker.subnet) differs.push(`subnet ${existing.subnet ?? "(none)"} instead of ${net.docker.subnet}`);
    if (existing.subnetV6 !== net.docker.subnetV6) differs.push(`IPv6 subnet ${existing.subnetV6 ?? "(none)"} instead of ${net.docker.subnetV6 ?? "(none)"}`);
    for (const [k, v] of Object.entries(net.docker.options)) {
      // Docker before 28.2 keeps unknown options verbatim too, so all three compare.
      if (existing.options[k] !== v) differs.push(`option ${k}=${existing.options[k] ?? "(unset)"} instead of ${v}`);
    }
    if (existing.labels[NETWORK_LABEL] !== iface) {
      blockers.push({
        meshNetwork: mesh,
        area: "docker",
        reason: "NetworkNameTaken",
        message: `a Docker network named ${net.docker.name} exists that dockmesh did not create; remove it (docker network rm ${net.docker.name}) or set the MeshNetwork's spec.dockerNetwork to another name`,
      });
    } else if (differs.length && existing.containers > 0) {
      blockers.push({
        meshNetwork: mesh,
        area: "docker",
        reason: "NetworkInUse",
        message: `Docker network ${net.docker.name} has ${differs.join(", ")} but ${existing.containers} container(s) attached; dockmesh does not recreate it under running containers: stop or disconnect them and it will be recreated`,
      });
    } else if (differs.length) {
      add("docker", removeNetwork(net.docker.name, differs.join(", ")));
      add("docker", ensure);
    }
  }

  // 2. Files: the wg-quick config (0600: it holds the private key) and the systemd drop-in.
  const files = obs.ifaces.get(iface)?.files ?? new Map<string, string | undefined>();
  const configChanged = files.get(net.wireguard.configPath) !== sha256(config);
  if (configChanged) add("wireguard", writeWgConfig(net, config));
  const dropInChanged = files.get(net.unit.dropInPath) !== sha256(net.unit.dropInContent);
  if (dropInChanged) add("unit", writeDropIn(net));

  // 3. The interface: up from the config when missing; otherwise changed live (no restart).
  const link = obs.links.get(iface);
  if (!link) {
    add("wireguard", wgUp(iface));
  } else {
    if (!link.up) add("wireguard", linkUp(iface));
    if (configChanged || !liveMatches(net, obs.wg.get(iface), publicKey)) add("wireguard", wgSync(iface));
    if (link.mtu !== net.wireguard.mtu) add("wireguard", linkMtu(iface, net.wireguard.mtu));
  }

  // 4. Routes to every peer subnet through the interface. A fresh `wg-quick up` of this config
  // adds a route for every AllowedIPs and runs its PostUp rules (step 5) itself: planning them
  // again cost a first apply ~15 processes per host. The re-observe after the apply checks it.
  const freshUp = !link;
  const byWgQuick = new Set(freshUp ? net.wireguard.peers.flatMap((p) => p.allowedIPs) : []);
  const have = new Set(obs.routes.filter((r) => r.dev === iface).map((r) => r.dst));
  const want = new Set(net.routes.map((r) => r.destination));
  for (const r of net.routes) {
    if (byWgQuick.has(r.destination)) continue;
    if (!have.has(r.destination) || !link?.up) add("routes", routeReplace({ destination: r.destination, dev: iface }));
  }
  for (const dst of [...have].sort()) if (!want.has(dst)) add("routes", routeDel(dst, iface));

  // 5. iptables: every planned rule present and ahead of the verdicts it must precede; ours not planned removed.
  ruleSteps(iface, net.rules, obs, mesh, steps, blockers, freshUp);

  // 6. Boot persistence; a changed drop-in is read by the daemon-reload of step 7 when it has one.
  const dns = dnsSteps(iface, net.dns, obs);
  if (!obs.ifaces.get(iface)?.enabled) add("unit", enableUnit(net));
  if (dropInChanged && obs.systemd) for (const s of reloadUnlessLater(dns)) add("unit", s);

  // 7. The mesh's DNS resolver, or its removal when the mesh's DNS was turned off.
  for (const s of dns) add("dns", s);
}

const isBuiltinInput = (r: IptablesRule) => r.table === "filter" && r.chain === "INPUT";

/** `freshUp`: the interface comes up from our config in this apply, whose PostUp adds missing rules. */
function ruleSteps(iface: string, rules: readonly IptablesRule[], obs: HostObservation, mesh: string, steps: AreaStep[], blockers: Blocker[], freshUp: boolean): void {
  const chains = new Set(rules.map((r) => `${tableToken(r)}/${r.chain}`));
  for (const chainKey of [...chains].sort()) {
    const lines = obs.iptables.get(chainKey);
    // dockmesh's own chains are created on demand; the filter table's INPUT is always there.
    if (lines === undefined && !chainKey.includes("/DOCKMESH-") && chainKey !== "filter/INPUT") {
      const [token, chain] = chainKey.split("/") as [string, string];
      const { tool, table } = toolOfTable(token);
      blockers.push({
        meshNetwork: mesh,
        area: "rules",
        reason: "ChainMissing",
        message:
          tool === "ip6tables"
            ? `ip6tables chain ${table} ${chain} is missing; Docker creates DOCKER-USER for IPv6 when its ip6tables option is on (the default since Docker 27): set "ip6tables": true in /etc/docker/daemon.json, or remove the MeshNetwork's spec.cidrV6`
            : `iptables chain ${table} ${chain} is missing; Docker creates DOCKER-USER when it manages iptables: start Docker with iptables enabled`,
      });
    }
  }
  for (const r of rules) {
    const lines = obs.iptables.get(`${tableToken(r)}/${r.chain}`) ?? (r.chain.startsWith("DOCKMESH-") || isBuiltinInput(r) ? [] : undefined);
    if (lines === undefined) continue;
    const want = iptablesSaveLine(r);
    const at = lines.indexOf(want);
    const firstBlocker = lines.findIndex((l) => blocksOurs(l, r.args));
    if (at < 0 && freshUp) continue;
    if (at < 0) steps.push({ ...ensureRule(r), area: "rules", meshNetwork: mesh });
    else if (firstBlocker >= 0 && firstBlocker < at) steps.push({ ...replaceRule(r, `move ahead of ${lines[firstBlocker]}`), area: "rules", meshNetwork: mesh });
    else if (lines.indexOf(want, at + 1) >= 0) steps.push({ ...replaceRule(r, "once, not twice"), area: "rules", meshNetwork: mesh });
  }
  const wanted = new Set(rules.map((r) => `${tableToken(r)}/${iptablesSaveLine(r)}`));
  for (const [chainKey, lines] of obs.iptables) {
    const [table, chain] = chainKey.split("/") as [string, string];
    for (const l of lines ?? []) {
      if (!isOurs(l, iface) || wanted.has(`${table}/${l}`)) continue;
      steps.push({ ...deleteRule(table, chain, ruleLineArgs(l)), area: "rules", meshNetwork: mesh });
    }
  }
}

/**
 * The INPUT jump and DOCKMESH-INPUT are shared by the meshes on a host: once no rule of ours
 * is left in the chain (after `removing` go), they go too. Per family: `table` is "filter" or
 * ip6tables' "filter6" (IPv6 uplinks open their port there).
 */
function sharedChainSteps(obs: HostObservation, table: "filter" | "filter6", removing: ReadonlySet<string>, stillWanted: boolean, meshNetwork: string): AreaStep[] {
  if (stillWanted) return [];
  const chain = obs.iptables.get(`${table}/${INPUT_CHAIN}`);
  const jump = (obs.iptables.get(`${table}/INPUT`) ?? []).filter((l) => splitRuleLine(l).at(-1) === INPUT_CHAIN);
  if (chain === undefined && jump.length === 0) return [];
  const others = (chain ?? []).filter((l) => !removing.has(l) && splitRuleLine(l).some((w) => w.startsWith(RULE_COMMENT_PREFIX)));
  if (others.length) return [];
  const { tool } = toolOfTable(table);
  const steps: AreaStep[] = jump.map((l) => {
    const args = ruleLineArgs(l);
    return { op: "delete_rule", args: [table, "INPUT", ...args], display: displayArgv([tool, "-D", "INPUT", ...args]), area: "teardown", meshNetwork };
  });
  if (chain !== undefined) steps.push({ op: "drop_chain", args: [table, INPUT_CHAIN], display: `${tool} -F ${INPUT_CHAIN}; ${tool} -X ${INPUT_CHAIN}`, area: "teardown", meshNetwork });
  return steps;
}

/**
 * Steps removing everything dockmesh put on the host for one interface. The names come from
 * Machine.status, which others may write: only what the host itself shows as ours is touched —
 * rules tagged dockmesh:<iface>, a Docker network with our label, and an interface, its routes, unit
 * and files only when its wg-quick config or unit drop-in starts with our "Managed by dockmesh" line.
 * A name that is no interface (or Docker network) name touches nothing.
 */
export function teardownSteps(prev: PreviousNetwork, obs: HostObservation): AreaStep[] {
  const iface = prev.interface;
  if (!INTERFACE_NAME.test(iface)) return [];
  const steps: AreaStep[] = [];
  const add = (s: Step) => steps.push({ ...s, area: "teardown", meshNetwork: prev.meshNetwork });
  const f = obs.ifaces.get(iface);
  const ours = (f?.mine.size ?? 0) > 0;
  // A WireGuard interface (wg lists it) of ours: docker0 or a user's own wg0 never qualify.
  const ourLink = ours && obs.links.has(iface) && obs.wg.has(iface);
  if (ourLink) add({ op: "wg_down", args: [iface], display: `wg-quick down ${iface}` });
  for (const [chainKey, lines] of obs.iptables) {
    const [table, chain] = chainKey.split("/") as [string, string];
    for (const l of lines ?? []) {
      if (!isOurs(l, iface)) continue;
      const args = ruleLineArgs(l);
      const t = toolOfTable(table);
      add({ op: "delete_rule", args: [table, chain, ...args], display: displayArgv([t.tool, "-t", t.table, "-D", chain, ...args]) });
    }
  }
  if (ourLink) for (const r of obs.routes.filter((x) => x.dev === iface)) add({ op: "route_del", args: [r.dst, iface], display: `ip route del ${r.dst} dev ${iface}` });
  const net = prev.dockerNetwork && DOCKER_NETWORK_NAME.test(prev.dockerNetwork) ? obs.networks.get(prev.dockerNetwork) : undefined;
  if (net && net.labels[NETWORK_LABEL] === iface) add({ op: "remove_network", args: [net.name], display: `docker network rm ${net.name}` });
  if (ours && f?.enabled) add({ op: "disable_unit", args: [iface], display: `systemctl disable wg-quick@${iface}.service` });
  const dns = new Set(Object.values(dnsPaths(iface)));
  for (const path of [...(f?.mine ?? [])].sort()) if (!dns.has(path)) add({ op: "remove_file", args: [path], display: `rm ${path}` });
  // The resolver last: stopped, disabled, its files, systemd-resolved told, its directories.
  for (const s of dnsRemovalSteps(iface, obs)) add(s);
  return steps;
}

/** Whether anything of ours is left on the host for this interface. */
export function hasLeftovers(prev: PreviousNetwork, obs: HostObservation): boolean {
  return teardownSteps(prev, obs).length > 0;
}

export function diffHost(input: DiffInput, obs: HostObservation): DiffResult {
  const steps: AreaStep[] = [];
  const blockers: Blocker[] = [];
  for (const net of input.networks) networkSteps(net, obs, input.privateKey, input.publicKey, steps, blockers);
  const planned = new Set(input.networks.map((n) => n.wireguard.interface));
  const plannedNets = new Set(input.networks.map((n) => n.docker.name));
  for (const prev of input.previous ?? []) {
    if (planned.has(prev.interface)) continue;
    const p = prev.dockerNetwork && plannedNets.has(prev.dockerNetwork) ? { meshNetwork: prev.meshNetwork, interface: prev.interface } : prev;
    steps.push(...teardownSteps(p, obs));
  }
  for (const table of ["filter", "filter6"] as const) {
    const wantsChain = input.networks.some((n) => n.rules.some((r) => r.chain === INPUT_CHAIN && tableToken(r) === table));
    const removing = new Set(steps.filter((s) => s.op === "delete_rule" && s.args[0] === table && s.args[1] === INPUT_CHAIN).map((s) => shJoin(["-A", ...s.args.slice(1)])));
    steps.push(...sharedChainSteps(obs, table, removing, wantsChain, input.networks[0]?.meshNetwork ?? "-"));
  }
  // A blocked mesh gets no steps at all: no half-configured network.
  const blocked = new Set(blockers.map((b) => b.meshNetwork));
  return { steps: steps.filter((s) => s.area === "teardown" || !blocked.has(s.meshNetwork)), blockers };
}
