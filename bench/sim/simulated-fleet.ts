// SimulatedHostFleet: many simulated Docker hosts behind one in-process ssh2 Server, for
// benchmarks. Each host listens on its own loopback address (127.1.x.y, a port the kernel
// picks); accepted sockets are handed to the one ssh2 Server (injectSocket), which tells them
// apart by the client's address and port. The controller connects as it would to real hosts
// (key authentication, host key recorded on first contact) and runs its scripts, each recognised
// by its text: the observe script and the Ready check answered from the host's state, apply
// scripts (prelude + steps) applied to it, and mesh DNS's three (bench/sim/simulated-dns.ts): the
// Docker event stream (kept open until the client closes it), the look at the containers and the
// records write. Any other command exits 127. Nothing leaves loopback.
import { createServer, type Server as NetServer, type Socket } from "node:net";
import ssh2 from "ssh2";
import type { Connection, ParsedKey, ServerChannel } from "ssh2";
import { OBSERVE_SCRIPT } from "../../hosts/observe.js";
import { LIVENESS_SCRIPT } from "../../hosts/liveness.js";
import { EVENTS_SCRIPT, EVENT_FILTERS } from "../../hosts/docker-events.js";
import { INSPECT_SCRIPT } from "../../hosts/dns-inspect.js";
import { WRITE_RECORDS_SCRIPT } from "../../hosts/dns-write.js";
import { APPLIED_MARK, APPLY_OPEN, OBSERVE_AFTER_APPLY, SCRIPT_PRELUDE } from "../../hosts/steps.js";
import { FRESH_PRELUDE, FRESH_SKIP } from "../../hosts/fresh-guard.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHost, type SimulatedHostOptions, type SimulatedPeer, type WireGuardKeyListener } from "./simulated-host.js";
import { renderLiveness, renderObservation, type PeerDirectory } from "./simulated-observe.js";
import { runApplyScript } from "./simulated-apply.js";
import { parseExecCommand } from "./simulated-shell.js";
import { eventLine, readyLine, renderInspect, runWriteRecords } from "./simulated-dns.js";
import { splitRuleLine } from "../../hosts/observe.js";

const { Server, utils } = ssh2;

/** Per simulated host: what the controller did to it. */
export interface SimulatedHostCounters {
  /** SSH connections authenticated. */
  sessions: number;
  /** Commands run (one SSH round trip each). */
  roundTrips: number;
  observes: number;
  /** Ready checks (hosts/liveness.ts). */
  readyChecks: number;
  applies: number;
  /** Steps applied (completed calls of the apply script). */
  steps: number;
  /** Mesh DNS: Docker event streams started (hosts/docker-events.ts), … */
  dnsStreams: number;
  /** …looks at the containers (hosts/dns-inspect.ts), … */
  dnsInspects: number;
  /** …and records writes (hosts/dns-write.ts), … */
  dnsWrites: number;
  /** …of which answered NO_RESOLVER_EXIT: the resolver not configured yet, the controller retries later. */
  dnsNoResolver: number;
  /**
   * Commands that exited non-zero, except a records write's NO_RESOLVER_EXIT (the script's "not
   * yet", counted apart) and an event stream ended by the client (that is how the client stops it).
   */
  failures: number;
  /** Commands that were none of dockmesh's scripts (exit 127). */
  unknown: number;
}

/** How many mesh commands' start times a host keeps (SimulatedHostEntry.meshTrips). */
export const MESH_TRIP_TIMES = 64;

export interface SimulatedHostEntry {
  name: string;
  host: SimulatedHost;
  /** Where its SSH server listens (loopback). */
  sshHost: string;
  sshPort: number;
  counters: SimulatedHostCounters;
  /** When (Date.now()) each of the controller's mesh commands (observe, apply, Ready check) began: the first MESH_TRIP_TIMES. */
  meshTrips: number[];
  /** Gone away: every connection is closed at once, before SSH's greeting, and no peer handshakes with it. */
  down?: boolean;
}

export interface SimulatedHostFleetOptions {
  /** Host names, one simulated host each. */
  names: readonly string[];
  /** What every host is like beyond its name and uplink (dnsmasq, systemd, resolv.conf; simulated-host.ts). */
  host?: Omit<SimulatedHostOptions, "name" | "uplinkAddress" | "keys">;
  /** authorized_keys line of the one client key accepted ("ssh-ed25519 AAAA…"). */
  authorizedKey: string;
  /** Added before every answer, to stand in for network and script time (default 0). */
  latencyMs?: number;
  /** First two octets of the hosts' loopback addresses (default "127.1"). */
  addressPrefix?: string;
  /** Clock in seconds, for handshakes (default: the system clock). */
  nowS?: () => number;
}

