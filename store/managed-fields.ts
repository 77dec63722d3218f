// metadata.managedFields as kube-apiserver keeps them (structured-merge-diff): which manager owns
// which fields, per manager and operation (Apply, Update) and subresource; the field sets in
// FieldsV1 form; ownership moved by updates (which always win) and applies (which conflict).
import type { JSONSchemaProps } from "../api/crd-schema.js";
import type { KObject } from "./db.js";
import { ApiError, type StatusCause } from "./errors.js";
import { fieldSchema, isNamedField, itemSchema, listType, mapIsAtomic } from "./field-types.js";
import { deepEqual, isPlainObject } from "./validation.js";

/** A path element as FieldsV1 spells it: "f:name", "k:{\"type\":\"Ready\"}", "v:\"a\"", "i:0". */
export type PathElement = string;
/** A set of field paths; each path is its PathElements joined by NUL (pathKey). */
export type FieldSet = Set<string>;

export type Operation = "Apply" | "Update";

export interface Manager {
  manager: string;
  operation: Operation;
  apiVersion: string;
  time?: string | undefined;
  subresource?: string | undefined;
  fields: FieldSet;
}

/** Managers by identity (manager, operation, subresource and, for updates, apiVersion), as BuildManagerIdentifier. */
export type Managers = Map<string, Manager>;

export function managerId(m: Pick<Manager, "manager" | "operation" | "apiVersion" | "subresource">): string {
  return JSON.stringify([m.manager, m.operation, m.operation === "Update" ? m.apiVersion : "", m.subresource ?? ""]);
}

/** A field set's paths could not be computed (a keyed list item without its key). */
export class FieldPathError extends Error {}

interface Member {
  value: unknown;
  /** A scalar or atomic value (compared by value); list items of keyed lists are members but not leaves. */
  leaf: boolean;
}

// NUL cannot appear in k: and v: elements (JSON escapes it) nor in Kubernetes field names. Paths
// are strings, not arrays, because objects can hold 100,000s of fields (a 3 MiB ConfigMap).
const sep = "\u0000";

export function pathKey(path: PathElement[]): string {
  return path.join(sep);
}

export function parsePath(key: string): PathElement[] {
  return key === "" ? [] : key.split(sep);
}

function childKey(prefix: string, pe: PathElement): string {
  return prefix === "" ? pe : prefix + sep + pe;
}

function keyElement(item: Record<string, unknown>, keys: string[], at: string): PathElement {
  const k: Record<string, unknown> = {};
  for (const name of keys) {
    if (!(name in item)) throw new FieldPathError(`${renderPath(parsePath(at))}: associative list with keys has an element that omits key field ${JSON.stringify(name)}`);
    k[name] = item[name];
  }
  return `k:${JSON.stringify(k)}`;
}

/** The element a list item is known by: its key fields, its value (sets), or its index. `at`: the list's path key. */
export function itemElement(s: JSONSchemaProps, item: unknown, index: number, at: string): PathElement {
  const lt = listType(s);
  if (lt.type === "map" && isPlainObject(item)) return keyElement(item, lt.keys, at);
  if (lt.type === "set") return `v:${JSON.stringify(item)}`;
  return `i:${index}`;
}

/**
 * Every member path of `value` (structured-merge-diff's ToFieldSet, with the leaf values Compare
 * needs): scalars, atomic lists and maps, null and empty maps; items of keyed lists and sets.
 * Fields the schema does not allow are left out.
 */
export function members(s: JSONSchemaProps, value: unknown, path = "", out = new Map<string, Member>()): Map<string, Member> {
  if (Array.isArray(value)) {
    const lt = listType(s);
    if (lt.type === "atomic") {
      out.set(path, { value, leaf: true });
      return out;
    }
    const is = itemSchema(s);
    value.forEach((item, i) => {
      const p = childKey(path, itemElement(s, item, i, path));
      if (lt.type === "set") out.set(p, { value: item, leaf: true });
      else {
        out.set(p, { value: item, leaf: false });
        if (isPlainObject(item)) for (const k in item) walkField(is, k, item[k], p, out);
      }
    });
    return out;
  }
  if (isPlainObject(value)) {
    if (mapIsAtomic(s)) {
      out.set(path, { value, leaf: true });
      return out;
    }
    let empty = true;
    for (const k in value) {
      empty = false;
      walkField(s, k, value[k], path, out);
    }
    if (empty) out.set(path, { value, leaf: true });
    return out;
  }
  out.set(path, { value, leaf: true });
  return out;
}

