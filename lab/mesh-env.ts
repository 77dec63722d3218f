// End-to-end environment for the lab tests and benchmarks: a lab of real hosts, `dockmesh up`
// (store + controllers) running in the lab's controller namespace (it can reach lab addresses
// only), and kubectl from the caller.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { createLab, type Lab, type LabHostOptions } from "./lab.js";
import { ensureSystemPackages } from "./requirements.js";

/** The project root, from dist/lab/. */
const projectRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface MeshEnvOptions {
  prefix: string;
  labnet: string;
  natLans?: { first: number; last: number };
  hosts: LabHostOptions[];
  /** API server port inside the controller namespace. */
  port: number;
  resyncPeriod?: string;
  /** More arguments for `dockmesh up` (e.g. --metrics-bind-address). */
  extraArgs?: readonly string[];
}

export class MeshEnv {
  private proc: ChildProcess | undefined;
  private output = "";
  readonly kubeconfig: string;

  constructor(
    readonly lab: Lab,
    readonly stateDir: string,
    private readonly opts: MeshEnvOptions,
  ) {
    this.kubeconfig = join(stateDir, "kubeconfig");
  }

  /** Everything the controller process printed so far (logs are JSON lines). */
  get log(): string {
    return this.output;
  }

  /** PID of the running `dockmesh up` (nsenter execs it, so it is node's own). */
  get pid(): number | undefined {
    return this.proc?.exitCode === null ? this.proc.pid : undefined;
  }

