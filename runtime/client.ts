// The API server as every module reaches it, after controller-runtime's client.Client: a few
// verbs on objects named by resource, namespace and name. runtime/kube-client.ts implements it
// over @kubernetes/client-node and keeps client-node's quirks to itself; tests hand in fakes.
// Objects come back in wire form (times as RFC 3339 strings), whichever the resource.
import type { CoreV1Event, KubernetesListObject, KubernetesObject, V1Lease } from "@kubernetes/client-node";
import type { SecretObject } from "./informer.js";

/** A resource: API group ("" for core), version and lower-case plural. T types its objects. */
export interface Resource<T extends KubernetesObject = KubernetesObject> {
  group: string;
  version: string;
  plural: string;
  /** Never set: carries T, so that calls infer the object type from the resource. */
  readonly object?: T;
}

export const SECRETS: Resource<SecretObject> = { group: "", version: "v1", plural: "secrets" };
export const EVENTS: Resource<CoreV1Event> = { group: "", version: "v1", plural: "events" };
export const LEASES: Resource<V1Lease> = { group: "coordination.k8s.io", version: "v1", plural: "leases" };

/** One RFC 6902 operation. */
export interface JsonPatchOp {
  op: "add" | "replace" | "remove" | "test";
  path: string;
  value?: unknown;
}

export interface ListOptions {
  /** One namespace; all when absent. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size, and the token of the page before. */
  limit?: number;
  continue?: string;
}

export interface WatchOptions extends Omit<ListOptions, "limit" | "continue"> {
  /** Where the watch starts: the resourceVersion of a list or of the last event seen. */
  resourceVersion?: string;
}

export interface ApiClient {
  /** The object; namespace undefined for cluster-scoped ones. Fails with 404 when it does not exist. */
  get<T extends KubernetesObject>(resource: Resource<T>, namespace: string | undefined, name: string): Promise<T>;
  list<T extends KubernetesObject>(resource: Resource<T>, opts?: ListOptions): Promise<KubernetesListObject<T>>;
  /**
   * Watches a collection: each event to onEvent (type ADDED, MODIFIED, DELETED, BOOKMARK or ERROR),
   * then done once when the watch ends, with the error if it failed. Never rejects: a watch that
   * cannot start ends through done as well. Resolves with what aborts it.
   */
  watch<T extends KubernetesObject>(resource: Resource<T>, opts: WatchOptions, onEvent: (type: string, object: T) => void, done: (err: unknown) => void): Promise<AbortController>;
  /** Creates the object in its metadata.namespace; 409 when it exists. */
  create<T extends KubernetesObject>(resource: Resource<T>, object: T): Promise<T>;
  /** Replaces the object (PUT); 409 when its metadata.resourceVersion is stale. */
  replace<T extends KubernetesObject>(resource: Resource<T>, object: T): Promise<T>;
  /** Replaces the status subresource (PUT /status); 409 when metadata.resourceVersion is stale. */
  replaceStatus<T extends KubernetesObject>(resource: Resource<T>, object: T, opts?: { fieldManager?: string }): Promise<T>;
  /** Applies a JSON Patch (RFC 6902); a failed "test" operation is a 422. */
  patch<T extends KubernetesObject>(resource: Resource<T>, namespace: string, name: string, ops: readonly JsonPatchOp[]): Promise<T>;
}

/** HTTP status of a failed call (client-node's ApiException has code, its watch errors statusCode); undefined for others. */
export function httpStatus(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === "number") return e.code;
  if (typeof e.statusCode === "number") return e.statusCode;
  return undefined;
}

export const isConflict = (err: unknown): boolean => httpStatus(err) === 409;
export const isNotFound = (err: unknown): boolean => httpStatus(err) === 404;
