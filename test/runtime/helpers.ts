// Shared by the runtime tests: deferred promises, bounded waiting on a condition, a
// logger that records what it was given.
import { Writable } from "node:stream";
import type { Logger } from "../../runtime/log.js";
import { createLogger } from "../../runtime/log.js";

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (err: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets pending promise callbacks and I/O callbacks run, `rounds` times. */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * Waits until cond() holds, yielding to the event loop between checks; fails after
 * `rounds` yields (a bound on work, not a timed sleep) or `ms` of wall time for I/O-bound
 * waits against a real server.
 */
export async function until(cond: () => boolean, what: string, opts: { rounds?: number; ms?: number } = {}): Promise<void> {
  const rounds = opts.rounds ?? 10_000;
  const deadline = Date.now() + (opts.ms ?? 20_000);
  for (let i = 0; i < rounds && Date.now() < deadline; i++) {
    if (cond()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  if (!cond()) throw new Error(`timed out waiting for: ${what}`);
}

export interface CapturedLog {
  level: string;
  message: string;
  [key: string]: unknown;
}

/** A JSON logger at debug level whose lines land in `lines`, parsed. */
export function captureLogger(): { logger: Logger; lines: CapturedLog[] } {
  const lines: CapturedLog[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) lines.push(JSON.parse(line) as CapturedLog);
      cb();
    },
  });
  return { logger: createLogger({ level: "debug", format: "json", stream, env: {} }), lines };
}
