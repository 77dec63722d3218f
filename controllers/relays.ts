// Which public machines may relay for NAT'd pairs: both the MeshNetwork and every Machine
// reconciler decide it the same way, from the Machines' status, so both sides of a pair agree.
import type { Machine } from "../api/types.generated.js";
import { findCondition } from "../runtime/conditions.js";

/**
 * A relay must have an endpoint, be reachable and configured, and not be cut off from every
 * peer (a relay that stops handshaking with all of them is skipped, and its pairs move).
 */
export function canRelay(m: Machine | undefined): boolean {
  if (!m?.spec.endpoint || m.metadata.deletionTimestamp) return false;
  const c = m.status?.conditions;
  if (findCondition(c, "Reachable")?.status === "False" || findCondition(c, "WireGuardReady")?.status === "False") return false;
  const [connected, total] = (m.status?.peers ?? "").split("/").map(Number);
  return !(total !== undefined && total > 0 && connected === 0 && findCondition(c, "PeersConnected")?.status === "False");
}
