// Informers: a list+watch of one resource with a local cache and an rxjs stream of
// changes, built on client-node's ListWatch (the cache of makeInformer), listing and watching
// through the ApiClient.
//
// client-node's informer re-watches by itself when the server closes a watch and relists
// after 410 Gone, but on any other error (connection refused, 5xx, a failed list) it
// fires `error` and stops for good. This one restarts it with exponential backoff,
// resuming from the last resourceVersion (so no event is missed while the server keeps
// history; a 410 then relists), logging one line per restart.
//
// The cache holds objects without metadata.managedFields, their short strings shared
// (runtime/cache-transform.ts).
import { ListWatch } from "../vendor/client-node.js";
import type { KubernetesListObject, KubernetesObject, Watch } from "@kubernetes/client-node";
import { EMPTY, Observable, Subject, concat, defer, from, mergeMap } from "rxjs";
import type { Subscription } from "rxjs";
import { forCache } from "./cache-transform.js";
import { SECRETS, type ApiClient, type Resource } from "./client.js";
import type { Clock, TimerHandle } from "./clock.js";
import { realClock } from "./clock.js";
import type { Logger } from "./log.js";
import { describeError, rootLogger } from "./log.js";
import type { BackoffOptions } from "./workqueue.js";
import { backoffDelay } from "./workqueue.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

export interface WatchEvent<T> {
  type: WatchEventType;
  /** The new state; for DELETED the last state known. */
  object: T;
  /**
   * The cached object before the event (client-go's oldObj), for MODIFIED and DELETED. ADDED has
   * none: neither at start nor when a subscriber is handed the cache.
   */
  old?: T;
}

export interface InformerBackoff extends BackoffOptions {
  /** A failure this long after the previous one starts the backoff from the base again (default 2 min). */
  resetAfterMs?: number;
}

export interface InformerOptions<T extends KubernetesObject> {
  api: ApiClient;
  resource: Resource<T>;
  /** Names the informer in logs (default the resource's plural, e.g. "machines"). */
  name?: string;
  /** Watch one namespace only (default: all). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Restart backoff: default 1 s doubling to 30 s, reset after 2 min without failures. */
  backoff?: InformerBackoff;
  clock?: Clock;
  logger?: Logger;
}

/** Options shared by the informer factories below. */
export type InformerCommonOptions = Pick<InformerOptions<KubernetesObject>, "namespace" | "labelSelector" | "fieldSelector" | "backoff" | "clock" | "logger">;

