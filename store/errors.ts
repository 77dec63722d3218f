// Kubernetes Status objects: every error the store returns is one of these, as a real API server's.

export type StatusReason =
  | "NotFound"
  | "AlreadyExists"
  | "Conflict"
  | "Invalid"
  | "Expired"
  | "BadRequest"
  | "UnsupportedMediaType"
  | "MethodNotAllowed"
  | "Unauthorized"
  | "Forbidden"
  | "NotAcceptable"
  | "RequestEntityTooLarge"
  | "TooManyRequests"
  | "InternalError"
  | "Timeout";

export type CauseType =
  | "FieldValueRequired"
  | "FieldValueInvalid"
  | "FieldValueNotSupported"
  | "FieldValueTooLong"
  | "FieldValueTooMany"
  | "FieldValueTypeInvalid"
  | "FieldValueForbidden"
  | "FieldValueDuplicate"
  | "FieldValueNotFound"
  | "FieldValueUnknown"
  | "FieldManagerConflict";

/** metav1.StatusCause: the type travels as "reason"; the message leaves out the field. */
export interface StatusCause {
  reason: CauseType;
  message: string;
  field: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

/** An error that becomes a Status response. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ApiError";
  }

  toStatus(): Status {
    const s: Status = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: this.message, reason: this.reason, code: this.code };
    if (this.details) s.details = this.details;
    return s;
  }
}

/** "machines.dockmesh.io" or "secrets" (core group has no suffix). */
export function groupResource(group: string, plural: string): string {
  return group ? `${plural}.${group}` : plural;
}

export function notFound(group: string, plural: string, name: string): ApiError {
  return new ApiError(404, "NotFound", `${groupResource(group, plural)} "${name}" not found`, { name, group, kind: plural });
}

export function alreadyExists(group: string, plural: string, name: string): ApiError {
  return new ApiError(409, "AlreadyExists", `${groupResource(group, plural)} "${name}" already exists`, { name, group, kind: plural });
}

export function conflict(group: string, plural: string, name: string, why: string): ApiError {
  return new ApiError(409, "Conflict", `Operation cannot be fulfilled on ${groupResource(group, plural)} "${name}": ${why}`, { name, group, kind: plural });
}

export const staleMessage = "the object has been modified; please apply your changes to the latest version and try again";

export function invalid(group: string, kind: string, name: string, causes: StatusCause[]): ApiError {
  const gk = group ? `${kind}.${group}` : kind;
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const summary = list.length === 1 ? list[0] : `[${list.join(", ")}]`;
  return new ApiError(422, "Invalid", `${gk} "${name}" is invalid: ${summary}`, { name, group, kind, causes });
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, "BadRequest", message);
}

export function expired(message: string): ApiError {
  return new ApiError(410, "Expired", message);
}

export function methodNotAllowed(method: string, what: string): ApiError {
  return new ApiError(405, "MethodNotAllowed", `${method} is not supported on ${what}`);
}

export function forbidden(message: string): ApiError {
  return new ApiError(403, "Forbidden", message);
}

export function internalError(err: unknown): ApiError {
  const msg = err instanceof Error ? err.message : String(err);
  return new ApiError(500, "InternalError", `Internal error occurred: ${msg}`, undefined, { cause: err });
}

/** A field.Error as Kubernetes renders it: "<Type>: <value>: <detail>" (the field goes alongside). */
/** value.raw is printed as is (Go's %#v of a non-JSON value, e.g. 0x0). */
export function cause(type: CauseType, field: string, detail: string, value?: { v: unknown; raw?: string }): StatusCause {
  const label: Record<CauseType, string> = {
    FieldValueRequired: "Required value",
    FieldValueInvalid: "Invalid value",
    FieldValueNotSupported: "Unsupported value",
    FieldValueTooLong: "Too long",
    FieldValueTooMany: "Too many",
    FieldValueTypeInvalid: "Invalid value",
    FieldValueForbidden: "Forbidden",
    FieldValueDuplicate: "Duplicate value",
    FieldValueNotFound: "Not found",
    FieldValueUnknown: "Unknown field",
    FieldManagerConflict: "Conflict",
  };
  let msg = label[type];
  if (value) msg += `: ${value.raw ?? renderValue(value.v)}`;
  if (detail) msg += `: ${detail}`;
  return { reason: type, field, message: msg };
}

/** Values in field errors are printed as Go's %#v would for JSON-ish data (strings quoted). */
export function renderValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null || v === undefined) return "null";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}
