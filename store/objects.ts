// The semantics of the API on stored objects, as a real kube-apiserver applies them: create,
// update (main and /status), patch, delete with finalizers, validation, generation, optimistic
// concurrency, namespace lifecycle, CRD registration and owner-reference garbage collection.
import { randomUUID, randomInt } from "node:crypto";
import type { CustomResourceDefinition } from "../api/crd-schema.js";
import { Db, type KObject, type StoredEvent, type EventType } from "./db.js";
import { checkApplyConfig, planApply, updateTracker, type FieldContext, type FieldTracker } from "./apply.js";
import { ApiError, alreadyExists, badRequest, cause, conflict, forbidden, invalid, notFound, staleMessage, type StatusCause } from "./errors.js";
import { rootSchema } from "./field-types.js";
import { FieldPathError, trackedFields } from "./managed-fields.js";
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, type PatchType } from "./patch.js";
import { apiVersionOf, Registry, typesFromCrd, type ResourceType } from "./registry.js";
import { applySchema, deepEqual, isPlainObject, objectMetaFields, validateObjectMeta, type FieldValidation, type SchemaResult } from "./validation.js";
import { WatchHub } from "./watch.js";
import { prepareKind } from "./kinds.js";

export interface WriteOptions {
  dryRun: boolean;
  fieldValidation: FieldValidation;
  /** Who writes, recorded in metadata.managedFields (default "dockmesh", the store's own writes). */
  fieldManager?: string | undefined;
}

export interface WriteResult {
  obj: KObject;
  warnings: string[];
}

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: string;
  orphanDependents?: boolean;
  dryRun?: string[];
}

export type DeleteResult = { deleted: true; obj: KObject } | { deleted: false; obj: KObject };

const crdKey = "apiextensions.k8s.io/customresourcedefinitions";
const orphanFinalizer = "orphan";
const nsKey = "/namespaces";

/** RFC 3339 with whole seconds, as metav1.Time serialises. */
export function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

