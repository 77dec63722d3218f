// What a caller asks of a lab: the prefix, the address blocks and the hosts.
import type { KeyPair } from "./keys.js";

/** Address families of a host's uplink (its eth0 on the lab net). */
export type Uplink = "ipv4" | "dual" | "ipv6";

export interface LabHostOptions {
  /** Host name: lower-case letters and digits, starting with a letter, at most 10 characters. */
  name: string;
  /** Behind its own NAT router (MASQUERADE); it has no public endpoint. Default false. */
  nat?: boolean;
  /**
   * How its NAT router maps ports: "independent" (default; Linux MASQUERADE keeps the source port,
   * the same for every destination) or "per-destination" (MASQUERADE --random: a new random port
   * for each destination, as symmetric NATs do), where NAT↔NAT hole punching cannot work.
   */
  natMapping?: "independent" | "per-destination";
  /** "DROP": INPUT policy DROP apart from loopback, established traffic and SSH, like a firewalled cloud VM. */
  inputPolicy?: "ACCEPT" | "DROP";
  /** User the controller logs in as (default "root"); any other user gets passwordless sudo. */
  sshUser?: string;
  /** SSH reachable only through another lab host (the bastion), not from the controller. */
  bastionOnly?: boolean;
  /** The bastion for a bastionOnly host: a public, directly reachable lab host (default: the first one). */
  bastion?: string;
  /**
   * A broken or hostile host: its sshd runs this shell command for every login instead of the
   * one asked for (sshd_config ForceCommand), e.g. "head -c 629145600 /dev/zero" (600 MiB).
   * One line. Default none.
   */
  forceCommand?: string;
  /**
   * Docker manages ip6tables as well (`dockerd --ip6tables`, which Docker before 27 takes only
   * with --experimental): what a dual-stack mesh needs on the host. Default false (as Debian's
   * Docker 20.10 comes).
   */
  dockerIp6tables?: boolean;
  /**
   * Address families of its uplink: "ipv4" (default; as every lab host had before), "dual" (its
   * IPv4 address and its IPv6 twin in the lab's ULA /64, fdc6:1218:X::/64 for labnet
   * 198.18.X.0/24) or "ipv6" (the IPv6 address only: no IPv4 address on eth0; SSH and its
   * endpoint are IPv6). Only a public host (not nat, not bastionOnly) may have IPv6, and a bastion
   * needs IPv4.
   */
  uplink?: Uplink;
}

export interface LabOptions {
  /** Prefix of every object the lab creates: 2-8 lower-case letters/digits, starting with a letter. */
  prefix: string;
  /** The lab "internet": a /24 of 198.18.0.0/15, e.g. "198.18.0.0/24". */
  labnet: string;
  /** Third octets X of the NAT'd LANs 198.19.X.0/24, one per NAT'd host (default 198.19.0-9.x). */
  natLans?: { first: number; last: number };
  hosts: readonly LabHostOptions[];
  /** Directory the lab's state directory is created in (default /tmp). */
  stateRoot?: string;
  /**
   * TCP ports of the root namespace (at the lab bridge address) that the controller
   * namespace may open connections to, e.g. an API server run by a test outside the lab.
   * Default none: the lab cannot start connections into the root namespace.
   */
  rootPortsForController?: readonly number[];
  /** Progress messages; default: none. */
  log?: (msg: string) => void;
  /**
   * Keys to use instead of new ones: the client key authorized on every host, and host keys by
   * host name (a host without one gets a new key). The demo keeps its keys across `lab:up`, so
   * manifests applied before stay valid.
   */
  keys?: { client: KeyPair; hosts: ReadonlyMap<string, KeyPair> };
}
