// The act step of a Machine's reconcile, over one SSH session, read straight through: observe the
// host (or, for a fresh host, apply the guessed first converge and observe in one round trip),
// plan from what it shows and the caches as they are now, diff, put the intent on record, apply
// and look again; again while peers' keys arrived meanwhile (bounded). hosts/converge.ts has
// the steps; this file their order and what is recorded between them.
import type { Machine } from "../api/types.generated.js";
import { planHost, type HostFacts, type MeshView, type NetworkPlan } from "../mesh/plan.js";
import { applyAndCheck, namesMissing, namesOf, preflight, stepsFor, type ConvergeResult, type HostKeys, type ObservedNames } from "../hosts/converge.js";
import type { AreaStep } from "../hosts/diff.js";
import { applyThenObserve } from "../hosts/apply.js";
import { assumedFreshHost, freshApply } from "../hosts/fresh.js";
import { dockerNetworkFacts, hostFacts, observeHost, type HostObservation, type Probe } from "../hosts/observe.js";
import type { HostSession } from "../hosts/ssh.js";
import { containersDetached, describeDetached } from "../hosts/detach.js";
import type { EventRecorder } from "../runtime/events.js";
import type { Logger } from "../runtime/log.js";
import type { MachineKey } from "./keys.js";
import { listed } from "./machine-conditions.js";
import type { MachineViews, Snapshot } from "./machine-views.js";
import type { MachineWriter } from "./machine-writer.js";

/** Converges in one reconcile: the first, and again while the plan changed under it. */
const MAX_CONVERGE_PASSES = 3;

export interface ConvergeServices {
  views: MachineViews;
  writer: MachineWriter;
  events: EventRecorder;
  log: Logger;
  /** The views with the NAT↔NAT paths decided from what the host shows (controllers/nat-paths.ts). */
  natPaths: (m: Machine, views: readonly MeshView[], wg: HostObservation["wg"]) => MeshView[];
  /** Peers to probe; `settle`: after changes, waiting a moment for peers being configured right now. */
  probes: (networks: readonly NetworkPlan[], settle: boolean) => Probe[];
}

export interface ConvergeStart {
  m: Machine;
  machineKey: MachineKey;
  snap: Snapshot;
  /** The plan hash of the snapshot (machine.ts): a drift is a diff under an unchanged plan. */
  hashOf: (snap: Snapshot) => string;
  /** The hash of the plan the host was last Ready for, when status says Ready: changes under it are drift. */
  readyHash: string | undefined;
  /** Guessed facts: the host most likely has nothing of ours (its first converge in one round trip). */
  fresh: HostFacts | undefined;
  /** The plan from `fresh` already made for the snapshot with this hash (its intent went on record): not made again. */
  freshPlan?: { hash: string; networks: NetworkPlan[] };
}

/** A converge's outcome, and the Machine and snapshot as they stand after the writes it made. */
export interface Converged {
  result: ConvergeResult;
  m: Machine;
  snap: Snapshot;
}

export class HostConverge {
  private m: Machine;
  private snap: Snapshot;
  private readonly ns: string;
  private readonly name: string;
  private readonly keys: HostKeys;
  private readonly timings: string[] = [];

  constructor(
    private readonly s: ConvergeServices,
    private readonly start: ConvergeStart,
  ) {
    this.m = start.m;
    this.snap = start.snap;
    this.ns = start.m.metadata.namespace ?? "default";
    this.name = start.m.metadata.name ?? "";
    // Only a flag comes from status (any recorded IPv6 subnet): at worst one more look at ip6tables.
    const ipv6Before = (start.m.status?.networks ?? []).some((n) => n.subnetV6 !== undefined);
    this.keys = { privateKey: start.machineKey.privateKey, publicKey: start.machineKey.publicKey, previous: start.snap.previous, ...(ipv6Before ? { ipv6Before } : {}) };
  }

  /** The Machine as the writes made so far left it (later writes start from its resourceVersion). */
  get machine(): Machine {
    return this.m;
  }

  /** Throws the HostError of a host that fails preflight or drops the session. */
  async run(session: HostSession): Promise<Converged> {
    const first = this.start.fresh ? await this.fresh(session, this.start.fresh) : undefined;
    let obs = first?.observation;
    let names: ObservedNames;
    if (first && obs) names = first.names;
    else {
      // The plan as of the last status, so the first observation already looks at the right names
      // (a fresh attempt whose observation did not parse has them already).
      const guess = planHost(this.ns, this.name, this.snap.views, {}).networks;
      const looked = first?.names ?? namesOf(guess, this.keys.previous, this.keys.ipv6Before);
      obs = await this.timed("observe", () => observeHost(session, looked, this.s.probes(guess, false)));
      names = looked;
    }
    const applied = first?.applied ?? [];
    const applyError = first?.applyError;
    let result = await this.pass(session, obs, names, applyError);
    result = { ...result, applied: [...applied, ...result.applied] };
    // Keys peers published while this converge ran (machines created together publish theirs
    // within a second or so): apply them now on this session, rather than in another reconcile
    // after a status write, a new connection and its observe. The host as the last pass left it:
    // planned again without looking again.
    for (let pass = 1; pass < MAX_CONVERGE_PASSES && !result.applyError && this.start.hashOf(this.refreshed()) !== this.start.hashOf(this.snap); pass++) {
      const next = await this.pass(session, result.observation, namesOf(result.networks, this.keys.previous, this.keys.ipv6Before));
      result = { ...next, applied: [...result.applied, ...next.applied] };
    }
    return this.done(result);
  }

