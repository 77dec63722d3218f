// What the real server checks for particular built-in kinds while decoding and validating:
// Secret (stringData, base64, well-known types), ConfigMap keys, MicroTime in Leases and Events.
import type { KObject } from "./db.js";
import { ApiError, badRequest, cause, invalid, type StatusCause } from "./errors.js";
import type { ResourceType } from "./registry.js";
import { deepEqual, isPlainObject } from "./validation.js";

const nsKey = "/namespaces";

function meta(o: Record<string, unknown>): Record<string, unknown> {
  const m = o.metadata;
  return isPlainObject(m) ? m : {};
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** Kind-specific decoding and checks the real server does for built-in kinds (400 / 422 on failure). */
export function prepareKind(rt: ResourceType, obj: KObject, old: KObject | undefined): void {
  const cannot = (why: string) => badRequest(`${rt.kind} in version "${rt.version}" cannot be handled as a ${rt.kind}: ${why}`);
  if (rt.key === "/secrets") {
    if (isPlainObject(obj.stringData)) {
      const data: Record<string, unknown> = isPlainObject(obj.data) ? { ...obj.data } : {};
      for (const [k, v] of Object.entries(obj.stringData)) data[k] = Buffer.from(String(v), "utf8").toString("base64");
      obj.data = data;
    }
    delete obj.stringData;
    if (obj.type === undefined || obj.type === "") obj.type = "Opaque";
    checkBase64(obj.data, cannot);
    const name = str(obj.metadata.name);
    if (old && old.type !== obj.type) {
      throw invalid(rt.group, rt.kind, name, [cause("FieldValueInvalid", "type", "field is immutable", { v: obj.type })]);
    }
    const data = isPlainObject(obj.data) ? obj.data : {};
    const causes: StatusCause[] = [];
    for (const k of Object.keys(data)) {
      if (!/^[-._a-zA-Z0-9]+$/.test(k) || k.length > 253) {
        causes.push(
          cause(
            "FieldValueInvalid",
            "data",
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            { v: k },
          ),
        );
      }
    }
    // Keys the real server requires for its well-known Secret types.
    const required: Record<string, string[]> = { "kubernetes.io/ssh-auth": ["ssh-privatekey"], "kubernetes.io/tls": ["tls.crt", "tls.key"], "kubernetes.io/dockerconfigjson": [".dockerconfigjson"] };
    for (const k of required[String(obj.type)] ?? []) if (!(k in data)) causes.push(cause("FieldValueRequired", `data[${k}]`, ""));
    if (causes.length > 0) throw invalid(rt.group, rt.kind, name, causes);
  }
  if (rt.key === "/configmaps") {
    checkBase64(obj.binaryData, cannot);
    const causes: StatusCause[] = [];
    const data = isPlainObject(obj.data) ? obj.data : {};
    const bin = isPlainObject(obj.binaryData) ? obj.binaryData : {};
    for (const [field, m] of [
      ["data", data],
      ["binaryData", bin],
    ] as const) {
      for (const k of Object.keys(m)) {
        if (!/^[-._a-zA-Z0-9]+$/.test(k) || k.length > 253) {
          causes.push(
            cause(
              "FieldValueInvalid",
              field,
              "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
              { v: k },
            ),
          );
        }
      }
    }
    for (const k of Object.keys(bin)) if (k in data) causes.push(cause("FieldValueInvalid", "data", "duplicate of key present in binaryData", { v: k }));
    if (causes.length > 0) throw invalid(rt.group, rt.kind, str(obj.metadata.name), causes);
  }
  if ((rt.key === "/secrets" || rt.key === "/configmaps") && old && old.immutable === true) {
    const fields = rt.key === "/secrets" ? ["data", "type"] : ["data", "binaryData"];
    const changed = fields.some((f) => !deepEqual(old[f] ?? null, obj[f] ?? null)) || obj.immutable !== true;
    if (changed) {
      throw invalid(rt.group, rt.kind, str(meta(old).name), [cause("FieldValueForbidden", "data", "field is immutable when `immutable` is set")]);
    }
  }
  if (rt.key === "coordination.k8s.io/leases" && isPlainObject(obj.spec)) {
    for (const f of ["acquireTime", "renewTime"]) checkMicroTime(obj.spec[f], cannot);
  }
  if (rt.key === "/events") checkMicroTime(obj.eventTime, cannot);
  if (rt.key === nsKey && isPlainObject(obj.status) && old === undefined) delete obj.status;
}
const base64Re = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function checkBase64(data: unknown, cannot: (why: string) => ApiError): void {
  if (data === undefined || data === null) return;
  if (!isPlainObject(data)) throw cannot("data must be a map of base64 strings");
  for (const v of Object.values(data)) {
    if (typeof v !== "string" || !base64Re.test(v)) {
      const s = typeof v === "string" ? v : JSON.stringify(v);
      let at = 0;
      while (at < s.length && /[A-Za-z0-9+/=]/.test(s[at] ?? "")) at++;
      throw cannot(`illegal base64 data at input byte ${at}`);
    }
  }
}

// metav1.MicroTime decodes with exactly six fractional digits; Date.toISOString()'s three are rejected.
const microTimeRe = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

function checkMicroTime(v: unknown, cannot: (why: string) => ApiError): void {
  if (v === undefined || v === null) return;
  if (typeof v !== "string" || !microTimeRe.test(v)) {
    const s = String(v);
    const frac = /\.(\d*)(.*)$/.exec(s);
    const tail = frac ? `${frac[1] ?? ""}${frac[2] ?? ""}` : s.slice(19);
    throw cannot(`parsing time "${s}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "${tail}" as ".000000"`);
  }
}
