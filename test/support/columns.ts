// What `kubectl get machines` shows in its READY and PEERS columns, read through the API, with
// the rule that they never contradict each other asserted on every read: READY True → PEERS
// n/n; a host the controller does not reach (Reachable=False) → no PEERS at all.
import assert from "node:assert/strict";
import type { Machine } from "../../api/types.generated.js";

export interface MachineColumns {
  ready: string;
  reason: string;
  peers: string;
}

export async function machineColumns(getJson: <T>(args: readonly string[]) => Promise<T>): Promise<Map<string, MachineColumns>> {
  const cond = (m: Machine, type: string) => m.status?.conditions?.find((c) => c.type === type);
  const out = new Map<string, MachineColumns>();
  for (const m of (await getJson<{ items: Machine[] }>(["get", "machines"])).items) {
    const ready = cond(m, "Ready");
    const peers = m.status?.peers ?? "";
    out.set(m.metadata.name ?? "", { ready: ready?.status ?? "", reason: ready?.reason ?? "", peers });
    if (ready?.status === "True") {
      const [good, all] = peers.split("/");
      assert.equal(good, all, `${m.metadata.name}: READY True with PEERS ${peers}`);
    }
    if (cond(m, "Reachable")?.status === "False") assert.equal(peers, "", `${m.metadata.name}: PEERS ${peers} on a host that is not reached`);
  }
  return out;
}
