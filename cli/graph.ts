// `dockmesh graph`: a picture of the mesh from the live API. Registration only: the API client,
// the renderers and Graphviz are imported in the action (cli/graph-run.ts), so other commands
// start without them.
import type { Command } from "commander";

export const GRAPH_FORMATS = ["dot", "svg", "mermaid"] as const;
export type GraphOutput = (typeof GRAPH_FORMATS)[number];

export interface GraphFlags {
  namespace?: string;
  mesh?: string;
  output: string;
  kubeconfig?: string;
}

export function registerGraph(program: Command): void {
  program
    .command("graph")
    .description("draw the mesh from the live API: machines (subnet, endpoint or behind NAT, Ready), links coloured by their last handshake, relayed links through their relay")
    .option("-n, --namespace <ns>", "namespace of the MeshNetworks and Machines (default: the kubeconfig context's, else default)")
    .option("--mesh <name>", "draw this MeshNetwork only (default: every MeshNetwork in the namespace)")
    .option("-o, --output <format>", "dot, svg (through Graphviz's dot) or mermaid (pastes into a README or an issue)", "dot")
    .option("--kubeconfig <file>", "kubeconfig to use (default: $KUBECONFIG, else ~/.kube/config, as kubectl)")
    .action(async (flags: GraphFlags) => {
      const { runGraph } = await import("./graph-run.js");
      process.stdout.write(await runGraph(flags));
    });
}
