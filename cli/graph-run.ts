// The work of `dockmesh graph` (imported lazily by cli/graph.ts): read MeshNetworks and Machines
// from the API of the current kubeconfig, build the graph, render it.
import { KubeConfig } from "../vendor/client-node.js";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { OBJECT_NAME } from "../api/formats.js";
import { buildMeshGraph, MAX_GRAPH_MACHINES } from "../mesh/graph.js";
import { renderGraph } from "../mesh/graph-render.js";
import { dotToSvg } from "./graphviz.js";
import { GROUP, MACHINES, MESHNETWORKS } from "../controllers/resources.js";
import { isNotFound, type ApiClient, type Resource } from "../runtime/client.js";
import { kubeApiClient } from "../runtime/kube-client.js";
import { GRAPH_FORMATS, type GraphFlags, type GraphOutput } from "./graph.js";

const PAGE = 250;
/** Objects listed per kind at most: past this, the command stops reading and says so. */
const MAX_LISTED = 2000;
/** A namespace name (DNS-1123 label). */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

class GraphInputError extends Error {}

function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (err) {
    throw new GraphInputError(`cannot read the kubeconfig${file ? ` ${file}` : ""}: ${(err as Error).message}`, { cause: err });
  }
  if (!kc.getCurrentCluster()) throw new GraphInputError("no cluster configured: set KUBECONFIG or --kubeconfig (`dockmesh up` prints the path of its kubeconfig)");
  return kc;
}

function apiError(what: string, server: string | undefined, err: unknown): Error {
  const code = (err as { code?: number }).code;
  if (code === 401 || code === 403)
    return new Error(`${what}: the API server at ${server} refused the credentials of the kubeconfig (HTTP ${code}); the user needs get and list on ${GROUP} machines and meshnetworks`, {
      cause: err,
    });
  return new Error(`${what} from ${server}: ${code ? `HTTP ${code}` : (err as Error).message}`, { cause: err });
}

async function listAll<T extends Machine | MeshNetwork>(api: ApiClient, resource: Resource<T>, namespace: string, server: string | undefined): Promise<T[]> {
  const { plural } = resource;
  const items: T[] = [];
  let cont: string | undefined;
  do {
    let page: { items?: T[]; metadata?: { continue?: string } };
    try {
      page = (await api.list(resource, { namespace, limit: PAGE, ...(cont ? { continue: cont } : {}) })) as typeof page;
    } catch (err) {
      throw apiError(`cannot list ${plural} in namespace ${namespace}`, server, err);
    }
    items.push(...(Array.isArray(page.items) ? page.items : []));
    if (items.length > MAX_LISTED)
      throw new GraphInputError(`namespace ${namespace} has more than ${MAX_LISTED} ${plural}; a graph shows at most ${MAX_GRAPH_MACHINES} machines: draw one mesh with --mesh`);
    cont = typeof page.metadata?.continue === "string" && page.metadata.continue ? page.metadata.continue : undefined;
  } while (cont);
  return items;
}

/** Reads the meshes and machines and returns what the command prints. */
export async function runGraph(flags: GraphFlags): Promise<string> {
  const output = flags.output as GraphOutput;
  if (!GRAPH_FORMATS.includes(output)) throw new GraphInputError(`-o/--output: ${JSON.stringify(flags.output)} must be one of ${GRAPH_FORMATS.join(", ")}`);
  if (flags.mesh !== undefined && !OBJECT_NAME.test(flags.mesh)) throw new GraphInputError(`--mesh: ${JSON.stringify(flags.mesh)} is not a MeshNetwork name (lower-case letters, digits, - and .)`);
  if (flags.namespace !== undefined && !NAMESPACE.test(flags.namespace))
    throw new GraphInputError(`-n/--namespace: ${JSON.stringify(flags.namespace)} is not a namespace name (lower-case letters, digits and -, at most 63)`);
  const kc = loadKubeConfig(flags.kubeconfig);
  const namespace = flags.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  const server = kc.getCurrentCluster()?.server;
  const api = kubeApiClient(kc);

  let meshes: MeshNetwork[];
  if (flags.mesh) {
    try {
      meshes = [await api.get(MESHNETWORKS, namespace, flags.mesh)];
    } catch (err) {
      if (isNotFound(err)) throw new GraphInputError(`--mesh: MeshNetwork ${namespace}/${flags.mesh} not found (kubectl -n ${namespace} get meshnetworks lists them)`);
      throw apiError(`cannot read MeshNetwork ${namespace}/${flags.mesh}`, server, err);
    }
  } else {
    meshes = await listAll(api, MESHNETWORKS, namespace, server);
  }
  const machines = await listAll(api, MACHINES, namespace, server);
  const dot = output === "mermaid" ? "mermaid" : "dot";
  const text = renderGraph(buildMeshGraph(meshes, machines), dot);
  return output === "svg" ? dotToSvg(text) : text;
}
