// Removing a mesh's Docker network from a host disconnects the containers attached to it first
// (remove_network in hosts/steps.ts): they keep running, without that network. That is what a
// delete asks for, but it must not pass unnoticed: this names them, for an Event.
import type { AreaStep } from "./diff.js";
import type { HostObservation } from "./observe.js";

export interface Detached {
  meshNetwork: string;
  dockerNetwork: string;
  /** How many containers are attached (all of them are disconnected). */
  count: number;
  /** Their names, as far as the host reported them (bounded). */
  names: string[];
}

/** The containers the given steps disconnect, per Docker network removed; none when no network with containers is removed. */
export function containersDetached(steps: readonly AreaStep[], obs: HostObservation): Detached[] {
  const out: Detached[] = [];
  for (const s of steps) {
    if (s.op !== "remove_network") continue;
    const net = obs.networks.get(s.args[0] ?? "");
    if (!net || net.containers === 0) continue;
    out.push({ meshNetwork: s.meshNetwork, dockerNetwork: net.name, count: net.containers, names: net.containerNames ?? [] });
  }
  return out;
}

/** "Docker network mesh (MeshNetwork mesh): 2 container(s) disconnected: db, web" per network. */
export function describeDetached(list: readonly Detached[]): string {
  return list
    .map((d) => {
      const more = d.count - d.names.length;
      const names = d.names.length ? `: ${d.names.join(", ")}${more > 0 ? ` and ${more} more` : ""}` : "";
      return `Docker network ${d.dockerNetwork} (MeshNetwork ${d.meshNetwork}): ${d.count} container(s) disconnected${names}`;
    })
    .join("; ");
}
