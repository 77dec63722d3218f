// Watch fan-out: every committed change is handed, in commit order and synchronously from the
// write path, to the watchers of its kind; history for resumption comes from the Db.
import type { StoredEvent, KObject, EventType } from "./db.js";
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