const zero = (): SimulatedHostCounters => ({
  sessions: 0,
  roundTrips: 0,
  observes: 0,
  readyChecks: 0,
  applies: 0,
  steps: 0,
  dnsStreams: 0,
  dnsInspects: 0,
  dnsWrites: 0,
  dnsNoResolver: 0,
  failures: 0,
  unknown: 0,
});

/** The loopback address of host number i (0-based): 127.1.0.1 … 127.1.0.250, 127.1.1.1 … */
export function simulatedAddress(i: number, prefix = "127.1"): string {
  return `${prefix}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

export class SimulatedHostFleet implements PeerDirectory, WireGuardKeyListener {
  readonly hosts: SimulatedHostEntry[] = [];
  /** Host key of every simulated host (one key, for speed); "ssh-ed25519 AAAA…". */
  readonly hostKey: string;
  private readonly byName = new Map<string, SimulatedHostEntry>();
  private readonly byKey = new Map<string, { host: SimulatedHost; iface: string }>();
  private readonly listeners: NetServer[] = [];
  private readonly ssh: InstanceType<typeof Server>;
  /** Accepted sockets waiting for their SSH header, by client "address:port". */
  private readonly pending = new Map<string, { socket: Socket; entry: SimulatedHostEntry }>();
  /** Sockets from a client address:port already pending (a different destination): injected after. */
  private readonly waiting = new Map<string, Array<{ socket: Socket; entry: SimulatedHostEntry }>>();
  private readonly connections = new Set<Socket>();
  /** Each host's open connections: closed at once when it goes down. */
  private readonly connectionsOf = new Map<SimulatedHostEntry, Set<Socket>>();
  private readonly latencyMs: number;
  private readonly nowS: () => number;
  private readonly authorized: ReturnType<typeof parsePublicKey>;

  private constructor(private readonly opts: SimulatedHostFleetOptions) {
    this.latencyMs = opts.latencyMs ?? 0;
    this.nowS = opts.nowS ?? (() => Math.floor(Date.now() / 1000));
    this.authorized = parsePublicKey(opts.authorizedKey);
    const key = generateEd25519("dockmesh-simulated-host");
    this.hostKey = key.publicKey.split(" ").slice(0, 2).join(" ");
    this.ssh = new Server({ hostKeys: [key.privateKey] }, (client, info) => this.onClient(client, `${info.ip}:${info.port}`));
    this.ssh.on("error", () => {});
  }

  /** Starts one simulated host per name, each listening on its own loopback address. */
  static async start(opts: SimulatedHostFleetOptions): Promise<SimulatedHostFleet> {
    const fleet = new SimulatedHostFleet(opts);
    try {
      for (const [i, name] of opts.names.entries()) await fleet.listen(i, name);
    } catch (err) {
      await fleet.close();
      throw new Error(`simulated host fleet: cannot listen for host ${fleet.hosts.length} of ${opts.names.length}`, { cause: err });
    }
    return fleet;
  }

  get(name: string): SimulatedHostEntry | undefined {
    return this.byName.get(name);
  }

  /** Sum of every host's counters. */
  totals(): SimulatedHostCounters {
    const t = zero();
    for (const h of this.hosts) for (const k of Object.keys(t) as Array<keyof SimulatedHostCounters>) t[k] += h.counters[k];
    return t;
  }

  /** A copy of every host's counters, by name (to subtract later). */
  snapshot(): Map<string, SimulatedHostCounters> {
    return new Map(this.hosts.map((h) => [h.name, { ...h.counters }]));
  }

  async close(): Promise<void> {
    for (const s of this.connections) s.destroy();
    await Promise.all(this.listeners.map((l) => new Promise<void>((r) => l.close(() => r()))));
  }

  // --- PeerDirectory / WireGuardKeyListener ----------------------------------------

  counterpart(host: SimulatedHost, iface: string, peerKey: string): SimulatedPeer | undefined {
    const mine = host.wg.get(iface)?.publicKey;
    const other = this.byKey.get(peerKey);
    if (!mine || !other || other.host === host || !other.host.links.get(other.iface)?.up) return undefined;
    // A host gone away answers no handshake either.
    if (this.hosts.some((e) => e.host === other.host && e.down)) return undefined;
    return other.host.wg.get(other.iface)?.peers.get(mine);
  }

  keyAdded(publicKey: string, host: SimulatedHost, iface: string): void {
    this.byKey.set(publicKey, { host, iface });
  }

  keyRemoved(publicKey: string, host: SimulatedHost, iface: string): void {
    const cur = this.byKey.get(publicKey);
    if (cur && cur.host === host && cur.iface === iface) this.byKey.delete(publicKey);
  }

  // --- SSH --------------------------------------------------------------------------

  private async listen(i: number, name: string): Promise<void> {
    const address = simulatedAddress(i, this.opts.addressPrefix);
    const host = new SimulatedHost({ ...this.opts.host, name, uplinkAddress: `192.0.2.${(i % 250) + 2}`, keys: this });
    const entry: SimulatedHostEntry = { name, host, sshHost: address, sshPort: 0, counters: zero(), meshTrips: [] };
    const sockets = new Set<Socket>();
    this.connectionsOf.set(entry, sockets);
    // Going down drops the host's open connections too (mesh DNS's event stream among them).
    let down = false;
    Object.defineProperty(entry, "down", {
      enumerable: true,
      get: () => down,
      set: (v: boolean | undefined) => {
        down = v === true;
        if (down) for (const s of sockets) s.destroy();
      },
    });
    const srv = createServer((socket) => this.accept(socket, entry));
    srv.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(0, address, () => {
        srv.off("error", reject);
        resolve();
      });
    });
    const a = srv.address();
    entry.sshPort = typeof a === "object" && a ? a.port : 0;
    this.listeners.push(srv);
    this.hosts.push(entry);
    this.byName.set(name, entry);
  }

  private accept(socket: Socket, entry: SimulatedHostEntry): void {
    if (entry.down) {
      socket.destroy();
      return;
    }
    this.connections.add(socket);
    const mine = this.connectionsOf.get(entry);
    mine?.add(socket);
    socket.once("close", () => {
      this.connections.delete(socket);
      mine?.delete(socket);
    });
    socket.on("error", () => {});
    const from = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.once("close", () => {
      if (this.pending.get(from)?.socket === socket) this.release(from);
      const queue = this.waiting.get(from);
      if (queue)
        this.waiting.set(
          from,
          queue.filter((q) => q.socket !== socket),
        );
    });
    if (this.pending.has(from)) {
      // The same client port to another host, both before their SSH header: keep them apart.
      const queue = this.waiting.get(from) ?? [];
      queue.push({ socket, entry });
      this.waiting.set(from, queue);
      return;
    }
    this.pending.set(from, { socket, entry });
    this.ssh.injectSocket(socket);
  }

  /** The pending socket of `from` has been identified (or closed): inject the next one. */
  private release(from: string): void {
    this.pending.delete(from);
    const queue = this.waiting.get(from);
    const next = queue?.shift();
    if (queue && queue.length === 0) this.waiting.delete(from);
    if (next) {
      this.pending.set(from, next);
      this.ssh.injectSocket(next.socket);
    }
  }

  private onClient(client: Connection, from: string): void {
    const p = this.pending.get(from);
    client.on("error", () => {});
    if (!p) {
      client.end();
      return;
    }
    const entry = p.entry;
    this.release(from);
    client.on("authentication", (ctx) => {
      if (ctx.method !== "publickey" || ctx.key.algo !== this.authorized.type || !ctx.key.data.equals(this.authorized.getPublicSSH())) {
        ctx.reject(["publickey"]);
        return;
      }
      if (ctx.signature && ctx.blob && !this.authorized.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) {
        ctx.reject(["publickey"]);
        return;
      }
      ctx.accept();
    });
    client.on("ready", () => {
      entry.counters.sessions++;
      client.on("session", (acceptSession) => {
        const session = acceptSession();
        session.on("exec", (acceptExec, _reject, info) => this.exec(entry, acceptExec(), info.command));
      });
    });
  }

  private exec(entry: SimulatedHostEntry, stream: ServerChannel, command: string): void {
    if (parseExecCommand(command)?.script === EVENTS_SCRIPT) {
      this.events(entry, stream);
      return;
    }
    const input: Buffer[] = [];
    let answered = false;
    const answer = () => {
      if (answered) return;
      answered = true;
      const r = this.run(entry, command, Buffer.concat(input));
      const send = () => {
        // The client may have closed the channel first (mesh DNS's event stream, stopped).
        if (stream.destroyed || stream.writableEnded) return;
        if (r.stdout) stream.write(r.stdout);
        if (r.stderr) stream.stderr.write(r.stderr);
        stream.exit(r.code);
        stream.end();
      };
      if (this.latencyMs > 0) setTimeout(send, this.latencyMs);
      else send();
    };
    stream.on("data", (d: Buffer) => input.push(d));
    stream.on("end", answer);
    stream.on("error", () => {});
    stream.stderr.on("error", () => {});
  }

  /**
   * EVENTS_SCRIPT: the ready marker with the host's clock, then a line per Docker event of the
   * host (simulated containers: SimulatedHost.runContainer), until the client closes the channel
   * or its input (the script then kills `docker events` and exits with its status, 143).
   */
  private events(entry: SimulatedHostEntry, stream: ServerChannel): void {
    const c = entry.counters;
    c.roundTrips++;
    c.dnsStreams++;
    let off: (() => void) | undefined;
    let ended = false;
    const open = () => !ended && !stream.destroyed && !stream.writableEnded;
    const stop = () => {
      ended = true;
      off?.();
    };
    const begin = () => {
      if (!open()) return;
      stream.write(readyLine(this.nowS()));
      off = entry.host.onDockerEvent((type, action) => {
        if (open() && (EVENT_FILTERS[type] as readonly string[]).includes(action)) stream.write(eventLine(type, action));
      });
    };
    if (this.latencyMs > 0) setTimeout(begin, this.latencyMs);
    else begin();
    stream.on("end", () => {
      if (open()) {
        stream.exit(143);
        stream.end();
      }
      stop();
    });
    stream.on("close", stop);
    stream.on("error", () => {});
    stream.stderr.on("error", () => {});
  }

  /** One command on one host: one of dockmesh's scripts, or unknown (127). */
  private run(entry: SimulatedHostEntry, command: string, input: Buffer): { code: number; stdout: string; stderr: string } {
    const c = entry.counters;
    c.roundTrips++;
    const began = Date.now();
    const meshBefore = c.observes + c.applies + c.readyChecks;
    const parsed = parseExecCommand(command);
    const stdin = input.toString("utf8");
    let r: { code: number; stdout: string; stderr: string };
    let expected = false;
    if (parsed?.script === OBSERVE_SCRIPT) {
      c.observes++;
      r = { code: 0, stdout: renderObservation(entry.host, parsed.args, stdin, this.nowS(), this), stderr: "" };
    } else if (parsed?.script === LIVENESS_SCRIPT) {
      c.readyChecks++;
      r = { code: 0, stdout: renderLiveness(entry.host, parsed.args, stdin, this.nowS(), this), stderr: "" };
    } else if (parsed?.script.startsWith(APPLY_OPEN + SCRIPT_PRELUDE) && parsed.script.endsWith(OBSERVE_AFTER_APPLY)) {
      // Apply, then observe in the same script (hosts/steps.ts); a first converge's guard first
      // (an apply only when the guard let it through).
      c.observes++;
      let body = parsed.script.slice((APPLY_OPEN + SCRIPT_PRELUDE).length, -OBSERVE_AFTER_APPLY.length);
      let guard: string[] | undefined;
      if (body.startsWith(FRESH_PRELUDE)) {
        const nl = body.indexOf("\n", FRESH_PRELUDE.length);
        const words = splitRuleLine(body.slice(FRESH_PRELUDE.length, nl < 0 ? body.length : nl));
        guard = words[0] === "fresh_guard" && words.at(-1) === "</dev/null" ? words.slice(1, -1) : ["malformed"];
        body = nl < 0 ? "" : body.slice(nl + 1);
      }
      const run = runApplyScript(entry.host, body, stdin, guard);
      if (!run.stdout.startsWith(FRESH_SKIP)) c.applies++;
      c.steps += run.completed;
      const observed = renderObservation(entry.host, parsed.args, run.rest, this.nowS(), this);
      r = { code: 0, stdout: `${run.stdout}${APPLIED_MARK} ${run.code}\n${observed}`, stderr: run.stderr };
    } else if (parsed?.script.startsWith(SCRIPT_PRELUDE)) {
      c.applies++;
      const run = runApplyScript(entry.host, parsed.script.slice(SCRIPT_PRELUDE.length), stdin);
      c.steps += run.completed;
      r = run;
    } else if (parsed?.script === INSPECT_SCRIPT) {
      c.dnsInspects++;
      const run = renderInspect(entry.host, parsed.args);
      r = { code: run.code, stdout: run.stdout ?? "", stderr: run.stderr ?? "" };
    } else if (parsed?.script === WRITE_RECORDS_SCRIPT) {
      c.dnsWrites++;
      const run = runWriteRecords(entry.host, parsed.args, input);
      if (run.noResolver) c.dnsNoResolver++;
      expected = run.noResolver && run.code !== 0;
      r = { code: run.code, stdout: run.stdout ?? "", stderr: run.stderr ?? "" };
    } else {
      c.unknown++;
      r = { code: 127, stdout: "", stderr: `simulated host ${entry.name}: not a dockmesh script, not run: ${command.slice(0, 60)}\n` };
    }
    if (r.code !== 0 && !expected) c.failures++;
    if (c.observes + c.applies + c.readyChecks > meshBefore && entry.meshTrips.length < MESH_TRIP_TIMES) entry.meshTrips.push(began);
    return r;
  }
}

function parsePublicKey(line: string) {
  const k = utils.parseKey(line);
  // ssh2 returns an array for a file of several keys, which its types leave out (so k[0] is `any`).
  const key = Array.isArray(k) ? (k[0] as ParsedKey | undefined) : k;
  if (!key || key instanceof Error) throw new Error(`simulated host fleet: cannot parse the authorized key: ${key instanceof Error ? key.message : "empty"}`);
  return key;
}
