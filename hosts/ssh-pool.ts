// One SSH connection per host, shared by whoever needs the host at the same time: mesh DNS holds
// one open for its event stream (controllers/dns-link.ts), and the Machine controller's looks run
// their commands over it as further channels instead of a key exchange and a signature each
// (at 1,000 hosts and a 20 s resync, 50 new connections a second before). A connection is shared
// only between leases of the same target: address, user, private key, the host key it must
// have (pinned or recorded) and the bastion's likewise. A first contact (no host key to check
// yet) always gets a connection of its own. The last lease closes it: nothing is kept idle.
import { createHash } from "node:crypto";
import { HostError } from "./errors.js";
import {
  connect,
  pinFingerprint,
  type ConnectedSession,
  type ExecOptions,
  type ExecResult,
  type SshEndpoint,
  type SshTarget,
  type StreamHandle,
  type StreamOptions,
  type StreamingHostSession,
} from "./ssh.js";

export type Connector = (target: SshTarget) => Promise<ConnectedSession>;

interface Entry {
  session: Promise<ConnectedSession>;
  holders: number;
}

/** The host key an endpoint's connection was checked against: its pin, else the recorded one. */
const expectedKey = (e: SshEndpoint): string | undefined => (e.hostKeyPin ? pinFingerprint(e.hostKeyPin) : e.recordedFingerprint);

/** What makes two targets the same connection; undefined: not shared (a host key not known yet). */
export function poolKey(t: SshTarget): string | undefined {
  const part = (e: SshEndpoint) => {
    const key = expectedKey(e);
    return key === undefined ? undefined : [e.host, e.port, e.user, createHash("sha256").update(e.privateKey).digest("hex"), key];
  };
  const own = part(t);
  const bastion = t.bastion ? part(t.bastion) : null;
  if (!own || bastion === undefined) return undefined;
  return createHash("sha256")
    .update(JSON.stringify([own, bastion]))
    .digest("hex");
}

/**
 * A channel the host refused on a connection that is already in use: sshd's MaxSessions (10 by
 * default; a hardened host may allow 1). The command never started, so it runs again on a
 * connection of its own (as every look did before connections were shared).
 */
function refusedChannel(err: unknown): boolean {
  if (!(err instanceof HostError) || err.reason !== "Unreachable") return false;
  const cause = err.cause instanceof Error ? err.cause.message : "";
  return /Channel open failure|Unable to exec/i.test(cause);
}

export class SessionPool {
  private readonly entries = new Map<string, Entry>();
  /** Connections opened (for tests and benchmarks). */
  opened = 0;

  constructor(private readonly open: Connector = connect) {}

  /** Open connections held by leases now. */
  get size(): number {
    return this.entries.size;
  }

  /** A session to the target: the open connection of the same target, or a new one. Close it when done. */
  async lease(target: SshTarget): Promise<StreamingHostSession> {
    const key = poolKey(target);
    if (key === undefined) return this.connect(target);
    let entry = this.entries.get(key);
    if (!entry) {
      const created: Entry = { session: this.connect(target), holders: 0 };
      entry = created;
      this.entries.set(key, created);
      // A failed connect or a lost connection leaves the pool: the next lease connects anew.
      const drop = () => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      };
      created.session.then((s) => void s.closed.then(drop), drop);
    }
    entry.holders++;
    let session: ConnectedSession;
    try {
      session = await entry.session;
    } catch (err) {
      this.release(key, entry);
      throw err;
    }
    return new Lease(
      session,
      () => this.release(key, entry),
      () => this.connect(target),
    );
  }

  private connect(target: SshTarget): Promise<ConnectedSession> {
    this.opened++;
    return this.open(target);
  }

  private release(key: string, entry: Entry): void {
    entry.holders--;
    if (entry.holders > 0) return;
    if (this.entries.get(key) === entry) this.entries.delete(key);
    entry.session.then(
      (s) => s.close(),
      () => undefined,
    );
  }
}

/** One holder's use of a shared connection; close() gives it back. */
class Lease implements StreamingHostSession {
  roundTrips = 0;
  readonly fingerprint: string;
  readonly bastionFingerprint?: string;
  private released = false;

  constructor(
    private readonly shared: ConnectedSession,
    private readonly giveBack: () => void,
    private readonly connectOwn: () => Promise<ConnectedSession>,
  ) {
    this.fingerprint = shared.fingerprint;
    if (shared.bastionFingerprint !== undefined) this.bastionFingerprint = shared.bastionFingerprint;
  }

  async exec(script: string, opts?: ExecOptions): Promise<ExecResult> {
    this.roundTrips++;
    try {
      return await this.shared.exec(script, opts);
    } catch (err) {
      if (!refusedChannel(err)) throw err;
    }
    // A connection for this command alone: its first channel. (A second channel on it could race
    // sshd freeing the first one's slot, which it does only once that command's process is reaped.)
    const own = await this.connectOwn();
    try {
      return await own.exec(script, opts);
    } finally {
      own.close();
    }
  }

  stream(script: string, opts: StreamOptions, onLine: (line: string) => void): StreamHandle {
    // The stream holds its channel for hours: it takes the shared connection (mesh DNS opens it first).
    this.roundTrips++;
    return this.shared.stream(script, opts, onLine);
  }

  close(): void {
    if (this.released) return;
    this.released = true;
    this.giveBack();
  }
}
