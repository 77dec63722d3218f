// Structural-schema validation as apiextensions-apiserver does it: defaults, pruning of unknown
// fields, then type/required/enum/pattern/bounds checks, reported as field errors with Kubernetes
// field paths and messages. Written by hand because ajv's semantics (and messages) differ.
import type { JSONSchemaProps } from "../api/crd-schema.js";
import { cause, type StatusCause } from "./errors.js";
import { describePattern } from "./pattern-descriptions.js";

export type FieldValidation = "Strict" | "Warn" | "Ignore";

export interface SchemaResult {
  causes: StatusCause[];
  /** Paths of fields that were pruned because the schema does not know them, e.g. "spec.foo". */
  unknown: string[];
}

const regexCache = new Map<string, RegExp>();
function regex(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (!re) {
    re = new RegExp(pattern);
    regexCache.set(pattern, re);
  }
  return re;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function typeMatches(type: string, v: unknown): boolean {
  switch (type) {
    case "object":
      return isPlainObject(v);
    case "array":
      return Array.isArray(v);
    case "string":
      return typeof v === "string";
    case "integer":
      return typeof v === "number" && Number.isInteger(v);
    case "number":
      return typeof v === "number";
    case "boolean":
      return typeof v === "boolean";
    default:
      return true;
  }
}

function child(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

const dateTimeRe = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function formatOk(format: string, v: string): boolean {
  switch (format) {
    case "date-time":
    case "datetime":
      return dateTimeRe.test(v) && !Number.isNaN(Date.parse(v));
    case "date":
      return /^\d{4}-\d{2}-\d{2}$/.test(v);
    case "byte":
      return /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v);
    case "uuid":
      return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
    default:
      return true; // int32, int64, password…: not validated on strings by the real server either
  }
}

/**
 * Applies defaults and prunes unknown fields in place, then validates `value` at `path`.
 * The root call is made per top-level field (spec, status…) so that apiVersion/kind/metadata,
 * which the server handles itself, are left alone.
 */
export function applySchema(schema: JSONSchemaProps, value: unknown, path: string, out: SchemaResult): unknown {
  return walk(schema, value, path, out, true);
}

function walk(schema: JSONSchemaProps, value: unknown, path: string, out: SchemaResult, mutate: boolean): unknown {
  if (value === null) {
    if (schema.nullable) return value;
    if (schema.default !== undefined && mutate) value = structuredClone(schema.default);
    else if (schema.type) {
      out.causes.push(cause("FieldValueTypeInvalid", path, `${path} in body must be of type ${schema.type}: "null"`, { v: "null" }));
      return value;
    } else return value;
  }

  if (schema["x-kubernetes-int-or-string"]) {
    if (!(typeof value === "string" || (typeof value === "number" && Number.isInteger(value)))) {
      out.causes.push(cause("FieldValueTypeInvalid", path, `${path} in body must be of type integer,string: "${typeName(value)}"`, { v: typeName(value) }));
      return value;
    }
  } else if (schema.type && !typeMatches(schema.type, value)) {
    out.causes.push(cause("FieldValueTypeInvalid", path, `${path} in body must be of type ${schema.type}: "${typeName(value)}"`, { v: typeName(value) }));
    return value;
  }

  if (schema.anyOf && schema.anyOf.length > 0) {
    const branchResults = schema.anyOf.map((b) => {
      const r: SchemaResult = { causes: [], unknown: [] };
      walk(b, structuredClone(value), path, r, false);
      return { b, r };
    });
    if (!branchResults.some((x) => x.r.causes.length === 0)) {
      // Report the branch whose type fits the value (the interesting one), as the real server's messages do.
      const fitting = branchResults.filter((x) => !x.b.type || typeMatches(x.b.type, value));
      if (fitting.length > 0) for (const f of fitting) out.causes.push(...f.r.causes);
      else out.causes.push(cause("FieldValueInvalid", path, "must validate at least one schema (anyOf)", { v: value }));
    }
  }

  if (schema.enum && !schema.enum.some((e) => deepEqual(e, value))) {
    out.causes.push(cause("FieldValueNotSupported", path, `supported values: ${schema.enum.map((e) => JSON.stringify(String(e))).join(", ")}`, { v: value }));
  }

  if (typeof value === "string") {
    if (schema.maxLength !== undefined && [...value].length > schema.maxLength) {
      out.causes.push(cause("FieldValueTooLong", path, `may not be longer than ${schema.maxLength}`));
    }
    if (schema.minLength !== undefined && [...value].length < schema.minLength) {
      out.causes.push(cause("FieldValueInvalid", path, `${path} in body should be at least ${schema.minLength} chars long`, { v: value }));
    }
    if (schema.pattern !== undefined && !regex(schema.pattern).test(value)) {
      const expected = describePattern(schema.pattern);
      out.causes.push(cause("FieldValueInvalid", path, expected ? `${path} in body should be ${expected}` : `${path} in body should match '${schema.pattern}'`, { v: value }));
    }
    if (schema.format !== undefined && !formatOk(schema.format, value)) {
      out.causes.push(cause("FieldValueInvalid", path, `${path} in body must be of type ${schema.format}: ${JSON.stringify(value)}`, { v: value }));
    }
  } else if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) {
      out.causes.push(cause("FieldValueInvalid", path, `${path} in body should be greater than or equal to ${schema.minimum}`, { v: value }));
    }
    if (schema.maximum !== undefined && value > schema.maximum) {
      out.causes.push(cause("FieldValueInvalid", path, `${path} in body should be less than or equal to ${schema.maximum}`, { v: value }));
    }
  } else if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      out.causes.push({ reason: "FieldValueTooMany", field: path, message: `Too many: ${value.length}: must have at most ${schema.maxItems} items` });
    }
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      out.causes.push(cause("FieldValueInvalid", path, `${path} in body should have at least ${schema.minItems} items`, { v: value }));
    }
    if (schema.items) {
      for (let i = 0; i < value.length; i++) value[i] = walk(schema.items, value[i], `${path}[${i}]`, out, mutate);
    }
    checkListType(schema, value, path, out);
  } else if (isPlainObject(value)) {
    walkObject(schema, value, path, out, mutate);
  }
  return value;
}

