// Apply: run the steps as one script over the session (one round trip), report which step
// failed with the host's own words. A script too long for one SSH command (a first apply in a
// mesh of hundreds of machines has a route per peer) is split into several, run in order.
import { OutputTooLargeError, type HostSession } from "./ssh.js";
import { HostError } from "./errors.js";
import { hostText } from "./host-text.js";
import { shQuote } from "../mesh/shell.js";
import { renderScript, SCRIPT_PRELUDE, type Step } from "./steps.js";
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
export function chunkSteps(steps: readonly Step[], maxBytes = MAX_SCRIPT_BYTES): Step[][] {
  const fixed = quotedLength(SCRIPT_PRELUDE) + 64; // the prelude, "step done", quotes, "sh -c … sh"
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
  const lines = stderr.slice(-64 * 1024).trim().split("\n").slice(-3);
  return lines.map((l) => hostText(l, 160)).filter((l) => l.trim() !== "").join("; ");
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
