// Apply: run the steps as one script over the session (one round trip), report which step
// failed with the host's own words. A script too long for one SSH command (a first apply in a
// mesh of hundreds of machines has a route per peer) is split into several, run in order.
import { OutputTooLargeError, type HostSession } from "./ssh.js";
import { HostError } from "./errors.js";
import { hostText } from "./host-text.js";
import { shQuote } from "../mesh/shell.js";
import { APPLIED_MARK, OBSERVE_AFTER_APPLY, renderScript, SCRIPT_PRELUDE, type Step } from "./steps.js";
import { FRESH_PRELUDE, FRESH_SKIP } from "./fresh-guard.js";
import { OBSERVE_LIMITS, observeArgs, parseObservation, probeInput, type HostObservation, type Probe } from "./observe.js";
import { UnsafeValueError } from "../api/formats.js";

export interface ApplyResult {
  /** Steps that ran to completion, in order. */
  done: Step[];
}

/**
 * Longest script sent as one command. The script travels in the SSH exec request, which must fit
 * one SSH packet: 35,000 bytes for dropbear and ssh2-based servers (OpenSSH takes 256 KiB), and
 * sshd hands it to the login shell as one argument, at most 128 KiB on Linux. 32 KiB leaves room
 * for the `sh -c` wrapping and the packet header.
 */
export const MAX_SCRIPT_BYTES = 32 * 1024;

/** Length of text once single-quoted by shQuote: each ' becomes '\'' (4 bytes). */
const quotedLength = (text: string) => Buffer.byteLength(text) + 3 * (text.split("'").length - 1);

/** The steps in runs whose scripts each stay under maxBytes (a single larger step runs alone). */
export function chunkSteps(steps: readonly Step[], maxBytes = MAX_SCRIPT_BYTES, extra = 0): Step[][] {
  // The prelude, "step done", quotes, "sh -c … sh"; `extra`: what else each script carries (the observe after the steps).
  const fixed = quotedLength(SCRIPT_PRELUDE) + 64 + extra;
  const chunks: Step[][] = [];
  let current: Step[] = [];
  let size = fixed;
  for (const s of steps) {
    // What renderScript writes per step, as it ends up quoted in the command.
    const line = quotedLength(`step ${current.length}\n${s.op}${s.args.length ? " " + s.args.map(shQuote).join(" ") : ""} </dev/null\n`);
    if (current.length > 0 && size + line > maxBytes) {
      chunks.push(current);
      current = [];
      size = fixed;
    }
    current.push(s);
    size += line;
  }
  if (current.length) chunks.push(current);
  return chunks;
}

/**
 * Bounds of an apply's output. Its largest real answer: a "@@step N" line per step and what
 * wg-quick prints ("[#] …" a command); the first apply on a host with 1,000 peers printed 621
 * bytes on the simulated host (test/security/observe-limits), and even a step per peer with a
 * line of wg-quick each stays under 100 KB. 4 MiB is far above that; standard error holds
 * failures, of which the last lines are shown.
 */
export const APPLY_LIMITS = { maxStdoutBytes: 4 * 1024 * 1024, maxStderrBytes: 1024 * 1024 } as const;

/** The last 3 lines of a failed step's standard error, for a condition: each bounded, without control characters. */
export function stderrTail(stderr: string): string {
  // Only the end is read: a host may print megabytes before it.
  const lines = stderr
    .slice(-64 * 1024)
    .trim()
    .split("\n")
    .slice(-3);
  return lines
    .map((l) => hostText(l, 160))
    .filter((l) => l.trim() !== "")
    .join("; ");
}

export async function applySteps(session: HostSession, steps: readonly Step[], log?: (line: string) => void): Promise<ApplyResult> {
  // Every chunk rendered before the first is sent: a refused value applies nothing at all.
  let scripts: Array<{ chunk: Step[]; script: string; input: string }>;
  try {
    scripts = chunkSteps(steps).map((chunk) => ({ chunk, ...renderScript(chunk) }));
  } catch (err) {
    if (!(err instanceof UnsafeValueError)) throw err;
    throw new HostError("ApplyFailed", `nothing applied: ${err.message}`, { cause: err });
  }
  let offset = 0;
  for (const { chunk, script, input } of scripts) {
    const res = await session.exec(script, { input, timeoutMs: 180_000, ...APPLY_LIMITS }).catch((err: unknown) => {
      throw err instanceof OutputTooLargeError ? err.as("ApplyFailed", "applying changes") : err;
    });
    const reached = [...res.stdout.matchAll(/^@@step (\S+)$/gm)].map((m) => m[1]!);
    const last = reached.at(-1);
    // The step reached, as the host says: anything but a step number of this chunk counts as none.
    const reachedStep = Number(last ?? 0);
    const finished = last === "done" ? chunk.length : Number.isInteger(reachedStep) && reachedStep >= 0 && reachedStep <= chunk.length ? reachedStep : 0;
    for (const s of chunk.slice(0, finished)) log?.(`[#] ${s.display}`);
    if (res.code !== 0 || last !== "done") {
      const failed = chunk[finished];
      const detail = stderrTail(res.stderr) || `exit code ${res.code}`;
      throw new HostError("ApplyFailed", failed ? `step ${offset + finished + 1} of ${steps.length} (${failed.display}) failed: ${detail}` : `apply failed: ${detail}`);
    }
    offset += chunk.length;
  }
  return { done: [...steps] };
}

/** What the observe after an apply looks at: the observe script's arguments and probes. */
export interface ObserveRequest {
  ifaces: readonly string[];
  nets: readonly string[];
  /** Read ip6tables and IPv6 routes too (a dual-stack mesh, planned or left). */
  ipv6?: boolean;
  probes?: readonly Probe[];
}

