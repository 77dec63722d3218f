// Child processes for the lab: argv only (never a shell string built from variables),
// every wait bounded in time, every failure wrapped with the command that failed.
import { spawn, type SpawnOptions } from "node:child_process";
import { readFileSync } from "node:fs";

/** PATH for everything the lab runs: system binaries first (a /usr/local/bin/docker of
 * another version must not shadow the Debian one that matches dockerd). */
export const LAB_PATH = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin";

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when killed by a signal (see timedOut). */
  code: number | null;
  timedOut: boolean;
}

export interface RunOptions {
  input?: string | Buffer;
  /** Kill the command (SIGKILL) after this many ms; default 60 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const DEFAULT_TIMEOUT_MS = 60_000;

export function labEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...process.env, PATH: LAB_PATH, LC_ALL: "C", ...extra };
}

/** Runs argv to completion and reports what happened; never throws for a non-zero exit. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new Error("run: empty argv"));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: opts.env ?? labEnv(),
      cwd: opts.cwd ?? "/",
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${cmd}`, { cause: e }));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code, timedOut });
    });
    child.stdin.on("error", () => undefined); // the command may exit without reading its input
    child.stdin.end(opts.input ?? "");
  });
}

export function describeArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
}

export function describeFailure(argv: readonly string[], r: RunResult): string {
  const why = r.timedOut ? "timed out" : `exited ${r.code}`;
  const detail = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-6).join("\n");
  return `${describeArgv(argv)} ${why}${detail ? `: ${detail}` : ""}`;
}

/** Runs argv and returns its stdout; throws (with the command and its stderr) unless it exits 0. */
export async function runOk(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new Error(describeFailure(argv, r));
  return r.stdout;
}

export interface DetachedOptions {
  /** File descriptor that receives the process's stdout and stderr. */
  logFd: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts a long-running process in its own session, so that a Ctrl-C of the test runner
 * does not reach it and it outlives us when wanted (the demo); returns its PID.
 * nsenter/unshare exec into their target, so the PID is the target's own PID.
 */
export function spawnDetached(argv: readonly string[], opts: DetachedOptions): Promise<number> {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new Error("spawnDetached: empty argv"));
  const spawnOpts: SpawnOptions = {
    detached: true,
    stdio: ["ignore", opts.logFd, opts.logFd],
    env: opts.env ?? labEnv(),
    cwd: "/",
  };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, spawnOpts);
    child.once("error", (e) => reject(new Error(`cannot start ${describeArgv(argv)}`, { cause: e })));
    child.once("spawn", () => {
      child.unref();
      if (child.pid === undefined) reject(new Error(`no PID for ${describeArgv(argv)}`));
      else resolve(child.pid);
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface WaitOptions {
  /** What is awaited, for the error message ("dockerd on h1 to answer /_ping"). */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
}

/**
 * Polls check() until it returns a value other than undefined/false, bounded by timeoutMs.
 * The last error thrown by check() becomes the cause of the timeout error.
 */
export async function waitFor<T>(check: () => Promise<T | undefined | false>, opts: WaitOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  const interval = opts.intervalMs ?? 100;
  let lastError: unknown;
  for (let attempt = 0; attempt < 100_000; attempt++) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() + interval > deadline) break;
    await sleep(interval);
  }
  throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}`, lastError ? { cause: lastError } : undefined);
}

/** True while a process with this PID exists (and is not a zombie we could reap). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Alive and not a zombie: still doing something. */
export function isRunning(pid: number): boolean {
  return isAlive(pid) && !isZombie(pid);
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw new Error(`kill -${sig} ${pid}`, { cause: e });
  }
}

/** SIGTERM, then SIGKILL after graceMs for whatever is left; waits (bounded) until all are gone. */
export async function stopPids(pids: readonly number[], graceMs: number): Promise<void> {
  const live = pids.filter(isAlive);
  if (live.length === 0) return;
  if (graceMs <= 0) {
    for (const pid of live) signal(pid, "SIGKILL");
    await waitFor(async () => live.every((p) => !isAlive(p) || isZombie(p)), { what: `PIDs ${live.join(",")} to exit after SIGKILL`, timeoutMs: 5000, intervalMs: 20 });
    return;
  }
  for (const pid of live) signal(pid, "SIGTERM");
  const gone = async (): Promise<boolean> => live.every((p) => !isAlive(p) || isZombie(p));
  try {
    await waitFor(gone, { what: `PIDs ${live.join(",")} to exit`, timeoutMs: graceMs, intervalMs: 50 });
    return;
  } catch {
    // fall through to SIGKILL
  }
  for (const pid of live) if (isAlive(pid)) signal(pid, "SIGKILL");
  await waitFor(gone, { what: `PIDs ${live.join(",")} to exit after SIGKILL`, timeoutMs: 5000, intervalMs: 50 });
}

/** A zombie has exited; its parent (often ourselves, for detached children) has not reaped it. */
export function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}
