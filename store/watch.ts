// Watch fan-out: every committed change is handed, in commit order and once it is durable (after
// the fdatasync of its group commit), to the watchers of its kind; history for resumption comes
// from the Db.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { StoredEvent, KObject, EventType } from "./db.js";
import { ApiError, badRequest, expired } from "./errors.js";
import type { ObjectStore } from "./objects.js";
import { apiVersionOf, type ResourceType } from "./registry.js";
import { matchFields, matchLabels, type FieldRequirement, type LabelSelector } from "./selectors.js";

export type Listener = (ev: StoredEvent) => void;

export class WatchHub {
  private readonly subs = new Map<string, Set<Listener>>();

  subscribe(key: string, fn: Listener): () => void {
    let s = this.subs.get(key);
    if (!s) this.subs.set(key, (s = new Set()));
    s.add(fn);
    return () => {
      s.delete(fn);
    };
  }

  publish(events: StoredEvent[]): void {
    for (const ev of events) {
      const s = this.subs.get(ev.key);
      if (!s) continue;
      for (const fn of [...s]) {
        try {
          fn(ev);
        } catch {
          // a failing watcher must not break the writer or the other watchers
        }
      }
    }
  }

  count(): number {
    let n = 0;
    for (const s of this.subs.values()) n += s.size;
    return n;
  }
}

export interface WatchFilter {
  namespace?: string | undefined;
  name?: string | undefined;
  labels: LabelSelector;
  fields: FieldRequirement[];
  fieldValue: (obj: KObject, field: string) => string;
}

export function matches(f: WatchFilter, obj: KObject, labels?: Record<string, string>): boolean {
  const meta = obj.metadata;
  if (f.namespace !== undefined && meta.namespace !== f.namespace) return false;
  if (f.name !== undefined && meta.name !== f.name) return false;
  if (!matchLabels(f.labels, labels ?? (meta.labels as Record<string, string> | undefined))) return false;
  return matchFields(f.fields, (field) => f.fieldValue(obj, field));
}

/**
 * What a filtered watcher sees of a change, as the real server's cacher does: an object that
 * starts matching arrives as ADDED, one that stops matching as DELETED.
 */
export function filteredType(f: WatchFilter, ev: StoredEvent): EventType | undefined {
  const now = matches(f, ev.obj);
  if (ev.type !== "MODIFIED") return now ? ev.type : undefined;
  const before = ev.prevLabels ? matches(f, ev.obj, ev.prevLabels) : now;
  if (before && now) return "MODIFIED";
  if (before) return "DELETED";
  if (now) return "ADDED";
  return undefined;
}

export interface WatchRequest {
  store: ObjectStore;
  rt: ResourceType;
  namespace: string | undefined;
  query: URLSearchParams;
  filter: WatchFilter;
  /** The object as this watcher wants it (version, Table, PartialObjectMetadata). */
  shape: (obj: KObject) => unknown;
  /** Open watches, by their end function (to close them all). */
  open: Set<() => void>;
  watchTimeoutSeconds: number;
  bookmarkIntervalSeconds: number;
}

/** A reader whose socket buffers more than this is cut off; it re-watches from its last RV. */
const maxWatchBuffer = 16 * 1024 * 1024;

/**
 * One watch: synthetic ADDED for the current state (resourceVersion unset or "0"), or the events
 * after resourceVersion N from history (410 Expired beyond it), then live events, bookmarks and
 * the timeout; one JSON event per line, flushed per event.
 */
