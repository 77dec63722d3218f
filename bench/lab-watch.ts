// When the Machines turned Ready, as seen by a `kubectl get machines --watch` started before the
// apply (times are when the watch line arrived here): the benchmarks' "all Ready" moment.
import { spawn, type ChildProcess } from "node:child_process";
import { sleep } from "../lab/proc.js";

export class ReadyWatch {
  private readonly proc: ChildProcess;
  private buffer = "";
  private output = "";
  /** machine → ms since the epoch when it was first seen Ready=True. */
  readonly readyAt = new Map<string, number>();
  /** machine → its Ready status as last seen. */
  private readonly current = new Map<string, string>();

  constructor(kubeconfig: string, timeoutSec = 600) {
    this.proc = spawn(
      "kubectl",
      ["get", "machines", "--watch", "--no-headers", `--request-timeout=${timeoutSec}s`, "-o", 'custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status'],
      {
        env: { ...process.env, KUBECONFIG: kubeconfig },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.proc.stderr?.on("data", (d: Buffer) => (this.output += d.toString()));
    this.proc.stdout?.on("data", (d: Buffer) => {
      const now = Date.now();
      this.buffer += d.toString();
      const lines = this.buffer.split("\n");
      this.buffer = lines.pop() ?? "";
      for (const l of lines) {
        const [name, ready] = l.trim().split(/\s+/);
        if (!name) continue;
        this.current.set(name, ready ?? "");
        if (ready === "True" && !this.readyAt.has(name)) this.readyAt.set(name, now);
      }
    });
  }

  /** Resolves with the time (ms since the epoch) all the named Machines were seen Ready at once. */
  async allReady(names: readonly string[], timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (names.every((n) => this.current.get(n) === "True")) return Math.max(...names.map((n) => this.readyAt.get(n) ?? 0));
      if (this.proc.exitCode !== null) throw new Error(`kubectl get --watch exited (${this.proc.exitCode}): ${this.output.trim()}`);
      await sleep(20);
    }
    const state = names.map((n) => `${n}=${this.current.get(n) ?? "?"}`).join(" ");
    throw new Error(`not all Machines Ready within ${timeoutMs / 1000}s: ${state}`);
  }

  stop(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGTERM");
  }
}
