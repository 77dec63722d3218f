// Server-side apply as kube-apiserver does it (structured-merge-diff's Updater): the applied
// configuration merges into the live object by the schema's list and map types; fields the manager
// applied last time and no longer applies are removed unless another manager owns them; a change to
// a field another manager owns is a conflict unless forced. Updates (PUT, the other patch types,
// create) record ownership too, as operation Update, and always win.
import type { JSONSchemaProps } from "../api/crd-schema.js";
import type { KObject } from "./db.js";
import { badRequest, internalError } from "./errors.js";
import { fieldSchema, itemSchema, listType, mapIsAtomic, deduced } from "./field-types.js";
import {
  capUpdateManagers,
  cloneManagers,
  compare,
  conflictError,
  decodeManagedFields,
  dropEmpty,
  encodeManagedFields,
  itemElement,
  managerId,
  ownable,
  parsePath,
  takeOwnership,
  withNamedFields,
  type FieldSet,
  type Manager,
  type Managers,
  type PathElement,
  type Tracked,
} from "./managed-fields.js";
import { isPlainObject } from "./validation.js";

/** Who writes, and what the endpoint lets them change. */
export interface FieldContext {
  /** The object's schema as apply sees it (field-types.ts rootSchema). */
  root: JSONSchemaProps;
  tracked: Tracked;
  manager: string;
  apiVersion: string;
  subresource?: "status" | undefined;
}

/** Turns the object about to be stored into its metadata.managedFields (undefined: none). */
export type FieldTracker = (live: KObject | undefined, next: KObject) => Array<Record<string, unknown>> | undefined;

// ---- merge --------------------------------------------------------------------------------------

/**
 * The applied configuration merged into the live value (structured-merge-diff's merge): structs and
 * granular maps field by field, keyed lists and sets item by item, anything atomic replaced. A null
 * in the configuration removes the field.
 */