function walkField(s: JSONSchemaProps, key: string, v: unknown, path: string, out: Map<string, Member>): void {
  const cs = fieldSchema(s, key);
  if (cs) members(cs, v, childKey(path, `f:${key}`), out);
}

/** Fields the API server sets itself: never owned by anyone (the stripMetaManager's set). */
const stripped = new Set(
  [
    ["f:apiVersion"],
    ["f:kind"],
    ["f:metadata"],
    ...["name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation", "managedFields", "resourceVersion"].map((f) => ["f:metadata", `f:${f}`]),
  ].map(pathKey),
);

/**
 * Which top-level fields a write through an endpoint may change (the "reset fields" of the main
 * resource and of /status): the main endpoint of a kind with a status subresource never takes
 * status, /status takes nothing else.
 */
export type Tracked = (topField: string) => boolean;

export function trackedFields(statusSubresource: boolean, subresource: "status" | undefined): Tracked {
  if (subresource === "status") return (f) => f === "status";
  if (statusSubresource) return (f) => f !== "status";
  return () => true;
}

/** The member paths of an object that managers may own, with their values. */
export function ownable(root: JSONSchemaProps, obj: KObject | undefined, tracked: Tracked): Map<string, Member> {
  const out = new Map<string, Member>();
  if (!obj) return out;
  for (const k in obj) {
    if (!tracked(k)) continue;
    walkField(root, k, obj[k], "", out);
  }
  for (const p of stripped) out.delete(p);
  return out;
}

export interface Comparison {
  added: FieldSet;
  removed: FieldSet;
  modified: FieldSet;
}

export function compare(before: Map<string, Member>, after: Map<string, Member>): Comparison {
  const c: Comparison = { added: new Set(), removed: new Set(), modified: new Set() };
  for (const [p, m] of after) {
    const b = before.get(p);
    if (!b) c.added.add(p);
    else if (m.leaf && !deepEqual(b.value, m.value)) c.modified.add(p);
  }
  for (const p of before.keys()) if (!after.has(p)) c.removed.add(p);
  return c;
}

export interface Conflict {
  manager: Manager;
  path: string;
}

/**
 * Moves ownership for a change from `before` to `after` made by manager `self` (the Updater's
 * update()): other managers lose the fields that changed (a conflict unless forced) and those that
 * are gone. Returns the conflicts; with force they are already taken away.
 */
export function takeOwnership(managers: Managers, cmp: Comparison, self: string, force: boolean): Conflict[] {
  const conflicts: Conflict[] = [];
  for (const [id, m] of managers) {
    if (id === self) continue;
    for (const p of m.fields) if (cmp.modified.has(p) || cmp.added.has(p)) conflicts.push({ manager: m, path: p });
  }
  if (conflicts.length > 0 && !force) return conflicts;
  for (const c of conflicts) c.manager.fields.delete(c.path);
  for (const [id, m] of managers) {
    if (id === self) continue;
    for (const p of cmp.removed) m.fields.delete(p);
  }
  return conflicts;
}

export function dropEmpty(managers: Managers): void {
  for (const [id, m] of managers) if (m.fields.size === 0) managers.delete(id);
}

/** kube-apiserver keeps at most 10 Update entries; older ones merge into "ancient-changes" (per apiVersion). */
const maxUpdateManagers = 10;

export function capUpdateManagers(managers: Managers): void {
  const updaters = [...managers.entries()].filter(([, m]) => m.operation === "Update");
  if (updaters.length <= maxUpdateManagers) return;
  updaters.sort(([ai, a], [bi, b]) => (a.time ?? "").localeCompare(b.time ?? "") || ai.localeCompare(bi));
  let count = updaters.length;
  for (const [id, m] of updaters) {
    if (count <= maxUpdateManagers) break;
    if (m.manager === "ancient-changes") continue;
    const bucket: Manager = { manager: "ancient-changes", operation: "Update", apiVersion: m.apiVersion, fields: new Set() };
    const bid = managerId(bucket);
    const existing = managers.get(bid);
    managers.delete(id);
    if (existing) {
      for (const p of m.fields) existing.fields.add(p);
      existing.time = m.time;
      count--;
    } else {
      managers.set(bid, { ...bucket, fields: m.fields, time: m.time });
    }
  }
}

