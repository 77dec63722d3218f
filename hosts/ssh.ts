// SSH to a host with ssh2: key authentication, host key pinning (or trust on first use with
// the fingerprint recorded by the caller), an optional bastion tunnelled with forwardOut (no
// system ssh binary), sudo for non-root users, and timeouts on everything.
import { createHash } from "node:crypto";
import ssh2 from "ssh2";
import type { Client as ClientType, ClientChannel, ConnectConfig, ParsedKey, PublicKeyAuthMethod } from "ssh2";
import { shQuote } from "../mesh/shell.js";

// ssh2 is CommonJS: its named exports are reached through the default export.
const { Client, utils } = ssh2;
type Client = ClientType;
import { HostError, type HostErrorReason } from "./errors.js";
import { gatedHandshake } from "./handshake-gate.js";
import { sizeText } from "./host-text.js";

export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
  /** OpenSSH or PEM private key text. Never logged, never put in an error. */
  privateKey: string;
  /** Where the key came from, for messages: "Secret default/ssh key ssh-privatekey". */
  keySource: string;
  /** spec pin: "ssh-ed25519 AAAA…" or "SHA256:…". */
  hostKeyPin?: string;
  /** Fingerprint recorded on first contact (controllers/host-keys.ts); enforced when there is no pin. */
  recordedFingerprint?: string;
}

export interface SshTarget extends SshEndpoint {
  bastion?: SshEndpoint;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Arguments for the script ($1…), each single-quoted. */
  args?: readonly string[];
  /** Data for the script's standard input (secrets travel here, never in argv). */
  input?: string;
  timeoutMs?: number;
  /**
   * Most bytes of standard output kept (default DEFAULT_MAX_OUTPUT_BYTES). A host is untrusted:
   * past this the command is given up (its channel closed) and exec fails with an
   * OutputTooLarge HostError, instead of buffering whatever the host sends. Callers size it to
   * their largest real answer (see OBSERVE_LIMITS, APPLY_LIMITS).
   */
  maxStdoutBytes?: number;
  /** The same for standard error (default DEFAULT_MAX_OUTPUT_BYTES). */
  maxStderrBytes?: number;
}

/**
 * Output bound of a command whose caller sets none: 1 MiB a stream. Unbounded, 256 MiB of
 * output took `dockmesh up` from 200 MB to 1.15 GB RSS, and 600 MiB ended it with
 * ERR_STRING_TOO_LONG, the API server with it. Past the bound at most ssh2's channel window
 * (2 MiB) more arrives: a paused channel grants the host no more.
 */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

/** exec's failure when a stream passes its bound: which stream, how much came, the bound. */
export class OutputTooLargeError extends HostError {
  constructor(
    readonly stream: "stdout" | "stderr",
    readonly receivedBytes: number,
    readonly limitBytes: number,
    where: string,
  ) {
    super("OutputTooLarge", `${where}: the host answered more than ${sizeText(receivedBytes)} on ${stream} (limit ${sizeText(limitBytes)}); the command was stopped`);
    this.name = "OutputTooLargeError";
  }

  /** The same failure as the caller's reason: "observing the host failed: the host answered more than …". */
  as(reason: HostErrorReason, doing: string): HostError {
    return new HostError(
      reason,
      `${doing} failed: the host answered more than ${sizeText(this.receivedBytes)} on ${this.stream} (limit ${sizeText(this.limitBytes)}); dockmesh's command prints far less, so something on the host (a wrapper, a login script, a forced command in authorized_keys or sshd_config) prints more; the command was stopped`,
      { cause: this },
    );
  }
}