  private done(result: ConvergeResult): Converged {
    return { result: { ...result, timings: this.timings }, m: this.m, snap: this.snap };
  }

  /**
   * A first converge in one round trip (hosts/fresh.ts), planned from guessed facts (no
   * containers to hold an MTU for yet). Undefined when it cannot be (the ordinary pass says why).
   */
  private async fresh(session: HostSession, facts: HostFacts) {
    if (this.keys.previous.length) return undefined;
    this.snap = this.refreshed();
    const made = this.start.freshPlan;
    // A plan of 999 peers is milliseconds: made once per snapshot, not again for the same inputs.
    const networks = made && made.hash === this.start.hashOf(this.snap) ? made.networks : planHost(this.ns, this.name, this.snap.views, facts).networks;
    const fresh = freshApply(networks, this.keys.privateKey, this.keys.publicKey, facts);
    if (!fresh) return undefined;
    const names = namesOf(networks, this.keys.previous, this.keys.ipv6Before);
    await this.beforeApply(fresh.steps, networks, assumedFreshHost(facts, networks));
    const r = await this.timed("fresh", () => applyThenObserve(session, fresh.steps, { ...names, probes: this.s.probes(networks, true) }, { guard: fresh.guard, log: this.logLine }));
    if (r.skipped) this.logLine(`first converge in one round trip not taken: ${r.skipped}`);
    // A step that failed: the host as it is after the failure, retried later.
    return { names, applied: r.done, applyError: r.error, observation: r.observation };
  }

  /** Plan from the host as observed → diff → record → apply and look again. */
  private async pass(session: HostSession, observed: HostObservation, looked: ObservedNames, applyError?: ConvergeResult["applyError"]): Promise<ConvergeResult> {
    const pre = preflight(observed);
    if (pre) throw pre;
    let obs = observed;
    const networks = this.plan(obs);
    const names = namesOf(networks, this.keys.previous, this.keys.ipv6Before);
    // The observation may have missed names the plan introduced (a new mesh): look again.
    if (namesMissing(looked, names)) obs = await this.timed("observe", () => observeHost(session, names));
    const first = stepsFor(networks, this.keys, obs);
    if (first.steps.length === 0 || applyError)
      return { networks, observation: obs, applied: [], blockers: first.blockers, remaining: applyError ? first.steps : [], ...(applyError ? { applyError } : {}) };
    await this.beforeApply(first.steps, networks, obs);
    const r = await this.timed("apply+observe", () =>
      applyAndCheck(session, first.steps, networks, this.keys, { names, probes: this.s.probes(networks, true), again: this.s.probes(networks, false), log: this.logLine }),
    );
    return { networks, ...r };
  }

  /**
   * Plan from the caches as they are now, once connected and observed: the keys peers published
   * meanwhile (all machines of a new mesh publish theirs at about the same time) go into this
   * apply rather than into another reconcile's.
   */
  private plan(obs: HostObservation): NetworkPlan[] {
    this.snap = this.refreshed();
    const views = this.s.natPaths(this.m, this.snap.views, obs.wg);
    return planHost(this.ns, this.name, views, { ...hostFacts(obs), dockerNetworks: dockerNetworkFacts(obs) }).networks;
  }

  private refreshed(): Snapshot {
    return this.s.views.refreshed(this.m, this.start.machineKey, this.snap);
  }

  /** What goes on record before the host changes. */
  private async beforeApply(steps: readonly AreaStep[], networks: readonly NetworkPlan[], obs: HostObservation): Promise<void> {
    // A new mesh's names go into status first (teardown finds them even if the apply is cut short).
    this.m = (await this.s.writer.intended(this.m, networks)) ?? this.m;
    // A mesh this machine left (deleted, or its labels no longer match): its Docker network goes,
    // and containers on it are disconnected first. Say which.
    const detached = containersDetached(steps, obs);
    if (detached.length) await this.s.events.event(this.m, "Warning", "ContainersDetached", `leaving a MeshNetwork: ${describeDetached(detached)}; they keep running without that network`);
    // Drift on a host that was converged for the same plan: say so before repairing it.
    if (this.start.readyHash !== undefined && this.start.readyHash === this.start.hashOf(this.snap)) {
      const what = [...new Set(steps.map((s) => s.display))].sort();
      this.s.log.warn("drift found; repairing", { machine: `${this.ns}/${this.name}`, changes: what });
      await this.s.events.event(this.m, "Warning", "DriftDetected", `the host drifted from the plan; repairing: ${listed(what, "; ")}`);
      this.m = (await this.s.writer.drift(this.m, what)) ?? this.m;
    }
  }

  private readonly logLine = (line: string) => this.s.log.info(line, { machine: `${this.ns}/${this.name}` });

  private async timed<T>(what: string, p: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await p();
    } finally {
      this.timings.push(`${what} ${Math.round(performance.now() - t)}`);
    }
  }
}
