// `dockmesh controller`: the controllers alone, against $KUBECONFIG or the in-cluster config.
// Also the UpComponent that runs them inside `dockmesh up`.
import { KubeConfig } from "@kubernetes/client-node";
import type { Command } from "commander";
import { startControllers, type ControllerOptions } from "../controllers/manager.js";
import { createLogger, setRootLogger, type LogFormat, type LogLevel } from "../runtime/log.js";
import type { UpComponent } from "./up.js";

export interface ControllerFlags {
  resyncPeriod: string;
  concurrency: string;
  logLevel?: string;
  logFormat?: string;
}

/** "90s", "5m", "1h" or plain seconds → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`${flag}: ${JSON.stringify(text)} is not a duration; write it like 30s, 5m or 1h`);
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  return Math.round(n * (unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000));
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`${flag}: ${JSON.stringify(text)} must be a whole number from 1 to 1000`);
  return n;
}

export function addControllerFlags(cmd: Command): Command {
  return cmd
    .option("--resync-period <duration>", "how often each host is re-checked for drift (e.g. 30s, 5m)", "5m")
    .option("--concurrency <n>", "machines reconciled (and SSH sessions open) at once", "8")
    .option("--log-level <level>", "error, warn, info or debug", process.env.DOCKMESH_LOG_LEVEL ?? "info")
    .option("--log-format <format>", "json or text (default: json in a cluster, text in a terminal)");
}

export function controllerOptions(flags: ControllerFlags, kubeConfig: KubeConfig): ControllerOptions {
  const level = (flags.logLevel ?? "info") as LogLevel;
  if (!["error", "warn", "info", "debug"].includes(level)) throw new Error(`--log-level: ${JSON.stringify(flags.logLevel)} must be one of error, warn, info, debug`);
  if (flags.logFormat !== undefined && !["json", "text"].includes(flags.logFormat)) throw new Error(`--log-format: ${JSON.stringify(flags.logFormat)} must be json or text`);
  const logger = createLogger({ level, ...(flags.logFormat ? { format: flags.logFormat as LogFormat } : {}) });
  setRootLogger(logger);
  return { kubeConfig, logger, resyncMs: parseDuration(flags.resyncPeriod, "--resync-period"), concurrency: positiveInt(flags.concurrency, "--concurrency") };
}

/** The controllers as a part of `dockmesh up`, connecting through the kubeconfig it wrote. */
export function controllersComponent(flags: () => ControllerFlags): UpComponent {
  return {
    name: "controllers",
    async start(store) {
      const kc = new KubeConfig();
      kc.loadFromFile(store.kubeconfigPath);
      return startControllers(controllerOptions(flags(), kc));
    },
  };
}

export function registerController(program: Command): void {
  addControllerFlags(program.command("controller").description("run the controllers against $KUBECONFIG, or the in-cluster service account")).action(async (flags: ControllerFlags) => {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    if (!kc.getCurrentCluster()) throw new Error("no cluster configured: set KUBECONFIG, or run inside a cluster");
    const running = await startControllers(controllerOptions(flags, kc));
    console.error(`dockmesh: controllers running against ${kc.getCurrentCluster()?.server}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    console.error("dockmesh: shutting down");
    await running.stop();
  });
}
