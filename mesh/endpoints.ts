// Where the other machines reach a machine's WireGuard port in one MeshNetwork. A Machine in
// several meshes has one WireGuard interface (and UDP port) per mesh, but one spec.endpoint:
// giving every mesh the endpoint as written sent the second mesh's handshakes to the first
// mesh's port (issue 12). The rule, as the CRD's description of spec.endpoint states it:
//   1. spec.endpointPorts' entry for the mesh, if any: a port forwarded to that mesh's listenPort;
//   2. else the endpoint's own port, when the mesh listens on it, or when none of the machine's
//      meshes listens on it (a port forward, as with a single mesh: host:40000 → 51820 keeps
//      working as it always did);
//   3. else the endpoint's host with the mesh's own listenPort.
// spec.endpointV6, a dual-uplink host's second endpoint (mesh/uplinks.ts), takes rules 2 and 3.
// Pure; every value is checked against its format where it is read (status and spec are input).
import type { Machine } from "../api/types.generated.js";
import { ENDPOINT, ENDPOINT_V6, OBJECT_NAME, shown } from "../api/formats.js";
import { parseIp6 } from "./ipv6.js";
import { endpointFamily } from "./uplinks.js";

/** What the rule needs of a mesh. */
export interface MeshPort {
  name: string;
  listenPort: number;
}

export interface PeerEndpoint {
  /** host:port for WireGuard's Endpoint; absent when the machine has no endpoint (behind NAT). */
  endpoint?: string;
  /** [IPv6]:port from spec.endpointV6, beside an IPv4 endpoint (mesh/uplinks.ts). */
  endpointV6?: string;
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
  const name = m.metadata.name ?? "";
  if (written === undefined || written === "") {
    // A host with an IPv6 uplink only writes its address in spec.endpoint; alone, this one is not used.
    const v6 = m.spec.endpointV6;
    return {
      refused: v6 !== undefined && v6 !== "" ? [`Machine ${name} spec.endpointV6: ignored without spec.endpoint; a host whose uplink is IPv6 only gives its [IPv6]:port in spec.endpoint`] : [],
    };
  }
  if (!ENDPOINT.test(written)) return { refused: [`Machine ${name} spec.endpoint: ${shown(written)} is not host:port; it is left out of MeshNetwork ${mesh.name}`] };
  const refused: string[] = [];
  const { host } = splitEndpoint(written);
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
  const endpoint = override !== undefined ? `${host}:${override}` : portRule(written, mesh, machineMeshes);
  const second = secondEndpoint(m, endpoint, mesh, machineMeshes);
  if (second.refused) refused.push(second.refused);
  return { endpoint, ...(second.endpointV6 !== undefined ? { endpointV6: second.endpointV6 } : {}), refused };
}

/** Rules 2 and 3 of the header for an endpoint checked against ENDPOINT. */
function portRule(written: string, mesh: MeshPort, machineMeshes: readonly MeshPort[]): string {
  const { host, port } = splitEndpoint(written);
  const forwarded = !machineMeshes.some((x) => x.listenPort === port);
  return mesh.listenPort === port || forwarded ? written : `${host}:${mesh.listenPort}`;
}

/** spec.endpointV6, beside an IPv4 spec.endpoint only; the same port rule without spec.endpointPorts. */
function secondEndpoint(m: Machine, endpoint: string, mesh: MeshPort, machineMeshes: readonly MeshPort[]): { endpointV6?: string; refused?: string } {
  const written = m.spec.endpointV6;
  if (written === undefined || written === "") return {};
  const name = m.metadata.name ?? "";
  if (typeof written !== "string" || !ENDPOINT_V6.test(written) || parseIp6(splitEndpoint(written).host.slice(1, -1)) === undefined) {
    return { refused: `Machine ${name} spec.endpointV6: ${shown(written)} is not [IPv6]:port; ignored (write the address in brackets, e.g. [2001:db8::1]:51820)` };
  }
  if (endpointFamily(endpoint) === 6)
    return { refused: `Machine ${name} spec.endpointV6: ignored, spec.endpoint is IPv6 already; spec.endpointV6 is the second endpoint of a host whose spec.endpoint is IPv4` };
  return { endpointV6: portRule(written, mesh, machineMeshes) };
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
