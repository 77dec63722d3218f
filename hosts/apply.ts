// Apply: run the steps as one script over the session (one round trip), report which step
// failed with the host's own words.
import type { HostSession } from "./ssh.js";
import { HostError } from "./errors.js";
import { renderScript, type Step } from "./steps.js";

export interface ApplyResult {
  /** Steps that ran to completion, in order. */
  done: Step[];
}

export async function applySteps(session: HostSession, steps: readonly Step[], log?: (line: string) => void): Promise<ApplyResult> {
  if (steps.length === 0) return { done: [] };
  const { script, input } = renderScript(steps);
  const res = await session.exec(script, { input, timeoutMs: 180_000 });
  const reached = [...res.stdout.matchAll(/^@@step (\S+)$/gm)].map((m) => m[1]!);
  const last = reached.at(-1);
  const finished = last === "done" ? steps.length : Math.max(0, Number(last ?? 0));
  for (const s of steps.slice(0, finished)) log?.(`[#] ${s.display}`);
  if (res.code !== 0 || last !== "done") {
    const failed = steps[finished];
    const detail = res.stderr.trim().split("\n").slice(-3).join("; ") || `exit code ${res.code}`;
    throw new HostError("ApplyFailed", failed ? `step ${finished + 1} of ${steps.length} (${failed.display}) failed: ${detail}` : `apply failed: ${detail}`);
  }
  return { done: [...steps] };
}
