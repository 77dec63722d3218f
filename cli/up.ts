// `dockmesh up`: the embedded API server (store/) and, in the same process, the components listed
// in upComponents (the controllers join here), all talking to the API over HTTPS like any client.
// Registration only: the store is imported in the action (cli/up-run.ts), so other commands
// start without it.
import type { Command } from "commander";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Logger, StoreHandle } from "../store/server.js";

/** Something `dockmesh up` runs next to the store, e.g. the controllers. */
export interface UpComponent {
  name: string;
  /**
   * Called once the API server is ready. Connect with @kubernetes/client-node using
   * store.kubeconfigPath (KubeConfig.loadFromFile) — no side channel into the store.
   * Resolve when started; the returned stop() is awaited on shutdown (SIGINT/SIGTERM).
   */
  start(store: StoreHandle, logger: Logger): Promise<{ stop(): Promise<void> }>;
}

/** HOOK for the controllers: push an UpComponent here (e.g. from controllers/index.ts). */
export const upComponents: UpComponent[] = [];

export function registerUp(program: Command): void {
  program
    .command("up")
    .description("run the embedded Kubernetes-compatible API server and the controllers; writes a kubeconfig")
    .option("--state-dir <dir>", "where the database, certificates, token and kubeconfig live", join(homedir(), ".dockmesh"))
    .option("--listen <host:port>", "address of the API server; anything but loopback must be given explicitly", "127.0.0.1:6443")
    .action(async (opts: { stateDir: string; listen: string }, cmd: Command) => {
      const { runUp } = await import("./up-run.js");
      await runUp(opts, cmd);
    });
}