export interface HostSession {
  /** SHA256 fingerprint of the host's key, as `ssh-keygen -lf` prints it. */
  readonly fingerprint: string;
  readonly bastionFingerprint?: string;
  /** Runs a static script with `sh -c` (through `sudo -n` for non-root users). */
  exec(script: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Number of commands run over this session (one SSH round trip each). */
  readonly roundTrips: number;
  close(): void;
}

export interface StreamOptions {
  /** Arguments for the script ($1…), each single-quoted. */
  args?: readonly string[];
  /**
   * Longest line accepted (bytes, newline excluded; default 64 KiB). A host is untrusted: a
   * longer line ends the command with an OutputTooLarge HostError, so at most this much of a
   * line is ever held.
   */
  maxLineBytes?: number;
  /** Most bytes of standard error kept for the failure message (default 4 KiB; the rest is dropped). */
  maxStderrBytes?: number;
}

/** How a streaming command ended: its exit status, or null when it was ended by close(). */
export interface StreamExit {
  code: number | null;
  /** The end of its standard error (bounded), for a message. */
  stderr: string;
}

export interface StreamHandle {
  /** Resolves when the command ends (or close() ended it); rejects with a HostError when the connection fails or a line is too long. */
  readonly done: Promise<StreamExit>;
  /** Ends the command: its channel is closed (the host sees its input end). Idempotent. */
  close(): void;
}

/** A session that can also run a long-lived command and hand over its output line by line. */
export interface StreamingHostSession extends HostSession {
  /**
   * Runs a static script like exec, without a timeout, and calls onLine for every line of its
   * standard output as it arrives (without the newline; a last line without one when it ends).
   * Standard input stays open until close(): a script can wait on it to learn that the controller went.
   * onLine runs synchronously in ssh2's handler: it must not throw (a throw fails the stream).
   */
  stream(script: string, opts: StreamOptions, onLine: (line: string) => void): StreamHandle;
}

export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;

/** One command run on a host: from sending it to its exit status (or failure). */
export interface RoundTrip {
  durationMs: number;
  ok: boolean;
}

const roundTripListeners = new Set<(rt: RoundTrip) => void>();

/** Calls listener after every command run over SSH (metrics); returns the unsubscribe function. */
export function onRoundTrip(listener: (rt: RoundTrip) => void): () => void {
  roundTripListeners.add(listener);
  return () => roundTripListeners.delete(listener);
}

/** Reports the round trip of `command` to the listeners; resolves and rejects as it does. */
function observeRoundTrip<T>(command: Promise<T>): Promise<T> {
  if (roundTripListeners.size === 0) return command;
  const started = performance.now();
  const report = (ok: boolean) => {
    for (const l of roundTripListeners) {
      try {
        l({ durationMs: performance.now() - started, ok });
      } catch {
        // an observer never breaks a command
      }
    }
  };
  command.then(
    () => report(true),
    () => report(false),
  );
  return command;
}

export const CONNECT_TIMEOUT_MS = 10_000;
/**
 * A connection whose host stops answering (cut off, powered off) is given up after this many
 * unanswered keepalives this far apart: ~20 s, instead of waiting out the command's own timeout.
 */
export const KEEPALIVE_INTERVAL_MS = 5_000;
export const KEEPALIVE_COUNT_MAX = 3;
export const EXEC_TIMEOUT_MS = 120_000;

export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** Normalises a pin to a fingerprint: a known_hosts-style key is hashed, a fingerprint kept. */
export function pinFingerprint(pin: string): string {
  if (pin.startsWith("SHA256:")) return pin.replace(/=+$/, "");
  const blob = pin.trim().split(/\s+/)[1] ?? "";
  return fingerprintOf(Buffer.from(blob, "base64"));
}

/** The public key (authorized_keys line) for a private key, for "add this key" advice. */
export function publicKeyLine(privateKey: string): string | undefined {
  const k = parseFirstKey(privateKey);
  if (k instanceof Error || !k) return undefined;
  return `${k.type} ${k.getPublicSSH().toString("base64")}`;
}

/** The key in a key file's text (ssh2 uses the first of several), or the parser's error. */
function parseFirstKey(text: string): ParsedKey | Error | undefined {
  const parsed = utils.parseKey(text);
  // ssh2 returns an array for a file of several keys, which its types leave out (so parsed[0] is `any`).
  return Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
}

const who = (e: SshEndpoint) => `ssh ${e.user}@${e.host}:${e.port}`;

function classifyConnectError(e: SshEndpoint, err: Error & { code?: string; level?: string }, viaBastion?: SshEndpoint): HostError {
  const where = viaBastion ? `${who(e)} (via bastion ${viaBastion.host})` : who(e);
  const code = err.code ?? "";
  if (err.level === "client-authentication") {
    const pub = publicKeyLine(e.privateKey);
    return new HostError("AuthFailed", `${where}: key in ${e.keySource} rejected; add its public key${pub ? ` (${pub})` : ""} to ~${e.user}/.ssh/authorized_keys on ${e.host}`, { cause: err });
  }
  if (code === "ECONNREFUSED") return new HostError("Unreachable", `${where}: connection refused; is sshd running and listening on port ${e.port}?`, { cause: err });
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return new HostError("Unreachable", `${where}: no route to host; check the address and the network path from the controller`, { cause: err });
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return new HostError("Unreachable", `${where}: cannot resolve host name ${e.host}`, { cause: err });
  if (code === "ETIMEDOUT" || /timed out/i.test(err.message)) {
    return new HostError("Unreachable", `${where}: timed out after ${CONNECT_TIMEOUT_MS / 1000}s; is the host up and port ${e.port} open to the controller?`, { cause: err });
  }
  return new HostError("Unreachable", `${where}: ${err.message}`, { cause: err });
}

/**
 * Private keys parsed, by their text. ssh2 parses the key of every connection again (two
 * OpenSSL key objects, and small buffers that each hold an 8 KB pool slab) and keeps it for the
 * connection's life: at 1,000 hosts, 1,000 parsed copies of one key (docs/benchmarks.md, "Memory
 * at 1,000 machines"). Bounded: the controller uses a few keys; a full cache starts over.
 */
const parsedKeys = new Map<string, ParsedKey>();
const MAX_PARSED_KEYS = 16;

function usableKey(e: SshEndpoint): ParsedKey {
  const hit = parsedKeys.get(e.privateKey);
  if (hit) return hit;
  const key = parseFirstKey(e.privateKey);
  if (key instanceof Error || !key || !key.isPrivateKey()) {
    // The parser's message never contains key material.
    const why = key instanceof Error ? key.message : "no private key in it";
    throw new HostError("KeyInvalid", `${e.keySource} is not a usable SSH private key (${why}); store an unencrypted OpenSSH or PEM private key there`);
  }
  if (parsedKeys.size >= MAX_PARSED_KEYS) parsedKeys.clear();
  parsedKeys.set(e.privateKey, key);
  return key;
}

interface Verified {
  fingerprint?: string;
  mismatch?: string;
}

function connectOne(e: SshEndpoint, sock: ConnectConfig["sock"] | undefined, viaBastion: SshEndpoint | undefined, pinField: string): Promise<{ client: Client; fingerprint: string }> {
  const publicKeyAuth: PublicKeyAuthMethod = { type: "publickey", username: e.user, key: usableKey(e) };
  return new Promise((resolve, reject) => {
    const client = new Client();
    // A second error (after the first settled this, or after client.end()) would otherwise find
    // no listener and become an uncaught exception: the whole process would end with it.
    client.on("error", () => undefined);
    const seen: Verified = {};
    const expected = e.hostKeyPin ? pinFingerprint(e.hostKeyPin) : e.recordedFingerprint;
    let settled = false;
    const done = (err: HostError | undefined) => {
      if (settled) return;
      settled = true;
      if (err) {
        client.end();
        reject(err);
      } else resolve({ client, fingerprint: seen.fingerprint! });
    };
    client.once("ready", () => done(undefined));
    client.once("error", (err: Error & { code?: string; level?: string }) => {
      if (seen.mismatch) {
        const source = e.hostKeyPin ? "pinned in spec.ssh.hostKey" : "recorded on first contact";
        done(
          new HostError(
            "HostKeyMismatch",
            `${who(e)}: host key changed: expected ${expected} (${source}), got ${seen.mismatch}; refusing to connect. ` +
              `If the host was reinstalled, check the new key on the host itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and only then pin it: set ${pinField} to ${seen.mismatch}; ` +
              `if you did not reinstall it, someone may be intercepting the connection`,
          ),
        );
        return;
      }
      done(classifyConnectError(e, err, viaBastion));
    });
    client.once("close", () => done(new HostError("Unreachable", `${who(e)}: connection closed during the handshake`)));
    client.connect({
      host: e.host,
      port: e.port,
      username: e.user,
      // The parsed key, not its text: ssh2 would parse it again for every connection.
      authHandler: [publicKeyAuth],
      readyTimeout: CONNECT_TIMEOUT_MS,
      keepaliveInterval: KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      ...(sock ? { sock } : {}),
      hostVerifier: (key: Buffer) => {
        const fp = fingerprintOf(key);
        if (expected && fp !== expected) {
          seen.mismatch = fp;
          return false;
        }
        seen.fingerprint = fp;
        return true;
      },
    });
    // No Nagle: a command is a few small writes (channel open, exec, stdin, EOF), and with Nagle
    // each waits for the peer's delayed ACK (~40 ms a write on Linux) before it is sent.
    client.setNoDelay(true);
  });
}

function forward(bastion: Client, host: string, port: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    bastion.forwardOut("127.0.0.1", 0, host, port, (err, stream) => (err ? reject(err) : resolve(stream)));
  });
}