// ---- FieldsV1 -----------------------------------------------------------------------------------

interface Trie {
  member: boolean;
  children: Map<PathElement, Trie> | undefined;
}

export function encodeFields(set: FieldSet): Record<string, unknown> {
  const root: Trie = { member: false, children: undefined };
  for (const key of set) {
    let node = root;
    let from = 0;
    for (;;) {
      const at = key.indexOf(sep, from);
      const pe = at < 0 ? key.slice(from) : key.slice(from, at);
      node.children ??= new Map();
      let next = node.children.get(pe);
      if (!next) node.children.set(pe, (next = { member: false, children: undefined }));
      node = next;
      if (at < 0) break;
      from = at + 1;
    }
    node.member = true;
  }
  // Sorted as kube-apiserver serialises them: "." first, then by element (f: before k: before v:).
  const emit = (t: Trie): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    if (!t.children) return out;
    if (t.member) out["."] = {};
    const keys = [...t.children.keys()].sort();
    for (const pe of keys) out[pe] = emit(t.children.get(pe) as Trie);
    return out;
  };
  return emit(root);
}

export function decodeFields(v: unknown): FieldSet {
  const out: FieldSet = new Set();
  const walk = (node: unknown, path: string) => {
    if (!isPlainObject(node)) throw new Error(`FieldsV1 at ${renderPath(parsePath(path))} is not an object`);
    for (const k in node) {
      if (k === ".") {
        out.add(path);
        continue;
      }
      if (!/^[fkvi]:/.test(k)) throw new Error(`FieldsV1: unknown path element ${JSON.stringify(k)}`);
      const child = node[k];
      const p = childKey(path, k);
      if (isPlainObject(child) && isEmpty(child)) out.add(p);
      else walk(child, p);
    }
  };
  walk(v, "");
  return out;
}

function isEmpty(o: Record<string, unknown>): boolean {
  for (const _ in o) return false;
  return true;
}

/** The managers recorded in an object's metadata.managedFields; throws when they cannot be read. */
export function decodeManagedFields(list: unknown): Managers {
  const out: Managers = new Map();
  if (list === undefined || list === null) return out;
  if (!Array.isArray(list)) throw new Error("metadata.managedFields must be a list");
  for (const e of list) {
    if (!isPlainObject(e)) throw new Error("metadata.managedFields: an entry is not an object");
    const operation = e.operation;
    if (operation !== "Apply" && operation !== "Update") throw new Error(`metadata.managedFields: operation must be Apply or Update, got ${JSON.stringify(operation)}`);
    if (e.fieldsType !== undefined && e.fieldsType !== "FieldsV1") throw new Error(`metadata.managedFields: fieldsType must be FieldsV1, got ${JSON.stringify(e.fieldsType)}`);
    const m: Manager = {
      manager: typeof e.manager === "string" ? e.manager : "",
      operation,
      apiVersion: typeof e.apiVersion === "string" ? e.apiVersion : "",
      time: typeof e.time === "string" ? e.time : undefined,
      subresource: typeof e.subresource === "string" && e.subresource !== "" ? e.subresource : undefined,
      fields: e.fieldsV1 === undefined ? new Set() : decodeFields(e.fieldsV1),
    };
    const id = managerId(m);
    if (out.has(id)) throw new Error(`metadata.managedFields: duplicate entry for manager ${JSON.stringify(m.manager)}`);
    out.set(id, m);
  }
  return out;
}

