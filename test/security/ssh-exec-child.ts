// One command over hosts/ssh.ts, run as its own process inside the lab's controller namespace
// (so its traffic reaches lab addresses only, and its memory is measured alone). Reads
// { target, script, opts } as JSON on stdin (the private key travels there, never in argv);
// prints one JSON line: how the command ended, and the process's RSS before and at its peak.
import { readFileSync } from "node:fs";
import { connect, type ExecOptions, type SshTarget } from "../../hosts/ssh.js";
import { HostError } from "../../hosts/errors.js";

export interface ExecChildResult {
  ok: boolean;
  code?: number;
  stdoutBytes?: number;
  stderrBytes?: number;
  /** Whether any escape or control character reached the result (stdout, stderr, message). */
  controls: boolean;
  name?: string;
  reason?: string;
  message?: string;
  ms: number;
  rssStartBytes: number;
  /** VmHWM: the kernel's peak resident set of this process. */
  rssPeakBytes: number;
}

const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0) * 1024;
// eslint-disable-next-line no-control-regex -- looking for control characters is the point
const controls = (s: string) => /[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(s);

async function main(): Promise<void> {
  const input = JSON.parse(readFileSync(0, "utf8")) as { target: SshTarget; script: string; opts?: ExecOptions };
  const rssStartBytes = kib("VmRSS");
  const t0 = performance.now();
  const session = await connect(input.target);
  let out: Omit<ExecChildResult, "ms" | "rssStartBytes" | "rssPeakBytes">;
  try {
    const r = await session.exec(input.script, input.opts);
    // The NULs of /dev/zero are control characters too: count only escape sequences for stdout.
    out = { ok: true, code: r.code, stdoutBytes: r.stdout.length, stderrBytes: r.stderr.length, controls: r.stdout.includes("\x1b") || controls(r.stderr) };
  } catch (err) {
    const e = err as Error;
    out = { ok: false, name: e.name, ...(err instanceof HostError ? { reason: err.reason } : {}), message: e.message, controls: controls(e.message) };
  } finally {
    session.close();
  }
  const result: ExecChildResult = { ...out, ms: Math.round(performance.now() - t0), rssStartBytes, rssPeakBytes: kib("VmHWM") };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`ssh-exec-child: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
