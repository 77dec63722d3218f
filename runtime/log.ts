// Logging: one winston logger per process, children per component.
// JSON lines in a cluster (log collectors parse them), one readable line per entry in a
// terminal. Every entry passes through a redaction format first: defense in depth only —
// callers must still never log keys, tokens or passwords.
import { Writable } from "node:stream";
import winston from "winston";
import { describeError } from "./describe-error.js";

// Here for the modules that import them from the logger; they live apart so that the CLI can
// print an error without loading winston.
export { apiErrorSummary, describeError } from "./describe-error.js";

export type Logger = winston.Logger;
export type LogLevel = "error" | "warn" | "info" | "debug";
export type LogFormat = "json" | "text";

export const LOG_LEVELS: readonly LogLevel[] = ["error", "warn", "info", "debug"];

export interface LoggerOptions {
  /** Default: $DOCKMESH_LOG_LEVEL, else "info". */
  level?: LogLevel;
  /** Default: $DOCKMESH_LOG_FORMAT, else "json" in a cluster (KUBERNETES_SERVICE_HOST set) or when the stream is not a terminal, else "text". */
  format?: LogFormat | "auto";
  /** Where lines go. Default process.stderr (stdout belongs to command output). */
  stream?: Writable;
  /** Fields on every line, e.g. { component: "machine-controller" }. */
  defaultMeta?: Record<string, unknown>;
  /** Environment to read the defaults from (tests). Default process.env. */
  env?: Record<string, string | undefined>;
}

/** Chooses the output format: explicit choice, then the environment, then where we run. */
export function resolveLogFormat(format: LogFormat | "auto" | undefined, env: Record<string, string | undefined>, isTTY: boolean): LogFormat {
  const wanted = format && format !== "auto" ? format : env["DOCKMESH_LOG_FORMAT"];
  if (wanted === "json" || wanted === "text") return wanted;
  if (env["KUBERNETES_SERVICE_HOST"]) return "json";
  return isTTY ? "text" : "json";
}

function resolveLevel(level: LogLevel | undefined, env: Record<string, string | undefined>): LogLevel {
  const wanted = level ?? env["DOCKMESH_LOG_LEVEL"];
  return LOG_LEVELS.find((l) => l === wanted) ?? "info";
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const env = opts.env ?? process.env;
  const stream = opts.stream ?? process.stderr;
  const isTTY = (stream as Writable & { isTTY?: boolean }).isTTY === true;
  const format = resolveLogFormat(opts.format, env, isTTY);
  return winston.createLogger({
    level: resolveLevel(opts.level, env),
    levels: winston.config.npm.levels,
    defaultMeta: opts.defaultMeta,
    format: winston.format.combine(redactFormat(), winston.format.timestamp(), format === "json" ? winston.format.json() : textFormat(isTTY && !env["NO_COLOR"])),
    transports: [new winston.transports.Stream({ stream })],
  });
}

/** A logger that drops everything (tests, library defaults). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Stream({ stream: new Writable({ write: (_c, _e, cb) => cb() }) })] });
}

let root: Logger | undefined;

/** The process-wide logger, created with the defaults on first use; setRootLogger replaces it. */
export function rootLogger(): Logger {
  root ??= createLogger();
  return root;
}

export function setRootLogger(logger: Logger): void {
  root = logger;
}

// --- redaction ---------------------------------------------------------------------

export const REDACTED = "[REDACTED]";

/** Field names whose values are dropped whole, whatever they hold. */
const SENSITIVE_KEY = /^(private[-_]?key|token|(access|bearer|id|refresh)[-_]?token|password|passphrase|authorization|client[-_]?key[-_]?data)$/i;

const TEXT_RULES: ReadonlyArray<[RegExp, string]> = [
  // PEM and OpenSSH private key blocks, also cut-off ones (to the end of the text).
  [/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g, "[REDACTED PRIVATE KEY]"],
  // A WireGuard key (32 bytes in base64: 43 characters and "=") after "PrivateKey", as in
  // wg-quick files ("PrivateKey = …"), JSON ("privateKey":"…") or `wg` arguments.
  [/(private[-_ ]?key["']?\s*[:=]?\s*["']?)[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=/gi, `$1${REDACTED}`],
  [/(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*/gi, `$1${REDACTED}`],
  [/(\b(?:token|password|passphrase)["']?\s*[:=]\s*["']?)[^\s"',;}&]+/gi, `$1${REDACTED}`],
];

/** Text with anything that looks like a private key, bearer token or password replaced. */
export function redactText(text: string): string {
  let out = text;
  for (const [re, replacement] of TEXT_RULES) out = out.replace(re, replacement);
  return out;
}

/**
 * A redacted copy of a value: strings through redactText, sensitive field names dropped
 * whole, Errors turned into their message chain. Never mutates the value given.
 */
export function redactValue(value: unknown, key?: string, seen: WeakSet<object> = new WeakSet(), depth = 0): unknown {
  if (key !== undefined && SENSITIVE_KEY.test(key) && value !== undefined && value !== null && value !== "") return REDACTED;
  if (typeof value === "string") return redactText(value);
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Error) return redactText(describeError(value));
  if (value instanceof Date) return value;
  if (seen.has(value)) return "[Circular]";
  if (depth >= 10) return "[Nested]";
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => redactValue(v, undefined, seen, depth + 1));
    if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, k, seen, depth + 1);
    return out;
  } finally {
    seen.delete(value);
  }
}

/** winston format applying redactValue to the message and every field (symbols kept). */
export const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === "level") continue;
    info[key] = redactValue(info[key], key === "message" ? undefined : key);
  }
  return info;
});

// --- the terminal format -----------------------------------------------------------

const LEVEL_COLOUR: Record<string, string> = { error: "\x1b[31m", warn: "\x1b[33m", info: "\x1b[36m", debug: "\x1b[90m" };

function quoteIfNeeded(v: unknown): string {
  const s = typeof v === "string" ? v : (JSON.stringify(v) ?? String(v));
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

/** `2025-01-01T00:00:00.000Z INFO  message key=value …` on one line. */
function textFormat(colour: boolean): winston.Logform.Format {
  return winston.format.printf((info) => {
    const { level, message, timestamp, ...rest } = info;
    const lvl = level.toUpperCase().padEnd(5);
    const coloured = colour ? `${LEVEL_COLOUR[level] ?? ""}${lvl}\x1b[0m` : lvl;
    const fields = Object.entries(rest)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${quoteIfNeeded(v)}`)
      .join(" ");
    const msg = String(message).replace(/\r?\n/g, "\\n");
    return `${String(timestamp)} ${coloured} ${msg}${fields ? ` ${fields}` : ""}`;
  });
}
