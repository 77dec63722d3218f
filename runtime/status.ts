// Writing the status subresource only when it changed: a resync that finds nothing new
// makes no API call (and so no watch event, no new resourceVersion, no reconcile loop).
// Writes are optimistic (PUT /status with metadata.resourceVersion); a 409 Conflict means
// someone wrote in between: re-read, recompute, retry — quietly, a bounded number of times.
import type { KubernetesObject } from "@kubernetes/client-node";
import { isConflict, isNotFound, type ApiClient, type Resource } from "./client.js";
import type { Logger } from "./log.js";
import { describeError, rootLogger } from "./log.js";
import { objectKey } from "./informer.js";

export interface StatusObject<S> extends KubernetesObject {
  status?: S;
}

/** What writeStatus needs from the API; customResourceStatusClient is the usual one. */
export interface StatusClient<T> {
  /** Reads the object fresh from the API server. */
  get(namespace: string | undefined, name: string): Promise<T>;
  /** Replaces the status subresource; fails with 409 when metadata.resourceVersion is stale. */
  replaceStatus(object: T): Promise<T>;
}

export function customResourceStatusClient<T extends KubernetesObject>(api: ApiClient, resource: Resource<T>, fieldManager = "dockmesh-controller"): StatusClient<T> {
  return {
    get: (namespace, name) => api.get(resource, namespace, name),
    replaceStatus: (object) => api.replaceStatus(resource, object, { fieldManager }),
  };
}

/** The status type of an object type. */
export type StatusOf<T> = NonNullable<T extends { status?: infer S } ? S : never>;

/** The status wanted: a value, or computed from the current object (recomputed after a conflict). */
export type DesiredStatus<T, S> = S | ((current: S | undefined, object: T) => S);

export type StatusWriteOutcome = "unchanged" | "written" | "gone";

export interface StatusWriteResult<T> {
  /** unchanged: equal already, nothing sent; written: the server took it; gone: the object was deleted meanwhile. */
  outcome: StatusWriteOutcome;
  /** The object as last seen: the server's answer after a write (new resourceVersion). Absent when gone. */
  object?: T;
  /** Writes sent (0 when unchanged at once). */
  writes: number;
  /** After a write: the resourceVersion it replaced (the object as read before it, for runtime/own-writes.ts). */
  replaced?: string;
}

export interface StatusWriteOptions {
  /** Writes to try before giving up on conflicts (default 5). */
  maxAttempts?: number;
  logger?: Logger;
}

/**
 * Writes desired as the object's status unless it already equals the current one
 * (jsonEqual). desired must be the whole status as the server will store it: fields the
 * server adds (defaults) would otherwise make every call write.
 */
export async function writeStatus<T extends StatusObject<unknown>>(
  client: StatusClient<T>,
  object: T,
  desired: DesiredStatus<T, StatusOf<T>>,
  opts: StatusWriteOptions = {},
): Promise<StatusWriteResult<T>> {
  type S = StatusOf<T>;
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 5);
  const what = `${object.kind ?? "object"} ${objectKey(object)}`;
  const compute = (obj: T): S => (typeof desired === "function" ? (desired as (current: S | undefined, object: T) => S)(obj.status as S | undefined, obj) : desired);
  let current = object;
  let writes = 0;
  for (;;) {
    const want = compute(current);
    if (jsonEqual(current.status, want)) return { outcome: "unchanged", object: current, writes };
    writes++;
    try {
      const written = await client.replaceStatus({ ...current, status: want });
      return { outcome: "written", object: written, writes, ...(current.metadata?.resourceVersion !== undefined ? { replaced: current.metadata.resourceVersion } : {}) };
    } catch (err) {
      if (isNotFound(err)) return { outcome: "gone", writes };
      if (!isConflict(err)) throw new Error(`write status of ${what}: ${describeError(err)}`, { cause: err });
      if (writes >= maxAttempts) throw new Error(`write status of ${what}: still conflicting after ${writes} attempts`, { cause: err });
      // Expected under concurrent writers: not worth more than debug.
      (opts.logger ?? rootLogger()).debug("status write conflicted; re-reading", { object: what, attempt: writes });
    }
    try {
      current = await client.get(current.metadata?.namespace, current.metadata?.name ?? "");
    } catch (err) {
      if (isNotFound(err)) return { outcome: "gone", writes };
      throw new Error(`write status of ${what}: re-read after a conflict: ${describeError(err)}`, { cause: err });
    }
  }
}

/**
 * Deep equality of JSON values as the API server would store them: object key order
 * does not matter, array order does, a property set to undefined is the same as an
 * absent one (JSON drops it). Nothing else is ignored.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    return a.every((v, i) => jsonEqual(v, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  return ak.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && jsonEqual(ao[k], bo[k]));
}
