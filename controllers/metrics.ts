// The controller process's /metrics: the runtime's (reconciles, work queues, SSH round trips,
// leader election, the process: runtime/metrics.ts) and the fleet's (fleet-metrics.ts), in one
// registry.
import { RuntimeMetrics, type MetricsOptions } from "../runtime/metrics.js";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { FleetMetrics, type FleetMetricsOptions } from "./fleet-metrics.js";
import type { PeerStats } from "./peer-stats.js";

/** The work queues of controllers/manager.ts → the kind label of their reconciles. */
const QUEUE_KINDS = { machine: "Machine", meshnetwork: "MeshNetwork" } as const;

export type ControllerMetricsOptions = Omit<MetricsOptions, "queueKinds"> & FleetMetricsOptions;

export class ControllerMetrics extends RuntimeMetrics {
  private readonly fleet: FleetMetrics;

  constructor(opts: ControllerMetricsOptions = {}) {
    super({ processMetrics: opts.processMetrics, queueKinds: QUEUE_KINDS });
    this.fleet = new FleetMetrics(this.registry, opts);
  }

  /** Where the fleet gauges read Machines from at scrape time (the Machine informer's cache). */
  setMachines(list: () => readonly Machine[]): void {
    this.fleet.setMachines(list);
  }

  /** Where the per-peer series come from, and the meshes that still exist (the others' series go). */
  setPeerStats(stats: PeerStats, meshes: () => readonly MeshNetwork[]): void {
    this.fleet.setPeerStats(stats, meshes);
  }
}