/** A session of its own connection: `closed` settles (resolves) when that connection is gone. */
export interface ConnectedSession extends StreamingHostSession {
  readonly closed: Promise<void>;
}

export async function connect(target: SshTarget): Promise<ConnectedSession> {
  let bastion: { client: Client; fingerprint: string } | undefined;
  let sock: ClientChannel | undefined;
  if (target.bastion) {
    const b = target.bastion;
    bastion = await gatedHandshake(`${b.host}:${b.port}`, () => connectOne(b, undefined, undefined, "spec.ssh.bastion.hostKey")).catch((err: unknown) => {
      if (err instanceof HostError) throw new HostError(err.reason, `bastion: ${err.message}`, { cause: err });
      throw err;
    });
    try {
      sock = await forward(bastion.client, target.host, target.port);
    } catch (err) {
      bastion.client.end();
      const msg = err instanceof Error ? err.message : String(err);
      throw new HostError("Unreachable", `${who(target)} via bastion ${target.bastion.host}: the bastion could not open a connection to ${target.host}:${target.port} (${msg})`, { cause: err });
    }
  }
  let conn: { client: Client; fingerprint: string };
  try {
    conn = await connectOne(target, sock, target.bastion, "spec.ssh.hostKey");
  } catch (err) {
    bastion?.client.end();
    throw err;
  }
  return new Session(conn.client, conn.fingerprint, target, bastion);
}