export function mergeApplied(s: JSONSchemaProps, live: unknown, config: unknown): unknown {
  if (config === undefined) return live;
  if (config === null) return undefined;
  if (Array.isArray(config)) {
    if (listType(s).type === "atomic" || !Array.isArray(live)) return mergeList(s, [], config);
    return mergeList(s, live, config);
  }
  if (isPlainObject(config)) {
    if (mapIsAtomic(s)) return structuredClone(config);
    const out: Record<string, unknown> = isPlainObject(live) ? { ...live } : {};
    for (const [k, v] of Object.entries(config)) {
      // Fields the schema does not know stay in, so that validation reports (or prunes) them.
      const merged = mergeApplied(fieldSchema(s, k) ?? deduced, out[k], v);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  return config;
}

function mergeItem(s: JSONSchemaProps, live: unknown, config: unknown): unknown {
  if (listType(s).type !== "map") return config === undefined ? live : config;
  return mergeApplied(itemSchema(s), live, config);
}

/**
 * Keyed lists and sets: items of both sides merge; the order interleaves, keeping the live order
 * of items only there and the applied order of the rest (structured-merge-diff's visitListItems).
 */
function mergeList(s: JSONSchemaProps, lhs: unknown[], rhs: unknown[]): unknown[] {
  const lt = listType(s);
  if (lt.type === "atomic") return structuredClone(rhs).filter((x) => x !== undefined);
  const pe = (item: unknown, i: number) => itemElement(s, item, i, "");
  const lPEs = lhs.map(pe);
  const rPEs = rhs.map(pe);
  const lObserved = new Map<PathElement, unknown>();
  lPEs.forEach((p, i) => lObserved.set(p, lhs[i]));
  const rObserved = new Map<PathElement, unknown>();
  rPEs.forEach((p, i) => rObserved.set(p, rhs[i]));
  const shared = rPEs.filter((p) => lObserved.has(p));
  let nextShared = shared.shift();
  const merged = new Set<PathElement>();
  const out: unknown[] = [];
  const push = (v: unknown) => {
    if (v !== undefined) out.push(v);
  };
  let lI = 0;
  let rI = 0;
  while (lI < lPEs.length || rI < rPEs.length) {
    if (lI < lPEs.length && rI < rPEs.length) {
      const p = lPEs[lI] as PathElement;
      if (p === rPEs[rI]) {
        merged.add(p);
        push(mergeItem(s, lObserved.get(p), rObserved.get(p)));
        lI++;
        rI++;
        nextShared = shared.shift();
        continue;
      }
      if (rObserved.has(p) && nextShared !== undefined && nextShared !== p) {
        lI++;
        continue;
      }
    }
    if (lI < lPEs.length) {
      const p = lPEs[lI] as PathElement;
      if (!rObserved.has(p)) {
        push(structuredClone(lhs[lI]));
        lI++;
        continue;
      }
      if (merged.has(p)) {
        lI++;
        continue;
      }
    }
    if (rI < rPEs.length) {
      const p = rPEs[rI] as PathElement;
      merged.add(p);
      push(mergeItem(s, lObserved.get(p), rhs[rI]));
      rI++;
      if (nextShared !== undefined && nextShared === p) nextShared = shared.shift();
    }
  }
  return out;
}

// ---- pruning ------------------------------------------------------------------------------------

/** Removes each path (and everything under it) from obj, in place. */
export function removePaths(root: JSONSchemaProps, obj: Record<string, unknown>, paths: Iterable<string>): void {
  for (const key of paths) removePath(root, obj, parsePath(key));
}

function removePath(s: JSONSchemaProps, node: unknown, path: PathElement[]): void {
  const [pe, ...rest] = path;
  if (pe === undefined) return;
  if (pe.startsWith("f:")) {
    if (!isPlainObject(node)) return;
    const name = pe.slice(2);
    if (rest.length === 0) delete node[name];
    else removePath(fieldSchema(s, name) ?? deduced, node[name], rest);
    return;
  }
  if (!Array.isArray(node)) return;
  const idx = node.findIndex((item, i) => {
    try {
      return itemElement(s, item, i, "") === pe;
    } catch {
      return false;
    }
  });
  if (idx < 0) return;
  if (rest.length === 0) node.splice(idx, 1);
  else removePath(itemSchema(s), node[idx], rest);
}

// ---- ownership ----------------------------------------------------------------------------------

const beforeFirstApply = "before-first-apply";

function owner(ctx: FieldContext, operation: "Apply" | "Update"): Omit<Manager, "fields"> {
  return { manager: ctx.manager, operation, apiVersion: ctx.apiVersion, subresource: ctx.subresource };
}

/** metadata.managedFields that a client sent to reset them: exactly one empty entry. */
function isReset(v: unknown): boolean {
  return Array.isArray(v) && v.length === 1 && isPlainObject(v[0]) && Object.keys(v[0]).length === 0;
}

function decodeOrEmpty(v: unknown): Managers {
  try {
    return decodeManagedFields(v);
  } catch {
    return new Map();
  }
}

/**
 * The managers an update starts from (decodeLiveOrNew): those the request carries when it carries
 * readable ones (a client may rewrite them; [{}] clears them), else the live object's; through a
 * subresource always the live object's. undefined: not tracked (an existing object without any, as
 * kube-apiserver starts tracking only at create or at the first apply).
 */
export function updateStart(live: KObject | undefined, sent: unknown, subresource: string | undefined): Managers | undefined {
  let start: Managers;
  if (subresource) start = decodeOrEmpty(live?.metadata.managedFields);
  else if (isReset(sent)) start = new Map();
  else {
    start = decodeOrEmpty(sent);
    if (start.size === 0) start = decodeOrEmpty(live?.metadata.managedFields);
  }
  if (start.size === 0 && live !== undefined) return undefined;
  return start;
}

/** Ownership after an Update by ctx.manager: it takes every field it changed, from whoever had it. */
export function updateManagers(ctx: FieldContext, start: Managers, live: KObject | undefined, next: KObject, now: string): Managers {
  const managers = cloneManagers(start);
  const cmp = compare(ownable(ctx.root, live, ctx.tracked), ownable(ctx.root, next, ctx.tracked));
  // As kube-apiserver's managedFieldsUpdater: the change is made as "current-operation", then merged
  // into the manager's entry, whose time moves only when it took something.
  takeOwnership(managers, cmp, "current-operation", true);
  const changed: FieldSet = new Set([...cmp.modified, ...cmp.added]);
  if (changed.size > 0) {
    const me = owner(ctx, "Update");
    const id = managerId(me);
    const prev = managers.get(id);
    managers.set(id, { ...me, time: now, fields: new Set([...(prev?.fields ?? []), ...changed]) });
  }
  capUpdateManagers(managers);
  dropEmpty(managers);
  return managers;
}

/** The FieldTracker of an update (create, PUT, JSON/merge/strategic patch) whose body carried `sent`. */
export function updateTracker(ctx: FieldContext, sent: unknown, now: string): FieldTracker {
  return (live, next) => {
    const start = updateStart(live, sent, ctx.subresource);
    if (!start) return undefined;
    return encodeManagedFields(updateManagers(ctx, start, live, next, now));
  };
}

export interface ApplyPlan {
  /** The live object with the configuration merged in and what the manager stopped applying removed. */
  merged: KObject;
  /** Ownership for the object as it will be stored; throws the 409 on conflicts unless forced. */
  track: FieldTracker;
}

/** Checks an apply configuration as kube-apiserver does before merging it. */
export function checkApplyConfig(config: unknown): asserts config is KObject {
  if (!isPlainObject(config)) throw badRequest("the apply configuration must be an object (a YAML or JSON manifest)");
  if (typeof config.apiVersion !== "string" || config.apiVersion === "") throw badRequest("apiVersion must be set in the apply configuration");
  if (typeof config.kind !== "string" || config.kind === "") throw badRequest("kind must be set in the apply configuration");
  const meta = config.metadata;
  if (meta !== undefined && !isPlainObject(meta)) throw badRequest("metadata must be an object in the apply configuration");
  if (isPlainObject(meta) && meta.managedFields !== undefined && meta.managedFields !== null) throw badRequest("metadata.managedFields must be nil");
}

/** Plans an apply of `config` by ctx.manager onto `live` (undefined: the apply creates the object). */
export function planApply(ctx: FieldContext, live: KObject | undefined, config: KObject, force: boolean, now: string): ApplyPlan {
  let managers: Managers;
  try {
    managers = decodeManagedFields(live?.metadata.managedFields);
  } catch (err) {
    throw internalError(new Error(`failed to decode managed fields: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
  }
  if (live && managers.size === 0) {
    // An object nobody's fields were tracked on (made before tracking): everything it holds is
    // owned by "before-first-apply", so the first apply conflicts where it changes something.
    const ctxBefore = { ...ctx, manager: beforeFirstApply, subresource: undefined, tracked: () => true };
    managers = updateManagers(ctxBefore, new Map(), undefined, live, now);
  }
  const me = owner(ctx, "Apply");
  const id = managerId(me);
  const last = managers.get(id);
  const applied: FieldSet = new Set(ownable(ctx.root, config, ctx.tracked).keys());
  managers.set(id, { ...me, time: last?.time, fields: applied });

  const base: Record<string, unknown> = live ? structuredClone(live) : {};
  delete (base.metadata as Record<string, unknown> | undefined)?.managedFields;
  const merged = mergeApplied(ctx.root, base, config) as KObject;
  if (last) {
    const owned = new Set<string>();
    for (const m of managers.values()) for (const p of m.fields) owned.add(p);
    const keep = withNamedFields(ctx.root, owned);
    const gone = [...withNamedFields(ctx.root, last.fields)].filter((p) => !keep.has(p));
    removePaths(ctx.root, merged, gone);
  }
  if (!isPlainObject(merged.metadata)) merged.metadata = {};

  const track: FieldTracker = (liveNow, next) => {
    const cmp = compare(ownable(ctx.root, liveNow, ctx.tracked), ownable(ctx.root, next, ctx.tracked));
    const conflicts = takeOwnership(managers, cmp, id, force);
    if (conflicts.length > 0 && !force) throw conflictError(conflicts);
    const self = managers.get(id);
    if (self && (cmp.added.size > 0 || cmp.removed.size > 0 || cmp.modified.size > 0 || !liveNow)) self.time = now;
    dropEmpty(managers);
    return encodeManagedFields(managers);
  };
  return { merged, track };
}