export interface ApplyObserveResult {
  /** Steps that ran to completion, in order. */
  done: Step[];
  /** Why a step failed (nothing after it ran). */
  error?: HostError;
  /** The host after the steps; undefined when the script did not get that far (observe again). */
  observation?: HostObservation;
  /** A first converge's guard applied nothing, and why (hosts/fresh-guard.ts). */
  skipped?: string;
}

/** The words after `@@step` in an apply's output, and what they say was reached of `chunk`. */
function reachedOf(stdout: string, chunk: readonly Step[]): { last: string | undefined; finished: number } {
  const reached = [...stdout.matchAll(/^@@step (\S+)$/gm)].map((m) => m[1]!);
  const last = reached.at(-1);
  // The step reached, as the host says: anything but a step number of this chunk counts as none.
  const n = Number(last ?? 0);
  return { last, finished: last === "done" ? chunk.length : Number.isInteger(n) && n >= 0 && n <= chunk.length ? n : 0 };
}

/**
 * Applies the steps and observes the host after them in the same round trip: the last (usually
 * only) script runs its steps in a subshell, then the observe script (steps.ts
 * OBSERVE_AFTER_APPLY), whatever the steps did. `guard`: a first converge's (hosts/fresh.ts), in
 * one script or not at all. Never throws for a step that failed: the result says so, with the
 * host as the observe saw it after the failure. Earlier chunks of a long apply run as plain
 * apply scripts; one of those failing leaves no observation.
 */
export async function applyThenObserve(
  session: HostSession,
  steps: readonly Step[],
  req: ObserveRequest,
  opts: { log?: (line: string) => void; guard?: readonly string[] } = {},
): Promise<ApplyObserveResult> {
  const args = observeArgs(req);
  const extra =
    quotedLength(OBSERVE_AFTER_APPLY + (opts.guard ? FRESH_PRELUDE : "")) + args.reduce((n, a) => n + quotedLength(a) + 3, 0) + (opts.guard ?? []).reduce((n, a) => n + quotedLength(a) + 3, 64);
  let chunks: Step[][];
  let scripts: Array<{ chunk: Step[]; script: string; input: string }>;
  try {
    chunks = chunkSteps(steps, MAX_SCRIPT_BYTES, extra);
    if (opts.guard && chunks.length > 1) throw new HostError("ApplyFailed", "a first converge with a guard must fit one script");
    if (chunks.length === 0) chunks = [[]];
    scripts = chunks.map((chunk, i) => ({ chunk, ...renderScript(chunk, i === chunks.length - 1 ? { observe: true, ...(opts.guard ? { guard: opts.guard } : {}) } : {}) }));
  } catch (err) {
    if (!(err instanceof UnsafeValueError)) throw err;
    throw new HostError("ApplyFailed", `nothing applied: ${err.message}`, { cause: err });
  }
  const done: Step[] = [];
  let offset = 0;
  for (const [i, { chunk, script, input }] of scripts.entries()) {
    const last = i === scripts.length - 1;
    const failed = (finished: number, detail: string): ApplyObserveResult => {
      const step = chunk[finished];
      const message = step ? `step ${offset + finished + 1} of ${steps.length} (${step.display}) failed: ${detail}` : `apply failed: ${detail}`;
      return { done, error: new HostError("ApplyFailed", message) };
    };
    if (!last) {
      const res = await session.exec(script, { input, timeoutMs: 180_000, ...APPLY_LIMITS }).catch((err: unknown) => {
        throw err instanceof OutputTooLargeError ? err.as("ApplyFailed", "applying changes") : err;
      });
      const { last: at, finished } = reachedOf(res.stdout, chunk);
      for (const s of chunk.slice(0, finished)) opts.log?.(`[#] ${s.display}`);
      done.push(...chunk.slice(0, finished));
      if (res.code !== 0 || at !== "done") return failed(finished, stderrTail(res.stderr) || `exit code ${res.code}`);
      offset += chunk.length;
      continue;
    }
    const res = await session.exec(script, { args, input: input + probeInput(req.probes ?? []), timeoutMs: 240_000, ...OBSERVE_LIMITS }).catch((err: unknown) => {
      throw err instanceof OutputTooLargeError ? err.as("ApplyFailed", "applying changes") : err;
    });
    const mark = new RegExp(`^${APPLIED_MARK} (\\d{1,3})$`, "m").exec(res.stdout);
    const applyOut = mark ? res.stdout.slice(0, mark.index) : res.stdout;
    const skip = new RegExp(`^${FRESH_SKIP} (.*)$`, "m").exec(applyOut);
    // A guard that applied nothing stopped before the step it printed last (or before any).
    const { last: at, finished } = reachedOf(applyOut, chunk);
    for (const s of chunk.slice(0, finished)) opts.log?.(`[#] ${s.display}`);
    done.push(...chunk.slice(0, finished));
    let observation: HostObservation | undefined;
    if (mark) {
      try {
        observation = parseObservation(res.stdout.slice(mark.index + mark[0].length));
      } catch {
        observation = undefined; // observed again by the caller
      }
    }
    const rc = mark ? Number(mark[1]) : res.code;
    const out: ApplyObserveResult = { done, ...(observation ? { observation } : {}) };
    if (skip) return { ...out, skipped: hostText(skip[1] ?? "", 200) };
    if (rc !== 0 || at !== "done") return { ...failed(finished, stderrTail(res.stderr) || `exit code ${rc}`), ...(observation ? { observation } : {}) };
    return out;
  }
  return { done };
}
