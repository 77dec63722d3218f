// What is done to an object a controller keeps (informer caches, its own writes' answers), as
// controller-runtime's cache transforms do. Measured at 1,000 Machines (docs/benchmarks.md,
// "Memory at 1,000 machines"):
// - metadata.managedFields go (TransformStripManagedFields): nothing of dockmesh reads them, and a
//   write that omits them keeps the server's (kube-apiserver and the embedded store alike). They
//   were the largest thing in the heap: each status's field set (fifty peers, six fields each) as
//   nested empty objects, ~480,000 of them, ~26 MB.
// - Short strings are shared: JSON.parse makes a new string for every value, and the same values
//   recur across objects (a machine's public key and endpoint in the status of every peer that
//   lists it, handshake times to the second, apiVersion): 74,000 key strings of 4,200 distinct
//   values, 81,000 times of 82, 56,000 endpoints of 360; ~10 MB of the live heap. Not a
//   Secret's data: its values do not recur, and a table entry would outlive the Secret.

/** Strings longer than this are kept as parsed: long values (messages, scripts) rarely recur. */
export const INTERN_MAX_LENGTH = 128;
/** Distinct strings the table holds; when full it starts over (what was shared stays shared). */
export const INTERN_MAX_ENTRIES = 100_000;
/** Nesting followed; an object deeper than this keeps its deeper strings as they are. */
const MAX_DEPTH = 32;
/** Top-level fields never shared: a Secret's or ConfigMap's contents. */
const PRIVATE_FIELDS: ReadonlySet<string> = new Set(["data", "stringData", "binaryData"]);

export class StringTable {
  private readonly table = new Map<string, string>();

  constructor(
    private readonly maxEntries = INTERN_MAX_ENTRIES,
    private readonly maxLength = INTERN_MAX_LENGTH,
  ) {}

  /** The table's copy of s (s itself the first time), or s when it is too long to keep. */
  intern(s: string): string {
    if (s.length > this.maxLength) return s;
    const hit = this.table.get(s);
    if (hit !== undefined) return hit;
    if (this.table.size >= this.maxEntries) this.table.clear();
    this.table.set(s, s);
    return s;
  }

  /**
   * Replaces, in place, every string value in a JSON value (objects and arrays) by the table's
   * copy; the top-level fields in `skip` are left as they are.
   */
  internAll(value: unknown, depth = 0, skip?: ReadonlySet<string>): void {
    if (depth > MAX_DEPTH || value === null || typeof value !== "object") return;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const v: unknown = value[i];
        if (typeof v === "string") value[i] = this.intern(v);
        else this.internAll(v, depth + 1);
      }
      return;
    }
    const o = value as Record<string, unknown>;
    for (const k in o) {
      if (skip?.has(k)) continue;
      const v = o[k];
      if (typeof v === "string") o[k] = this.intern(v);
      else this.internAll(v, depth + 1);
    }
  }

  get size(): number {
    return this.table.size;
  }
}

/** One table for the whole process: the informers' objects share values with one another. */
const shared = new StringTable();

/** Drops metadata.managedFields from an object about to be kept (in place: it is the keeper's own copy). */
export function stripManagedFields<T>(object: T): T {
  const meta = (object as { metadata?: { managedFields?: unknown } } | null | undefined)?.metadata;
  if (meta && typeof meta === "object" && "managedFields" in meta) delete meta.managedFields;
  return object;
}

/** An object as it is kept: without managedFields, its short strings shared, its data fields as they are (in place). */
export function forCache<T>(object: T, table: StringTable = shared): T {
  stripManagedFields(object);
  table.internAll(object, 0, PRIVATE_FIELDS);
  return object;
}
