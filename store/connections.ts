// Connection limits of the API server. A client without the token must not hold the server's
// sockets: the TLS handshake, the request headers and every pause with no request in flight are
// timed, and connections that have not yet shown the token are capped (the oldest is closed when a
// new one arrives, so a flood of slow sockets cannot lock out kubectl). A request in flight has no
// time limit: a watch response stays open for as long as the watch lasts.
import type { IncomingMessage } from "node:http";
import type { Server } from "node:https";
import type { Socket } from "node:net";

export interface ConnectionLimits {
  /** The TLS handshake must finish within this (default 10 s). */
  handshakeTimeoutMs: number;
  /** Each request's headers must arrive within this from its first byte (default 32 s, kube-apiserver's ReadHeaderTimeout). */
  headersTimeoutMs: number;
  /** A connection without a request in flight is closed after this long without traffic (default 90 s, kube-apiserver's IdleTimeout). */
  idleTimeoutMs: number;
  /** Connections that have not yet sent a request with the token; past this the oldest of them is closed (default 256). */
  maxUnauthenticatedConnections: number;
  /** All connections; past this new ones are refused (default 1024). */
  maxConnections: number;
}

export const defaultConnectionLimits: ConnectionLimits = {
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 32_000,
  idleTimeoutMs: 90_000,
  maxUnauthenticatedConnections: 256,
  maxConnections: 1024,
};

export function connectionLimits(given: Partial<ConnectionLimits> = {}): ConnectionLimits {
  const limits = { ...defaultConnectionLimits, ...given };
  for (const [field, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) throw new Error(`store connection limit ${field} must be a positive integer, got ${String(value)}`);
  }
  return limits;
}

/** Options of https.createServer that enforce the limits Node checks itself. */
export function serverTimeoutOptions(l: ConnectionLimits) {
  return {
    handshakeTimeout: l.handshakeTimeoutMs,
    headersTimeout: l.headersTimeoutMs,
    // 0: no limit on a whole request, which would cut watches. Node derives headersTimeout from
    // it when that is not given (0 turned the header timeout off).
    requestTimeout: 0,
    keepAliveTimeout: l.idleTimeoutMs,
    // How often Node looks for requests past headersTimeout (its default is 30 s).
    connectionsCheckingInterval: Math.max(100, Math.min(5000, Math.floor(l.headersTimeoutMs / 4))),
  };
}

function keyOf(s: Socket): string {
  return `${s.remoteAddress ?? ""}|${s.remotePort ?? ""}`;
}

/** Applies the idle rule and the caps to `server`; call trust() for a request that carries the token. */
export class ConnectionGuard {
  /** Connections (raw TCP sockets, by remote address and port) that have not shown the token, oldest first. */
  private readonly untrusted = new Map<string, Socket>();

  constructor(
    server: Server,
    private readonly limits: ConnectionLimits,
  ) {
    server.maxConnections = limits.maxConnections;
    server.on("connection", (raw: Socket) => {
      const key = keyOf(raw);
      this.untrusted.set(key, raw);
      raw.once("close", () => {
        if (this.untrusted.get(key) === raw) this.untrusted.delete(key);
      });
      while (this.untrusted.size > limits.maxUnauthenticatedConnections) {
        const [oldestKey, oldest] = this.untrusted.entries().next().value as [string, Socket];
        this.untrusted.delete(oldestKey);
        oldest.destroy();
      }
    });
    server.on("secureConnection", (s: Socket) => {
      // Until its first request; Node's keepAliveTimeout takes over between later requests.
      s.setTimeout(limits.idleTimeoutMs);
    });
    server.prependListener("request", (req: IncomingMessage) => {
      // A request in flight (a watch, too) is not idle. Node clears its own keep-alive timer here,
      // but not the one set at secureConnection.
      req.socket.setTimeout(0);
    });
  }

  /** The connection of `req` showed the token: it no longer counts against maxUnauthenticatedConnections. */
  trust(req: IncomingMessage): void {
    this.untrusted.delete(keyOf(req.socket));
  }
}
