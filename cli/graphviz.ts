// SVG through Graphviz's `dot`: spawned with an argv (no shell), the graph on stdin, output
// bounded, and a timeout, so a huge or hostile graph cannot hang or flood the CLI.
import { spawn } from "node:child_process";

export const DOT_TIMEOUT_MS = 30_000;
export const MAX_SVG_BYTES = 32 * 1024 * 1024;
export const INSTALL_GRAPHVIZ = "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz), or use -o dot or -o mermaid";

export class GraphvizError extends Error {}

export interface DotOptions {
  /** The dot binary (default "dot", looked up on PATH). */
  command?: string;
  timeoutMs?: number;
  maxBytes?: number;
}

/** Runs `dot -Tsvg` on the given dot text and returns the SVG. */
export function dotToSvg(dot: string, opts: DotOptions = {}): Promise<string> {
  const command = opts.command ?? "dot";
  const timeoutMs = opts.timeoutMs ?? DOT_TIMEOUT_MS;
  const maxBytes = opts.maxBytes ?? MAX_SVG_BYTES;
  return new Promise((resolve, reject) => {
    let settled = false;
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = "";
    const p = spawn(command, ["-Tsvg"], { stdio: ["pipe", "pipe", "pipe"] });
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (p.exitCode === null) p.kill("SIGKILL");
      reject(err);
    };
    const timer = setTimeout(() => fail(new GraphvizError(`${command} -Tsvg did not finish within ${timeoutMs / 1000} s; draw less with --mesh or -n`)), timeoutMs);
    p.on("error", (err: NodeJS.ErrnoException) =>
      fail(
        err.code === "ENOENT"
          ? new GraphvizError(`-o svg needs Graphviz's ${command}, which is not installed (not on PATH): ${INSTALL_GRAPHVIZ}`, { cause: err })
          : new GraphvizError(`cannot run ${command}: ${err.message}`, { cause: err }),
      ),
    );
    p.stdout.on("data", (d: Buffer) => {
      size += d.length;
      if (size > maxBytes) return fail(new GraphvizError(`${command} -Tsvg wrote more than ${maxBytes} bytes; draw less with --mesh or -n`));
      chunks.push(d);
    });
    p.stderr.on("data", (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    p.stdin.on("error", () => {}); // dot exiting early shows as its exit code
    p.on("close", (code, signal) => {
      if (settled) return;
      if (code !== 0) return fail(new GraphvizError(`${command} -Tsvg failed (${signal ?? `exit ${code}`}): ${stderr.trim().slice(0, 1000)}`));
      settled = true;
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    p.stdin.end(dot);
  });
}