function walkObject(schema: JSONSchemaProps, obj: Record<string, unknown>, path: string, out: SchemaResult, mutate: boolean): void {
  const props = schema.properties;
  const preserve = schema["x-kubernetes-preserve-unknown-fields"] === true;
  if (props && mutate) {
    for (const [k, p] of Object.entries(props)) {
      if (p.default !== undefined && !(k in obj)) obj[k] = structuredClone(p.default);
    }
  }
  for (const k of Object.keys(obj)) {
    const p = props?.[k];
    if (p) {
      obj[k] = walk(p, obj[k], child(path, k), out, mutate);
    } else if (isPlainObject(schema.additionalProperties)) {
      obj[k] = walk(schema.additionalProperties, obj[k], child(path, k), out, mutate);
    } else if (schema.additionalProperties === true || preserve || (!props && !schema.additionalProperties && !schema.type)) {
      // kept as is
    } else {
      out.unknown.push(child(path, k));
      if (mutate) delete obj[k];
    }
  }
  for (const r of schema.required ?? []) {
    if (!(r in obj)) out.causes.push(cause("FieldValueRequired", child(path, r), ""));
  }
}

function checkListType(schema: JSONSchemaProps, list: unknown[], path: string, out: SchemaResult): void {
  const lt = schema["x-kubernetes-list-type"];
  if (lt === "set") {
    const seen: unknown[] = [];
    list.forEach((v, i) => {
      if (seen.some((s) => deepEqual(s, v))) out.causes.push(cause("FieldValueDuplicate", `${path}[${i}]`, "", { v }));
      seen.push(v);
    });
  } else if (lt === "map") {
    const keys = schema["x-kubernetes-list-map-keys"] ?? [];
    const seen = new Set<string>();
    list.forEach((v, i) => {
      if (!isPlainObject(v)) return;
      const keyVal: Record<string, unknown> = {};
      for (const k of keys) keyVal[k] = v[k];
      const sig = JSON.stringify(keyVal);
      if (seen.has(sig)) out.causes.push(cause("FieldValueDuplicate", `${path}[${i}]`, "", { v: keyVal }));
      seen.add(sig);
    });
  }
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && deepEqual(ao[k], bo[k]));
}

// ---- metadata ---------------------------------------------------------------------------------

const dns1123LabelRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123SubdomainRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const qualifiedNameRe = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const labelValueRe = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export type NameRule = "subdomain" | "label";

