// What a Machine's status says was configured on its host, read back for teardown. Status is not
// the controller's alone (whoever may patch machines/status can write it), so every name is
// checked before it reaches the host, and teardown itself touches only what the host shows as
// dockmesh's (hosts/diff.ts teardownSteps).
import type { Machine } from "../api/types.generated.js";
import type { PreviousNetwork } from "../hosts/diff.js";
import { DOCKER_NETWORK_NAME, INTERFACE_NAME, OBJECT_NAME, shown } from "../mesh/formats.js";

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
    previous.push({ meshNetwork: n.meshNetwork, interface: n.interface, ...(n.dockerNetwork ? { dockerNetwork: n.dockerNetwork } : {}) });
  });
  return { previous, refused };
}
