// `dockmesh plan -f FILES`: what would be configured on each host, without touching any.
import type { Command } from "commander";

export function registerPlan(program: Command): void {
  program
    .command("plan")
    .description("print what would be configured on each host for the given MeshNetwork and Machine manifests")
    .requiredOption("-f, --filename <paths...>", "YAML files or directories")
    .action(() => {
      throw new Error("dockmesh plan is not implemented yet");
    });
}
