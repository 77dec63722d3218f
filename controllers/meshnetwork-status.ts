// The MeshNetwork's status, decided from its plan and its members' conditions. Pure.
import type { Machine, MeshNetwork, MeshNetworkStatus } from "../api/types.generated.js";
import type { MeshPlan } from "../mesh/plan.js";
import type { SpecError } from "../mesh/defaults.js";
import type { ConditionInput } from "../runtime/conditions.js";
import { findCondition } from "../runtime/conditions.js";

export interface MeshStatusParts {
  fields: Omit<MeshNetworkStatus, "conditions" | "observedGeneration">;
  ready: ConditionInput;
}

/** At most this many names in a message; the rest are counted ("and 12 more"). */
const NAMES_IN_MESSAGE = 5;

function names(list: readonly string[]): string {
  const head = list.slice(0, NAMES_IN_MESSAGE).join(", ");
  return list.length > NAMES_IN_MESSAGE ? `${head} and ${list.length - NAMES_IN_MESSAGE} more` : head;
}

export function invalidMeshStatus(errors: readonly SpecError[]): MeshStatusParts {
  return {
    fields: { machines: "0/0", machineCount: 0, readyMachineCount: 0, allocations: [] },
    ready: { type: "Ready", status: "False", reason: "InvalidSpec", message: errors.map((e) => `${e.field}: ${e.message}`).join("; ") },
  };
}

/**
 * Whether a member is ready as far as this mesh goes: Ready, or not Ready only because another
 * mesh it is in was refused for a clash (MeshConflict) while everything else on it is fine.
 */
function readyForMesh(m: Machine | undefined): boolean {
  const conds = m?.status?.conditions;
  const ready = findCondition(conds, "Ready");
  if (ready?.status === "True") return true;
  if (ready?.reason !== "MeshConflict") return false;
  return ["Reachable", "DockerReady", "WireGuardReady", "PeersConnected"].every((t) => findCondition(conds, t)?.status === "True");
}

export function meshStatus(plan: MeshPlan, machines: ReadonlyMap<string, Machine>): MeshStatusParts {
  if (plan.refused) {
    // Configured on none of its machines: none counts as ready for it, and it holds no subnet.
    const n = plan.members.length;
    return {
      fields: { machines: `0/${n}`, machineCount: n, readyMachineCount: 0, allocations: [] },
      ready: { type: "Ready", status: "False", reason: "MeshConflict", message: `${plan.refused.field}: ${plan.refused.message}` },
    };
  }
  const ready = plan.members.filter((n) => readyForMesh(machines.get(n)));
  const readySet = new Set(ready);
  const notReady = plan.members.filter((n) => !readySet.has(n));
  const fields: MeshStatusParts["fields"] = {
    machines: `${ready.length}/${plan.members.length}`,
    machineCount: plan.members.length,
    readyMachineCount: ready.length,
    allocations: plan.allocations.map((a) => ({ machine: a.machine, subnet: a.subnet, ...(a.subnetV6 ? { subnetV6: a.subnetV6 } : {}) })),
    ...(plan.relays.length ? { relays: plan.relays.map((r) => ({ machines: [...r.machines], via: r.via })) } : {}),
    ...(plan.unreachablePairs.length ? { unreachablePairs: [...plan.unreachablePairs] } : {}),
  };
  const poolErrors = plan.errors.filter((e) => e.kind === "MeshNetwork");
  const machineErrors = plan.errors.filter((e) => e.kind === "Machine");
  let cond: ConditionInput;
  if (poolErrors.length) {
    cond = { type: "Ready", status: "False", reason: "PoolExhausted", message: poolErrors.map((e) => e.message).join("; ") };
  } else if (plan.unreachablePairs.length) {
    const families = new Set(plan.noSharedFamily ?? []);
    const natted = plan.unreachablePairs.filter((p) => !families.has(p));
    const gapped = plan.unreachablePairs.filter((p) => families.has(p));
    const why = [
      ...(natted.length ? [`${natted.length} pair(s) of machines behind NAT cannot be connected (${names(natted)}): no member has an endpoint to relay through; give one machine spec.endpoint`] : []),
      ...(gapped.length
        ? [
            `${gapped.length} pair(s) of machines whose uplinks share no address family cannot be connected (${names(gapped)}): no member has an endpoint in both to relay through; give one machine spec.endpoint (IPv4) and spec.endpointV6`,
          ]
        : []),
    ];
    cond = { type: "Ready", status: "False", reason: "NoRelay", message: why.join("; ") };
  } else if (machineErrors.length) {
    cond = { type: "Ready", status: "False", reason: "MachineSpecInvalid", message: machineErrors.map((e) => `${e.name}: ${e.field}: ${e.message}`).join("; ") };
  } else if (plan.members.length === 0) {
    // Without a selector every Machine of the namespace joins: then there is none at all.
    const sel = plan.mesh.selector;
    const selects = Object.keys(sel?.matchLabels ?? {}).length > 0 || (sel?.matchExpressions?.length ?? 0) > 0;
    const ns = plan.mesh.namespace;
    const message = selects ? `no Machine in namespace ${ns} matches spec.machineSelector` : `no Machine in namespace ${ns}; spec.machineSelector is not set, so every Machine created in it joins`;
    cond = { type: "Ready", status: "False", reason: "NoMachines", message };
  } else if (notReady.length) {
    const detail = notReady.map((n) => `${n} (${findCondition(machines.get(n)?.status?.conditions, "Ready")?.reason ?? "NotObserved"})`);
    cond = { type: "Ready", status: "False", reason: "MachinesNotReady", message: `${ready.length}/${plan.members.length} machines ready; not ready: ${names(detail)}` };
  } else {
    cond = { type: "Ready", status: "True", reason: "AllMachinesReady", message: `${ready.length}/${plan.members.length} machines ready` };
  }
  return { fields, ready: cond };
}

export type { MeshNetwork };
