// `dockmesh up`: the embedded API server (store/) and, in the same process, the components listed
// in upComponents (the controllers join here), all talking to the API over HTTPS like any client.
import type { Command } from "commander";
import { homedir } from "node:os";
import { join } from "node:path";
import { isLoopback, parseListen, startStore, type Logger, type StoreHandle } from "../store/server.js";
import { keepHeapNearLive } from "../runtime/heap.js";

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

const consoleLogger: Logger = {
  info: (m) => console.error(m),
  warn: (m) => console.error(`warning: ${m}`),
  error: (m) => console.error(`error: ${m}`),
};

export function registerUp(program: Command): void {
  program
    .command("up")
    .description("run the embedded Kubernetes-compatible API server and the controllers; writes a kubeconfig")
    .option("--state-dir <dir>", "where the database, certificates, token and kubeconfig live", join(homedir(), ".dockmesh"))
    .option("--listen <host:port>", "address of the API server; anything but loopback must be given explicitly", "127.0.0.1:6443")
    .action(async (opts: { stateDir: string; listen: string }, cmd: Command) => {
      keepHeapNearLive();
      const explicitListen = cmd.getOptionValueSource("listen") === "cli";
      const { host } = parseListen(opts.listen);
      const store = await startStore({ stateDir: opts.stateDir, listen: opts.listen, allowNonLoopback: explicitListen && !isLoopback(host), logger: consoleLogger });
      const running: Array<{ name: string; stop(): Promise<void> }> = [];
      try {
        for (const c of upComponents) running.push({ name: c.name, ...(await c.start(store, consoleLogger)) });
      } catch (err) {
        await store.close();
        throw new Error("start the components of dockmesh up", { cause: err });
      }
      const parts = running.length > 0 ? `; ${running.map((r) => r.name).join(", ")} running` : "";
      console.log(`dockmesh: API server ${store.url} ready${parts}`);
      console.log(`  kubeconfig: ${store.kubeconfigPath}`);
      console.log(`  export KUBECONFIG=${store.kubeconfigPath}`);
      console.log("  kubectl apply -f examples/           # edit the hosts and the SSH key Secret first");
      console.log("  kubectl -n default get machines -w    # the namespace of the examples");
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      console.error("dockmesh: shutting down");
      for (const r of running.reverse()) {
        try {
          await r.stop();
        } catch (err) {
          console.error(`dockmesh: stopping ${r.name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      await store.close();
    });
}