function meta(o: Record<string, unknown>): Record<string, unknown> {
  const m = o.metadata;
  return isPlainObject(m) ? m : {};
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

const generateNameChars = "bcdfghjklmnpqrstvwxz2456789";

/** etcd's default request limit (--max-request-bytes, 1.5 MiB), which bounds an object in kube-apiserver. */
export const maxObjectBytes = 1.5 * 1024 * 1024;

/**
 * Refuses an object etcd would refuse, as kube-apiserver answers it; checked before validation and
 * field ownership (which cost time per field), on the object without its managedFields.
 */
function checkSize(obj: KObject): void {
  const { managedFields, ...metadata } = obj.metadata;
  void managedFields;
  const text = JSON.stringify({ ...obj, metadata });
  if (text.length * 3 > maxObjectBytes && Buffer.byteLength(text) > maxObjectBytes) {
    throw new ApiError(413, "RequestEntityTooLarge", "etcdserver: request is too large");
  }
}

export class ObjectStore {
  readonly hub = new WatchHub();
  /** Changes committed inside the current operation, published when it finishes. */
  private pending: StoredEvent[] = [];

  private readonly cleanups = new Set<NodeJS.Timeout>();

  constructor(
    readonly db: Db,
    readonly registry: Registry,
    /**
     * Delay before a deleted namespace's (or CRD's) contents are deleted, as the real server's
     * namespace controller and CRD finalizer do it asynchronously (`kubectl delete -f` of a file
     * holding a Namespace and its objects then still finds the objects).
     */
    private readonly cleanupDelayMs = 1000,
  ) {}

  /** Stops pending namespace/CRD cleanups (they resume at the next start). */
  close(): void {
    for (const t of this.cleanups) clearTimeout(t);
    this.cleanups.clear();
  }

  private scheduleCleanup(key: string, name: string): void {
    const t = setTimeout(() => {
      this.cleanups.delete(t);
      const rt = this.anyTypeFor(key);
      const obj = this.db.get(key, "", name);
      if (!rt || !obj || !meta(obj).deletionTimestamp) return;
      this.run(() => {
        if (key === nsKey) this.emptyNamespace(name);
        else this.deleteCrdInstances(obj);
        this.cleanupIfEmpty(rt, name);
      });
    }, this.cleanupDelayMs);
    this.cleanups.add(t);
  }

  /** Namespaces and CRDs left terminating by a previous run get their cleanup now. */
  resumeCleanups(): void {
    for (const key of [nsKey, crdKey]) for (const o of this.db.list(key)) if (meta(o).deletionTimestamp) this.scheduleCleanup(key, str(meta(o).name));
  }

  // ---- reads ----------------------------------------------------------------------------------

  get(rt: ResourceType, ns: string, name: string): KObject {
    const obj = this.db.get(rt.key, rt.namespaced ? ns : "", name);
    if (!obj) throw notFound(rt.group, rt.plural, name);
    return this.asVersion(rt, obj);
  }

  list(rt: ResourceType, ns: string | undefined): KObject[] {
    return this.db.list(rt.key, rt.namespaced ? ns : undefined).map((o) => this.asVersion(rt, o));
  }

  /** The stored object as seen through version rt.version (CRD versions share storage; no conversion). */
  asVersion(rt: ResourceType, obj: KObject): KObject {
    const av = apiVersionOf(rt);
    return obj.apiVersion === av ? obj : { ...obj, apiVersion: av };
  }

  namespaceExists(ns: string): KObject | undefined {
    return this.db.get(nsKey, "", ns);
  }

  // ---- writes ---------------------------------------------------------------------------------

  private run<T>(fn: () => T): T {
    this.pending = [];
    let out: T;
    try {
      out = this.db.tx(fn);
    } catch (err) {
      this.pending = [];
      throw err;
    }
    const evs = this.pending;
    this.pending = [];
    // Kinds defined by CRDs follow their CRD, whichever operation added, changed or removed it.
    for (const ev of evs) {
      if (ev.key !== crdKey) continue;
      if (ev.type === "DELETED") this.registry.setCrdTypes(ev.name, []);
      else if (!ev.obj.metadata.deletionTimestamp || this.registry.versionsOf(crdTypeKey(ev.obj)).length > 0) this.registerCrd(ev.obj);
    }
    // Watchers see a change only once it is durable (as etcd's watchers see only committed
    // entries); the write's own answer waits for the same fdatasync (store/http.ts).
    const last = evs[evs.length - 1];
    if (last) {
      const publish = () => this.hub.publish(evs);
      // After a failed fdatasync the cache holds the change already: watchers follow the cache.
      this.db.durable(last.rv).then(publish, publish);
    }
    this.db.maybeTrim();
    return out;
  }

  private write(type: EventType, rt: ResourceType, obj: KObject, prev?: KObject): void {
    const m = obj.metadata;
    const prevLabels = prev && !deepEqual(meta(prev).labels ?? {}, m.labels ?? {}) ? ((meta(prev).labels ?? {}) as Record<string, string>) : undefined;
    const ev = this.db.write(type, rt.key, rt.namespaced ? str(m.namespace) : "", str(m.name), obj, prevLabels);
    this.pending.push(ev);
  }

  create(rt: ResourceType, ns: string, body: unknown, opts: WriteOptions, track?: FieldTracker): WriteResult {
    const obj = this.decode(rt, body);
    checkSize(obj);
    const m = obj.metadata;
    const tracker = track ?? updateTracker(this.fieldContext(rt, opts, undefined), m.managedFields, nowTimestamp());
    if (rt.namespaced) {
      if (m.namespace === undefined || m.namespace === "") m.namespace = ns;
      else if (m.namespace !== ns) throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
      const nsObj = this.namespaceExists(ns);
      if (!nsObj) throw notFound("", "namespaces", ns);
      if (meta(nsObj).deletionTimestamp) {
        throw forbidden(
          `${rt.plural}${rt.group ? "." + rt.group : ""} "${str(m.name) || str(m.generateName)}" is forbidden: unable to create new content in namespace ${ns} because it is being terminated`,
        );
      }
    } else delete m.namespace;
    if ((m.name === undefined || m.name === "") && typeof m.generateName === "string" && m.generateName !== "") {
      let name = m.generateName;
      for (let i = 0; i < 5; i++) name += generateNameChars[randomInt(generateNameChars.length)];
      m.name = name;
    }
    if (rt.statusSubresource) delete obj.status;
    delete m.resourceVersion;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    delete m.managedFields;
    delete m.selfLink;
    m.uid = randomUUID();
    m.creationTimestamp = nowTimestamp();
    if (rt.generation) m.generation = 1;
    else delete m.generation;
    prepareKind(rt, obj, undefined);
    const warnings = this.validate(rt, obj, opts.fieldValidation, undefined);
    const name = str(m.name);
    if (this.db.get(rt.key, rt.namespaced ? ns : "", name)) throw alreadyExists(rt.group, rt.plural, name);
    if (rt.key === crdKey) this.checkCrd(obj);
    setManagedFields(obj, trackFields(tracker, undefined, obj));
    if (opts.dryRun) return { obj: this.asVersion(rt, obj), warnings };
    this.run(() => {
      if (rt.key === crdKey) this.establishCrd(obj);
      if (rt.key === nsKey) {
        obj.status = { phase: "Active" };
        obj.spec = { finalizers: ["kubernetes"], ...(isPlainObject(obj.spec) ? obj.spec : {}) };
      }
      this.write("ADDED", rt, obj);
    });
    return { obj: this.asVersion(rt, obj), warnings };
  }

  update(rt: ResourceType, ns: string, name: string, body: unknown, opts: WriteOptions, subresource?: "status"): WriteResult {
    const old = this.db.get(rt.key, rt.namespaced ? ns : "", name);
    if (!old) throw notFound(rt.group, rt.plural, name);
    const obj = this.decode(rt, body);
    const m = obj.metadata;
    if (m.name !== undefined && m.name !== name) throw badRequest(`the name of the object (${str(m.name)}) does not match the name on the URL (${name})`);
    if (rt.namespaced && m.namespace !== undefined && m.namespace !== "" && m.namespace !== ns) {
      throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    const rv = m.resourceVersion;
    if (rv === undefined || rv === "") {
      if (!rt.builtin) throw invalid(rt.group, rt.kind, name, [cause("FieldValueInvalid", "metadata.resourceVersion", "must be specified for an update", { v: 0, raw: "0x0" })]);
    } else if (rv !== meta(old).resourceVersion) {
      throw conflict(rt.group, rt.plural, name, staleMessage);
    }
    return this.replace(rt, old, obj, opts, subresource, updateTracker(this.fieldContext(rt, opts, subresource), m.managedFields, nowTimestamp()));
  }

  patch(rt: ResourceType, ns: string, name: string, type: PatchType, patch: unknown, opts: WriteOptions, subresource?: "status"): WriteResult {
    if (type === "apply") throw new Error("internal: apply patches go to ObjectStore.apply");
    const old = this.db.get(rt.key, rt.namespaced ? ns : "", name);
    if (!old) throw notFound(rt.group, rt.plural, name);
    const current = structuredClone(this.asVersion(rt, old));
    let next: unknown;
    switch (type) {
      case "json":
        next = applyJsonPatch(current, patch);
        break;
      case "merge":
        if (!isPlainObject(patch)) throw badRequest("merge patch: the patch must be a JSON object");
        next = applyMergePatch(current, patch);
        break;
      case "strategic":
        if (!rt.builtin) {
          throw new ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
          );
        }
        next = applyStrategicMergePatch(current, patch);
        break;
      default:
        // `type` is never here (the cases cover PatchType), unless a caller passes what the types forbid.
        throw new ApiError(415, "UnsupportedMediaType", `unsupported patch type ${String(type)}`);
    }
    if (!isPlainObject(next)) throw badRequest("the patch did not produce an object");
    const obj = this.decode(rt, next);
    const m = obj.metadata;
    if (m.name !== name) throw badRequest(`the name of the object (${str(m.name)}) does not match the name on the URL (${name})`);
    if (m.resourceVersion !== undefined && m.resourceVersion !== "" && m.resourceVersion !== meta(old).resourceVersion) {
      throw conflict(rt.group, rt.plural, name, staleMessage);
    }
    return this.replace(rt, old, obj, opts, subresource, updateTracker(this.fieldContext(rt, opts, subresource), m.managedFields, nowTimestamp()));
  }

  /**
   * Server-side apply (PATCH application/apply-patch+yaml): merges the configuration into the live
   * object, or creates it; ownership and conflicts in apply.ts.
   */
  apply(rt: ResourceType, ns: string, name: string, config: unknown, opts: WriteOptions, force: boolean, subresource?: "status"): WriteResult & { created: boolean } {
    const manager = opts.fieldManager ?? "";
    if (manager === "") throw invalid("meta.k8s.io", "PatchOptions", "", [cause("FieldValueRequired", "fieldManager", "is required for apply patch")]);
    checkApplyConfig(config);
    const cm = config.metadata ?? {};
    if (cm.name !== undefined && cm.name !== name) throw badRequest(`the name of the object (${str(cm.name)}) does not match the name on the URL (${name})`);
    if (rt.namespaced && cm.namespace !== undefined && cm.namespace !== "" && cm.namespace !== ns) {
      throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    // The configuration names the kind: checked as any body is (apiVersion, kind).
    const cfg = this.decode(rt, config);
    const stored = this.db.get(rt.key, rt.namespaced ? ns : "", name);
    const ctx = this.fieldContext(rt, opts, subresource);
    const now = nowTimestamp();
    try {
      if (!stored) {
        if (subresource) throw notFound(rt.group, rt.plural, name);
        const plan = planApply(ctx, undefined, cfg, force, now);
        plan.merged.metadata.name = name;
        return { ...this.create(rt, ns, plan.merged, opts, plan.track), created: true };
      }
      const cfgRv = cfg.metadata.resourceVersion;
      if (cfgRv !== undefined && cfgRv !== "" && cfgRv !== meta(stored).resourceVersion) throw conflict(rt.group, rt.plural, name, staleMessage);
      const live = structuredClone(this.asVersion(rt, stored));
      const plan = planApply(ctx, live, cfg, force, now);
      return { ...this.replace(rt, stored, plan.merged, opts, subresource, plan.track), created: false };
    } catch (err) {
      if (err instanceof FieldPathError) throw badRequest(`failed to create typed patch object: ${err.message}`);
      throw err;
    }
  }

  private fieldContext(rt: ResourceType, opts: WriteOptions, subresource: "status" | undefined): FieldContext {
    return { root: rootSchema(rt), tracked: trackedFields(rt.statusSubresource, subresource), manager: opts.fieldManager ?? "dockmesh", apiVersion: apiVersionOf(rt), subresource };
  }

  /** The shared tail of PUT and PATCH: carry over what the client may not change, validate, store. */
  private replace(rt: ResourceType, oldStored: KObject, obj: KObject, opts: WriteOptions, subresource: "status" | undefined, track: FieldTracker): WriteResult {
    const old = this.asVersion(rt, oldStored);
    const om = meta(old);
    if (subresource !== "status") checkSize(obj);
    let next = obj;
    if (subresource === "status") {
      // /status changes status only: everything else comes from the stored object.
      next = structuredClone(old);
      if (obj.status === undefined) delete next.status;
      else next.status = obj.status;
    } else if (rt.statusSubresource) {
      if (old.status === undefined) delete next.status;
      else next.status = structuredClone(old.status);
    }
    const m = next.metadata;
    if (typeof m.uid === "string" && m.uid !== "" && m.uid !== om.uid) {
      throw conflict(rt.group, rt.plural, str(om.name), `Precondition failed: UID in precondition: ${str(m.uid)}, UID in object meta: ${str(om.uid)}`);
    }
    m.name = om.name;
    if (rt.namespaced) m.namespace = om.namespace;
    else delete m.namespace;
    m.uid = om.uid;
    m.creationTimestamp = om.creationTimestamp;
    m.resourceVersion = om.resourceVersion;
    delete m.managedFields;
    delete m.selfLink;
    delete m.generateName;
    if (om.generateName !== undefined) m.generateName = om.generateName;
    if (om.deletionTimestamp !== undefined) {
      m.deletionTimestamp = om.deletionTimestamp;
      m.deletionGracePeriodSeconds = om.deletionGracePeriodSeconds;
    } else {
      delete m.deletionTimestamp;
      delete m.deletionGracePeriodSeconds;
    }
    if (rt.generation) m.generation = om.generation;
    else delete m.generation;
    prepareKind(rt, next, old);
    const warnings = this.validate(rt, next, opts.fieldValidation, old);

    const deleting = om.deletionTimestamp !== undefined;
    if (deleting) {
      const oldF = new Set((om.finalizers as string[] | undefined) ?? []);
      const added = ((m.finalizers as string[] | undefined) ?? []).filter((f) => !oldF.has(f));
      if (added.length > 0) {
        throw invalid(rt.group, rt.kind, str(om.name), [
          cause(
            "FieldValueForbidden",
            "metadata.finalizers",
            `no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(", ")}}`,
          ),
        ]);
      }
    }
    if (rt.generation && !deepEqual(specPart(rt, old), specPart(rt, next))) m.generation = Number(om.generation ?? 0) + 1;
    if (Array.isArray(m.finalizers) && m.finalizers.length === 0) delete m.finalizers;

    setManagedFields(next, trackFields(track, old, next));

    const remaining = (m.finalizers as string[] | undefined) ?? [];
    const finalize = deleting && remaining.every((f) => f === orphanFinalizer);
    if (!finalize && deepEqual(stripRv(old), stripRv(next))) {
      // Nothing changed: no write, no new resourceVersion, no watch event (as the real server).
      return { obj: old, warnings };
    }
    if (opts.dryRun) return { obj: next, warnings };
    this.run(() => {
      if (rt.key === crdKey && subresource !== "status") this.establishCrd(next);
      if (finalize) this.removeObject(rt, next, remaining.includes(orphanFinalizer));
      else this.write("MODIFIED", rt, next, oldStored);
    });
    return { obj: this.asVersion(rt, next), warnings };
  }

  delete(rt: ResourceType, ns: string, name: string, opts: DeleteOptions, dryRun: boolean): DeleteResult {
    const stored = this.db.get(rt.key, rt.namespaced ? ns : "", name);
    if (!stored) throw notFound(rt.group, rt.plural, name);
    const old = this.asVersion(rt, stored);
    const om = meta(old);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== om.uid) {
      throw conflict(rt.group, rt.plural, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${str(om.uid)}`);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== om.resourceVersion) {
      throw conflict(rt.group, rt.plural, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in meta: ${str(om.resourceVersion)}`);
    }
    let result: DeleteResult = { deleted: false, obj: old };
    // Orphan: dependents lose their owner reference instead of being deleted (the real server's
    // "orphan" finalizer, which its garbage collector carries out; here the store does it).
    const orphan = opts.propagationPolicy === "Orphan" || opts.orphanDependents === true;
    const finalizers = (om.finalizers as string[] | undefined) ?? [];
    const graceful = finalizers.length > 0 || rt.key === nsKey || rt.key === crdKey;
    if (dryRun) {
      if (!graceful) return { deleted: true, obj: old };
      const next = structuredClone(old);
      next.metadata.deletionTimestamp ??= nowTimestamp();
      return { deleted: false, obj: next };
    }
    this.run(() => {
      if (graceful) {
        if (om.deletionTimestamp === undefined) {
          const next = structuredClone(old);
          next.metadata.deletionTimestamp = nowTimestamp();
          next.metadata.deletionGracePeriodSeconds = 0;
          if (orphan && !finalizers.includes(orphanFinalizer)) next.metadata.finalizers = [...finalizers, orphanFinalizer];
          if (rt.generation) next.metadata.generation = Number(om.generation ?? 0) + 1;
          if (rt.key === nsKey) next.status = { ...(isPlainObject(next.status) ? next.status : {}), phase: "Terminating" };
          this.write("MODIFIED", rt, next, stored);
          result = { deleted: false, obj: next };
          if (rt.key === nsKey || rt.key === crdKey) this.scheduleCleanup(rt.key, name);
        }
        // A namespace or CRD with nothing left in it goes at once.
        this.cleanupIfEmpty(rt, name);
        const still = this.db.get(rt.key, rt.namespaced ? ns : "", name);
        if (!still) result = { deleted: true, obj: result.obj };
        else result = { deleted: false, obj: this.asVersion(rt, still) };
      } else {
        this.removeObject(rt, structuredClone(old), orphan);
        result = { deleted: true, obj: old };
      }
    });
    return result;
  }

  /** Removes an object for good (DELETED event), then deletes (or orphans) what depended on it. */
  private removeObject(rt: ResourceType, obj: KObject, orphan = false): void {
    this.write("DELETED", rt, obj);
    const m = obj.metadata;
    const uid = str(m.uid);
    for (const [key, dep] of this.db.dependents(uid)) {
      const drt = this.anyTypeFor(key);
      if (!drt || this.db.get(key, str(meta(dep).namespace), str(meta(dep).name)) !== dep) continue;
      if (orphan) {
        const next = structuredClone(dep);
        const refs = (next.metadata.ownerReferences as Array<{ uid?: string }>).filter((r) => r.uid !== uid);
        if (refs.length > 0) next.metadata.ownerReferences = refs;
        else delete next.metadata.ownerReferences;
        this.write("MODIFIED", drt, next, dep);
      } else this.deleteInternal(drt, dep);
    }
    if (rt.namespaced) {
      const ns = this.db.get(nsKey, "", str(m.namespace));
      if (ns && meta(ns).deletionTimestamp) this.cleanupIfEmpty(this.anyTypeFor(nsKey), str(m.namespace));
    }
    if (rt.crdName) {
      const crd = this.db.get(crdKey, "", rt.crdName);
      if (crd && meta(crd).deletionTimestamp) this.cleanupIfEmpty(this.anyTypeFor(crdKey), rt.crdName);
    }
  }

  /** Deletes an object from inside the store (namespace/CRD cleanup, GC), honouring finalizers. */
  private deleteInternal(rt: ResourceType, stored: KObject): void {
    const m = meta(stored);
    if (((m.finalizers as string[] | undefined) ?? []).length > 0) {
      if (m.deletionTimestamp !== undefined) return;
      const next = structuredClone(stored);
      next.metadata.deletionTimestamp = nowTimestamp();
      next.metadata.deletionGracePeriodSeconds = 0;
      if (rt.generation) next.metadata.generation = Number(m.generation ?? 0) + 1;
      this.write("MODIFIED", rt, next, stored);
    } else {
      this.removeObject(rt, structuredClone(stored));
    }
  }

  private emptyNamespace(ns: string): void {
    for (const key of this.db.keys()) {
      const rt = this.anyTypeFor(key);
      if (!rt || !rt.namespaced) continue;
      for (const o of this.db.list(key, ns)) if (this.db.get(key, ns, str(meta(o).name))) this.deleteInternal(rt, o);
    }
  }

  private deleteCrdInstances(crd: KObject): void {
    const spec = crd.spec as CustomResourceDefinition["spec"];
    const key = `${spec.group}/${spec.names.plural}`;
    const rt = this.anyTypeFor(key);
    if (!rt) return;
    for (const o of this.db.list(key)) this.deleteInternal(rt, o);
  }

  private cleanupIfEmpty(rt: ResourceType | undefined, name: string): void {
    if (!rt) return;
    const obj = this.db.get(rt.key, "", name);
    if (!obj || !meta(obj).deletionTimestamp) return;
    if (((meta(obj).finalizers as string[] | undefined) ?? []).length > 0) return;
    if (rt.key === nsKey) {
      if (this.db.countInNamespace(name) > 0) return;
    } else if (rt.key === crdKey) {
      const spec = obj.spec as CustomResourceDefinition["spec"];
      if (this.db.list(`${spec.group}/${spec.names.plural}`).length > 0) return;
    }
    this.removeObject(rt, structuredClone(obj));
  }

  /** Any served version of the kind stored under `key`. */
  private anyTypeFor(key: string): ResourceType | undefined {
    return this.registry.versionsOf(key)[0];
  }

  // ---- decoding and validation ----------------------------------------------------------------

  /**
   * Checks apiVersion/kind and the shape of metadata. Takes `body` over: every caller passes an
   * object of its own (parsed from the request, a patch result on a clone, or a clone). Copying it
   * again cost 240 ms of the event loop for a 3 MiB ConfigMap.
   */
  private decode(rt: ResourceType, body: unknown): KObject {
    if (!isPlainObject(body)) throw badRequest(`Object '${rt.kind}' is missing in '${JSON.stringify(body).slice(0, 200)}'`);
    const obj = body as KObject;
    const av = apiVersionOf(rt);
    if (obj.kind !== undefined && obj.kind !== rt.kind) {
      throw badRequest(`${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: the kind in the data (${String(obj.kind)}) does not match the expected kind (${rt.kind})`);
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== av) {
      // Another served version of the same kind is fine (no conversion: same schema family).
      const same = this.registry.versionsOf(rt.key).some((v) => apiVersionOf(v) === obj.apiVersion);
      if (!same) throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${av})`);
    }
    obj.apiVersion = av;
    obj.kind = rt.kind;
    if (obj.metadata === undefined || obj.metadata === null) obj.metadata = {};
    if (!isPlainObject(obj.metadata)) throw badRequest(`${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: metadata must be an object`);
    return obj;
  }

  /** Schema (with defaults and pruning), metadata rules, unknown-field policy. Returns warnings. */
  private validate(rt: ResourceType, obj: KObject, fv: FieldValidation, old: KObject | undefined): string[] {
    const res: SchemaResult = { causes: [], unknown: [] };
    const m = obj.metadata;
    for (const k of Object.keys(m)) {
      if (!objectMetaFields.has(k)) {
        res.unknown.push(`metadata.${k}`);
        delete m[k];
      }
    }
    const schema = rt.schema;
    const props = schema.properties ?? {};
    const preserveRoot = schema["x-kubernetes-preserve-unknown-fields"] === true;
    for (const [k, p] of Object.entries(props)) {
      if (k === "apiVersion" || k === "kind" || k === "metadata") continue;
      if (p.default !== undefined && !(k in obj)) obj[k] = structuredClone(p.default);
    }
    for (const k of Object.keys(obj)) {
      if (k === "apiVersion" || k === "kind" || k === "metadata") continue;
      const p = props[k];
      if (p) obj[k] = applySchema(p, obj[k], k, res);
      else if (!preserveRoot) {
        res.unknown.push(k);
        delete obj[k];
      }
    }
    for (const r of schema.required ?? []) {
      if (!(r in obj)) res.causes.push(cause("FieldValueRequired", r, ""));
    }
    const metaCauses: StatusCause[] = validateObjectMeta(m, rt.nameRule, rt.namespaced);
    // Validation ratcheting (on by default since 1.30): on update, a schema error in a value that
    // did not change is let through, so a tightened CRD schema does not block status writes.
    const schemaCauses = old === undefined ? res.causes : res.causes.filter((c) => !deepEqual(valueAt(old, c.field), valueAt(obj, c.field)));
    const causes = [...metaCauses, ...schemaCauses];
    if (fv === "Strict" && res.unknown.length > 0) {
      throw badRequest(`strict decoding error: ${res.unknown.map((u) => `unknown field "${u}"`).join(", ")}`);
    }
    if (causes.length > 0) throw invalid(rt.group, rt.kind, str(m.name) || str(m.generateName), causes);
    return fv === "Warn" ? res.unknown.map((u) => `unknown field "${u}"`) : [];
  }

  // ---- CustomResourceDefinitions -------------------------------------------------------------

  private checkCrd(obj: KObject): void {
    const spec = obj.spec as CustomResourceDefinition["spec"];
    const name = str(obj.metadata.name);
    const causes: StatusCause[] = [];
    if (name !== `${spec.names.plural}.${spec.group}`) {
      causes.push(cause("FieldValueInvalid", "metadata.name", `must be spec.names.plural+"."+spec.group`, { v: name }));
    }
    if (!spec.group.includes(".")) causes.push(cause("FieldValueInvalid", "spec.group", "should be a domain with at least one dot", { v: spec.group }));
    const storage = spec.versions.filter((v) => v.storage).length;
    if (storage !== 1) causes.push(cause("FieldValueInvalid", "spec.versions", "must have exactly one version marked as storage version", { v: spec.versions.map((v) => v.name) }));
    if (causes.length > 0) throw invalid("apiextensions.k8s.io", "CustomResourceDefinition", name, causes);
  }

  private establishCrd(obj: KObject): void {
    const spec = obj.spec as CustomResourceDefinition["spec"];
    const now = nowTimestamp();
    const old = isPlainObject(obj.status) ? obj.status : {};
    const stored = new Set<string>(Array.isArray(old.storedVersions) ? (old.storedVersions as string[]) : []);
    for (const v of spec.versions) if (v.storage) stored.add(v.name);
    const prevConds = Array.isArray(old.conditions) ? (old.conditions as Array<Record<string, unknown>>) : [];
    const cond = (type: string, reason: string, message: string) => ({
      type,
      status: "True",
      lastTransitionTime: (prevConds.find((c) => c.type === type && c.status === "True")?.lastTransitionTime as string | undefined) ?? now,
      reason,
      message,
    });
    obj.status = {
      conditions: [cond("NamesAccepted", "NoConflicts", "no conflicts found"), cond("Established", "InitialNamesAccepted", "the initial names have been accepted")],
      acceptedNames: {
        kind: spec.names.kind,
        listKind: spec.names.listKind ?? `${spec.names.kind}List`,
        plural: spec.names.plural,
        singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
        ...(spec.names.shortNames ? { shortNames: spec.names.shortNames } : {}),
        ...(spec.names.categories ? { categories: spec.names.categories } : {}),
      },
      storedVersions: [...stored],
    };
  }

  registerCrd(obj: KObject): void {
    this.registry.setCrdTypes(str(obj.metadata.name), typesFromCrd(obj as unknown as CustomResourceDefinition));
  }

  /** Creates or updates a CRD from its manifest (dockmesh's own at start). */
  installCrd(crd: CustomResourceDefinition): void {
    const rt = this.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    if (!rt) throw new Error("the CustomResourceDefinition kind is not registered");
    const existing = this.db.get(rt.key, "", crd.metadata.name);
    const opts: WriteOptions = { dryRun: false, fieldValidation: "Ignore" };
    if (!existing) {
      this.create(rt, "", structuredClone(crd), opts);
    } else {
      const body = structuredClone(crd) as unknown as KObject;
      body.metadata = { ...existing.metadata, labels: crd.metadata.labels };
      this.update(rt, "", crd.metadata.name, body, opts);
    }
  }

  /** Registers the kinds of every stored CRD (at start). */
  loadCrds(): void {
    for (const o of this.db.list(crdKey)) this.registerCrd(o);
  }

  ensureNamespace(name: string): void {
    if (this.namespaceExists(name)) return;
    const rt = this.registry.get("", "v1", "namespaces");
    if (!rt) throw new Error("the Namespace kind is not registered");
    this.create(rt, "", { apiVersion: "v1", kind: "Namespace", metadata: { name } }, { dryRun: false, fieldValidation: "Ignore" });
  }
}

/** The value at a field path as the validation reports it ("spec.list[1].name"). */
function valueAt(obj: unknown, field: string): unknown {
  let cur: unknown = obj;
  for (const part of field.split(/\.|(?=\[)/)) {
    if (part === "") continue;
    const idx = /^\[(\d+)\]$/.exec(part);
    if (idx) cur = Array.isArray(cur) ? cur[Number(idx[1])] : undefined;
    else cur = isPlainObject(cur) ? cur[part] : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

function crdTypeKey(crd: KObject): string {
  const spec = crd.spec as CustomResourceDefinition["spec"];
  return `${spec.group}/${spec.names.plural}`;
}

function specPart(rt: ResourceType, o: KObject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === "metadata" || k === "apiVersion" || k === "kind") continue;
    if (k === "status" && rt.statusSubresource) continue;
    out[k] = v;
  }
  // Deletion bumps generation on the real server; finalizer edits do not.
  return out;
}

/** A field set that cannot be computed (a keyed list item without its key) drops managedFields, as kube-apiserver's UpdateNoErrors. */
function trackFields(track: FieldTracker, live: KObject | undefined, next: KObject): Array<Record<string, unknown>> | undefined {
  try {
    return track(live, next);
  } catch (err) {
    if (err instanceof FieldPathError) return undefined;
    throw err;
  }
}

function setManagedFields(obj: KObject, mf: Array<Record<string, unknown>> | undefined): void {
  if (mf && mf.length > 0) obj.metadata.managedFields = mf;
  else delete obj.metadata.managedFields;
}

function stripRv(o: KObject): KObject {
  return { ...o, metadata: { ...o.metadata, resourceVersion: undefined } };
}
