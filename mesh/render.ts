// Rendering: wg-quick configuration text, iptables and docker commands, and the human plan.
import { shJoin } from "./shell.js";
import { INPUT_CHAIN, tableToken, toolOfTable, type HostFacts, type HostPlan, type IptablesRule, type NetworkPlan } from "./plan.js";
import { firstApply, networkCreateArgs } from "./commands.js";
import { ENDPOINT, INTERFACE_NAME, IPV4_CIDR, IPV6_CIDR, NO_CONTROL, OBJECT_NAME, UnsafeValueError, WIREGUARD_KEY, checked } from "../api/formats.js";

/** The INPUT → DOCKMESH-INPUT jump, which every mesh on a host shares. */
export const isSharedJump = (r: IptablesRule): boolean => r.chain === "INPUT" && r.args.at(-1) === INPUT_CHAIN;

export const REDACTED = "(redacted)";

/** iptables (ip6tables for an IPv6 rule) argv for a rule: op -C checks, -I inserts at the top, -D deletes. */
export function iptablesArgv(rule: IptablesRule, op: "-C" | "-I" | "-D"): string[] {
  return [rule.family === 6 ? "ip6tables" : "iptables", "-t", rule.table, op, rule.chain, ...rule.args];
}

/** The rule as `iptables -t T -S CHAIN` prints it. */
export function iptablesSaveLine(rule: IptablesRule): string {
  return shJoin(["-A", rule.chain, ...rule.args]);
}

/** The argv apply's ensure_network amounts to (mesh/commands.ts builds both). */
export function dockerNetworkCreateArgv(net: NetworkPlan): string[] {
  return ["docker", "network", "create", ...networkCreateArgs(net), net.docker.name];
}

/** An integer in [min, max], or UnsafeValueError naming the field. */
function integer(value: number, min: number, max: number, field: string): number {
  if (Number.isInteger(value) && value >= min && value <= max) return value;
  throw new UnsafeValueError(field, `${String(value)} is not an integer from ${min} to ${max}; refused`);
}

/** Text for one line of a config file: refused when it holds a control character (a newline would start a line of its own). */
const oneLine = (value: string, field: string): string => checked(value, NO_CONTROL, field, "one line of printable text");

/**
 * wg-quick configuration. PostUp/PostDown re-create the iptables rules whenever the interface
 * comes up (at boot, after Docker), so the mesh survives a reboot without the controller.
 * wg-quick runs every PostUp line as root, so each value is checked here against its format,
 * whatever its source (spec, status, a Secret, the host): a value with a newline would add lines
 * of its own, such as another PostUp. A refusal is an UnsafeValueError naming the field.
 */
export function renderWgConfig(net: NetworkPlan, privateKey: string | undefined): string {
  const wg = net.wireguard;
  const where = `MeshNetwork ${shownName(net.meshNetwork)}`;
  checked(net.meshNetwork, OBJECT_NAME, `${where} name`, "a Kubernetes object name");
  checked(wg.interface, INTERFACE_NAME, `${where} interface`, "an interface name");
  if (privateKey !== undefined) checked(privateKey, WIREGUARD_KEY, `${where} private key`, "a WireGuard key");
  const ruleLine = (r: IptablesRule, op: "-C" | "-I" | "-D", i: number): string => {
    const argv = iptablesArgv(r, op);
    argv.forEach((a, j) => oneLine(a, `${where} rule ${i + 1} (${r.table} ${r.chain}) argument ${j + 1}`));
    return shJoin(argv);
  };
  const lines = [
    `# Managed by dockmesh (MeshNetwork ${net.meshNetwork}); changes here are overwritten.`,
    "[Interface]",
    `PrivateKey = ${privateKey ?? REDACTED}`,
    `ListenPort = ${integer(wg.listenPort, 1, 65535, `${where} listenPort`)}`,
    `MTU = ${integer(wg.mtu, 68, 65535, `${where} mtu`)}`,
    // dockmesh's own chains first (idempotent), then every rule checked before it is inserted.
    ...[...new Set(net.rules.filter((r) => r.chain.startsWith("DOCKMESH-")).map((r) => `${tableToken(r)} ${r.chain}`))].map((tc) => {
      const [token, chain] = tc.split(" ") as [string, string];
      const { tool, table } = toolOfTable(token);
      return `PostUp = ${shJoin([tool, "-t", oneLine(table, `${where} rule table`), "-N", oneLine(chain, `${where} rule chain`)])} 2>/dev/null || true`;
    }),
    ...net.rules.map((r, i) => {
      if (!r.userOrForward) return `PostUp = ${ruleLine(r, "-C", i)} || ${ruleLine(r, "-I", i)}`;
      // The chain chosen on the host: the same line whatever Docker the host runs.
      const [user, fwd] = [
        { ...r, chain: "DOCKER-USER" },
        { ...r, chain: "FORWARD" },
      ];
      return `PostUp = if ip6tables -t filter -S DOCKER-USER >/dev/null 2>&1; then ${ruleLine(user, "-C", i)} || ${ruleLine(user, "-I", i)}; else ${ruleLine(fwd, "-C", i)} || ${ruleLine(fwd, "-I", i)}; fi`;
    }),
    // The shared INPUT jump stays: another mesh on the host may use the chain.
    ...net.rules.flatMap((r, i) =>
      isSharedJump(r)
        ? []
        : r.userOrForward
          ? [`PostDown = ${ruleLine({ ...r, chain: "DOCKER-USER" }, "-D", i)} 2>/dev/null || ${ruleLine({ ...r, chain: "FORWARD" }, "-D", i)} || true`]
          : [`PostDown = ${ruleLine(r, "-D", i)} || true`],
    ),
  ];
  for (const p of wg.peers) {
    const peer = `${where} peer ${shownName(p.machine)}`;
    checked(p.machine, OBJECT_NAME, `${peer} name`, "a Kubernetes object name");
    p.relayFor.forEach((m) => checked(m, OBJECT_NAME, `${peer} relayFor`, "a Kubernetes object name"));
    lines.push(
      "",
      "[Peer]",
      `# ${p.machine}${p.relayFor.length ? ` (relay for ${p.relayFor.join(", ")})` : ""}${p.path ? ` (behind NAT: ${p.path === "Direct" ? "direct" : "probing a direct path"})` : ""}`,
      `PublicKey = ${p.publicKey !== undefined ? checked(p.publicKey, WIREGUARD_KEY, `${peer} publicKey`, "a WireGuard key") : `(public key of ${p.machine}, generated on first apply)`}`,
    );
    // A probed peer has no addresses yet (its subnet stays with the relay): wg reads an empty AllowedIPs as an error.
    if (p.allowedIPs.length) {
      const cidr = (c: string) => (c.includes(":") ? checked(c, IPV6_CIDR, `${peer} allowedIPs`, "an IPv6 CIDR") : checked(c, IPV4_CIDR, `${peer} allowedIPs`, "an IPv4 CIDR"));
      lines.push(`AllowedIPs = ${p.allowedIPs.map(cidr).join(", ")}`);
    }
    if (p.endpoint !== undefined) lines.push(`Endpoint = ${checked(p.endpoint, ENDPOINT, `${peer} endpoint`, "host:port")}`);
    if (p.persistentKeepalive !== undefined) lines.push(`PersistentKeepalive = ${integer(p.persistentKeepalive, 1, 65535, `${peer} persistentKeepalive`)}`);
  }
  return lines.join("\n") + "\n";
}

