// Server-side Tables (Accept: application/json;as=Table;v=v1;g=meta.k8s.io), which kubectl get
// prints: Name plus a CRD's additionalPrinterColumns, or the real server's columns for built-ins.
import type { KObject } from "./db.js";
import { evalJsonPath } from "./jsonpath.js";
import type { PrinterColumn, ResourceType } from "./registry.js";

export interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export type IncludeObject = "None" | "Metadata" | "Object";

export interface TableRow {
  cells: unknown[];
  object?: unknown;
}

export interface Table {
  kind: "Table";
  apiVersion: string;
  metadata: { resourceVersion?: string };
  columnDefinitions: ColumnDefinition[];
  rows: TableRow[];
}

const nameDescription =
  "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const ageDescription =
  "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.";

const nameCol: ColumnDefinition = { name: "Name", type: "string", format: "name", description: nameDescription, priority: 0 };
const ageCol: ColumnDefinition = { name: "Age", type: "string", format: "", description: ageDescription, priority: 0 };

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function age(ts: unknown, now: number): string {
  if (typeof ts !== "string") return "<unknown>";
  const t = Date.parse(ts);
  return Number.isNaN(t) ? "<unknown>" : humanDuration(now - t);
}

function printValue(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === null || v === undefined) return "<nil>";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function customCell(col: PrinterColumn, obj: KObject, now: number): unknown {
  let results: unknown[];
  try {
    results = evalJsonPath(col.jsonPath, obj);
  } catch {
    return null;
  }
  if (results.length === 0) return null;
  const v = results[0];
  switch (col.type) {
    case "string":
      return printValue(v);
    case "integer":
      return typeof v === "number" && Number.isInteger(v) ? v : null;
    case "number":
      return typeof v === "number" ? v : null;
    case "boolean":
      return typeof v === "boolean" ? v : null;
    case "date":
      return age(v, now);
    default:
      return null;
  }
}

interface BuiltinTable {
  columns: ColumnDefinition[];
  cells: (o: KObject, now: number) => unknown[];
}

const col = (name: string, description = "", priority = 0, type = "string", format = ""): ColumnDefinition => ({ name, type, format, description, priority });

function count(v: unknown): number {
  return v && typeof v === "object" ? Object.keys(v).length : 0;
}

const builtinTables: Record<string, BuiltinTable> = {
  "/namespaces": {
    columns: [nameCol, col("Status", "The status of the namespace"), ageCol],
    cells: (o, now) => [o.metadata.name, (o.status as { phase?: string } | undefined)?.phase ?? "", age(o.metadata.creationTimestamp, now)],
  },
  "/secrets": {
    columns: [nameCol, col("Type", "The type of the secret"), col("Data", "The number of entries in the secret", 0, "string"), ageCol],
    cells: (o, now) => [o.metadata.name, o.type ?? "", count(o.data), age(o.metadata.creationTimestamp, now)],
  },
  "/configmaps": {
    columns: [nameCol, col("Data", "Number of data in configmap"), ageCol],
    cells: (o, now) => [o.metadata.name, count(o.data) + count(o.binaryData), age(o.metadata.creationTimestamp, now)],
  },
  "/serviceaccounts": {
    columns: [nameCol, col("Secrets", "Secrets is the list of secrets allowed to be used by pods running using this ServiceAccount."), ageCol],
    cells: (o, now) => [o.metadata.name, Array.isArray(o.secrets) ? o.secrets.length : 0, age(o.metadata.creationTimestamp, now)],
  },
  "coordination.k8s.io/leases": {
    columns: [nameCol, col("Holder", "The holder of the lease"), ageCol],
    cells: (o, now) => [o.metadata.name, (o.spec as { holderIdentity?: string } | undefined)?.holderIdentity ?? "", age(o.metadata.creationTimestamp, now)],
  },
  "apiextensions.k8s.io/customresourcedefinitions": {
    columns: [nameCol, col("Created At", ageDescription, 0, "date")],
    cells: (o) => [o.metadata.name, o.metadata.creationTimestamp],
  },
  "/events": {
    columns: [
      col("Last Seen", "Time when last event was seen"),
      col("Type", "Type of this event (Normal, Warning), new types could be added in the future."),
      col("Reason", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
      col("Object", "The object this Event is about."),
      col("Subobject", "The subobject this Event is about.", 1),
      col("Source", "The component reporting this event.", 1),
      col("Message", "A human-readable description of the status of this operation."),
      col("First Seen", "Time when first event was seen", 1),
      col("Count", "The number of times this event has occurred.", 1),
      col("Name", nameDescription, 1),
    ],
    cells: (o, now) => {
      const ref = (o.involvedObject ?? {}) as Record<string, string | undefined>;
      const src = (o.source ?? {}) as Record<string, string | undefined>;
      const last = o.lastTimestamp ?? (o.series as { lastObservedTime?: string } | undefined)?.lastObservedTime ?? o.eventTime ?? o.metadata.creationTimestamp;
      const first = o.firstTimestamp ?? o.eventTime ?? o.metadata.creationTimestamp;
      const source = src.component ? (src.host ? `${src.component}, ${src.host}` : src.component) : String(o.reportingComponent ?? "");
      return [
        age(last, now),
        o.type ?? "",
        o.reason ?? "",
        `${(ref.kind ?? "").toLowerCase()}/${ref.name ?? ""}`,
        ref.fieldPath ?? "",
        source,
        String(o.message ?? "").trim(),
        age(first, now),
        o.count ?? 1,
        o.metadata.name,
      ];
    },
  },
};

export function tableColumns(rt: ResourceType): ColumnDefinition[] {
  const b = builtinTables[rt.key];
  if (b) return b.columns;
  const custom = rt.printerColumns ?? [];
  const cols = custom.length > 0 ? custom : [{ name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" }];
  return [nameCol, ...cols.map((c) => ({ name: c.name, type: c.type, format: c.format ?? "", description: c.description ?? "", priority: c.priority ?? 0 }))];
}

function cells(rt: ResourceType, o: KObject, now: number): unknown[] {
  const b = builtinTables[rt.key];
  if (b) return b.cells(o, now);
  const custom = rt.printerColumns ?? [];
  const cols = custom.length > 0 ? custom : [{ name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" }];
  return [o.metadata.name, ...cols.map((c) => customCell(c, o, now))];
}

export function partialObjectMetadata(o: KObject, apiVersion = "meta.k8s.io/v1"): Record<string, unknown> {
  return { kind: "PartialObjectMetadata", apiVersion, metadata: o.metadata };
}

export function toTable(rt: ResourceType, objs: KObject[], opts: { include: IncludeObject; resourceVersion?: string; apiVersion: string; noHeaders?: boolean }): Table {
  const now = Date.now();
  return {
    kind: "Table",
    apiVersion: opts.apiVersion,
    metadata: opts.resourceVersion !== undefined ? { resourceVersion: opts.resourceVersion } : {},
    columnDefinitions: opts.noHeaders ? [] : tableColumns(rt),
    rows: objs.map((o) => {
      const row: TableRow = { cells: cells(rt, o, now) };
      if (opts.include === "Object") row.object = o;
      else if (opts.include === "Metadata") row.object = partialObjectMetadata(o, opts.apiVersion);
      return row;
    }),
  };
}