/** metadata.managedFields, sorted as kube-apiserver sorts them (Apply first, then by time, manager). */
export function encodeManagedFields(managers: Managers): Array<Record<string, unknown>> {
  const list = [...managers.values()].filter((m) => m.fields.size > 0);
  list.sort(
    (a, b) =>
      a.operation.localeCompare(b.operation) ||
      (a.time ?? "").localeCompare(b.time ?? "") ||
      a.manager.localeCompare(b.manager) ||
      a.apiVersion.localeCompare(b.apiVersion) ||
      (a.subresource ?? "").localeCompare(b.subresource ?? ""),
  );
  return list.map((m) => {
    const e: Record<string, unknown> = { manager: m.manager, operation: m.operation, apiVersion: m.apiVersion };
    if (m.time !== undefined) e.time = m.time;
    e.fieldsType = "FieldsV1";
    e.fieldsV1 = encodeFields(m.fields);
    if (m.subresource) e.subresource = m.subresource;
    return e;
  });
}

export function cloneManagers(managers: Managers): Managers {
  const out: Managers = new Map();
  for (const [id, m] of managers) out.set(id, { ...m, fields: new Set(m.fields) });
  return out;
}

// ---- conflicts ----------------------------------------------------------------------------------

/** A path as structured-merge-diff prints it: .spec.ports[port=80,protocol="TCP"].name, .finalizers[="a"]. */
export function renderPath(path: PathElement[]): string {
  let s = "";
  for (const pe of path) {
    const body = pe.slice(2);
    switch (pe.charAt(0)) {
      case "f":
        s += `.${body}`;
        break;
      case "k": {
        const k = JSON.parse(body) as Record<string, unknown>;
        s += `[${Object.entries(k)
          .map(([n, v]) => `${n}=${JSON.stringify(v)}`)
          .join(",")}]`;
        break;
      }
      case "v":
        s += `[=${body}]`;
        break;
      default:
        s += `[${body}]`;
    }
  }
  return s;
}

function printManager(m: Manager): string {
  let s = JSON.stringify(m.manager);
  if (m.subresource) s += ` with subresource ${JSON.stringify(m.subresource)}`;
  if (m.operation === "Update") s += m.time ? ` using ${m.apiVersion} at ${m.time}` : ` using ${m.apiVersion}`;
  return s;
}

/** 409 as kube-apiserver words it (kubectl adds its advice on --force-conflicts). */
export function conflictError(conflicts: Conflict[]): ApiError {
  const sorted = [...conflicts].sort((a, b) => a.manager.manager.localeCompare(b.manager.manager) || a.path.localeCompare(b.path));
  const causes: StatusCause[] = sorted.map((c) => ({ reason: "FieldManagerConflict", message: `conflict with ${printManager(c.manager)}`, field: renderPath(parsePath(c.path)) }));
  let message: string;
  const first = sorted[0];
  if (sorted.length === 1 && first) message = `Apply failed with 1 conflict: conflict with ${printManager(first.manager)}: ${renderPath(parsePath(first.path))}`;
  else {
    const byManager = new Map<string, string[]>();
    for (const c of sorted) {
      const k = printManager(c.manager);
      byManager.set(k, [...(byManager.get(k) ?? []), renderPath(parsePath(c.path))]);
    }
    const lines: string[] = [];
    for (const [m, paths] of byManager) lines.push(`conflicts with ${m}:`, ...paths.map((p) => `- ${p}`));
    message = `Apply failed with ${sorted.length} conflicts: ${lines.join("\n")}`;
  }
  return new ApiError(409, "Conflict", message, { causes });
}

// ---- prefixes -----------------------------------------------------------------------------------

/**
 * The set plus every named field (struct property) on the way to its paths: structured-merge-diff's
 * EnsureNamedFieldsAreMembers, so that pruning removes a struct nobody owns any more but keeps a
 * map another manager owns keys of.
 */
export function withNamedFields(root: JSONSchemaProps, set: Iterable<string>): FieldSet {
  const out: FieldSet = new Set();
  for (const key of set) {
    out.add(key);
    const path = parsePath(key);
    let s: JSONSchemaProps | undefined = root;
    for (let i = 0; i < path.length - 1 && s; i++) {
      const pe = path[i] as string;
      if (pe.startsWith("f:")) {
        const name = pe.slice(2);
        if (isNamedField(s, name)) out.add(pathKey(path.slice(0, i + 1)));
        s = fieldSchema(s, name);
      } else {
        s = itemSchema(s);
      }
    }
  }
  return out;
}
