// The formats of every value that reaches a host's configuration or a host command: one regular
// expression each, used by the CRD schemas (test/security/status-schema.test.ts checks that the
// CRD patterns are these) and checked again in code wherever such a value is read. Status, Secrets and
// what a host prints are input like spec: a value is trusted for its format only after this check.

/** A WireGuard key as `wg` prints it: 32 bytes in base64 (the last character carries 4 bits). */
export const WIREGUARD_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/**
 * A Linux interface name that wg-quick accepts and iptables reads literally: 1-15 of a-z A-Z 0-9
 * _ = . - . No "+" (iptables reads a trailing "+" as a wildcard: `-i +` is every interface), no
 * "/" or whitespace (the kernel refuses them, and the name becomes a path in /etc/wireguard), and
 * no leading "." (so never "." or ".."). Written without lookahead: CRD patterns are Go's RE2.
 */
export const INTERFACE_NAME = /^[a-zA-Z0-9_=-][a-zA-Z0-9_=.-]{0,14}$/;

/** A Docker network name as dockmesh creates it (Docker allows more; these need no quoting anywhere). */
export const DOCKER_NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

/** A Kubernetes object name (DNS-1123 subdomain): Machine and MeshNetwork names. */
export const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** An IPv4 CIDR, as the CRDs write it. */
export const IPV4_CIDR = /^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\/([0-9]|[12][0-9]|3[0-2])$/;

/**
 * An IPv6 CIDR as the CRDs write it: hex digits and colons, then a prefix length of 0-128. Loose
 * (mesh/ipv6.ts parses it fully where it is used), but only characters that need no quoting.
 */
export const IPV6_CIDR = /^[0-9a-fA-F:]{2,39}\/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8])$/;

/** An IPv4 or IPv6 CIDR: a WireGuard AllowedIPs entry. */
export const isMeshCidr = (v: string): boolean => IPV4_CIDR.test(v) || IPV6_CIDR.test(v);

/** host:port or [IPv6]:port, as Machine.spec.endpoint and WireGuard's Endpoint take it. */
export const ENDPOINT =
  /^(([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?))*|\[[0-9A-Fa-f:.]+\]):([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$/;

/** [IPv6]:port, as Machine.spec.endpointV6 takes it (a dual-uplink host's second endpoint). */
export const ENDPOINT_V6 = /^\[[0-9A-Fa-f:]{2,39}\]:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$/;

/** An SSH host key fingerprint as `ssh-keygen -lf` prints it. */
export const SSH_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** A Docker engine version: "27.5.1", "24.0.7-ce", "20.10.24+dfsg1", "28.0.0-rc.1": digits first, printable version characters only. */
export const DOCKER_VERSION = /^\d{1,4}\.\d{1,4}(?:\.\d{1,4})?(?:[-+~][0-9A-Za-z.+~-]{1,40})?$/;

/** A DNS name in lower case, e.g. a mesh's zone: labels of 1-63 of a-z 0-9 -, not starting or ending with -. */
export const DNS_ZONE = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** One DNS label in lower case (a name before the zone). */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** An IPv4 address in dotted-quad form, e.g. a resolver's address. */
export const IPV4_ADDRESS = /^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

/** Printable text on one line: no control characters (C0, DEL, C1), which would end a line in a config file or drive a terminal. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const NO_CONTROL = /^[^\u0000-\u001f\u007f-\u009f]*$/;

/** The first control character in text, spelt so a message can show it, or undefined when there is none. */
export function controlCharacter(text: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  const m = /[\u0000-\u001f\u007f-\u009f]/.exec(text);
  return m ? `U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}` : undefined;
}

/** A format as the CRDs write it: a JavaScript regex literal spells "/" as "\/", a CRD pattern need not. */
export const crdPattern = (format: RegExp): string => format.source.replaceAll("\\/", "/");

/** A value refused where it is used: names the field it came from and what is wrong with it. */
export class UnsafeValueError extends Error {
  constructor(
    /** Where the value came from, e.g. "Machine m2 status.publicKey" or "peer m2 publicKey". */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "UnsafeValueError";
  }
}

/** A short, quoted, printable rendering of a refused value for a message (never the whole of it). */
export function shown(value: string): string {
  const cut = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return JSON.stringify(cut);
}

/** Throws UnsafeValueError unless value matches format. */
export function checked(value: string, format: RegExp, field: string, what: string): string {
  if (format.test(value)) return value;
  const cc = controlCharacter(value);
  throw new UnsafeValueError(field, cc ? `contains a control character (${cc}); refused` : `${shown(value)} is not ${what}; refused`);
}
