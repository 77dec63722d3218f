// What the lab tells its users about a host: where to reach it over SSH, as whom, where its
// peers reach its WireGuard port. The shape the controller's Machine manifests are made from.
import type { Uplink } from "./options.js";
import type { HostPlan, LabPlan } from "./plan.js";

export interface LabHostBastion {
  name: string;
  host: string;
  port: number;
  user: string;
  hostKey: string;
}

export interface LabHost {
  name: string;
  /** Address and port the controller connects to (through the bastion when set). */
  sshHost: string;
  sshPort: number;
  sshUser: string;
  /** The host's SSH host key, "ssh-ed25519 AAAA..." (for Machine spec.ssh.hostKey or checks). */
  hostKey: string;
  /** Address of the host's eth0 (on the lab net, or in its LAN when NAT'd): IPv4, or IPv6 for an "ipv6" uplink. */
  address: string;
  /** Address families of its uplink (LabHostOptions.uplink). */
  uplink: Uplink;
  /** Its IPv6 address on the lab's /64 ("dual" and "ipv6" uplinks), else undefined. */
  address6: string | undefined;
  /**
   * Host part of the endpoint where peers reach its WireGuard port (no port: that is the mesh's
   * listenPort), ready for `${publicEndpoint}:${port}`: its IPv4 address, or for an "ipv6" uplink
   * its IPv6 address in brackets ("[fdc6:1218:45::b]"). Undefined behind NAT: the router's address
   * is not an endpoint.
   */
  publicEndpoint: string | undefined;
  /** A "dual" uplink's IPv6 address in brackets, the host part of Machine spec.endpointV6; else undefined. */
  publicEndpointV6: string | undefined;
  /** NAT'd: its address in its private LAN. */
  lanAddress: string | undefined;
  /** NAT'd: the router's lab address, the source address its peers see. */
  routerAddress: string | undefined;
  nat: boolean;
  inputPolicy: "ACCEPT" | "DROP";
  bastionOnly: boolean;
  bastion: LabHostBastion | undefined;
  /** Network namespace of the host (/run/netns/<netns>). */
  netns: string;
}

export function describeHosts(plan: LabPlan, hostKeys: ReadonlyMap<string, string>): LabHost[] {
  const key = (name: string): string => {
    const k = hostKeys.get(name);
    if (!k) throw new Error(`no host key for ${name}`);
    return k;
  };
  const byName = new Map(plan.hosts.map((h) => [h.name, h]));
  return plan.hosts.map((h: HostPlan) => {
    const b = h.bastion ? byName.get(h.bastion) : undefined;
    return {
      name: h.name,
      sshHost: h.sshHost,
      sshPort: 22,
      sshUser: h.sshUser,
      hostKey: key(h.name),
      address: h.address,
      uplink: h.uplink,
      address6: h.address6,
      publicEndpoint: h.nat ? undefined : h.uplink === "ipv6" ? `[${h.address}]` : h.address,
      publicEndpointV6: h.uplink === "dual" && h.address6 !== undefined ? `[${h.address6}]` : undefined,
      lanAddress: h.router ? h.router.lanHostAddress : undefined,
      routerAddress: h.router ? h.router.wanAddress : undefined,
      nat: h.nat,
      inputPolicy: h.inputPolicy,
      bastionOnly: h.bastionOnly,
      bastion: b ? { name: b.name, host: b.sshHost, port: 22, user: b.sshUser, hostKey: key(b.name) } : undefined,
      netns: h.netns,
    };
  });
}
