// An MTU change is not forced on a Docker network with containers attached (recreating the
// network would cut them off): the host keeps the MTU it has, and the condition says so.
import type { NetworkPlan } from "../mesh/plan.js";
import type { HostObservation } from "../hosts/observe.js";
import { NETWORK_LABEL } from "../mesh/plan.js";

const MTU_OPTION = "com.docker.network.driver.mtu";

export function holdMtuUnderContainers(networks: readonly NetworkPlan[], obs: HostObservation): { networks: NetworkPlan[]; pending: string[] } {
  const pending: string[] = [];
  const out = networks.map((n) => {
    const have = obs.networks.get(n.docker.name);
    const haveMtu = Number(have?.options[MTU_OPTION]);
    if (!have || have.labels[NETWORK_LABEL] !== n.wireguard.interface || !have.containers || !haveMtu || haveMtu === n.docker.mtu) return n;
    pending.push(
      `MeshNetwork ${n.meshNetwork}: the MTU should be ${n.docker.mtu} but Docker network ${n.docker.name} has ${have.containers} container(s) attached and keeps ${haveMtu} (tunnel too) until they are stopped or disconnected; then it is recreated with ${n.docker.mtu}`,
    );
    return {
      ...n,
      docker: { ...n.docker, mtu: haveMtu, options: { ...n.docker.options, [MTU_OPTION]: String(haveMtu) } },
      wireguard: { ...n.wireguard, mtu: haveMtu },
    };
  });
  return { networks: out, pending };
}
