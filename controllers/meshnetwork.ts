// The MeshNetwork reconciler: membership, stable subnet allocations, relays, counts, Ready.
// No SSH: it only decides and records; the Machine reconcilers act on what it records.
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { resolveMesh, type ResolvedMesh } from "../mesh/defaults.js";
import { planMesh, refusedMeshPlan } from "../mesh/plan.js";
import { meshConflicts, meshKey } from "../mesh/conflicts.js";
import { findCondition, setConditions } from "../runtime/conditions.js";
import type { Informer } from "../runtime/informer.js";
import type { Logger } from "../runtime/log.js";
import type { StatusClient } from "../runtime/status.js";
import { STATUS_WRITE_FAILED, writeStatusVisibly } from "../runtime/status-failure.js";
import type { EventRecorder } from "../runtime/events.js";
import type { Clock } from "../runtime/clock.js";
import { invalidMeshStatus, meshStatus } from "./meshnetwork-status.js";
import { canRelay } from "./relays.js";

export interface MeshControllerDeps {
  machines: Informer<Machine>;
  meshes: Informer<MeshNetwork>;
  status: StatusClient<MeshNetwork>;
  events: EventRecorder;
  clock: Clock;
  log: Logger;
}

export class MeshNetworkReconciler {
  constructor(private readonly d: MeshControllerDeps) {}

  async reconcile(key: string): Promise<void> {
    const mesh = this.d.meshes.get(key);
    if (!mesh || mesh.metadata.deletionTimestamp) return;
    const ns = mesh.metadata.namespace ?? "default";
    const r = resolveMesh(mesh);
    const parts = r.mesh ? this.plan(r.mesh, mesh, ns) : invalidMeshStatus(r.errors);
    const gen = mesh.metadata.generation ?? 0;
    const before = findCondition(mesh.status?.conditions, "Ready");
    // A refused write is an Event and Ready False (StatusWriteFailed), not only a log line.
    const failed = (cur: MeshNetwork["status"], problem: string) => {
      const cond = {
        type: "Ready",
        status: "False" as const,
        reason: STATUS_WRITE_FAILED,
        message: `the controller could not write this MeshNetwork's status, so the rest of it is out of date: ${problem}`,
      };
      return { ...cur, conditions: setConditions(cur?.conditions, [cond], gen, this.d.clock.now(), ["Ready"]) };
    };
    const res = await writeStatusVisibly(
      this.d.status,
      mesh,
      (cur) => ({ ...parts.fields, observedGeneration: gen, conditions: setConditions(cur?.conditions, [parts.ready], gen, this.d.clock.now(), ["Ready"]) }),
      { events: this.d.events, logger: this.d.log, fallbacks: [failed] },
    );
    if (res.outcome === "written" && (before?.status !== parts.ready.status || before?.reason !== parts.ready.reason)) {
      await this.d.events.event(mesh, parts.ready.status === "True" ? "Normal" : "Warning", parts.ready.reason, parts.ready.message);
    }
  }

  private plan(resolved: ResolvedMesh, mesh: MeshNetwork, ns: string) {
    const machines = this.d.machines.list(ns);
    const all = this.d.meshes
      .list(ns)
      .filter((x) => !x.metadata.deletionTimestamp)
      .flatMap((x) => resolveMesh(x).mesh ?? []);
    // Refused when it clashes on a machine with a mesh that came first: the decision `dockmesh plan` makes.
    const refusal = meshConflicts(all, machines).get(meshKey(resolved));
    if (refusal) return meshStatus(refusedMeshPlan(resolved, machines, refusal), new Map());
    const healthy = machines.filter(canRelay).map((m) => m.metadata.name ?? "");
    const plan = planMesh(resolved, machines, { existing: mesh.status?.allocations ?? [], allMeshes: all, relayCandidates: healthy });
    return meshStatus(plan, new Map(machines.map((m) => [m.metadata.name ?? "", m])));
  }
}