/** "namespace/name", or "name" for cluster-scoped objects: the work-queue key. */
export function objectKey(obj: KubernetesObject): string {
  const name = obj.metadata?.name ?? "";
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${name}` : name;
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/**
 * Whether an event changed what `facts` picks of the object, as controller-runtime's predicates
 * decide: always for ADDED and DELETED; for MODIFIED when the facts before and after differ.
 */
export function changed<T>(e: WatchEvent<T>, facts: (o: T) => string | boolean): boolean {
  return e.type !== "MODIFIED" || e.old === undefined || facts(e.old) !== facts(e.object);
}

export class Informer<T extends KubernetesObject> {
  readonly name: string;
  /**
   * Changes, hot. A subscriber first gets every cached object as ADDED (like client-go's
   * AddEventHandler on a running informer), then live changes. Subscribers must not throw.
   */
  readonly events$: Observable<WatchEvent<T>>;

  private readonly subject = new Subject<WatchEvent<T>>();
  private readonly lw: ListWatch<T>;
  /** The objects of ListWatch's cache by key, as of the last event emitted: the old side of the next one. */
  private readonly known = new Map<string, T>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly backoff: InformerBackoff;
  private started = false;
  private stopped = false;
  private isSynced = false;
  private syncWaiters: Array<() => void> = [];
  private restartTimer: TimerHandle | undefined;
  private failures = 0;
  private lastFailureAt: number | undefined;
  private restartCount = 0;
  /** True from a failure until the watch is connected again. */
  private degraded = false;

  constructor(opts: InformerOptions<T>) {
    this.name = opts.name ?? opts.resource.plural;
    this.clock = opts.clock ?? realClock;
    this.log = (opts.logger ?? rootLogger()).child({ informer: this.name });
    this.backoff = { baseMs: 1000, capMs: 30_000, resetAfterMs: 120_000, ...opts.backoff };
    const { api, resource, namespace, labelSelector, fieldSelector } = opts;
    const selectors = { ...(namespace !== undefined ? { namespace } : {}), ...(labelSelector !== undefined ? { labelSelector } : {}), ...(fieldSelector !== undefined ? { fieldSelector } : {}) };
    const list = async (): Promise<KubernetesListObject<T>> => {
      const result = await api.list(resource, selectors);
      for (const item of result.items) forCache(item);
      // ListWatch fills its cache right after this promise resolves, in the same run of
      // microtasks; setImmediate runs after that, so synced() never sees an empty cache.
      setImmediate(() => this.markSynced());
      return result;
    };
    // ListWatch only calls watch(path, { resourceVersion, … }, onEvent, done) on its Watch: this
    // one watches through the ApiClient (which never rejects), and notes when a watch is up.
    const watch = {
      watch: async (_path: string, params: { resourceVersion?: string }, onEvent: (type: string, object: T) => void, done: (err: unknown) => void) => {
        let finished = false;
        const kept = (type: string, object: T) => onEvent(type, forCache(object));
        const controller = await api.watch(resource, { ...selectors, ...(params.resourceVersion !== undefined ? { resourceVersion: params.resourceVersion } : {}) }, kept, (err) => {
          finished = true;
          done(err);
        });
        if (!finished) this.onConnected();
        return controller;
      },
    };
    this.lw = new ListWatch<T>("", watch as unknown as Watch, list, false);
    this.lw.on("add", (object) => this.emit("ADDED", object));
    this.lw.on("update", (object) => this.emit("MODIFIED", object));
    this.lw.on("delete", (object) => this.emit("DELETED", object));
    this.lw.on("error", (err?: unknown) => this.onError(err));
    this.events$ = defer(() => concat(from(this.lw.list().map((object): WatchEvent<T> => ({ type: "ADDED", object }))), this.subject));
  }

  /** Starts listing and watching; returns at once (see synced()). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.run();
  }

  /** Resolves once the first list is in the cache. */
  synced(): Promise<void> {
    if (this.isSynced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get hasSynced(): boolean {
    return this.isSynced;
  }

  /** Restarts after failures so far. */
  get restarts(): number {
    return this.restartCount;
  }

  /** The cached object with that key ("namespace/name", or "name" when cluster-scoped). */
  get(key: string): T | undefined {
    const { namespace, name } = splitKey(key);
    return this.lw.get(name, namespace);
  }

  /** Cached objects, of one namespace or all. */
  list(namespace?: string): T[] {
    return [...this.lw.list(namespace)];
  }

  keys(): string[] {
    return this.list().map(objectKey);
  }

  /** The resourceVersion the watch resumes from. */
  resourceVersion(): string {
    return this.lw.latestResourceVersion();
  }

  /** Stops watching and completes events$. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.restartTimer) this.clock.clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.lw.stop();
    this.subject.complete();
  }

  private run(): void {
    // ListWatch.start() reports failures through the error callback; the catch is for
    // anything thrown past it, so that nothing here ever rejects unhandled.
    this.lw.start().catch((err: unknown) => this.onError(err));
  }

  private emit(type: WatchEventType, object: T): void {
    // ListWatch's callbacks get the object after its cache took it; `known` still has the one before.
    const key = objectKey(object);
    const old = type === "ADDED" ? undefined : this.known.get(key);
    if (type === "DELETED") this.known.delete(key);
    else this.known.set(key, object);
    if (!this.stopped) this.subject.next(old ? { type, object, old } : { type, object });
  }

  private markSynced(): void {
    this.onConnected();
    if (this.isSynced) return;
    this.isSynced = true;
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private onConnected(): void {
    if (!this.degraded || this.stopped) return;
    this.degraded = false;
    this.log.info("watch restored", { resourceVersion: this.lw.latestResourceVersion() || undefined });
  }

  private onError(err: unknown): void {
    // stop() aborts the request, which client-node reports as an error too.
    if (this.stopped || this.restartTimer) return;
    const now = this.clock.now();
    if (this.lastFailureAt !== undefined && now - this.lastFailureAt >= (this.backoff.resetAfterMs ?? 120_000)) this.failures = 0;
    this.lastFailureAt = now;
    const delay = backoffDelay(this.failures, this.backoff);
    this.failures++;
    this.restartCount++;
    this.degraded = true;
    this.log.warn("list/watch failed; restarting", { error: describeError(err), restartInMs: delay, attempt: this.failures });
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopped) this.run();
    }, delay);
  }
}

// --- factories ---------------------------------------------------------------------

/** An informer over a custom resource. */
export function customResourceInformer<T extends KubernetesObject>(api: ApiClient, resource: Resource<T>, opts: InformerCommonOptions = {}): Informer<T> {
  return new Informer<T>({ api, resource, ...opts });
}

/** A Secret as the watch delivers it (client-node's typed list turns times into Dates). */
export interface SecretObject extends KubernetesObject {
  type?: string;
  data?: Record<string, string>;
  immutable?: boolean;
}

/** An informer over core/v1 Secrets. */
export function secretInformer(api: ApiClient, opts: InformerCommonOptions = {}): Informer<SecretObject> {
  return new Informer<SecretObject>({ api, resource: SECRETS, ...opts });
}

// --- from events to keys -----------------------------------------------------------

/** What an event means for a queue: keys to reconcile (none is fine). */
export type KeyMapper<T> = (event: WatchEvent<T>) => Iterable<string> | string | undefined | null;

/**
 * The keys a stream of watch events asks to reconcile: by default the object's own key;
 * with `map`, any keys, e.g. the Machines that use a changed Secret. A mapper that
 * throws loses that one event (logged), not the stream.
 */
export function keysOf<T extends KubernetesObject>(events$: Observable<WatchEvent<T>>, map?: KeyMapper<T>, opts: { logger?: Logger } = {}): Observable<string> {
  const mapper: KeyMapper<T> = map ?? ((e) => objectKey(e.object));
  return events$.pipe(
    mergeMap((event) => {
      let keys: Iterable<string> | string | undefined | null;
      try {
        keys = mapper(event);
      } catch (err) {
        (opts.logger ?? rootLogger()).warn("mapping a watch event to keys failed; event ignored", { object: objectKey(event.object), type: event.type, error: describeError(err) });
        return EMPTY;
      }
      if (keys === undefined || keys === null) return EMPTY;
      return from(typeof keys === "string" ? [keys] : [...new Set(keys)]);
    }),
  );
}

/** Feeds keys into a queue until unsubscribed (or the stream completes). */
export function enqueue(keys$: Observable<string>, queue: { add(key: string): void }): Subscription {
  return keys$.subscribe({ next: (key) => queue.add(key) });
}
