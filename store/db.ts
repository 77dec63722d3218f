// SQLite persistence: the objects, one global resourceVersion counter and the event history that
// watches resume from. WAL with synchronous=NORMAL: a commit is a write() into the WAL file (it
// survives kill -9), and checkpoints fsync. Durability against power loss comes on top, by group
// commit: writes go into an open batch transaction; it is committed when no fdatasync of the WAL is
// running, then fdatasynced off the event loop, and every write is acknowledged (durable()) only
// after the fdatasync that covers its commit. Writes arriving meanwhile fill the next batch: one
// commit and one fdatasync for all of them, as etcd batches concurrent writes into one fsync.
// (SQLite's synchronous=FULL would fsync inside every commit, on the event loop, one at a time.)
import Database from "better-sqlite3";
import { closeSync, fdatasync, fsyncSync, mkdirSync, openSync, statSync, constants as fsConstants } from "node:fs";
import { dirname } from "node:path";
import { Worker } from "node:worker_threads";

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export type KObject = Record<string, unknown> & { metadata: Record<string, unknown> };

export interface StoredEvent {
  rv: number;
  key: string;
  namespace: string;
  name: string;
  type: EventType;
  obj: KObject;
  /** Labels before a MODIFIED change, so selector watches can turn it into ADDED/DELETED. */
  prevLabels?: Record<string, string> | undefined;
}

export interface HistoryOptions {
  /** The newest this many events are always kept (default 10,000). */
  events: number;
  /** Events younger than this are kept too (default 600 s)… */
  seconds: number;
  /** …up to this hard cap (default 200,000). */
  maxEvents: number;
}

const walLimitBytes = 64 * 1024 * 1024;

export const defaultHistory: HistoryOptions = { events: 10_000, seconds: 600, maxEvents: 200_000 };

export interface DurabilityOptions {
  /**
   * Acknowledge writes without waiting for fdatasync (the store before issue 18): a write survives
   * kill -9 but an OS crash or power loss can lose the last acknowledged ones. Benchmarks only.
   */
  unsafeNoFsync?: boolean;
  /** Replaces fs.fdatasync of the WAL: a test seam, to hold a sync and see what waits for it. */
  fdatasync?: (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => void;
}

interface SyncWaiter {
  rv: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface ObjRow {
  key: string;
  ns: string;
  name: string;
  data: string;
}

interface EventRow {
  rv: number;
  key: string;
  ns: string;
  name: string;
  type: EventType;
  data: string;
  prev_labels: string | null;
}

export class Db {
  private readonly db: Database.Database;
  private rv = 0;
  private compacted = 0;
  private nextTimeCheck = 0;
  /** key → "ns/name" → object. The whole store lives in memory too; SQLite is the durable copy. */
  private readonly cache = new Map<string, Map<string, KObject>>();
  private readonly stmts;
  private readonly history: HistoryOptions;

  private readonly unsafeNoFsync: boolean;
  private readonly fdatasync: NonNullable<DurabilityOptions["fdatasync"]>;
  /** An fd of the WAL file, for fdatasync (fsync works on the file, whichever fd names it). */
  private walFd = -1;
  /** Every write up to this resourceVersion is committed (in the WAL file)… */
  private committedRv = 0;
  /** …and up to this one on stable storage. */
  private syncedRv = 0;
  /** The batch transaction (BEGIN … COMMIT around many writes) is open. */
  private batchOpen = false;
  private flushScheduled = false;
  private truncateWanted = false;
  private syncing = false;
  private waiters: SyncWaiter[] = [];
  private syncError: Error | undefined;
  /** fdatasync calls made (group commit: fewer than acknowledged writes under load). */
  syncs = 0;

