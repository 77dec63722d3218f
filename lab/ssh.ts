// Real SSH to lab hosts with ssh2 (as the controller does): one connection per session,
// through a bastion when the host is reachable only that way, host keys checked.
import ssh2, { type Client as ClientT, type ClientChannel, type ConnectConfig } from "ssh2";
import type { Duplex, Readable } from "node:stream";
import type { RunResult } from "./proc.js";

const { Client } = ssh2; // CommonJS: named imports fail at run time under ESM
type Client = ClientT;

export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
  /** Expected host key ("ssh-ed25519 AAAA..."); the connection fails on any other. */
  hostKey?: string;
}

/** A byte stream to the first hop's SSH port, opened by someone else (e.g. from another network namespace). */
export interface SshTransport {
  stream: Duplex;
  /** Ends whatever carries the stream; called when the session closes or fails to open. */
  close(): void;
}

export interface SshTarget extends SshEndpoint {
  privateKey: string;
  bastion?: SshEndpoint;
  /** Opens the first hop's connection (the bastion's, else the host's) instead of a TCP connection from this process. */
  transport?: () => SshTransport;
}

/** POSIX single-quoting: the word reaches the remote argv exactly as given. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}

function hostKeyVerifier(expected: string | undefined): ConnectConfig["hostVerifier"] {
  if (!expected) return undefined;
  const blob = Buffer.from(expected.split(/\s+/)[1] ?? "", "base64");
  return (key: Buffer): boolean => key.equals(blob);
}

function connect(ep: SshEndpoint, privateKey: string, readyTimeoutMs: number, sock?: Readable): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    const fail = (e: Error): void => {
      c.end();
      reject(new Error(`ssh ${ep.user}@${ep.host}:${ep.port}: ${e.message}`, { cause: e }));
    };
    c.once("ready", () => {
      c.off("error", fail);
      c.on("error", () => undefined); // later errors surface on the channels
      resolve(c);
    });
    c.once("error", fail);
    c.connect({
      host: ep.host,
      port: ep.port,
      username: ep.user,
      privateKey,
      readyTimeout: readyTimeoutMs,
      hostVerifier: hostKeyVerifier(ep.hostKey),
      ...(sock ? { sock } : {}),
    });
  });
}

export interface SshRunOptions {
  input?: string | Buffer;
  /** Default 60 s; the channel is closed when it passes and the result says timedOut. */
  timeoutMs?: number;
}

export class SshSession {
  private constructor(
    readonly target: SshTarget,
    private readonly client: Client,
    private readonly jump: Client | undefined,
    private readonly transport: SshTransport | undefined = undefined,
  ) {}

  static async open(target: SshTarget, readyTimeoutMs = 10_000): Promise<SshSession> {
    const transport = target.transport?.();
    try {
      return await SshSession.openOver(target, readyTimeoutMs, transport);
    } catch (e) {
      transport?.close();
      throw e;
    }
  }

  private static async openOver(target: SshTarget, readyTimeoutMs: number, transport: SshTransport | undefined): Promise<SshSession> {
    if (!target.bastion) return new SshSession(target, await connect(target, target.privateKey, readyTimeoutMs, transport?.stream), undefined, transport);
    const jump = await connect(target.bastion, target.privateKey, readyTimeoutMs, transport?.stream);
    try {
      const stream = await new Promise<ClientChannel>((resolve, reject) => jump.forwardOut("127.0.0.1", 0, target.host, target.port, (err, ch) => (err ? reject(err) : resolve(ch))));
      return new SshSession(target, await connect(target, target.privateKey, readyTimeoutMs, stream), jump, transport);
    } catch (e) {
      jump.end();
      throw new Error(`ssh ${target.user}@${target.host} through bastion ${target.bastion.host}`, { cause: e });
    }
  }

  /** Prefixes `sudo -n` when the session's user is not root. */
  asRoot(argv: readonly string[]): string[] {
    return this.target.user === "root" ? [...argv] : ["sudo", "-n", ...argv];
  }

  /** Runs a command (an argv is single-quoted word by word; a string is sent as is). */
  run(command: readonly string[] | string, opts: SshRunOptions = {}): Promise<RunResult> {
    const text = typeof command === "string" ? command : shellJoin(command);
    return new Promise((resolve, reject) => {
      this.client.exec(text, (err, ch) => {
        if (err) return reject(new Error(`ssh ${this.target.host}: exec ${text}`, { cause: err }));
        const out: Buffer[] = [];
        const errs: Buffer[] = [];
        let code: number | null = null;
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          ch.close();
        }, opts.timeoutMs ?? 60_000);
        ch.on("data", (b: Buffer) => out.push(b));
        ch.stderr.on("data", (b: Buffer) => errs.push(b));
        ch.on("exit", (c: number | null) => (code = c));
        ch.on("close", () => {
          clearTimeout(timer);
          resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(errs).toString(), code: timedOut ? null : code, timedOut });
        });
        ch.end(opts.input ?? "");
      });
    });
  }

  close(): void {
    this.client.end();
    this.jump?.end();
    this.transport?.close();
  }
}
