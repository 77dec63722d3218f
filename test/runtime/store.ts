// The embedded API server (store/) for the runtime's integration tests: a real server,
// restartable on the same port and state directory.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import type { StoreHandle, StoreOptions } from "../../store/server.js";
import { startStore } from "../../store/server.js";

export const MACHINES = { group: "dockmesh.io", version: "v1alpha1", plural: "machines" } as const;

export interface TestServer {
  handle: StoreHandle;
  kubeConfig: KubeConfig;
  custom: CustomObjectsApi;
  core: CoreV1Api;
  /** Stops the server (state stays). */
  stop(): Promise<void>;
  /** Starts it again on the same port and state, optionally with other options. */
  restart(opts?: Partial<StoreOptions>): Promise<void>;
  /** Stops it and removes the state. */
  dispose(): Promise<void>;
}

export async function startTestServer(opts: Partial<StoreOptions> = {}): Promise<TestServer> {
  const stateDir = mkdtempSync(join(tmpdir(), "dockmesh-runtime-"));
  let handle = await startStore({ stateDir, listen: "127.0.0.1:0", ...opts });
  const port = new URL(handle.url).port;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(handle.kubeconfigPath);
  let running = true;
  const server: TestServer = {
    handle,
    kubeConfig,
    custom: kubeConfig.makeApiClient(CustomObjectsApi),
    core: kubeConfig.makeApiClient(CoreV1Api),
    async stop() {
      if (!running) return;
      running = false;
      await handle.close();
    },
    async restart(more: Partial<StoreOptions> = {}) {
      await server.stop();
      handle = await startStore({ stateDir, ...opts, ...more, listen: `127.0.0.1:${port}` });
      server.handle = handle;
      running = true;
    },
    async dispose() {
      await server.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return server;
}

export function machine(name: string, extra: Record<string, unknown> = {}, namespace = "default"): Record<string, unknown> {
  return {
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "Machine",
    metadata: { name, namespace },
    spec: { ssh: { host: `${name}.example.test`, privateKeySecretRef: { name: "ssh" } }, ...extra },
  };
}

export async function createMachine(s: TestServer, name: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return (await s.custom.createNamespacedCustomObject({ ...MACHINES, namespace: "default", body: machine(name, extra) })) as Record<string, unknown>;
}

export async function setEndpoint(s: TestServer, name: string, endpoint: string): Promise<void> {
  await s.custom.patchNamespacedCustomObject({ ...MACHINES, namespace: "default", name, body: [{ op: "add", path: "/spec/endpoint", value: endpoint }] });
}

export async function deleteMachine(s: TestServer, name: string): Promise<void> {
  await s.custom.deleteNamespacedCustomObject({ ...MACHINES, namespace: "default", name });
}
