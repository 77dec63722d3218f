// `dockmesh up`: the embedded API server (and, later, the controllers) in one process.
import type { Command } from "commander";

export function registerUp(program: Command): void {
  program
    .command("up")
    .description("run the embedded Kubernetes-compatible API server and the controllers; writes a kubeconfig")
    .action(() => {
      throw new Error("dockmesh up is not implemented yet");
    });
}