class Session implements ConnectedSession {
  roundTrips = 0;
  readonly bastionFingerprint?: string;
  readonly closed: Promise<void>;
  constructor(
    private readonly client: Client,
    readonly fingerprint: string,
    private readonly target: SshTarget,
    private readonly bastion: { client: Client; fingerprint: string } | undefined,
  ) {
    if (bastion) this.bastionFingerprint = bastion.fingerprint;
    this.closed = new Promise((resolve) => {
      client.once("close", () => resolve());
      bastion?.client.once("close", () => resolve());
    });
    // Errors after the handshake (a keepalive timeout, a reset) end the connection; what was
    // running learns it from its channel closing, so they must not go unhandled here.
    for (const c of [client, bastion?.client]) c?.on("error", () => undefined);
  }

  /** The command line of a static script and its single-quoted arguments, through `sudo -n` for non-root users. */
  private commandLine(script: string, args: readonly string[] = []): string {
    const argv = ["sh", "-c", script, "sh", ...args].map(shQuote).join(" ");
    return this.target.user === "root" ? argv : `sudo -n ${argv}`;
  }

  /** The failures every command shares, worded once: it could not start, its channel failed, the connection went. */
  private cannotStart(err: unknown): HostError {
    return new HostError("Unreachable", `${who(this.target)}: cannot start a command: ${err instanceof Error ? err.message : String(err)}; is the host up and reachable from the controller?`, {
      cause: err,
    });
  }

