// Starts test/security/store-child.ts and stops it (by its PID) when done.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { StoreOptions } from "../../store/server.js";
import { runKubectl, type KubectlResult } from "../store/helpers.js";

export interface StoreProcess {
  url: string;
  host: string;
  port: number;
  token: string;
  caCertPem: string;
  kubeconfigPath: string;
  kubectl(args: string[], timeoutMs?: number): Promise<KubectlResult>;
  stop(): Promise<void>;
}

export async function spawnStore(options: StoreOptions): Promise<StoreProcess> {
  const script = join(fileURLToPath(new URL(".", import.meta.url)), "store-child.js");
  const child = spawn(process.execPath, [script, JSON.stringify(options)], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = once(child, "exit");
  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([
    once(lines, "line").then(([l]) => String(l)),
    exited.then(([code]) => {
      throw new Error(`store-child exited with ${String(code)} before it was ready`);
    }),
  ]);
  const info = JSON.parse(first) as { url: string; token: string; caCertPem: string; kubeconfigPath: string };
  const u = new URL(info.url);
  return {
    ...info,
    host: u.hostname,
    port: Number(u.port),
    kubectl: (args, timeoutMs = 30_000) => runKubectl(args, { KUBECONFIG: info.kubeconfigPath, KUBECACHEDIR: join(options.stateDir, "kubectl-cache"), HOME: options.stateDir }, undefined, timeoutMs),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
