// What a Machine's status says was configured on its host, read back for teardown. Status is not
// the controller's alone (whoever may patch machines/status can write it), so every name is
// checked before it reaches the host, and teardown itself touches only what the host shows as
// dockmesh's (hosts/diff.ts teardownSteps).
import type { Machine, MachineStatusNetwork } from "../api/types.generated.js";
import type { NetworkPlan } from "../mesh/plan.js";
import type { PreviousNetwork } from "../hosts/diff.js";
import { DOCKER_NETWORK_NAME, INTERFACE_NAME, OBJECT_NAME, shown } from "../api/formats.js";

export interface PreviousNetworks {
  /** Networks in status for meshes not in `keep`: to tear down. */
  previous: PreviousNetwork[];
  /** Entries refused, naming the field: "Machine m1 status.networks[0].interface: …". */
  refused: string[];
}

export function previousFromStatus(m: Machine, keep: ReadonlySet<string>): PreviousNetworks {
  const previous: PreviousNetwork[] = [];
  const refused: string[] = [];
  (m.status?.networks ?? []).forEach((n, i) => {
    if (keep.has(n.meshNetwork) || !n.interface) return;
    const field = `Machine ${m.metadata.name} status.networks[${i}]`;
    if (typeof n.meshNetwork !== "string" || !OBJECT_NAME.test(n.meshNetwork)) {
      refused.push(`${field}.meshNetwork: ${shown(String(n.meshNetwork))} is not a MeshNetwork name; ignored`);
      return;
    }
    if (!INTERFACE_NAME.test(n.interface)) {
      refused.push(`${field}.interface: ${shown(n.interface)} is not an interface name; nothing is torn down for it`);
      return;
    }
    if (n.dockerNetwork !== undefined && !DOCKER_NETWORK_NAME.test(n.dockerNetwork)) {
      refused.push(`${field}.dockerNetwork: ${shown(n.dockerNetwork)} is not a Docker network name; nothing is torn down for it`);
      return;
    }
    previous.push({ meshNetwork: n.meshNetwork, interface: n.interface, ...(n.dockerNetwork ? { dockerNetwork: n.dockerNetwork } : {}), ...(n.subnetV6 !== undefined ? { ipv6: true } : {}) });
  });
  return { previous, refused };
}

/**
 * status.networks after a converge: the planned networks, and the entries of status kept for
 * meshes not planned this time that are still on the host — a mesh the machine still belongs to
 * (invalid for now, or waiting for a subnet: its host state is kept), or one whose teardown left
 * something (`leftovers`). Dropping those entries lost the only record of what to tear down, and
 * deleting the mesh then left its interface, network, rules and files on the host (issue 12).
 * Sorted by mesh, one entry per mesh (the list-map key).
 */
export function recordedNetworks(
  planned: readonly MachineStatusNetwork[],
  current: readonly MachineStatusNetwork[],
  keep: ReadonlySet<string>,
  leftovers: ReadonlySet<string>,
): MachineStatusNetwork[] {
  const mine = new Set(planned.map((n) => n.meshNetwork));
  const kept = current.filter((n) => !mine.has(n.meshNetwork) && (keep.has(n.meshNetwork) || leftovers.has(n.meshNetwork)));
  return [...planned, ...kept].sort((a, b) => (a.meshNetwork < b.meshNetwork ? -1 : a.meshNetwork > b.meshNetwork ? 1 : 0));
}

/** The planned networks status.networks has no entry for yet (new meshes of the machine). */
export function unrecorded(current: readonly MachineStatusNetwork[], planned: readonly NetworkPlan[]): NetworkPlan[] {
  const have = new Set(current.map((n) => n.meshNetwork));
  return planned.filter((n) => !have.has(n.meshNetwork));
}

/**
 * status.networks with an entry for each of `added` (unrecorded): written before anything of a
 * new mesh is applied, so that whatever happens next (a failed status write, a crash), what is
 * on the host is on record for its teardown.
 */
export function withIntended(current: readonly MachineStatusNetwork[], added: readonly NetworkPlan[]): MachineStatusNetwork[] {
  return recordedNetworks(added.map(networkRecord), current, new Set(current.map((n) => n.meshNetwork)), new Set());
}

/** What status records of a planned network, its peers and DNS aside. */
export function networkRecord(n: NetworkPlan): MachineStatusNetwork {
  return {
    meshNetwork: n.meshNetwork,
    subnet: n.subnet,
    ...(n.subnetV6 !== undefined ? { subnetV6: n.subnetV6 } : {}),
    dockerNetwork: n.docker.name,
    interface: n.wireguard.interface,
    bridge: n.docker.bridge,
    listenPort: n.wireguard.listenPort,
    mtu: n.wireguard.mtu,
  };
}