  private channelFailed(e: Error): HostError {
    return new HostError("Unreachable", `${who(this.target)}: the command's channel failed: ${e.message}`, { cause: e });
  }

  private connectionLost(what: string): HostError {
    return new HostError("Unreachable", `${who(this.target)}: the connection was lost while ${what} ran; is the host up and reachable from the controller?`);
  }

  exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const command = this.commandLine(script, opts.args);
    const timeoutMs = opts.timeoutMs ?? EXEC_TIMEOUT_MS;
    const limits = { stdout: opts.maxStdoutBytes ?? DEFAULT_MAX_OUTPUT_BYTES, stderr: opts.maxStderrBytes ?? DEFAULT_MAX_OUTPUT_BYTES };
    this.roundTrips++;
    return observeRoundTrip(
      new Promise<ExecResult>((resolve, reject) => {
        // Everything below runs in ssh2's event handlers: a throw there would be an uncaught
        // exception and end the process (API server included), so each handler settles the
        // promise instead, once.
        let settled = false;
        let timer: NodeJS.Timeout | undefined;
        const fail = (err: HostError) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(err);
        };
        const succeed = (r: ExecResult) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(r);
        };
        const guarded =
          <A extends unknown[]>(what: string, fn: (...a: A) => void) =>
          (...a: A): void => {
            try {
              fn(...a);
            } catch (err) {
              fail(new HostError("Unreachable", `${who(this.target)}: ${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
            }
          };
        try {
          this.client.exec(
            command,
            guarded("running a command", (err: Error | undefined, stream: ClientChannel) => {
              if (err) {
                fail(this.cannotStart(err));
                return;
              }
              const bufs = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
              const sizes = { stdout: 0, stderr: 0 };
              const giveUp = () => {
                // Stop reading: nothing more is kept, the channel is closed (sshd then ends the
                // command), and a host that goes on sending fills ssh2's flow-control window and
                // is then held back, since a paused stream no longer grants it more.
                bufs.stdout = [];
                bufs.stderr = [];
                for (const s of [stream, stream.stderr]) {
                  s.removeAllListeners("data");
                  s.pause();
                }
                stream.close();
              };
              timer = setTimeout(() => {
                fail(new HostError("Timeout", `${who(this.target)}: a command did not finish within ${timeoutMs / 1000}s`));
                giveUp();
              }, timeoutMs);
              const collect = (which: "stdout" | "stderr") =>
                guarded(`reading its ${which}`, (d: Buffer) => {
                  if (settled) return;
                  sizes[which] += d.length;
                  if (sizes[which] > limits[which]) {
                    fail(new OutputTooLargeError(which, sizes[which], limits[which], who(this.target)));
                    giveUp();
                    return;
                  }
                  bufs[which].push(d);
                });
              stream.on("data", collect("stdout"));
              stream.stderr.on("data", collect("stderr"));
              // A channel error (a broken packet, a write after close) must not go unhandled.
              const onError = (e: Error) => fail(this.channelFailed(e));
              stream.on("error", onError);
              stream.stderr.on("error", onError);
              // ssh2 closes a channel with the exit status (a number), or null and the signal when the
              // command was killed; with neither, the connection itself went away mid-command.
              stream.on(
                "close",
                guarded("finishing a command", (code: number | null | undefined, signal?: string) => {
                  if (settled) return;
                  if (code === undefined && signal === undefined) {
                    fail(this.connectionLost("a command"));
                    return;
                  }
                  // Bounded by the limits above, so the decode cannot exceed a string's maximum length.
                  const stderr = Buffer.concat(bufs.stderr).toString("utf8");
                  if (this.target.user !== "root" && code === 1 && /^sudo: (a password is required|a terminal is required)/m.test(stderr)) {
                    fail(
                      new HostError(
                        "SudoFailed",
                        `${who(this.target)}: ${this.target.user} cannot run sudo without a password; add "${this.target.user} ALL=(ALL) NOPASSWD: ALL" to /etc/sudoers.d/dockmesh on ${this.target.host}, or log in as root`,
                      ),
                    );
                    return;
                  }
                  succeed({ code: code ?? 255, stdout: Buffer.concat(bufs.stdout).toString("utf8"), stderr });
                }),
              );
              stream.end(opts.input ?? "");
            }),
          );
        } catch (err) {
          // ssh2 throws synchronously when the connection is already gone ("Not connected").
          fail(this.cannotStart(err));
        }
      }),
    );
  }

  stream(script: string, opts: StreamOptions, onLine: (line: string) => void): StreamHandle {
    const command = this.commandLine(script, opts.args);
    const maxLine = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const maxErr = opts.maxStderrBytes ?? 4096;
    this.roundTrips++;
    let channel: ClientChannel | undefined;
    let closed = false;
    let settle!: { resolve: (e: StreamExit) => void; reject: (e: HostError) => void };
    const done = new Promise<StreamExit>((resolve, reject) => (settle = { resolve, reject }));
    let settled = false;
    let stderr = Buffer.alloc(0);
    const finish = (err: HostError | undefined, code: number | null) => {
      if (settled) return;
      settled = true;
      if (err) settle.reject(err);
      else settle.resolve({ code, stderr: stderr.toString("utf8") });
    };
    const stop = () => {
      const ch = channel;
      if (!ch) return;
      for (const s of [ch, ch.stderr]) {
        s.removeAllListeners("data");
        s.pause();
      }
      ch.close();
    };
    const handle: StreamHandle = {
      done,
      close: () => {
        if (closed) return;
        closed = true;
        stop();
        finish(undefined, null);
      },
    };
    // Bytes of a line not yet ended by a newline: at most maxLine of them.
    let partial: Buffer[] = [];
    let partialBytes = 0;
    const emit = (line: Buffer) => {
      try {
        onLine(line.toString("utf8"));
      } catch (err) {
        finish(new HostError("Unreachable", `${who(this.target)}: handling a line of a streaming command failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }), null);
        stop();
      }
    };
    const onData = (d: Buffer) => {
      if (settled) return;
      let start = 0;
      for (let nl = d.indexOf(10, start); nl >= 0 && !settled; nl = d.indexOf(10, start)) {
        const piece = d.subarray(start, nl);
        start = nl + 1;
        if (partialBytes + piece.length > maxLine) return tooLong(partialBytes + piece.length);
        const line = partial.length ? Buffer.concat([...partial, piece]) : piece;
        partial = [];
        partialBytes = 0;
        emit(line);
      }
      if (settled || start >= d.length) return;
      const rest = d.subarray(start);
      if (partialBytes + rest.length > maxLine) return tooLong(partialBytes + rest.length);
      partial.push(Buffer.from(rest));
      partialBytes += rest.length;
    };
    const tooLong = (bytes: number) => {
      partial = [];
      finish(new OutputTooLargeError("stdout", bytes, maxLine, `${who(this.target)}: one line of a streaming command`), null);
      stop();
    };
    try {
      this.client.exec(command, (err: Error | undefined, ch: ClientChannel) => {
        if (err) {
          finish(this.cannotStart(err), null);
          return;
        }
        channel = ch;
        if (closed || settled) {
          stop();
          return;
        }
        ch.on("data", onData);
        ch.stderr.on("data", (d: Buffer) => {
          // Only the end is kept: the last message is the one that explains an exit.
          stderr = Buffer.concat([stderr, d]);
          if (stderr.length > maxErr) stderr = stderr.subarray(stderr.length - maxErr);
        });
        const onError = (e: Error) => {
          finish(this.channelFailed(e), null);
        };
        ch.on("error", onError);
        ch.stderr.on("error", onError);
        ch.on("close", (code: number | null | undefined, signal?: string) => {
          if (settled) return;
          if (code === undefined && signal === undefined) {
            finish(this.connectionLost("a streaming command"), null);
            return;
          }
          if (partialBytes > 0) emit(Buffer.concat(partial));
          partial = [];
          finish(undefined, code ?? 255);
        });
      });
    } catch (err) {
      finish(this.cannotStart(err), null);
    }
    return handle;
  }

  close(): void {
    this.client.end();
    this.bastion?.client.end();
  }
}
