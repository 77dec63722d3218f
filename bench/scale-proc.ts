// The controller process of the scale benchmark: `dockmesh controller` as a child process (so
// its RSS and CPU are its own, not the store's or the simulated hosts'), read through /proc,
// and its /metrics endpoint.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { IMAGE_ENV, IMAGE_NODE_FLAGS } from "../runtime/heap.js";

export const CLOCK_TICKS_PER_S = 100; // getconf CLK_TCK on Linux

export interface ProcStats {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size since the process started (VmHWM), bytes. */
  peakRss: number;
  /** User + system CPU time since the process started, milliseconds. */
  cpuMs: number;
}

/** RSS, peak RSS and CPU time of a Linux process, from /proc. */
export function procStats(pid: number): ProcStats {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  // Fields after the command name (which may hold spaces) in /proc/PID/stat: utime is the 14th, stime the 15th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(rest[11]) + Number(rest[12]);
  return { rss: kb("VmRSS"), peakRss: kb("VmHWM"), cpuMs: (ticks * 1000) / CLOCK_TICKS_PER_S };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      const port = typeof a === "object" && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function httpGetText(url: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`GET ${url}: HTTP ${res.statusCode}`))));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** Sum of the samples of one metric in Prometheus text whose labels include `labels`. */
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

export interface ControllerChildOptions {
  kubeconfig: string;
  /** e.g. "20s". */
  resyncPeriod: string;
  concurrency: number;
  /** The child's stdout and stderr (JSON log lines) go here. */
  logFile: string;
  /** Another build's dist/cli/main.js (default: this build's). */
  main?: string;
}

/**
 * Node flags of the benchmark's controller (its environment has the image's too, IMAGE_ENV): the image's ENTRYPOINT flags, then
 * BENCH_CONTROLLER_NODE_OPTIONS (for the controller only, e.g. --cpu-prof to profile it).
 */
export function controllerNodeFlags(): string[] {
  return [...IMAGE_NODE_FLAGS, ...(process.env["BENCH_CONTROLLER_NODE_OPTIONS"] ?? "").split(" ").filter(Boolean)];
}

/** `dockmesh controller` against the benchmark's store, with /metrics on a loopback port. */
export class ControllerChild {
  readonly proc: ChildProcess;
  readonly metricsUrl: string;
  private readonly exited: Promise<number | null>;

  private constructor(opts: ControllerChildOptions, port: number) {
    const main = opts.main ?? fileURLToPath(new URL("../cli/main.js", import.meta.url));
    const fd = openSync(opts.logFile, "a");
    this.metricsUrl = `http://127.0.0.1:${port}/metrics`;
    this.proc = spawn(
      process.execPath,
      [
        ...controllerNodeFlags(),
        main,
        "controller",
        "--resync-period",
        opts.resyncPeriod,
        "--concurrency",
        String(opts.concurrency),
        "--metrics-bind-address",
        `127.0.0.1:${port}`,
        "--log-format",
        "json",
      ],
      { stdio: ["ignore", fd, fd], env: { ...process.env, ...IMAGE_ENV, KUBECONFIG: opts.kubeconfig } },
    );
    closeSync(fd);
    this.exited = new Promise((resolve) => this.proc.once("exit", (code) => resolve(code)));
  }

  static async start(opts: ControllerChildOptions): Promise<ControllerChild> {
    const child = new ControllerChild(opts, await freePort());
    // Ready once /metrics answers (the ops server starts before the informers sync).
    const deadline = Date.now() + 30_000;
    for (let i = 0; i < 300 && Date.now() < deadline; i++) {
      if (child.proc.exitCode !== null) throw new Error(`the controller exited (code ${child.proc.exitCode}) while starting; see ${opts.logFile}`);
      try {
        await child.metrics();
        return child;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await child.stop();
    throw new Error(`the controller's /metrics did not answer within 30 s; see ${opts.logFile}`);
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  stats(): ProcStats {
    return procStats(this.pid);
  }

  metrics(): Promise<string> {
    return httpGetText(this.metricsUrl);
  }

  /** SIGTERM, then SIGKILL after 20 s. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 20_000);
    await this.exited;
    clearTimeout(timer);
  }
}
