// metav1.LabelSelector evaluation (matchLabels and matchExpressions, ANDed). Empty selects all.
import type { MeshNetworkSpecMachineSelector } from "../api/types.generated.js";
import { matchLabels, type LabelRequirement } from "../api/labels.js";

/** The metav1.LabelSelector as requirements (matchLabels first, then matchExpressions). */
export function requirementsOf(selector: MeshNetworkSpecMachineSelector): LabelRequirement[] {
  const ops = { In: "in", NotIn: "notin", Exists: "exists", DoesNotExist: "!" } as const;
  return [
    ...Object.entries(selector.matchLabels ?? {}).map(([key, v]) => ({ key, op: "=" as const, values: [v] })),
    ...(selector.matchExpressions ?? []).map((e) => ({ key: e.key, op: ops[e.operator], values: e.values ?? [] })),
  ];
}

export function selectorMatches(selector: MeshNetworkSpecMachineSelector | undefined, labels: Record<string, string> = {}): boolean {
  return !selector || matchLabels(requirementsOf(selector), labels);
}
