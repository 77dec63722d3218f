// Where the other machines reach a machine's WireGuard port in one MeshNetwork. A Machine in
// several meshes has one WireGuard interface (and UDP port) per mesh, but one spec.endpoint:
// giving every mesh the endpoint as written sent the second mesh's handshakes to the first
// mesh's port (issue 12). The rule, as the CRD's description of spec.endpoint states it:
//   1. spec.endpointPorts' entry for the mesh, if any: a port forwarded to that mesh's listenPort;
//   2. else the endpoint's own port, when the mesh listens on it, or when none of the machine's
//      meshes listens on it (a port forward, as with a single mesh: host:40000 → 51820 keeps
//      working as it always did);
//   3. else the endpoint's host with the mesh's own listenPort.
// Pure; every value is checked against its format where it is read (status and spec are input).
import type { Machine } from "../api/types.generated.js";
import { ENDPOINT, OBJECT_NAME, shown } from "../api/formats.js";

/** What the rule needs of a mesh. */
export interface MeshPort {
  name: string;
  listenPort: number;
}

export interface PeerEndpoint {
  /** host:port for WireGuard's Endpoint; absent when the machine has no endpoint (behind NAT). */
  endpoint?: string;
  /** Values refused, naming the field; the machine is then left out of the mesh (endpoint) or the entry ignored. */
  refused: string[];
}

/** host and port of a host:port or [IPv6]:port already checked against ENDPOINT. */
export function splitEndpoint(endpoint: string): { host: string; port: number } {
  const colon = endpoint.lastIndexOf(":");
  return { host: endpoint.slice(0, colon), port: Number(endpoint.slice(colon + 1)) };
}

const isPort = (p: unknown): p is number => typeof p === "number" && Number.isInteger(p) && p >= 1 && p <= 65535;

/**
 * The endpoint the members of `mesh` configure for machine `m`. `machineMeshes` are the meshes
 * `m` belongs to (`mesh` among them); their listenPorts are distinct (planHost refuses a clash).
 */
export function endpointIn(m: Machine, mesh: MeshPort, machineMeshes: readonly MeshPort[]): PeerEndpoint {
  const written = m.spec.endpoint;
  if (written === undefined || written === "") return { refused: [] };
  const name = m.metadata.name ?? "";
  if (!ENDPOINT.test(written)) return { refused: [`Machine ${name} spec.endpoint: ${shown(written)} is not host:port; it is left out of MeshNetwork ${mesh.name}`] };
  const refused: string[] = [];
  const { host, port } = splitEndpoint(written);
  const entries = Array.isArray(m.spec.endpointPorts) ? m.spec.endpointPorts : [];
  let override: number | undefined;
  entries.forEach((e, i) => {
    if (e?.meshNetwork !== mesh.name) return;
    if (typeof e.meshNetwork !== "string" || !OBJECT_NAME.test(e.meshNetwork) || !isPort(e.port)) {
      refused.push(`Machine ${name} spec.endpointPorts[${i}]: ${shown(JSON.stringify(e))} is not {meshNetwork, port 1-65535}; ignored`);
      return;
    }
    override ??= e.port;
  });
  if (override !== undefined) return { endpoint: `${host}:${override}`, refused };
  const forwarded = !machineMeshes.some((x) => x.listenPort === port);
  if (mesh.listenPort === port || forwarded) return { endpoint: written, refused };
  return { endpoint: `${host}:${mesh.listenPort}`, refused };
}

/**
 * When the rule cannot be right for every mesh: the endpoint's port is none of the machine's
 * meshes' listenPorts (a port forward) and two or more of them have no spec.endpointPorts entry,
 * so their peers all send to the one forwarded port. A message naming the fix, or undefined.
 */
export function ambiguousForward(m: Machine, machineMeshes: readonly MeshPort[]): string | undefined {
  const written = m.spec.endpoint;
  if (!written || !ENDPOINT.test(written)) return undefined;
  const { port } = splitEndpoint(written);
  if (machineMeshes.some((x) => x.listenPort === port)) return undefined;
  const listed = new Set((Array.isArray(m.spec.endpointPorts) ? m.spec.endpointPorts : []).map((e) => e?.meshNetwork));
  const open = machineMeshes
    .filter((x) => !listed.has(x.name))
    .map((x) => `${x.name} (listenPort ${x.listenPort})`)
    .sort();
  if (open.length < 2) return undefined;
  return `spec.endpoint's port ${port} is no listenPort of this machine's meshes, so it is taken as a port forward, and the peers of ${open.join(", ")} all use it; give each mesh it does not forward to its own port in spec.endpointPorts ([{meshNetwork, port}])`;
}
