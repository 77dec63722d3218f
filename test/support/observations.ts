// A host's observation as the unit tests build it: a Docker host with every tool, no systemd,
// wireguard-go, nothing of dockmesh yet; `over` sets what a test is about.
import { emptyObservation, type HostObservation } from "../../hosts/observe.js";

export function observation(over: Partial<HostObservation> = {}): HostObservation {
  return {
    ...emptyObservation(),
    tools: { docker: true, wg: true, "wg-quick": true, iptables: true, ip: true, systemctl: true },
    iptablesBackend: "nft",
    dockerVersion: "20.10.24",
    ...over,
  };
}