export function nameErrors(name: string, rule: NameRule): string[] {
  if (rule === "label") {
    const errs: string[] = [];
    if (name.length > 63) errs.push("must be no more than 63 characters");
    if (!dns1123LabelRe.test(name)) {
      errs.push(
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
      );
    }
    return errs;
  }
  const errs: string[] = [];
  if (name.length > 253) errs.push("must be no more than 253 characters");
  if (!dns1123SubdomainRe.test(name)) {
    errs.push(
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
  }
  return errs;
}

/** Label keys, annotation keys and finalizers: an optional DNS subdomain prefix and a name. */
export function qualifiedNameErrors(key: string): string[] {
  const parts = key.split("/");
  let name = key;
  const errs: string[] = [];
  if (parts.length === 2) {
    const prefix = parts[0] ?? "";
    name = parts[1] ?? "";
    if (prefix.length === 0) errs.push("prefix part must be non-empty");
    else if (prefix.length > 253 || !dns1123SubdomainRe.test(prefix)) {
      errs.push(
        "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
      );
    }
  } else if (parts.length > 2) {
    return [
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  }
  if (name.length === 0) errs.push("name part must be non-empty");
  else if (name.length > 63) errs.push("name part must be no more than 63 characters");
  if (name.length > 0 && !qualifiedNameRe.test(name)) {
    errs.push(
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    );
  }
  return errs;
}

export function labelValueErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push("must be no more than 63 characters");
  if (!labelValueRe.test(v)) {
    errs.push(
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    );
  }
  return errs;
}

const totalAnnotationSizeLimit = 256 * 1024;

/** ObjectMeta checks shared by every kind (name, labels, annotations, finalizers). */
export function validateObjectMeta(meta: Record<string, unknown>, rule: NameRule, namespaced: boolean): StatusCause[] {
  const causes: StatusCause[] = [];
  const name = meta.name;
  if (typeof name !== "string" || name === "") {
    causes.push(cause("FieldValueRequired", "metadata.name", "name or generateName is required"));
  } else {
    for (const e of nameErrors(name, rule)) causes.push(cause("FieldValueInvalid", "metadata.name", e, { v: name }));
  }
  if (namespaced && (typeof meta.namespace !== "string" || meta.namespace === "")) {
    causes.push(cause("FieldValueRequired", "metadata.namespace", ""));
  }
  if (!namespaced && typeof meta.namespace === "string" && meta.namespace !== "") {
    causes.push(cause("FieldValueForbidden", "metadata.namespace", "not allowed on this type"));
  }
  const labels = meta.labels;
  if (labels !== undefined && labels !== null) {
    if (!isPlainObject(labels)) causes.push(cause("FieldValueTypeInvalid", "metadata.labels", "must be a map of strings", { v: labels }));
    else {
      for (const [k, v] of Object.entries(labels)) {
        for (const e of qualifiedNameErrors(k)) causes.push(cause("FieldValueInvalid", "metadata.labels", e, { v: k }));
        if (typeof v !== "string") causes.push(cause("FieldValueTypeInvalid", `metadata.labels.${k}`, "must be a string", { v }));
        else for (const e of labelValueErrors(v)) causes.push(cause("FieldValueInvalid", "metadata.labels", e, { v }));
      }
    }
  }
  const annotations = meta.annotations;
  if (annotations !== undefined && annotations !== null) {
    if (!isPlainObject(annotations)) causes.push(cause("FieldValueTypeInvalid", "metadata.annotations", "must be a map of strings", { v: annotations }));
    else {
      let total = 0;
      for (const [k, v] of Object.entries(annotations)) {
        for (const e of qualifiedNameErrors(k.toLowerCase())) causes.push(cause("FieldValueInvalid", "metadata.annotations", e, { v: k }));
        if (typeof v !== "string") causes.push(cause("FieldValueTypeInvalid", `metadata.annotations.${k}`, "must be a string", { v }));
        else total += k.length + Buffer.byteLength(v);
      }
      if (total > totalAnnotationSizeLimit) {
        causes.push(cause("FieldValueTooLong", "metadata.annotations", `may not be longer than ${totalAnnotationSizeLimit}`));
      }
    }
  }
  const finalizers = meta.finalizers;
  if (finalizers !== undefined && finalizers !== null) {
    if (!Array.isArray(finalizers)) causes.push(cause("FieldValueTypeInvalid", "metadata.finalizers", "must be a list of strings", { v: finalizers }));
    else {
      finalizers.forEach((f, i) => {
        if (typeof f !== "string") causes.push(cause("FieldValueTypeInvalid", `metadata.finalizers[${i}]`, "must be a string", { v: f }));
        else for (const e of qualifiedNameErrors(f)) causes.push(cause("FieldValueInvalid", `metadata.finalizers[${i}]`, e, { v: f }));
      });
    }
  }
  return causes;
}

/** Fields of metav1.ObjectMeta; anything else under metadata is an unknown field. */
export const objectMetaFields = new Set([
  "name",
  "generateName",
  "namespace",
  "selfLink",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "labels",
  "annotations",
  "ownerReferences",
  "finalizers",
  "managedFields",
]);
