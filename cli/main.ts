// The `dockmesh` command. Each subcommand lives in a file of its own and registers itself here.
import { Command, CommanderError } from "commander";
import { registerPlan } from "./plan.js";
import { registerGraph } from "./graph.js";
import { describeError } from "../runtime/describe-error.js";
import { registerUp, upComponents } from "./up.js";
import { addControllerFlags, controllersComponent, registerController, type ControllerFlags } from "./controller.js";

export function buildProgram(): Command {
  const program = new Command("dockmesh")
    .description("Docker containers on many machines, one private network: a WireGuard mesh driven by Kubernetes resources.")
    .version(process.env.npm_package_version ?? "0.1.0")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (str, write) => write(str) });
  registerUp(program);
  registerController(program);
  registerPlan(program);
  registerGraph(program);
  const up = program.commands.find((c) => c.name() === "up")!;
  // `dockmesh up` runs the controllers too, with the same flags as `dockmesh controller`.
  addControllerFlags(up);
  upComponents.splice(
    0,
    upComponents.length,
    controllersComponent(() => up.opts<ControllerFlags>()),
  );
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    console.error(`dockmesh: ${describeError(err)}`);
    return 1;
  }
}

const code = await main(process.argv);
if (code !== 0) process.exitCode = code;
