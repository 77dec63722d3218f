// The work of `dockmesh up` (imported lazily by cli/up.ts): the store (SQLite, TLS, HTTPS) is
// loaded only by the command that runs it.
import type { Command } from "commander";
import { isLoopback, parseListen, startStore, type Logger } from "../store/server.js";
import { keepHeapNearLive } from "../runtime/heap.js";
import { upComponents } from "./up.js";

const consoleLogger: Logger = {
  info: (m) => console.error(m),
  warn: (m) => console.error(`warning: ${m}`),
  error: (m) => console.error(`error: ${m}`),
};

/** Runs the store and upComponents until SIGINT or SIGTERM. */
export async function runUp(opts: { stateDir: string; listen: string }, cmd: Command): Promise<void> {
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
}
