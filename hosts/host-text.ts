// Text a host printed, made safe to show: everything a host prints is untrusted, and error text
// ends up in conditions that `kubectl get`/`describe` print to a terminal. Escape sequences and
// control characters are removed, and the text is bounded.
/* eslint-disable no-control-regex -- finding control characters in host text is the point */

/** ANSI/VT escape sequences: CSI (ESC [ … final), OSC (ESC ] … BEL or ST), DCS/SOS/PM/APC strings, and two-byte ESC sequences. */
const ESCAPE_SEQUENCES = /\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|[ -~]?)/g;
/**
 * Control characters other than tab and newline (C0, DEL, C1, among them the one-byte CSI
 * \x9b), and invisible/bidirectional format characters that make text read otherwise than it is.
 */
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]/g;

/** Default bound for host text in a condition message. */
export const HOST_TEXT_MAX_CHARS = 500;

/**
 * `text` without escape sequences and control characters (tabs become spaces; newlines become
 * "; " unless keepNewlines), at most maxChars characters (longer text ends in "…").
 */
export function hostText(text: string, maxChars = HOST_TEXT_MAX_CHARS, keepNewlines = false): string {
  // Bound before the regexes run, with room for what they remove: a host may print megabytes.
  const scan = maxChars * 8 + 1024;
  const preCut = text.length > scan;
  let t = (preCut ? text.slice(0, scan) : text).replace(ESCAPE_SEQUENCES, "").replace(CONTROLS, "").replace(/\t/g, " ");
  if (!keepNewlines) t = t.replace(/[ ]*\n[ ]*/g, "; ");
  if (t.length <= maxChars && !preCut) return t;
  let cut = t.slice(0, Math.max(0, maxChars - 1));
  // Never end in half of a surrogate pair.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** Byte counts for messages: "600 MiB", "16 MiB", "512 KiB", "12 bytes". */
export function sizeText(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${Math.floor(bytes / (1024 * 1024))} MiB`;
  if (bytes >= 1024) return `${Math.floor(bytes / 1024)} KiB`;
  return `${bytes} bytes`;
}