export function serveWatch(req: IncomingMessage, res: ServerResponse, w: WatchRequest): void {
  const { store, rt, query: q, filter } = w;
  const db = store.db;
  const rvParam = q.get("resourceVersion") ?? "";
  const sendInitial = q.get("sendInitialEvents") === "true";
  const bookmarks = q.get("allowWatchBookmarks") === "true" || q.get("allowWatchBookmarks") === "1";
  if (sendInitial && q.get("resourceVersionMatch") !== "NotOlderThan") {
    throw new ApiError(422, "Invalid", `sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to "NotOlderThan"`);
  }
  let startRv: number | undefined;
  if (rvParam !== "" && rvParam !== "0" && !sendInitial) {
    if (!/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version: ${rvParam}`);
    startRv = Number(rvParam);
  }
  const timeoutParam = q.get("timeoutSeconds");
  const timeoutSec = timeoutParam !== null && /^\d+$/.test(timeoutParam) && Number(timeoutParam) > 0 ? Number(timeoutParam) : w.watchTimeoutSeconds * (1 + Math.random());
  const av = apiVersionOf(rt);

  // Everything up to subscribe() runs in one tick: no change can slip between history and live.
  const initial: Array<{ type: string; obj: KObject }> = [];
  let expiredAt: number | undefined;
  if (startRv === undefined) {
    for (const o of store.list(rt, w.namespace)) if (matches(filter, o)) initial.push({ type: "ADDED", obj: o });
  } else {
    const evs = db.eventsAfter(rt.key, startRv);
    if (!evs) expiredAt = startRv;
    else {
      for (const ev of evs) {
        const t = filteredType(filter, ev);
        if (t) initial.push({ type: t, obj: ev.obj });
      }
    }
  }
  let lastRv = db.currentRv();
  // What the initial events show; changes up to it that are still being made durable are published
  // after this watch subscribed: they are in `initial` already.
  const snapshotRv = lastRv;

  res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private", "Transfer-Encoding": "chunked" });
  res.socket?.setNoDelay(true);
  res.flushHeaders(); // clients wait for the 200 before reading events
  const line = (type: string, obj: unknown) => `{"type":"${type}","object":${JSON.stringify(obj)}}\n`;
  const bookmark = (annotations?: Record<string, string>) =>
    line("BOOKMARK", { kind: rt.kind, apiVersion: av, metadata: { resourceVersion: String(lastRv), ...(annotations ? { annotations } : {}) } });

  if (expiredAt !== undefined) {
    res.end(line("ERROR", expired(`too old resource version: ${expiredAt} (${db.compactedRv() + 1})`).toStatus()));
    return;
  }

  let closed = false;
  // Live events wait behind the initial ones until those are durable.
  let ready = false;
  const pending: string[] = [];
  const unsubscribe = store.hub.subscribe(rt.key, (ev) => {
    if (closed || ev.rv <= snapshotRv) return;
    lastRv = ev.rv;
    const t = filteredType(filter, ev);
    if (!t) return;
    const l = line(t, w.shape(ev.obj));
    if (!ready) {
      pending.push(l);
      return;
    }
    res.write(l);
    if (res.writableLength > maxWatchBuffer) end();
  });
  const end = () => {
    if (closed) return;
    closed = true;
    unsubscribe();
    clearTimeout(timer);
    if (bookmarkTimer) clearInterval(bookmarkTimer);
    w.open.delete(end);
    if (!res.writableEnded) res.end();
  };
  w.open.add(end);
  const timer = setTimeout(() => {
    if (bookmarks && !closed) res.write(bookmark());
    end();
  }, timeoutSec * 1000);
  const bookmarkTimer = bookmarks ? setInterval(() => ready && res.write(bookmark()), w.bookmarkIntervalSeconds * 1000) : undefined;
  req.on("close", end);
  res.on("close", end);
  res.on("error", end);

  let chunk = "";
  for (const e of initial) chunk += line(e.type, w.shape(e.obj));
  if (sendInitial) chunk += bookmark({ "k8s.io/initial-events-end": "true" });
  db.durable(snapshotRv).then(
    () => {
      if (closed) return;
      ready = true;
      chunk += pending.join("");
      pending.length = 0;
      if (chunk) res.write(chunk);
      if (res.writableLength > maxWatchBuffer) end();
    },
    () => end(),
  );
}
