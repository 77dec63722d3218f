// A Machine being deleted: its host loses everything of ours (or is released without contact,
// when nothing can have been applied or the user asks), then the finalizer goes.
import type { Machine } from "../api/types.generated.js";
import { connect } from "../hosts/ssh.js";
import { applyTeardown, teardownSteps } from "../hosts/converge.js";
import { HostError } from "../hosts/errors.js";
import { containersDetached, describeDetached } from "../hosts/detach.js";
import { findCondition } from "../runtime/conditions.js";
import type { ApiClient } from "../runtime/client.js";
import type { EventRecorder } from "../runtime/events.js";
import type { Logger } from "../runtime/log.js";
import type { Semaphore } from "../runtime/semaphore.js";
import type { Clock } from "../runtime/clock.js";
import { previousFromStatus } from "./previous-networks.js";
import { FINALIZER, RELEASE_ANNOTATION, hasFinalizer, setFinalizers } from "./resources.js";
import { isProblem, sshEndpointIdOf, sshTargetFor, type SecretReader } from "./ssh-target.js";
import { hostKeyRecordName, type HostKeyRecords } from "./host-keys.js";
import { teardownFailedStatus } from "./machine-status.js";
import type { MachineWriter } from "./machine-writer.js";

export interface TeardownDeps {
  api: ApiClient;
  readSecret: SecretReader;
  hostKeys: HostKeyRecords;
  events: EventRecorder;
  sshSlots: Semaphore;
  clock: Clock;
  log: Logger;
}

/** Deletion: tear the host down, then let the Machine go. */
export async function finalizeMachine(d: TeardownDeps, w: MachineWriter, m: Machine, key: string): Promise<void> {
  if (!hasFinalizer(m)) return;
  const release = m.metadata.annotations?.[RELEASE_ANNOTATION] === "true";
  const never = release ? undefined : await neverContacted(d, m);
  if (never) {
    await d.events.event(m, "Normal", "Released", `nothing to clean up: ${never}; released without contacting the host`);
  } else if (!release) {
    const { previous } = previousFromStatus(m, new Set());
    try {
      const resolved = await sshTargetFor(m, d.readSecret, d.hostKeys);
      if (isProblem(resolved)) throw new HostError("Unreachable", resolved.message);
      await d.sshSlots.use(async () => {
        const session = await connect(resolved.target);
        try {
          await w.hostKeys(m, resolved.hostKeys, session);
          const { steps, observation } = await teardownSteps(session, previous);
          if (!steps.length) return;
          const detached = containersDetached(steps, observation);
          if (detached.length) await d.events.event(m, "Warning", "ContainersDetached", `deleting the Machine: ${describeDetached(detached)}; they keep running without that network`);
          const left = await applyTeardown(session, previous, steps, (line) => d.log.info(line, { machine: key }));
          if (left.length) throw new HostError("ApplyFailed", `still on the host after teardown: ${left.map((s) => s.display).join("; ")}`);
        } finally {
          session.close();
        }
      });
    } catch (err) {
      const message = `deleting: cannot clean up the host: ${err instanceof Error ? err.message : String(err)}; once it is reachable this finishes by itself, or release it without cleanup: kubectl -n ${m.metadata.namespace ?? "default"} annotate machine ${m.metadata.name} ${RELEASE_ANNOTATION}=true`;
      await w.status(m, (cur) => teardownFailedStatus(cur, m, message, d.clock.now()));
      throw new Error(`machine ${key}: ${message}`, { cause: err });
    }
    await d.events.event(m, "Normal", "TornDown", `removed ${previous.map((p) => p.interface).join(", ") || "nothing (no network was configured)"} from the host`);
  } else {
    await d.events.event(m, "Warning", "Released", `released without cleaning up the host (annotation ${RELEASE_ANNOTATION}=true); remove dockmesh's interfaces and rules from it by hand`);
  }
  // The WireGuard key Secret is owned by the Machine: the garbage collector removes it with
  // the Machine, so the controller needs no right to delete Secrets.
  await setFinalizers(
    d.api,
    m,
    (m.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
  );
  d.log.info(release || never ? "released" : "torn down; finalizer removed", { machine: key, error: undefined });
}

/**
 * Why nothing can have been applied to the host, or undefined. The evidence is what only the
 * controller writes: no host key record for the endpoint means no SSH handshake with it ever
 * completed (the record is made right after the handshake, before any command). Status is a
 * hint that can only keep the finalizer: a fingerprint, networks or Reachable=True there (an
 * object contacted before records existed) mean a teardown is tried.
 */
async function neverContacted(d: TeardownDeps, m: Machine): Promise<string | undefined> {
  const s = m.status;
  if (s?.hostKeyFingerprint || s?.networks?.length || findCondition(s?.conditions, "Reachable")?.status === "True") return undefined;
  const ns = m.metadata.namespace ?? "default";
  const id = sshEndpointIdOf(m);
  try {
    if ((await d.hostKeys.get(ns, id)) !== undefined) return undefined;
  } catch (err) {
    d.log.warn("cannot read the host key record; tearing down as usual", { machine: `${ns}/${m.metadata.name}`, error: String(err) });
    return undefined;
  }
  return `the controller never connected to ssh ${id} (no host key record Secret ${ns}/${hostKeyRecordName(id)})`;
}
