// A `dockmesh controller` (or `dockmesh up`) child process for the ops tests: its JSON log
// lines, the address of its /metrics endpoint, single metric values, and kill.
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { projectRoot } from "../support/golden.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface HttpText {
  status: number;
  text: string;
}

export function httpGet(url: string, timeoutMs = 5_000): Promise<HttpText> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** The value of one sample in Prometheus text, e.g. metric(text, "dockmesh_reconcile_total", { kind: "MeshNetwork", outcome: "success" }). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const lm of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[lm[1]!] = lm[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}

/** Sum of every sample of a metric whose labels include `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const lm of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[lm[1]!] = lm[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

export class ControllerProcess {
  output = "";
  readonly proc: ChildProcess;
  private exit: Promise<number | null>;

  constructor(
    readonly name: string,
    args: readonly string[],
    env: Record<string, string | undefined>,
    spawnFn: (argv: readonly string[], env: Record<string, string | undefined>) => ChildProcess = (argv, e) => spawn(argv[0]!, argv.slice(1), { env: e, stdio: ["ignore", "pipe", "pipe"] }),
  ) {
    this.proc = spawnFn([process.execPath, join(projectRoot, "bin/dockmesh.js"), ...args], env);
    const onData = (d: Buffer) => (this.output += d.toString());
    this.proc.stdout?.on("data", onData);
    this.proc.stderr?.on("data", onData);
    this.exit = new Promise((resolve) => this.proc.once("exit", (code) => resolve(code)));
  }

  /** Parsed JSON log lines (other lines skipped). */
  lines(): Array<Record<string, unknown>> {
    return this.output.split("\n").flatMap((l) => {
      if (!l.startsWith("{")) return [];
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  async waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const v = fn();
      if (v !== undefined && v !== false) return v;
      if (this.exited) throw new Error(`${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode}) while waiting for ${what}:\n${this.output.slice(-3000)}`);
      await sleep(50);
    }
    throw new Error(`${this.name}: ${what} not within ${timeoutMs} ms:\n${this.output.slice(-3000)}`);
  }

  /** http://ADDRESS of /metrics, from the "serving /metrics…" log line. */
  async metricsUrl(): Promise<string> {
    const address = await this.waitFor("the metrics endpoint", () => this.lines().find((l) => String(l.message).startsWith("serving /metrics"))?.address as string | undefined);
    return `http://${address.replace("[::]", "127.0.0.1").replace("0.0.0.0", "127.0.0.1")}`;
  }

  async metrics(): Promise<string> {
    const r = await httpGet(`${await this.metricsUrl()}/metrics`);
    if (r.status !== 200) throw new Error(`${this.name}: /metrics answered ${r.status}`);
    return r.text;
  }

  async kill(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 20_000): Promise<number | null> {
    if (!this.exited) {
      this.proc.kill(signal);
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), timeoutMs);
      try {
        return await this.exit;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.exit;
  }

  exitCode(): Promise<number | null> {
    return this.exit;
  }
}
