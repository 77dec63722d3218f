// The patch formats of the API, told apart by Content-Type (patchTypeOf). Three are applied here:
// JSON Patch (RFC 6902, via fast-json-patch), JSON merge patch (RFC 7386) and strategic merge
// patch (built-in kinds only, as on a real server); the fourth, server-side apply
// (application/apply-patch+yaml), is apply.ts's.
import jsonpatch from "fast-json-patch";
import { ApiError, badRequest } from "./errors.js";
import { isPlainObject } from "./validation.js";

export type PatchType = "json" | "merge" | "strategic" | "apply";

export function patchTypeOf(contentType: string): PatchType | undefined {
  const ct = contentType.split(";")[0]?.trim().toLowerCase();
  switch (ct) {
    case "application/json-patch+json":
      return "json";
    case "application/merge-patch+json":
      return "merge";
    case "application/strategic-merge-patch+json":
      return "strategic";
    case "application/apply-patch+yaml":
      return "apply";
    default:
      return undefined;
  }
}

export function applyJsonPatch(doc: Record<string, unknown>, patch: unknown): Record<string, unknown> {
  if (!Array.isArray(patch)) throw badRequest("json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp");
  try {
    const res = jsonpatch.applyPatch(structuredClone(doc), patch as jsonpatch.Operation[], true, true, true);
    const out = res.newDocument;
    if (!isPlainObject(out)) throw badRequest("the patch replaced the whole object with a non-object");
    return out;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    const e = err as { name?: string; message?: string; operation?: { op?: string; path?: string } };
    if (e.name === "TEST_OPERATION_FAILED") {
      throw new ApiError(422, "Invalid", `the server rejected our request due to an error in our request: testing value ${e.operation?.path ?? ""} failed`, undefined, { cause: err });
    }
    const first = (e.message ?? String(err)).split("\n")[0];
    throw new ApiError(422, "Invalid", `the server rejected our request due to an error in our request: ${first}`, undefined, { cause: err });
  }
}

/** RFC 7386: objects merge recursively, null deletes, anything else (arrays too) replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/**
 * Merge keys of the lists in built-in kinds whose Go types declare patchStrategy "merge".
 * The path is the dotted field path without indices; "" as key means a list of primitives.
 */
const mergeKeys: Record<string, string> = {
  "metadata.ownerReferences": "uid",
  "metadata.finalizers": "",
  secrets: "name",
  imagePullSecrets: "name",
};

/** Strategic merge patch for the built-in kinds: map merge, $patch, $retainKeys, $setElementOrder, $deleteFromPrimitiveList. */
export function applyStrategicMergePatch(target: Record<string, unknown>, patch: unknown): Record<string, unknown> {
  if (!isPlainObject(patch)) throw badRequest("strategic merge patch: the patch must be a JSON object");
  const out = smpMap(target, patch, "");
  return isPlainObject(out) ? out : {};
}

function smpMap(target: unknown, patch: Record<string, unknown>, path: string): unknown {
  const directive = patch.$patch;
  if (directive === "delete") return undefined;
  const clean: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(patch)) if (k !== "$patch") clean[k] = v;
  if (directive === "replace") return stripDirectives(clean);
  if (directive !== undefined) throw badRequest(`strategic merge patch: unknown patch type "${String(directive)}"`);

  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  const retain = clean.$retainKeys;
  for (const [k, v] of Object.entries(clean)) {
    if (k === "$retainKeys" || k.startsWith("$setElementOrder/")) continue;
    if (k.startsWith("$deleteFromPrimitiveList/")) {
      const field = k.slice("$deleteFromPrimitiveList/".length);
      const cur = out[field];
      if (Array.isArray(cur) && Array.isArray(v)) out[field] = cur.filter((x) => !v.includes(x));
      continue;
    }
    const childPath = path ? `${path}.${k}` : k;
    if (v === null) {
      delete out[k];
    } else if (isPlainObject(v)) {
      const merged = smpMap(out[k], v, childPath);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else if (Array.isArray(v)) {
      out[k] = smpList(out[k], v, childPath);
    } else {
      out[k] = v;
    }
  }
  if (Array.isArray(retain)) {
    for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  }
  return out;
}

function smpList(target: unknown, patch: unknown[], path: string): unknown[] {
  const key = mergeKeys[path];
  if (patch.some((p) => isPlainObject(p) && p.$patch === "replace")) {
    return patch.filter((p) => !(isPlainObject(p) && p.$patch === "replace")).map(stripDirectives);
  }
  if (key === undefined || !Array.isArray(target)) return patch.filter((p) => !(isPlainObject(p) && p.$patch === "delete")).map(stripDirectives);
  const out = [...(target as unknown[])];
  if (key === "") {
    for (const p of patch) if (!out.includes(p)) out.push(p);
    return out;
  }
  for (const p of patch) {
    if (!isPlainObject(p)) continue;
    const idx = out.findIndex((t) => isPlainObject(t) && t[key] === p[key]);
    if (p.$patch === "delete") {
      if (idx >= 0) out.splice(idx, 1);
    } else if (idx >= 0) {
      out[idx] = smpMap(out[idx], p, path);
    } else {
      out.push(stripDirectives(p));
    }
  }
  return out;
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith("$")) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}
