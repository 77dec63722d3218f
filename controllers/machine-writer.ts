// Every write a Machine's reconcile makes to its own object and about it: status (with the
// fallbacks when the API server refuses one), the Events that go with it, and host keys recorded
// on first contact. It remembers its own writes until the informer cache has them.
import type { Machine, MachineStatus } from "../api/types.generated.js";
import type { NetworkPlan } from "../mesh/plan.js";
import type { HostSession } from "../hosts/ssh.js";
import { objectKey } from "../runtime/informer.js";
import type { EventRecorder } from "../runtime/events.js";
import type { Logger } from "../runtime/log.js";
import type { StatusClient } from "../runtime/status.js";
import type { Clock } from "../runtime/clock.js";
import { writeStatusVisibly } from "../runtime/status-failure.js";
import { OwnWrites } from "../runtime/own-writes.js";
import { unrecorded } from "./previous-networks.js";
import { driftStatus, intendedStatus, statusWriteFallbacks } from "./machine-status.js";
import { recordHostKeys, type HostKeyPlan } from "./ssh-target.js";
import type { HostKeyRecords } from "./host-keys.js";

export interface WriterDeps {
  status: StatusClient<Machine>;
  events: EventRecorder;
  hostKeys: HostKeyRecords;
  clock: Clock;
  log: Logger;
}

export class MachineWriter {
  /** This controller's own Machine writes, until the informer cache has them (runtime/own-writes.ts). */
  readonly own = new OwnWrites<Machine>();

  constructor(private readonly d: WriterDeps) {}

  /**
   * Every status write of this controller. One the API server refuses is not only a log line:
   * a Warning Event, and Ready False (StatusWriteFailed) on the status as the server last took it.
   */
  status(m: Machine, desired: (cur: MachineStatus | undefined) => MachineStatus) {
    const fallbacks = statusWriteFallbacks(m, this.d.clock.now());
    return writeStatusVisibly(this.d.status, m, desired, { events: this.d.events, logger: this.d.log, fallbacks }).then((res) => {
      if (res.outcome === "written") this.own.wrote(objectKey(m), res.replaced, res.object);
      return res;
    });
  }

  /** Drift said before it is repaired; returns the Machine as written (later writes start from it). */
  async drift(m: Machine, what: readonly string[]): Promise<Machine | undefined> {
    return (await this.status(m, (cur) => driftStatus(cur, m, what, this.d.clock.now()))).object;
  }

  /**
   * Records the planned networks status does not list yet, and says they are being configured
   * (machine-status.ts intendedStatus); returns the Machine as written, if it was.
   */
  async intended(m: Machine, networks: readonly NetworkPlan[]): Promise<Machine | undefined> {
    if (!unrecorded(m.status?.networks ?? [], networks).length) return undefined;
    const res = await this.status(m, (cur) => intendedStatus(cur, networks, m.metadata.generation ?? 0, this.d.clock.now()) ?? { ...cur });
    return res.object;
  }

  /** Records host keys seen on first contact (and follows pins) before anything is sent to the host. */
  async hostKeys(m: Machine, plans: readonly HostKeyPlan[], session: HostSession): Promise<void> {
    for (const r of await recordHostKeys(m, plans, session, this.d.hostKeys)) {
      this.d.log.info("host key recorded on first contact", { machine: `${m.metadata.namespace}/${m.metadata.name}`, endpoint: r.id, fingerprint: r.fingerprint });
      void this.d.events.event(
        m,
        "Normal",
        "HostKeyRecorded",
        `first contact with ssh ${r.id}: recorded its host key ${r.fingerprint}, enforced from now on; verify it out of band (on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and pin it: set ${r.field}.hostKey`,
      );
    }
  }
}
