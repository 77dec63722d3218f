// A host's observation as the unit tests build it: a Docker host with every tool, no systemd,
// wireguard-go, nothing of dockmesh yet; `over` sets what a test is about.
import type { HostObservation } from "../../hosts/observe.js";

export function observation(over: Partial<HostObservation> = {}): HostObservation {
  return {
    tools: { docker: true, wg: true, "wg-quick": true, iptables: true, ip: true, systemctl: true },
    systemd: false,
    wireguardImplementation: "userspace",
    iptablesBackend: "nft",
    dockerVersion: "20.10.24",
    links: new Map(),
    routes: [],
    wg: new Map(),
    iptables: new Map(),
    policies: new Map(),
    ifaces: new Map(),
    networks: new Map(),
    resolver: { dnsmasq: false, resolvedStub: false },
    ...over,
  };
}
