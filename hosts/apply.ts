// Apply: run the steps as one script over the session (one round trip), report which step
// failed with the host's own words. A script too long for one SSH command (a first apply in a
// mesh of hundreds of machines has a route per peer) is split into several, run in order.
import type { HostSession } from "./ssh.js";
import { HostError } from "./errors.js";
import { shQuote } from "../mesh/shell.js";
import { renderScript, SCRIPT_PRELUDE, type Step } from "./steps.js";
import { UnsafeValueError } from "../mesh/formats.js";

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
    const res = await session.exec(script, { input, timeoutMs: 180_000 });
    const reached = [...res.stdout.matchAll(/^@@step (\S+)$/gm)].map((m) => m[1]!);
    const last = reached.at(-1);
    const finished = last === "done" ? chunk.length : Math.max(0, Number(last ?? 0));
    for (const s of chunk.slice(0, finished)) log?.(`[#] ${s.display}`);
    if (res.code !== 0 || last !== "done") {
      const failed = chunk[finished];
      const detail = res.stderr.trim().split("\n").slice(-3).join("; ") || `exit code ${res.code}`;
      throw new HostError("ApplyFailed", failed ? `step ${offset + finished + 1} of ${steps.length} (${failed.display}) failed: ${detail}` : `apply failed: ${detail}`);
    }
    offset += chunk.length;
  }
  return { done: [...steps] };
}
