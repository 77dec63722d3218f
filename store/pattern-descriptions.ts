// What form a value must have, in words, for the schema patterns of dockmesh's CRDs. A CRD cannot
// carry a message for a pattern, and kube-apiserver prints the regular expression ("should match
// '^((25[0-5]|…'"); the embedded store says what is expected instead ("should be an IPv4 CIDR
// such as 10.210.0.0/16"), in the same "FIELD: Invalid value: VALUE: DETAIL" form. Keyed by
// the pattern exactly as the CRD writes it; test/store/pattern-descriptions.test.ts checks that
// every pattern in crds/ has one. A pattern not listed here is printed as before.
import {
  DNS_ZONE,
  DOCKER_NETWORK_NAME,
  DOCKER_VERSION,
  ENDPOINT,
  ENDPOINT_V6,
  INTERFACE_NAME,
  IPV4_ADDRESS,
  IPV4_CIDR,
  IPV6_CIDR,
  OBJECT_NAME,
  SSH_FINGERPRINT,
  WIREGUARD_KEY,
  crdPattern,
} from "../api/formats.js";

// The formats dockmesh checks in code are keyed as the CRDs write them (api/formats.ts); the rest
// are patterns only the schema has.
const CIDR = crdPattern(IPV4_CIDR).slice(1, -1);
const CIDR6 = crdPattern(IPV6_CIDR).slice(1, -1);
const DNS1123 = crdPattern(OBJECT_NAME).slice(1, -1);

export const PATTERN_DESCRIPTIONS: ReadonlyMap<string, string> = new Map([
  [crdPattern(IPV4_CIDR), "an IPv4 CIDR such as 10.210.0.0/16"],
  [`^${CIDR}(,${CIDR})*$`, "IPv4 CIDRs separated by commas, such as 10.210.1.0/24,10.211.1.0/24"],
  [crdPattern(IPV6_CIDR), "an IPv6 CIDR such as fd42:d0c::/48"],
  [`^${CIDR6}(,${CIDR6})*$`, "IPv6 CIDRs separated by commas, such as fd42:d0c::/64,fd43:1::/64"],
  [crdPattern(ENDPOINT), "host:port or [IPv6]:port with a port from 1 to 65535, such as 203.0.113.10:51820"],
  [crdPattern(ENDPOINT_V6), "an IPv6 address in brackets and a port from 1 to 65535, such as [2001:db8::10]:51820"],
  [
    "^(([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\\.([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?))*|[0-9A-Fa-f:.]+)$",
    "a host name or an IP address without a port, such as 203.0.113.10 or host1.example.com (the port goes in port)",
  ],
  [crdPattern(WIREGUARD_KEY), "a WireGuard key: 44 characters of base64 ending in =, as wg pubkey prints it"],
  [crdPattern(OBJECT_NAME), "a Kubernetes object name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, such as m1"],
  [`^${DNS1123}<->${DNS1123}$`, "two Machine names joined by <->, such as m1<->m2"],
  ["^[-._a-zA-Z0-9]+$", "a Secret data key: letters, digits, '-', '_' and '.', such as ssh-privatekey"],
  [
    "^((ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) [A-Za-z0-9+/]+={0,3}|SHA256:[A-Za-z0-9+/]{43}=?)$",
    "an SSH host key without its comment, such as ssh-ed25519 AAAAC3Nz… (the first two words of /etc/ssh/ssh_host_ed25519_key.pub), or its fingerprint as ssh-keygen -lf prints it, such as SHA256:uNiV…",
  ],
  [crdPattern(SSH_FINGERPRINT), "an SSH host key fingerprint as ssh-keygen -lf prints it: SHA256: and 43 characters of base64"],
  ["^[a-z_][a-z0-9_-]*$", "a Unix user name such as root or deploy"],
  ["^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$", "a label key such as zone or example.com/zone"],
  ["^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", "a CamelCase reason such as Converged"],
  ["^[0-9]+/[0-9]+$", "a count such as 2/3"],
  [crdPattern(DOCKER_NETWORK_NAME), "a Docker network name: a letter or digit, then up to 63 letters, digits, '_', '.' or '-', such as mesh"],
  [crdPattern(INTERFACE_NAME), "a network interface name: 1 to 15 letters, digits, '_', '=', '.' or '-', not starting with '.', such as dm0"],
  [crdPattern(DOCKER_VERSION), "a Docker version such as 27.5.1"],
  [crdPattern(DNS_ZONE), "a DNS name in lower case: labels of 1 to 63 letters, digits and '-' joined by '.', such as mesh.internal"],
  [crdPattern(IPV4_ADDRESS), "an IPv4 address such as 10.210.0.1"],
  ["^[0-9.]+ [a-z0-9.-]+(, [0-9.]+ [a-z0-9.-]+)*$", "address and zone pairs separated by ', ', such as 10.210.0.1 mesh.internal"],
]);

/** The words for a pattern, or undefined when it has none. */
export function describePattern(pattern: string): string | undefined {
  return PATTERN_DESCRIPTIONS.get(pattern);
}
