// A host's observation as the unit tests build it: a Docker host with every tool, no systemd,
// wireguard-go, nothing of dockmesh yet; `over` sets what a test is about.
import { createHash } from "node:crypto";
import { emptyObservation, type HostObservation } from "../../hosts/observe.js";
import { NETWORK_LABEL, tableToken, type NetworkPlan } from "../../mesh/plan.js";
import { iptablesSaveLine, renderWgConfig } from "../../mesh/render.js";

/** The hex SHA-256 of a file's content, as the observe script reports it. */
export const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

export function observation(over: Partial<HostObservation> = {}): HostObservation {
  return {
    ...emptyObservation(),
    tools: { docker: true, wg: true, "wg-quick": true, iptables: true, ip: true, systemctl: true },
    iptablesBackend: "nft",
    dockerVersion: "20.10.24",
    ...over,
  };
}

/**
 * `obs` made into the host exactly as `net` wants it, for the machine with `key`: its Docker network
 * (with `containers` attached), the interface up with its peers, routes, rules (each in its table,
 * ip6tables' by token) and files.
 */
export function convergedOnto(obs: HostObservation, net: NetworkPlan, key: { privateKey: string; publicKey: string }, containers = 1): HostObservation {
  const iface = net.wireguard.interface;
  obs.networks.set(net.docker.name, {
    id: "abc",
    name: net.docker.name,
    subnet: net.docker.subnet,
    ...(net.docker.subnetV6 ? { subnetV6: net.docker.subnetV6 } : {}),
    options: { ...net.docker.options },
    labels: { [NETWORK_LABEL]: iface },
    containers,
  });
  obs.links.set(iface, { name: iface, up: true, mtu: net.wireguard.mtu, kind: "wireguard" });
  obs.wg.set(iface, {
    publicKey: key.publicKey,
    listenPort: net.wireguard.listenPort,
    peers: net.wireguard.peers.map((p) => ({
      publicKey: p.publicKey!,
      ...(p.endpoint ? { endpoint: p.endpoint } : {}),
      allowedIPs: [...p.allowedIPs].sort(),
      latestHandshake: 1,
      rxBytes: 0,
      txBytes: 0,
      ...(p.persistentKeepalive ? { persistentKeepalive: p.persistentKeepalive } : {}),
    })),
  });
  obs.routes = net.routes.map((r) => ({ dst: r.destination, dev: r.dev }));
  for (const r of net.rules) {
    const k = `${tableToken(r)}/${r.chain}`;
    obs.iptables.set(k, [iptablesSaveLine(r), ...(obs.iptables.get(k) ?? [])]);
  }
  obs.ifaces.set(iface, {
    files: new Map([
      [net.wireguard.configPath, sha256(renderWgConfig(net, key.privateKey))],
      [net.unit.dropInPath, sha256(net.unit.dropInContent)],
    ]),
    mine: new Set([net.wireguard.configPath, net.unit.dropInPath]),
    enabled: true,
    dnsEnabled: false,
    dnsRunning: false,
  });
  return obs;
}
