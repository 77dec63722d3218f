// OpenAPI v3: the index at /openapi/v3 and one document per group-version. kubectl apply reads it
// to learn that the server honours fieldValidation (the PATCH operation's query parameter), and
// kubectl explain reads the schemas (components.schemas with x-kubernetes-group-version-kind).
import { createHash } from "node:crypto";
import type { JSONSchemaProps } from "../api/crd-schema.js";
import type { Registry, ResourceType } from "./registry.js";

type Doc = Record<string, unknown>;

/** Reverse-DNS schema names, as the real server's: io.dockmesh.v1alpha1.Machine, io.k8s.api.core.v1.Secret. */
export function schemaName(rt: Pick<ResourceType, "group" | "version" | "kind" | "builtin">, kind = rt.kind): string {
  if (rt.group === "") return `io.k8s.api.core.${rt.version}.${kind}`;
  if (rt.group === "apiextensions.k8s.io") return `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.${rt.version}.${kind}`;
  if (rt.builtin && rt.group.endsWith(".k8s.io")) return `io.k8s.api.${rt.group.slice(0, -".k8s.io".length)}.${rt.version}.${kind}`;
  return `${rt.group.split(".").reverse().join(".")}.${rt.version}.${kind}`;
}

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

const s = (type: JSONSchemaProps["type"], description: string, extra: Record<string, unknown> = {}) => ({ type, description, ...extra });

