// `dockmesh plan -f FILES`: what would be configured on each host, without touching any.
// Registration only: the YAML reader, the schema checks and the planner are imported in the
// action (cli/plan-run.ts), so `dockmesh --help` starts without them.
import type { Command } from "commander";

export interface PlanFlags {
  filename: string[];
  hostFacts?: string;
}

export function registerPlan(program: Command): void {
  program
    .command("plan")
    .description("print what would be configured on each host for the given MeshNetwork and Machine manifests (touches no host)")
    .requiredOption("-f, --filename <paths...>", "YAML files or directories (multi-document YAML; other kinds such as Secrets are skipped)")
    .option("--host-facts <file>", "YAML mapping Machine name → what the controller would observe on it: uplinkMtu, rawTable, inputDrops, systemd (default: 1500, true, false, true)")
    .action(async (opts: PlanFlags) => {
      const { runPlan } = await import("./plan-run.js");
      runPlan(opts);
    });
}
