// A Kubernetes Events recorder (core/v1, what `kubectl describe` shows), after client-go's
// record.EventRecorder: an identical event (same object, type, reason, message) seen again
// within the window bumps count and lastTimestamp of the Event already written, by patch,
// instead of creating another. Recording never throws into the caller: failures are
// logged and the reconcile carries on.
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import type { CoreV1Event, KubernetesObject } from "@kubernetes/client-node";
import { EVENTS, isNotFound, type ApiClient } from "./client.js";
import type { Clock } from "./clock.js";
import { realClock } from "./clock.js";
import { formatTime } from "./conditions.js";
import type { Logger } from "./log.js";
import { describeError, redactText, rootLogger } from "./log.js";

export type EventType = "Normal" | "Warning";

export const REPORTING_COMPONENT = "dockmesh-controller";

/** The API calls the recorder makes; coreV1EventSink is the real one. */
export interface EventSink {
  create(namespace: string, event: CoreV1Event): Promise<CoreV1Event>;
  /** RFC 6902 JSON Patch. */
  patch(namespace: string, name: string, ops: Array<{ op: "replace" | "add"; path: string; value: unknown }>): Promise<unknown>;
}

export function coreV1EventSink(api: ApiClient): EventSink {
  return {
    create: (namespace, body) => api.create(EVENTS, { ...body, metadata: { ...body.metadata, namespace } }),
    patch: (namespace, name, ops) => api.patch(EVENTS, namespace, name, ops),
  };
}

export interface EventRecorderOptions {
  sink: EventSink;
  /** source.component and reportingComponent (default dockmesh-controller). */
  component?: string;
  /** reportingInstance and source.host (default the host name). */
  instance?: string;
  /** Repeats within this long of the last occurrence are counted on one Event (default 10 min). */
  windowMs?: number;
  /** Distinct events remembered for aggregation (default 4096, oldest forgotten first). */
  maxCached?: number;
  clock?: Clock;
  logger?: Logger;
}

interface Seen {
  namespace: string;
  eventName: string;
  count: number;
  lastMs: number;
}

const MAX_MESSAGE = 1024;

export class EventRecorder {
  private readonly sink: EventSink;
  private readonly component: string;
  private readonly instance: string;
  private readonly windowMs: number;
  private readonly maxCached: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly seen = new Map<string, Seen>();
  /** Per aggregation key, the recording in progress: repeats wait for it to know the Event's name. */
  private readonly inProgress = new Map<string, Promise<void>>();
  private seq = 0;

  constructor(opts: EventRecorderOptions) {
    this.sink = opts.sink;
    this.component = opts.component ?? REPORTING_COMPONENT;
    this.instance = opts.instance ?? hostname();
    this.windowMs = opts.windowMs ?? 600_000;
    this.maxCached = opts.maxCached ?? 4096;
    this.clock = opts.clock ?? realClock;
    this.log = (opts.logger ?? rootLogger()).child({ component: "events" });
  }

