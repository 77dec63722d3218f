// Rendering: wg-quick configuration text, iptables and docker commands, and the human plan.
import { shJoin } from "./shell.js";
import { INPUT_CHAIN, type HostPlan, type IptablesRule, type NetworkPlan } from "./plan.js";

/** The INPUT → DOCKMESH-INPUT jump, which every mesh on a host shares. */
export const isSharedJump = (r: IptablesRule): boolean => r.chain === "INPUT" && r.args.at(-1) === INPUT_CHAIN;

export const REDACTED = "(redacted)";

/** iptables argv for a rule: op -C checks, -I inserts at the top, -D deletes. */
export function iptablesArgv(rule: IptablesRule, op: "-C" | "-I" | "-D"): string[] {
  return ["iptables", "-t", rule.table, op, rule.chain, ...rule.args];
}

/** The rule as `iptables -t T -S CHAIN` prints it. */
export function iptablesSaveLine(rule: IptablesRule): string {
  return shJoin(["-A", rule.chain, ...rule.args]);
}

export function dockerNetworkCreateArgv(net: NetworkPlan): string[] {
  const opts = Object.entries(net.docker.options)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .flatMap(([k, v]) => ["-o", `${k}=${v}`]);
  return ["docker", "network", "create", "--driver", "bridge", "--subnet", net.docker.subnet, ...opts, net.docker.name];
}

/**
 * wg-quick configuration. PostUp/PostDown re-create the iptables rules whenever the interface
 * comes up (at boot, after Docker), so the mesh survives a reboot without the controller.
 * Every value in it was validated (interface names, CIDRs, host:port), none is free text.
 */
export function renderWgConfig(net: NetworkPlan, privateKey: string | undefined): string {
  const wg = net.wireguard;
  const lines = [
    `# Managed by dockmesh (MeshNetwork ${net.meshNetwork}); changes here are overwritten.`,
    "[Interface]",
    `PrivateKey = ${privateKey ?? REDACTED}`,
    `ListenPort = ${wg.listenPort}`,
    `MTU = ${wg.mtu}`,
    // dockmesh's own chains first (idempotent), then every rule checked before it is inserted.
    ...[...new Set(net.rules.filter((r) => r.chain.startsWith("DOCKMESH-")).map((r) => `${r.table} ${r.chain}`))].map((tc) => {
      const [table, chain] = tc.split(" ") as [string, string];
      return `PostUp = iptables -t ${table} -N ${chain} 2>/dev/null || true`;
    }),
    ...net.rules.map((r) => `PostUp = ${shJoin(iptablesArgv(r, "-C"))} || ${shJoin(iptablesArgv(r, "-I"))}`),
    // The shared INPUT jump stays: another mesh on the host may use the chain.
    ...net.rules.filter((r) => !isSharedJump(r)).map((r) => `PostDown = ${shJoin(iptablesArgv(r, "-D"))} || true`),
  ];
  for (const p of wg.peers) {
    lines.push(
      "",
      "[Peer]",
      `# ${p.machine}${p.relayFor.length ? ` (relay for ${p.relayFor.join(", ")})` : ""}`,
      `PublicKey = ${p.publicKey ?? `(public key of ${p.machine}, generated on first apply)`}`,
      `AllowedIPs = ${p.allowedIPs.join(", ")}`,
    );
    if (p.endpoint) lines.push(`Endpoint = ${p.endpoint}`);
    if (p.persistentKeepalive !== undefined) lines.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
  }
  return lines.join("\n") + "\n";
}

const indent = (text: string, by = "    ") =>
  text
    .replace(/\n$/, "")
    .split("\n")
    .map((l) => (l ? by + l : l))
    .join("\n");

/** The human-readable plan of one host, as `dockmesh plan` prints it. Deterministic. */
export function renderHostPlan(host: HostPlan, ssh: string): string {
  const out: string[] = [`Machine ${host.namespace}/${host.machine} (${ssh})`];
  if (host.networks.length === 0 && host.errors.length === 0) out.push("  not a member of any MeshNetwork: nothing to configure");
  for (const e of host.errors) out.push(`  ERROR ${e.kind} ${e.namespace}/${e.name} ${e.field}: ${e.message}`);
  for (const net of host.networks) {
    out.push(`  MeshNetwork ${host.namespace}/${net.meshNetwork}: subnet ${net.subnet}, interface ${net.wireguard.interface}, bridge ${net.docker.bridge}, mtu ${net.docker.mtu}`);
    out.push("    docker network:", `      ${shJoin(dockerNetworkCreateArgv(net))}`);
    out.push(`    wireguard: ${net.wireguard.configPath} (mode 0600)`, indent(renderWgConfig(net, undefined), "      "));
    out.push("    iptables:", ...net.rules.map((r) => `      ${shJoin(iptablesArgv(r, "-I"))}`));
    out.push("    routes:", ...(net.routes.length ? net.routes.map((r) => `      ip route replace ${r.destination} dev ${r.dev}`) : ["      (none: no peers yet)"]));
    out.push("    units:", `      ${net.unit.dropInPath}:`, indent(net.unit.dropInContent, "        "), `      systemctl enable ${net.unit.unit}`);
    if (net.relay) out.push("    relay: forwards between NAT'd members of this mesh");
    for (const r of net.relayed) out.push(`    peer ${r.machine}: both behind NAT, relayed via ${r.via}`);
    for (const u of net.unreachable) out.push(`    peer ${u}: UNREACHABLE, both behind NAT and no member has an endpoint to relay through`);
  }
  return out.join("\n") + "\n";
}