  /** Starts `dockmesh up` in the controller namespace and waits for its API server. */
  async startController(): Promise<void> {
    if (this.proc) throw new Error("controller already running");
    const argv = [
      process.execPath,
      join(projectRoot, "bin/dockmesh.js"),
      "up",
      "--state-dir",
      this.stateDir,
      "--listen",
      `${this.lab.controllerAddress}:${this.opts.port}`,
      "--resync-period",
      this.opts.resyncPeriod ?? "15s",
      "--log-format",
      "json",
      "--log-level",
      "debug",
      ...(this.opts.extraArgs ?? []),
    ];
    const p = this.lab.spawnInControllerNs(argv, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, DOCKMESH_LOG_LEVEL: "debug" } });
    this.proc = p;
    const onData = (d: Buffer) => {
      this.output += d.toString();
    };
    p.stdout?.on("data", onData);
    p.stderr?.on("data", onData);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (p.exitCode !== null) throw new Error(`dockmesh up exited with ${p.exitCode}:\n${this.output.slice(-3000)}`);
      if (this.output.includes("controllers running") && existsSync(this.kubeconfig)) {
        const r = await this.kubectl(["get", "--raw", "/readyz"]);
        if (r.code === 0) return;
      }
      await sleep(200);
    }
    throw new Error(`dockmesh up did not become ready within 60 s:\n${this.output.slice(-3000)}`);
  }

  /** Stops the controller: SIGTERM (graceful) or SIGKILL (a crash). */
  async stopController(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = undefined;
    if (p.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
    p.kill(signal);
    await Promise.race([exited, sleep(20_000).then(() => p.kill("SIGKILL"))]);
    await exited;
  }

  /** Waits until the controller's output contains `text` (bounded). */
  async waitForLog(text: string | RegExp, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (typeof text === "string" ? this.output.includes(text) : text.test(this.output)) return;
      await sleep(50);
    }
    throw new Error(`controller never logged ${String(text)} within ${timeoutMs} ms`);
  }

  kubectl(args: readonly string[], input?: string, timeoutMs = 120_000): Promise<KubectlResult> {
    return new Promise((resolve) => {
      const p = spawn("kubectl", args, { env: { ...process.env, KUBECONFIG: this.kubeconfig }, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
      p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      p.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
      p.stdin.end(input ?? "");
    });
  }

  async kubectlOk(args: readonly string[], input?: string, timeoutMs?: number): Promise<string> {
    const r = await this.kubectl(args, input, timeoutMs);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}\n--- controller log tail ---\n${this.output.slice(-4000)}`);
    return r.stdout;
  }

  /** `kubectl wait --for=condition=Ready` on these Machines, bounded by `timeout`. */
  async waitReady(names: readonly string[], timeout = "180s"): Promise<void> {
    await this.kubectlOk(["wait", "--for=condition=Ready", `--timeout=${timeout}`, ...names.map((n) => `machine/${n}`)], undefined, 200_000);
  }

  async getJson<T>(args: readonly string[]): Promise<T> {
    return JSON.parse(await this.kubectlOk([...args, "-o", "json"])) as T;
  }

  /** Manifests for the lab's hosts: the SSH key Secret, and a Machine per named host. */
  machineYaml(names: readonly string[], extra: (name: string) => Record<string, unknown> = () => ({})): string {
    return names
      .map((n) => {
        const h = this.lab.host(n);
        const spec = {
          ssh: {
            host: h.sshHost,
            port: h.sshPort,
            user: h.sshUser,
            privateKeySecretRef: { name: "lab-ssh" },
            ...(h.bastion ? { bastion: { host: h.bastion.host, port: h.bastion.port, user: h.bastion.user, privateKeySecretRef: { name: "lab-ssh" } } } : {}),
          },
          ...(h.publicEndpoint ? { endpoint: `${h.publicEndpoint}:51820` } : {}),
          // A "dual" uplink only: its IPv6 address as the second endpoint (an "ipv6" one's is spec.endpoint).
          ...(h.uplink === "dual" && h.publicEndpointV6 ? { endpointV6: `${h.publicEndpointV6}:51820` } : {}),
          ...extra(n),
        };
        return yamlDoc({ apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", metadata: { name: n, namespace: "default" }, spec });
      })
      .join("");
  }

  sshSecretYaml(): string {
    return yamlDoc({ apiVersion: "v1", kind: "Secret", metadata: { name: "lab-ssh", namespace: "default" }, type: "kubernetes.io/ssh-auth", stringData: { "ssh-privatekey": this.lab.sshPrivateKey } });
  }

  async close(): Promise<void> {
    await this.stopController("SIGTERM");
    await this.lab.destroy();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/** One YAML document, "---" first, so documents concatenate into a stream kubectl reads. */
export function yamlDoc(obj: unknown): string {
  return `---\n${stringify(obj)}`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls fn until it returns a value (not undefined), bounded by timeoutMs. */
/** Polls fn every `every` ms until it is true; returns the ms it took (a latency to report). */
export async function timeUntil(what: string, fn: () => Promise<boolean>, timeoutMs = 10_000, every = 25): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await fn()) return Math.round(performance.now() - t0);
    await sleep(every);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ""}`);
}

export async function startMeshEnv(opts: MeshEnvOptions): Promise<MeshEnv> {
  await ensureSystemPackages();
  const lab = await createLab({
    prefix: opts.prefix,
    labnet: opts.labnet,
    ...(opts.natLans ? { natLans: opts.natLans } : {}),
    hosts: opts.hosts,
    log: (m) => process.env.DOCKMESH_TEST_VERBOSE && console.error(`[lab] ${m}`),
  });
  const stateDir = mkdtempSync(join(tmpdir(), `${opts.prefix}-state-`));
  const env = new MeshEnv(lab, stateDir, opts);
  try {
    await env.startController();
  } catch (err) {
    await env.close();
    throw err;
  }
  return env;
}

/** The controller log lines (JSON) that are apply steps, "[#] …". */
export function appliedSteps(log: string): string[] {
  return log.split("\n").flatMap((l) => {
    try {
      const o = JSON.parse(l) as { message?: string; machine?: string };
      return o.message?.startsWith("[#] ") ? [`${o.machine} ${o.message}`] : [];
    } catch {
      return [];
    }
  });
}
