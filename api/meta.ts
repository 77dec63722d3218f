// The few apimachinery types dockmesh's own kinds embed.
import type { V1ObjectMeta } from "@kubernetes/client-node";

/**
 * Object metadata: client-node's type, so our kinds are KubernetesObjects. Its timestamps are
 * typed Date, but objects from the informers carry the wire form (RFC 3339 strings); dockmesh
 * only tests them for presence.
 */
export type ObjectMeta = V1ObjectMeta;

export type ConditionStatus = "True" | "False" | "Unknown";

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}
