// Read-your-writes over an informer cache. A reconcile that starts before the watch has
// delivered this controller's own last write reads the object as it was before that write.
// Deciding from it loses the write: a status found "unchanged" against the stale copy is never
// sent, though the server holds something else (seen in CI: a host back from an outage stayed
// Unreachable for the whole resync, because the status it was Ready in looked current).
// Resource versions are opaque (never compared for order): a cached object whose version this
// controller itself replaced is known to be older than that write's answer; any other version
// is the server's newer truth (the watch caught up, or another writer came after).
import type { KubernetesObject } from "@kubernetes/client-node";
import { forCache } from "./cache-transform.js";

interface Written<T> {
  /** Versions this controller's writes replaced since the cache last caught up. */
  superseded: Set<string>;
  /** The server's answer to the last of those writes. */
  latest: T;
}

/** Bounds the versions kept per object: a cache further behind than this is followed, not patched over. */
const MAX_SUPERSEDED = 16;

export class OwnWrites<T extends KubernetesObject> {
  private readonly byKey = new Map<string, Written<T>>();

  /** After a write of key that replaced version `replaced` and got `written` back. */
  wrote(key: string, replaced: string | undefined, written: T | undefined): void {
    if (replaced === undefined || written?.metadata?.resourceVersion === undefined) return;
    forCache(written);
    const rec = this.byKey.get(key) ?? { superseded: new Set<string>(), latest: written };
    rec.superseded.add(replaced);
    rec.latest = written;
    if (rec.superseded.size > MAX_SUPERSEDED) this.byKey.delete(key);
    else this.byKey.set(key, rec);
  }

  /** The newest known state of key: the cached object, unless one of this controller's writes replaced it. */
  fresh(key: string, cached: T): T {
    const rec = this.byKey.get(key);
    if (!rec) return cached;
    const rv = cached.metadata?.resourceVersion;
    if (rv !== undefined && rec.superseded.has(rv)) return rec.latest;
    // The cache caught up with (or went past) the writes recorded: nothing to patch over any more.
    this.byKey.delete(key);
    return cached;
  }

  /**
   * The informer cached version rv of key: when that is the last write's answer, the cache has
   * caught up and the answer need not be kept until the next reconcile (at 1,000 Machines that
   * was a second copy of most statuses).
   */
  cached(key: string, rv: string | undefined): void {
    const rec = this.byKey.get(key);
    if (rec && rv !== undefined && rec.latest.metadata?.resourceVersion === rv) this.byKey.delete(key);
  }

  forget(key: string): void {
    this.byKey.delete(key);
  }

  /** Objects tracked (a gauge for tests: it empties as the cache catches up). */
  get size(): number {
    return this.byKey.size;
  }
}