  /**
   * Records an event about `involved` (needs apiVersion, kind, metadata.name; the Event
   * goes to its namespace, "default" for cluster-scoped objects). reason is CamelCase;
   * message is human advice, without timestamps or secrets (it is redacted anyway).
   * The promise never rejects; awaiting it is optional.
   */
  event(involved: KubernetesObject, type: EventType, reason: string, message: string): Promise<void> {
    let key: string;
    try {
      key = this.aggregationKey(involved, type, reason, message);
    } catch (err) {
      this.log.warn("could not record event", { reason, error: describeError(err) });
      return Promise.resolve();
    }
    const previous = this.inProgress.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => this.record(key, involved, type, reason, message))
      .catch((err: unknown) => {
        this.log.warn("could not record event", { reason, error: describeError(err) });
      });
    this.inProgress.set(key, next);
    void next.then(() => {
      if (this.inProgress.get(key) === next) this.inProgress.delete(key);
    });
    return next;
  }

  /** Resolves when every recording started so far has finished. */
  async flush(): Promise<void> {
    await Promise.all([...this.inProgress.values()]);
  }

  private aggregationKey(involved: KubernetesObject, type: EventType, reason: string, message: string): string {
    const m = involved.metadata;
    if (!m?.name) throw new Error("the involved object has no metadata.name");
    // A digest, not the text: up to maxCached keys are kept, and a message is up to a kilobyte
    // (at 1,000 Machines the keys as text held ~1.9 MB).
    return createHash("sha256")
      .update(JSON.stringify([involved.apiVersion ?? "", involved.kind ?? "", m.namespace ?? "", m.name, m.uid ?? "", type, reason, message]))
      .digest("base64");
  }

  /** Never rejects. */
  private async record(key: string, involved: KubernetesObject, type: EventType, reason: string, message: string): Promise<void> {
    const nowMs = this.clock.now();
    const now = formatTime(nowMs);
    const what = { object: `${involved.kind ?? "object"} ${involved.metadata?.namespace ? `${involved.metadata.namespace}/` : ""}${involved.metadata?.name ?? ""}`, reason };
    const prior = this.seen.get(key);
    if (prior && nowMs - prior.lastMs < this.windowMs) {
      try {
        await this.sink.patch(prior.namespace, prior.eventName, [
          { op: "replace", path: "/count", value: prior.count + 1 },
          { op: "replace", path: "/lastTimestamp", value: now },
        ]);
        prior.count++;
        prior.lastMs = nowMs;
        this.touch(key, prior);
        return;
      } catch (err) {
        // The Event expired or was deleted: write a new one. Anything else: give up on this one.
        if (!isNotFound(err)) {
          this.log.warn("could not update event", { ...what, error: describeError(err) });
          return;
        }
      }
    }
    const namespace = involved.metadata?.namespace || "default";
    const body = this.build(involved, namespace, type, reason, message, nowMs);
    try {
      const created = await this.sink.create(namespace, body);
      this.touch(key, { namespace, eventName: created.metadata?.name ?? body.metadata.name ?? "", count: 1, lastMs: nowMs });
    } catch (err) {
      this.seen.delete(key);
      this.log.warn("could not record event", { ...what, error: describeError(err) });
    }
  }

  private build(involved: KubernetesObject, namespace: string, type: EventType, reason: string, message: string, nowMs: number): CoreV1Event {
    const m = involved.metadata ?? {};
    // client-go names Events <object>.<unix nanoseconds in hex>; a counter in the low
    // digits keeps names unique within one millisecond.
    const nanos = BigInt(nowMs) * 1_000_000n + BigInt(this.seq++ % 1_000_000);
    const at = new Date(Math.floor(nowMs / 1000) * 1000);
    let text = redactText(message);
    if (text.length > MAX_MESSAGE) text = `${text.slice(0, MAX_MESSAGE - 3)}...`;
    return {
      metadata: { name: `${m.name ?? "object"}.${nanos.toString(16)}`, namespace },
      involvedObject: {
        ...(involved.apiVersion ? { apiVersion: involved.apiVersion } : {}),
        ...(involved.kind ? { kind: involved.kind } : {}),
        name: m.name ?? "",
        ...(m.namespace ? { namespace: m.namespace } : {}),
        ...(m.uid ? { uid: m.uid } : {}),
        ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
      },
      type,
      reason,
      message: text,
      count: 1,
      firstTimestamp: at,
      lastTimestamp: at,
      source: { component: this.component, host: this.instance },
      reportingComponent: this.component,
      reportingInstance: this.instance,
    };
  }

  /** Marks key as most recently used, forgetting the oldest beyond maxCached. */
  private touch(key: string, entry: Seen): void {
    this.seen.delete(key);
    this.seen.set(key, entry);
    while (this.seen.size > this.maxCached) {
      const oldest = this.seen.keys().next();
      if (oldest.done) break;
      this.seen.delete(oldest.value);
    }
  }
}

/** A recorder writing through the API client. */
export function eventRecorder(api: ApiClient, opts: Omit<EventRecorderOptions, "sink"> = {}): EventRecorder {
  return new EventRecorder({ ...opts, sink: coreV1EventSink(api) });
}