const objectMetaSchema = {
  type: "object",
  description: "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
  properties: {
    annotations: s("object", "Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata.", {
      additionalProperties: { type: "string", default: "" },
    }),
    creationTimestamp: s("string", "CreationTimestamp is a timestamp representing the server time when this object was created.", { format: "date-time" }),
    deletionGracePeriodSeconds: s("integer", "Number of seconds allowed for this object to gracefully terminate before it will be removed from the system.", { format: "int64" }),
    deletionTimestamp: s("string", "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted.", { format: "date-time" }),
    finalizers: s("array", "Must be empty before the object is deleted from the registry.", {
      items: { type: "string", default: "" },
      "x-kubernetes-list-type": "set",
      "x-kubernetes-patch-strategy": "merge",
    }),
    generateName: s("string", "GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided."),
    generation: s("integer", "A sequence number representing a specific generation of the desired state. Populated by the system. Read-only.", { format: "int64" }),
    labels: s("object", "Map of string keys and values that can be used to organize and categorize (scope and select) objects.", { additionalProperties: { type: "string", default: "" } }),
    managedFields: s("array", "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow.", { items: { type: "object" } }),
    name: s("string", "Name must be unique within a namespace."),
    namespace: s("string", "Namespace defines the space within which each name must be unique."),
    ownerReferences: s("array", "List of objects depended by this object.", {
      items: {
        type: "object",
        required: ["apiVersion", "kind", "name", "uid"],
        properties: {
          apiVersion: s("string", "API version of the referent."),
          blockOwnerDeletion: s(
            "boolean",
            'If true, AND if the owner has the "foregroundDeletion" finalizer, then the owner cannot be deleted from the key-value store until this reference is removed.',
          ),
          controller: s("boolean", "If true, this reference points to the managing controller."),
          kind: s("string", "Kind of the referent."),
          name: s("string", "Name of the referent."),
          uid: s("string", "UID of the referent."),
        },
      },
      "x-kubernetes-patch-merge-key": "uid",
      "x-kubernetes-patch-strategy": "merge",
    }),
    resourceVersion: s("string", "An opaque value that represents the internal version of this object that can be used by clients to determine when objects have changed."),
    selfLink: s("string", "Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
    uid: s("string", "UID is the unique in time and space value for this object."),
  },
};

const commonSchemas: Record<string, unknown> = {
  "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": objectMetaSchema,
  "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta": {
    type: "object",
    description: "ListMeta describes metadata that synthetic resources must have, including lists and various status objects.",
    properties: {
      continue: s("string", "continue may be set if the user set a limit on the number of items returned."),
      remainingItemCount: s("integer", "remainingItemCount is the number of subsequent items in the list which are not included in this list response.", { format: "int64" }),
      resourceVersion: s("string", "String that identifies the server's internal version of this object."),
      selfLink: s("string", "Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
    },
  },
  "io.k8s.apimachinery.pkg.apis.meta.v1.Status": {
    type: "object",
    description: "Status is a return value for calls that don't return other objects.",
    properties: {
      apiVersion: s("string", "APIVersion defines the versioned schema of this representation of an object."),
      code: s("integer", "Suggested HTTP return code for this status, 0 if not set.", { format: "int32" }),
      details: s("object", "Extended data associated with the reason."),
      kind: s("string", "Kind is a string value representing the REST resource this object represents."),
      message: s("string", "A human-readable description of the status of this operation."),
      metadata: s("object", "Standard list metadata."),
      reason: s("string", 'A machine-readable description of why this operation is in the "Failure" status.'),
      status: s("string", 'Status of the operation. One of: "Success" or "Failure".'),
    },
    "x-kubernetes-group-version-kind": [{ group: "", kind: "Status", version: "v1" }],
  },
  "io.k8s.apimachinery.pkg.apis.meta.v1.Patch": { type: "object", description: "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body." },
  "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions": {
    type: "object",
    description: "DeleteOptions may be provided when deleting an API object.",
    properties: {
      apiVersion: s("string", "APIVersion defines the versioned schema of this representation of an object."),
      dryRun: s("array", "When present, indicates that modifications should not be persisted.", { items: { type: "string", default: "" } }),
      gracePeriodSeconds: s("integer", "The duration in seconds before the object should be deleted.", { format: "int64" }),
      kind: s("string", "Kind is a string value representing the REST resource this object represents."),
      preconditions: s("object", "Must be fulfilled before a deletion is carried out."),
      propagationPolicy: s("string", "Whether and how garbage collection will be performed."),
    },
  },
};

function ref(name: string): Record<string, string> {
  return { $ref: `#/components/schemas/${name}` };
}

const queryParam = (name: string, description: string, type = "string") => ({ name, in: "query", description, schema: { type, uniqueItems: true } });

const dryRun = queryParam("dryRun", "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed");
const fieldManager = queryParam("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes.");
const fieldValidation = queryParam(
  "fieldValidation",
  "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present.",
);
const force = queryParam("force", 'Force is going to "force" Apply requests.', "boolean");
const pretty = queryParam("pretty", "If 'true', then the output is pretty printed.");
const listParams = [
  queryParam("allowWatchBookmarks", 'allowWatchBookmarks requests watch events with type "BOOKMARK".', "boolean"),
  queryParam("continue", "The continue option should be set when retrieving more results from the server."),
  queryParam("fieldSelector", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
  queryParam("labelSelector", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
  queryParam("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
  queryParam("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from."),
  queryParam("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
  queryParam("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`.", "boolean"),
  queryParam("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
  queryParam("watch", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.", "boolean"),
];
const pathParam = (name: string, description: string) => ({ name, in: "path", description, required: true, schema: { type: "string", uniqueItems: true } });

function json(schemaRef: string): Record<string, unknown> {
  return { "application/json": { schema: ref(schemaRef) }, "application/yaml": { schema: ref(schemaRef) } };
}

function operationId(verb: string, rt: ResourceType, suffix = ""): string {
  const g = rt.group
    ? rt.group
        .split(".")
        .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
        .join("")
    : "Core";
  const v = rt.version.charAt(0).toUpperCase() + rt.version.slice(1);
  return `${verb}${g}${v}${rt.namespaced ? "Namespaced" : ""}${rt.kind}${suffix}`;
}

function pathsFor(rt: ResourceType): Record<string, unknown> {
  const gvk = { group: rt.group, version: rt.version, kind: rt.kind };
  const kindRef = schemaName(rt);
  const listRef = schemaName(rt, rt.listKind);
  const base = rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
  const nsPart = rt.namespaced ? "/namespaces/{namespace}" : "";
  const collection = `${base}${nsPart}/${rt.plural}`;
  const item = `${collection}/{name}`;
  const tags = [rt.group ? `${rt.group}_${rt.version}` : `core_${rt.version}`];
  const ext = (action: string) => ({ "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk });
  const ok = (r: string) => ({ "200": { description: "OK", content: json(r) } });
  const patchContent: Record<string, unknown> = {
    "application/apply-patch+yaml": { schema: ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch") },
    "application/json-patch+json": { schema: ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch") },
    "application/merge-patch+json": { schema: ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch") },
  };
  if (rt.builtin) patchContent["application/strategic-merge-patch+json"] = { schema: ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch") };
  const nsParams = rt.namespaced ? [pathParam("namespace", "object name and auth scope, such as for teams and projects")] : [];
  const itemOps = (suffix: string, what: string) => ({
    get: { tags, description: `read ${what} of the specified ${rt.kind}`, operationId: operationId("read", rt, suffix), responses: ok(kindRef), ...ext("get") },
    put: {
      tags,
      description: `replace ${what} of the specified ${rt.kind}`,
      operationId: operationId("replace", rt, suffix),
      parameters: [dryRun, fieldManager, fieldValidation],
      requestBody: { content: { "*/*": { schema: ref(kindRef) } }, required: true },
      responses: { ...ok(kindRef), "201": { description: "Created", content: json(kindRef) } },
      ...ext("put"),
    },
    patch: {
      tags,
      description: `partially update ${what} of the specified ${rt.kind}`,
      operationId: operationId("patch", rt, suffix),
      parameters: [dryRun, fieldManager, fieldValidation, force],
      requestBody: { content: patchContent, required: true },
      responses: { ...ok(kindRef), "201": { description: "Created", content: json(kindRef) } },
      ...ext("patch"),
    },
    parameters: [pathParam("name", `name of the ${rt.kind}`), ...nsParams, pretty],
  });
  const paths: Record<string, unknown> = {
    [collection]: {
      get: { tags, description: `list or watch objects of kind ${rt.kind}`, operationId: operationId("list", rt), parameters: listParams, responses: ok(listRef), ...ext("list") },
      post: {
        tags,
        description: `create a ${rt.kind}`,
        operationId: operationId("create", rt),
        parameters: [dryRun, fieldManager, fieldValidation],
        requestBody: { content: { "*/*": { schema: ref(kindRef) } }, required: true },
        responses: { ...ok(kindRef), "201": { description: "Created", content: json(kindRef) }, "202": { description: "Accepted", content: json(kindRef) } },
        ...ext("post"),
      },
      delete: {
        tags,
        description: `delete collection of ${rt.kind}`,
        operationId: operationId("deletecollection", rt),
        parameters: [dryRun, ...listParams.filter((p) => p.name !== "watch")],
        responses: ok("io.k8s.apimachinery.pkg.apis.meta.v1.Status"),
        ...ext("deletecollection"),
      },
      parameters: [...nsParams, pretty],
    },
    [item]: {
      ...itemOps("", ""),
      delete: {
        tags,
        description: `delete a ${rt.kind}`,
        operationId: operationId("delete", rt),
        parameters: [
          dryRun,
          queryParam("gracePeriodSeconds", "The duration in seconds before the object should be deleted.", "integer"),
          queryParam("propagationPolicy", "Whether and how garbage collection will be performed."),
        ],
        requestBody: { content: { "*/*": { schema: ref("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions") } } },
        responses: {
          "200": { description: "OK", content: json("io.k8s.apimachinery.pkg.apis.meta.v1.Status") },
          "202": { description: "Accepted", content: json("io.k8s.apimachinery.pkg.apis.meta.v1.Status") },
        },
        ...ext("delete"),
      },
    },
  };
  if (rt.statusSubresource) paths[`${item}/status`] = itemOps("Status", "status");
  if (rt.namespaced) {
    paths[`${base}/${rt.plural}`] = {
      get: {
        tags,
        description: `list or watch objects of kind ${rt.kind}`,
        operationId: operationId("list", { ...rt, namespaced: false }, "ForAllNamespaces"),
        parameters: listParams,
        responses: ok(listRef),
        ...ext("list"),
      },
    };
  }
  return paths;
}

/** The schema as published: metadata points at ObjectMeta, the GVK extension names the kind. */
function kindSchema(rt: ResourceType): Record<string, unknown> {
  const root = structuredClone(rt.schema) as Record<string, unknown> & JSONSchemaProps;
  const props = { ...(root.properties ?? {}) } as Record<string, unknown>;
  props.apiVersion = {
    type: "string",
    description:
      "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.",
  };
  props.kind = {
    type: "string",
    description:
      "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase.",
  };
  props.metadata = {
    allOf: [ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")],
    description: "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
  };
  return { ...root, properties: props, "x-kubernetes-group-version-kind": [{ group: rt.group, kind: rt.kind, version: rt.version }] };
}

function listSchema(rt: ResourceType): Record<string, unknown> {
  return {
    type: "object",
    description: `${rt.listKind} is a list of ${rt.kind}`,
    required: ["items"],
    properties: {
      apiVersion: { type: "string", description: "APIVersion defines the versioned schema of this representation of an object." },
      items: { type: "array", description: `List of ${rt.plural}.`, items: ref(schemaName(rt)) },
      kind: { type: "string", description: "Kind is a string value representing the REST resource this object represents." },
      metadata: { allOf: [ref("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")], description: "Standard list metadata." },
    },
    "x-kubernetes-group-version-kind": [{ group: rt.group, kind: rt.listKind, version: rt.version }],
  };
}

export class OpenApi {
  private docs = new Map<string, { body: string; hash: string }>();

  constructor(private readonly registry: Registry) {
    registry.onChange(() => this.docs.clear());
  }

  private doc(group: string, version: string): { body: string; hash: string } | undefined {
    const key = gvPath(group, version);
    const cached = this.docs.get(key);
    if (cached) return cached;
    const types = this.registry.resources(group, version);
    if (types.length === 0) return undefined;
    const paths: Record<string, unknown> = {};
    const schemas: Record<string, unknown> = { ...commonSchemas };
    for (const rt of types) {
      Object.assign(paths, pathsFor(rt));
      schemas[schemaName(rt)] = kindSchema(rt);
      schemas[schemaName(rt, rt.listKind)] = listSchema(rt);
    }
    const doc: Doc = { openapi: "3.0.0", info: { title: "Kubernetes", version: "v1.32.0" }, paths, components: { schemas } };
    const body = JSON.stringify(doc);
    const hash = createHash("sha512").update(body).digest("hex").toUpperCase().slice(0, 128);
    const out = { body, hash };
    this.docs.set(key, out);
    return out;
  }

  index(): string {
    const paths: Record<string, unknown> = {};
    for (const g of this.registry.groups()) {
      for (const v of g.versions) {
        const d = this.doc(g.group, v);
        if (d) paths[gvPath(g.group, v)] = { serverRelativeURL: `/openapi/v3/${gvPath(g.group, v)}?hash=${d.hash}` };
      }
    }
    return JSON.stringify({ paths });
  }

  /** The document for "apis/<g>/<v>" or "api/v1", or undefined. */
  document(path: string): string | undefined {
    const parts = path.split("/");
    if (parts[0] === "api" && parts.length === 2) return this.doc("", parts[1] ?? "")?.body;
    if (parts[0] === "apis" && parts.length === 3) return this.doc(parts[1] ?? "", parts[2] ?? "")?.body;
    return undefined;
  }
}