  constructor(path: string, history: Partial<HistoryOptions> = {}, durability: DurabilityOptions = {}) {
    this.unsafeNoFsync = durability.unsafeNoFsync === true;
    this.fdatasync = durability.fdatasync ?? fdatasync;
    this.history = { ...defaultHistory, ...history };
    this.history.events = Math.max(1, this.history.events);
    mkdirSync(dirname(path), { recursive: true });
    try {
      this.db = new Database(path);
    } catch (err) {
      throw new Error(`open store database ${path}`, { cause: err });
    }
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    // Checkpoints run in a worker (store/checkpointer.ts), off the request path. Under sustained
    // writes a PASSIVE checkpoint never catches up and the WAL only grows: past walLimitBytes the
    // main thread runs one TRUNCATE checkpoint (a short stall, rare).
    this.db.pragma("wal_autocheckpoint = 0");
    this.db.pragma(`journal_size_limit = ${32 * 1024 * 1024}`);
    this.walPath = `${path}-wal`;
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS objects (key TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, rv INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (key, ns, name)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS events (rv INTEGER PRIMARY KEY, key TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, prev_labels TEXT, ts INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS events_key_rv ON events (key, rv);
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
    `);
    this.stmts = {
      upsert: this.db.prepare("INSERT INTO objects (key, ns, name, rv, data) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key, ns, name) DO UPDATE SET rv = excluded.rv, data = excluded.data"),
      del: this.db.prepare("DELETE FROM objects WHERE key = ? AND ns = ? AND name = ?"),
      event: this.db.prepare("INSERT INTO events (rv, key, ns, name, type, data, prev_labels, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
      eventsAfter: this.db.prepare("SELECT rv, key, ns, name, type, data, prev_labels FROM events WHERE key = ? AND rv > ? ORDER BY rv"),
      firstYoung: this.db.prepare("SELECT rv FROM events WHERE ts >= ? ORDER BY rv LIMIT 1"),
      trim: this.db.prepare("DELETE FROM events WHERE rv <= ?"),
      setMeta: this.db.prepare("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"),
    };
    this.load();
    // The WAL exists once the database is open in WAL mode; O_CREAT only guards a race with a
    // checkpoint that truncated it (an empty WAL is a valid one). Its directory entry and whatever
    // a killed predecessor left in the page cache are made durable before anything is served.
    this.walFd = openSync(this.walPath, fsConstants.O_RDONLY | fsConstants.O_CREAT, 0o600);
    if (!this.unsafeNoFsync) {
      fsyncSync(this.walFd);
      const dirFd = openSync(dirname(path), fsConstants.O_RDONLY);
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
    }
    this.syncedRv = this.committedRv = this.rv;
    this.checkpointer = new Worker(new URL("./checkpointer.js", import.meta.url), { workerData: { path } });
    this.checkpointer.unref();
    this.checkpointer.on("error", () => {
      // Without the worker the WAL only grows until close(); the data stays safe.
    });
    this.checkpointTimer = setInterval(() => this.requestCheckpoint(), 1000);
    this.checkpointTimer.unref();
  }

  private readonly checkpointer: Worker;
  private readonly checkpointTimer: NodeJS.Timeout;
  private writesSinceCheckpoint = 0;

  private readonly walPath: string;

  private requestCheckpoint(): void {
    if (this.writesSinceCheckpoint === 0) return;
    this.writesSinceCheckpoint = 0;
    this.checkpointer.postMessage("checkpoint");
    let walSize = 0;
    try {
      walSize = statSync(this.walPath).size;
    } catch {
      return;
    }
    this.truncateWanted = walSize > walLimitBytes;
    if (!this.db.inTransaction) this.truncateIfWanted();
  }

  private truncateIfWanted(): void {
    if (!this.truncateWanted) return;
    this.truncateWanted = false;
    try {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
    } catch {
      // busy (the worker is checkpointing): next time
    }
  }

  /** Opens the batch transaction the next writes join (committed by flush()). */
  private begin(): void {
    if (this.db.inTransaction) return;
    this.db.exec("BEGIN");
    this.batchOpen = true;
    // Committed soon even if nobody waits for it (internal writes, history trimming).
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private commit(): void {
    if (!this.batchOpen) return;
    this.batchOpen = false;
    try {
      this.db.exec("COMMIT");
    } catch (err) {
      this.fail(new Error("commit of the store's batch transaction failed; its writes are lost: restart the store", { cause: err }));
      try {
        this.db.exec("ROLLBACK");
      } catch {
        // already rolled back
      }
      return;
    }
    this.committedRv = this.rv;
    this.truncateIfWanted();
  }

  private fail(err: Error): void {
    this.syncError ??= err;
    for (const w of this.waiters) w.reject(this.syncError);
    this.waiters = [];
  }

  private load(): void {
    for (const row of this.db.prepare("SELECT key, ns, name, data FROM objects").iterate() as Iterable<ObjRow>) {
      this.cacheSet(row.key, row.ns, row.name, JSON.parse(row.data) as KObject);
    }
    const meta = new Map((this.db.prepare("SELECT k, v FROM meta").all() as Array<{ k: string; v: string }>).map((r) => [r.k, r.v]));
    this.compacted = Number(meta.get("compactedRv") ?? 0);
    const maxEvent = (this.db.prepare("SELECT max(rv) AS m FROM events").get() as { m: number | null }).m ?? 0;
    const maxObj = (this.db.prepare("SELECT max(rv) AS m FROM objects").get() as { m: number | null }).m ?? 0;
    // The newest event is never trimmed, so this is the last resourceVersion handed out.
    this.rv = Math.max(maxEvent, maxObj, this.compacted, Number(meta.get("rv") ?? 0));
  }

  /** owner uid → "key\0ns/name" of the objects whose ownerReferences name it (garbage collection). */
  private readonly owners = new Map<string, Set<string>>();
  private readonly nsCount = new Map<string, number>();

  private ownerUids(obj: KObject | undefined): string[] {
    const refs = obj?.metadata.ownerReferences;
    if (!Array.isArray(refs)) return [];
    return refs.map((r) => (r && typeof r === "object" ? String((r as { uid?: unknown }).uid ?? "") : "")).filter((u) => u !== "");
  }

  private index(key: string, id: string, before: KObject | undefined, after: KObject | undefined): void {
    const ref = `${key}\0${id}`;
    for (const uid of this.ownerUids(before)) {
      const set = this.owners.get(uid);
      set?.delete(ref);
      if (set?.size === 0) this.owners.delete(uid);
    }
    for (const uid of this.ownerUids(after)) {
      let set = this.owners.get(uid);
      if (!set) this.owners.set(uid, (set = new Set()));
      set.add(ref);
    }
  }

  private cacheSet(key: string, ns: string, name: string, obj: KObject): void {
    let m = this.cache.get(key);
    if (!m) this.cache.set(key, (m = new Map<string, KObject>()));
    const id = `${ns}/${name}`;
    const before = m.get(id);
    this.index(key, id, before, obj);
    if (!before) this.nsCount.set(ns, (this.nsCount.get(ns) ?? 0) + 1);
    m.set(id, obj);
  }

  private cacheDelete(key: string, ns: string, name: string): void {
    const m = this.cache.get(key);
    const id = `${ns}/${name}`;
    const before = m?.get(id);
    this.index(key, id, before, undefined);
    if (before) this.nsCount.set(ns, (this.nsCount.get(ns) ?? 1) - 1);
    m?.delete(id);
  }

  /** How many objects (of any kind) live in namespace `ns`. */
  countInNamespace(ns: string): number {
    return this.nsCount.get(ns) ?? 0;
  }

  /** Objects whose ownerReferences name `uid`, as [storage key, object]. */
  dependents(uid: string): Array<[string, KObject]> {
    const out: Array<[string, KObject]> = [];
    for (const ref of this.owners.get(uid) ?? []) {
      const [key = "", id = ""] = ref.split("\0");
      const o = this.cache.get(key)?.get(id);
      if (o) out.push([key, o]);
    }
    return out;
  }

  currentRv(): number {
    return this.rv;
  }

  /** Events with a resourceVersion at or below this are gone: a watch from before it gets 410. */
  compactedRv(): number {
    return this.compacted;
  }

  /** The stored object; callers must not mutate it (clone first). */
  get(key: string, ns: string, name: string): KObject | undefined {
    return this.cache.get(key)?.get(`${ns}/${name}`);
  }

  /** Objects of a kind, in one namespace or (ns undefined) all, sorted by namespace and name. */
  list(key: string, ns?: string): KObject[] {
    const m = this.cache.get(key);
    if (!m) return [];
    const out: Array<[string, KObject]> = [];
    for (const [k, o] of m) if (ns === undefined || k.startsWith(`${ns}/`)) out.push([k, o]);
    out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return out.map(([, o]) => o);
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  /** Runs `fn` in one SQLite transaction; the resourceVersions it took are given back if it throws. */
  tx<T>(fn: () => T): T {
    const before = this.rv;
    this.begin();
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      this.rv = before;
      // The cache was changed in place only by write(), which runs after validation; reload on failure.
      this.cache.clear();
      this.owners.clear();
      this.nsCount.clear();
      this.load();
      throw err;
    }
  }

  /**
   * Writes one change with the next resourceVersion (set into obj.metadata.resourceVersion) and
   * records its event. Call inside tx() when several changes must be atomic.
   */
  write(type: EventType, key: string, ns: string, name: string, obj: KObject, prevLabels?: Record<string, string>): StoredEvent {
    const rv = this.rv + 1;
    obj.metadata.resourceVersion = String(rv);
    const data = JSON.stringify(obj);
    const run = () => {
      if (type === "DELETED") this.stmts.del.run(key, ns, name);
      else this.stmts.upsert.run(key, ns, name, rv, data);
      this.stmts.event.run(rv, key, ns, name, type, data, prevLabels ? JSON.stringify(prevLabels) : null, Date.now());
    };
    this.begin();
    run();
    this.rv = rv;
    if (++this.writesSinceCheckpoint >= 500) this.requestCheckpoint();
    if (type === "DELETED") this.cacheDelete(key, ns, name);
    else this.cacheSet(key, ns, name, obj);
    return { rv, key, namespace: ns, name, type, obj, prevLabels };
  }

  /**
   * Resolves once every write up to `rv` (default: all so far) is committed and on stable storage.
   * Group commit: at most one fdatasync of the WAL runs at a time, off the event loop (libuv's
   * pool); the writes made while it runs are committed together when it ends and share the next one.
   * With unsafeNoFsync: once committed. Call it outside a transaction of tx().
   */
  durable(rv = this.rv): Promise<void> {
    if (rv <= this.syncedRv) return Promise.resolve();
    if (this.syncError) return Promise.reject(this.syncError);
    if (this.unsafeNoFsync && rv <= this.committedRv) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ rv, resolve, reject });
      // Unsafe: committed at the end of this turn of the event loop (begin() scheduled it), with
      // the other writes of the turn; no fdatasync.
      if (!this.unsafeNoFsync) this.flush();
    });
  }

  /** Commits the batch and fdatasyncs the WAL, unless an fdatasync is running (its end calls this again). */
  private flush(): void {
    if (this.syncing) return;
    this.commit();
    if (this.unsafeNoFsync) {
      this.resolveUpTo(this.committedRv);
      return;
    }
    if (this.syncError || this.walFd < 0) return;
    if (this.waiters.length === 0 && this.syncedRv >= this.committedRv) return;
    this.syncing = true;
    const target = this.committedRv;
    this.syncs++;
    this.fdatasync(this.walFd, (err) => {
      this.syncing = false;
      if (err) {
        // After a failed fsync the kernel may have dropped the dirty pages: nothing written since
        // the last good sync can be promised durable any more (PostgreSQL's "fsyncgate").
        this.fail(new Error(`fdatasync of ${this.walPath} failed; writes can no longer be made durable: restart the store`, { cause: err }));
        return;
      }
      this.syncedRv = Math.max(this.syncedRv, target);
      this.resolveUpTo(target);
      this.flush();
    });
  }

  private resolveUpTo(rv: number): void {
    const still: SyncWaiter[] = [];
    for (const w of this.waiters) {
      if (w.rv <= rv) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Events of kind `key` after `rv`, oldest first; undefined when history before them is gone. */
  eventsAfter(key: string, rv: number): StoredEvent[] | undefined {
    if (rv < this.compacted) return undefined;
    return (this.stmts.eventsAfter.all(key, rv) as EventRow[]).map((r) => ({
      rv: r.rv,
      key: r.key,
      namespace: r.ns,
      name: r.name,
      type: r.type,
      obj: JSON.parse(r.data) as KObject,
      prevLabels: r.prev_labels ? (JSON.parse(r.prev_labels) as Record<string, string>) : undefined,
    }));
  }

  /** Drops events outside the retention window (see HistoryOptions); cheap when there is nothing to do. */
  maybeTrim(now = Date.now()): void {
    const { events, seconds, maxEvents } = this.history;
    const retained = this.rv - this.compacted;
    // Trim in batches of a tenth of the window, not on every write.
    if (retained <= events + Math.max(1, Math.floor(events / 10))) return;
    // When the time window is what keeps the events, look again in a second.
    if (retained <= maxEvents && now < this.nextTimeCheck) return;
    const byCount = this.rv - events;
    const young = this.stmts.firstYoung.get(now - seconds * 1000) as { rv: number } | undefined;
    const byTime = young ? young.rv - 1 : this.rv;
    let cutoff = Math.min(byCount, byTime);
    cutoff = Math.max(cutoff, this.rv - maxEvents);
    if (cutoff <= this.compacted) {
      this.nextTimeCheck = now + 1000;
      return;
    }
    this.begin();
    this.db.transaction(() => {
      this.stmts.trim.run(cutoff);
      this.stmts.setMeta.run("compactedRv", String(cutoff));
    })();
    this.compacted = cutoff;
  }

  async close(): Promise<void> {
    clearInterval(this.checkpointTimer);
    // The open batch is committed, and pending acknowledgements get their fdatasync, before the fd goes.
    this.flush();
    await this.durable().catch(() => undefined);
    if (this.walFd >= 0) closeSync(this.walFd);
    this.walFd = -1;
    await this.checkpointer.terminate();
    try {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
    } catch {
      // closing anyway
    }
    this.db.close();
  }
}
