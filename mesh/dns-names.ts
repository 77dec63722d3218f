// Names of mesh DNS (issue 13), normalised and checked. Pure. What a host reports about its
// containers (names, aliases, labels) is data from an untrusted host: a name is published only
// when, after normalisation, it is a plain DNS label, so nothing it holds can reach a resolver's
// file as anything but one label of one line.
//
// Normalisation: a leading "/" (Docker's container names) is dropped; upper case becomes lower
// case (ASCII only); "_" and "." become "-". The result must match DNS_LABEL, otherwise the name
// is skipped with a reason.

import { DNS_LABEL } from "../api/formats.js";

/** A fully qualified name in a hosts file: at most 253 characters. */
export const FQDN_MAX_CHARS = 253;

/** Longest raw name looked at: longer ones cannot normalise to a label anyway (and are not copied around). */
const RAW_MAX_CHARS = 256;

export type NameResult = { ok: true; label: string } | { ok: false; reason: string };

/** A name as a host reported it, normalised to a DNS label, or why it cannot be one. */
export function dnsLabelOf(raw: string): NameResult {
  if (raw.length > RAW_MAX_CHARS) return { ok: false, reason: `longer than ${RAW_MAX_CHARS} characters` };
  // eslint-disable-next-line no-control-regex -- control characters are refused by name
  const cc = /[\u0000-\u001f\u007f-\u009f]/.exec(raw);
  if (cc) return { ok: false, reason: `contains a control character (U+${cc[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")})` };
  const trimmed = raw.startsWith("/") ? raw.slice(1) : raw;
  // ASCII-only lower-casing: toLowerCase() would map some non-ASCII letters (e.g. "K", Kelvin) to ASCII ones.
  const label = trimmed.replace(/[A-Z]/g, (c) => c.toLowerCase()).replace(/[_.]/g, "-");
  if (label === "") return { ok: false, reason: "is empty" };
  if (label.length > 63) return { ok: false, reason: `is ${label.length} characters long after normalisation; a DNS label has at most 63` };
  const bad = /[^a-z0-9-]/.exec(label);
  if (bad) return { ok: false, reason: `contains ${JSON.stringify(bad[0])}, which a DNS name cannot hold (only a-z, 0-9 and -; _ and . become -)` };
  if (!DNS_LABEL.test(label)) return { ok: false, reason: `${JSON.stringify(label)} starts or ends with "-"` };
  return { ok: true, label };
}

/** A short form of a refused name for a message: quoted, at most 40 characters, control characters escaped. */
export function shownName(raw: string): string {
  return JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw);
}