/** A name for a message: as it is when printable, else quoted and cut. */
const shownName = (name: string): string => (NO_CONTROL.test(name) && name.length <= 253 ? name : JSON.stringify(name.slice(0, 40)));

const indent = (text: string, by = "    ") =>
  text
    .replace(/\n$/, "")
    .split("\n")
    .map((l) => (l ? by + l : l))
    .join("\n");

/** Host facts in one line, as the plan was made for them. */
export function describeFacts(f: HostFacts): string {
  return `uplinkMtu=${f.uplinkMtu ?? "unknown (1500)"} rawTable=${Boolean(f.rawTable)} inputDrops=${Boolean(f.inputDrops)} systemd=${Boolean(f.systemd)} resolvedStub=${Boolean(f.resolver?.resolvedStub)}`;
}

/**
 * The human-readable plan of one host, as `dockmesh plan` prints it. Deterministic. Each "$ " line
 * is a step a first apply runs on a host without any of it, in order, exactly as the controller
 * logs it ("[#] …"); file contents and what `wg-quick up` does itself are indented below.
 * `factsFrom` says where the host facts came from.
 */
export function renderHostPlan(host: HostPlan, ssh: string, factsFrom = "observed"): string {
  const out: string[] = [`Machine ${host.namespace}/${host.machine} (${ssh})`, `  host facts (${factsFrom}): ${describeFacts(host.facts)}`];
  if (host.networks.length === 0 && host.errors.length === 0) out.push("  not a member of any MeshNetwork: nothing to configure");
  // The message itself is among the plan's errors; here only which mesh is left out of this machine.
  for (const e of host.errors) out.push(`  ${e.kind} ${e.namespace}/${e.name}: REFUSED (${e.field}, see the errors): nothing of it configured on this machine`);
  for (const net of host.networks) {
    const v6 = net.subnetV6 !== undefined ? `, IPv6 subnet ${net.subnetV6}` : "";
    out.push(`  MeshNetwork ${host.namespace}/${net.meshNetwork}: subnet ${net.subnet}${v6}, interface ${net.wireguard.interface}, bridge ${net.docker.bridge}, mtu ${net.docker.mtu}`);
    if (net.dns) out.push(`  DNS: zone ${net.dns.zone} answered at ${net.dns.address}; containers ${net.dns.mode.mode}: ${net.dns.mode.reason}`);
    else out.push("  DNS: off (spec.dns.enabled is false)");
    const first = firstApply(net, renderWgConfig(net, undefined), host.facts);
    for (const s of first.run) {
      out.push(`    $ ${s.display}`);
      if (s.content !== undefined) out.push(indent(s.content, "        "));
      if (s.op !== "wg_up") continue;
      out.push("        # runs the config's PostUp rules and adds a route per AllowedIPs; one missing later is re-added with:");
      out.push(...first.byWgQuick.map((b) => `        ${b.display}`));
      if (net.routes.length === 0) out.push("        # (no routes: no peers yet)");
    }
    if (net.relay) out.push("    relay: forwards between NAT'd members of this mesh");
    for (const r of net.relayed) out.push(`    peer ${r.machine}: both behind NAT, relayed via ${r.via}`);
    for (const u of net.unreachable) out.push(`    peer ${u}: UNREACHABLE, both behind NAT and no member has an endpoint to relay through`);
  }
  return out.join("\n") + "\n";
}
