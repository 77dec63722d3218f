// Lookups timed from inside a container: one `docker exec` per measurement runs a bounded loop of
// busybox nslookup in a container that already runs (no `docker exec` per lookup: one costs
// ~50 ms and a good part of a core on these hosts, and would slow what it measures). The lookup
// goes the way an application's does: the container's resolv.conf (Docker's embedded resolver,
// which forwards the zone to the --dns server, the host's mesh resolver). The loop prints a line
// when the answer changes; each line is timestamped here as it arrives (the output is streamed).
import { spawn, type ChildProcess } from "node:child_process";
import type { Lab } from "../lab/lab.js";
import { inHost } from "../lab/host-mounts.js";
import { labEnv } from "../lab/proc.js";

/** First address of the answer (after "Name:"), empty when there is none. */
const ADDR = `awk '/^Name:/{f=1} f && /^Address/{print $NF; exit}'`;

/**
 * $1 up|down, $2 name, $3 max lookups, $4 seconds between lookups. Prints "first <state>" after the
 * first lookup, then "done <lookups> <address>" once the name answers (up) or is NXDOMAIN (down),
 * or "timeout <lookups>" after the last allowed lookup.
 */
export const POLL_SCRIPT = `mode=$1 name=$2 max=$3 every=$4
i=0
while [ "$i" -lt "$max" ]; do
  i=$((i + 1))
  out=$(nslookup "$name" 2>&1)
  addr=$(printf '%s\\n' "$out" | ${ADDR})
  case $out in *NXDOMAIN*) gone=1 ;; *) gone=0 ;; esac
  if [ "$i" -eq 1 ]; then if [ -n "$addr" ]; then echo "first present $addr"; else echo "first absent $gone"; fi; fi
  if [ "$mode" = up ] && [ -n "$addr" ]; then echo "done $i $addr"; exit 0; fi
  if [ "$mode" = down ] && [ -z "$addr" ] && [ "$gone" = 1 ]; then echo "done $i"; exit 0; fi
  sleep "$every"
done
echo "timeout $i"
exit 1
`;

/**
 * $1 max rounds, $2 seconds between rounds, then the names. Each round looks up the names that do
 * not answer yet; prints "ok <name> <address>" for each as it answers, then "done <rounds>" (or
 * "timeout <rounds> <left>").
 */
export const BURST_SCRIPT = `max=$1 every=$2
shift 2
pending="$*"
echo "first"
i=0
while [ -n "$pending" ] && [ "$i" -lt "$max" ]; do
  i=$((i + 1))
  left=""
  for n in $pending; do
    a=$(nslookup "$n" 2>/dev/null | ${ADDR})
    if [ -n "$a" ]; then echo "ok $n $a"; else left="$left $n"; fi
  done
  pending=$left
  [ -z "$pending" ] || sleep "$every"
done
if [ -z "$pending" ]; then echo "done $i"; else echo "timeout $i$pending" | cut -c1-300; exit 1; fi
`;

export interface PollLine {
  /** performance.now() when the line arrived. */
  at: number;
  text: string;
}

/** A script running in a container of a lab host, its output lines timestamped on arrival. */
export class ContainerPoll {
  readonly lines: PollLine[] = [];
  private buffer = "";
  private stderr = "";
  private exited = false;
  private readonly proc: ChildProcess;
  private wake: (() => void) | undefined;

  constructor(lab: Lab, host: string, container: string, script: string, args: readonly string[]) {
    const holder = lab.processes()[host]?.holder;
    if (!holder) throw new Error(`lab host ${host} is not running`);
    const [cmd, ...rest] = inHost(holder, ["docker", "exec", container, "sh", "-c", script, "sh", ...args]);
    this.proc = spawn(cmd!, rest, { stdio: ["ignore", "pipe", "pipe"], env: labEnv(), cwd: "/" });
    this.proc.stdout!.on("data", (d: Buffer) => {
      const at = performance.now();
      this.buffer += d.toString();
      const parts = this.buffer.split("\n");
      this.buffer = parts.pop() ?? "";
      for (const text of parts) this.lines.push({ at, text });
      this.wake?.();
    });
    this.proc.stderr!.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-2000)));
    this.proc.on("close", () => {
      this.exited = true;
      this.wake?.();
    });
    this.proc.on("error", () => {
      this.exited = true;
      this.wake?.();
    });
  }

  /** The first line matching `re` (waiting for it, bounded). */
  async waitFor(re: RegExp, timeoutMs: number, what: string): Promise<PollLine> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => re.test(l.text));
      if (hit) return hit;
      const left = deadline - performance.now();
      if (this.exited || left <= 0) {
        this.kill();
        const tail = this.lines
          .slice(-3)
          .map((l) => l.text)
          .join(" | ");
        throw new Error(`${what}: ${this.exited ? "the lookup loop ended" : `nothing within ${timeoutMs} ms`} (last lines: ${tail || "none"}; stderr: ${this.stderr.trim().slice(0, 300) || "none"})`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Waits for the loop to end by itself (its count bound), at most `timeoutMs`. */
  async ended(timeoutMs = 5000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.exited && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.kill();
  }

  /** Ends the local `docker exec` client (the loop in the container ends by its own bound). */
  kill(): void {
    if (!this.exited) this.proc.kill("SIGKILL");
  }
}
