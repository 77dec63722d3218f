// Built-in kinds: what dockmesh and its users need from core v1, coordination.k8s.io and
// apiextensions.k8s.io, with schemas complete enough for validation, pruning and `kubectl explain`.
import type { JSONSchemaProps } from "../api/crd-schema.js";
import type { ResourceType } from "./registry.js";

const str = (description: string, extra: Partial<JSONSchemaProps> = {}): JSONSchemaProps => ({ type: "string", description, ...extra });
const int = (description: string, extra: Partial<JSONSchemaProps> = {}): JSONSchemaProps => ({ type: "integer", description, ...extra });
const bool = (description: string): JSONSchemaProps => ({ type: "boolean", description });
const strMap = (description: string, valueFormat?: string): JSONSchemaProps => ({
  type: "object",
  description,
  additionalProperties: valueFormat ? { type: "string", format: valueFormat } : { type: "string" },
});

const typeMeta: Record<string, JSONSchemaProps> = {
  apiVersion: str("APIVersion defines the versioned schema of this representation of an object."),
  kind: str("Kind is a string value representing the REST resource this object represents."),
  metadata: { type: "object", description: "Standard object's metadata." },
};

const objectReference: JSONSchemaProps = {
  type: "object",
  description: "ObjectReference contains enough information to let you inspect or modify the referred object.",
  properties: {
    apiVersion: str("API version of the referent."),
    kind: str("Kind of the referent."),
    name: str("Name of the referent."),
    namespace: str("Namespace of the referent."),
    uid: str("UID of the referent."),
    resourceVersion: str("Specific resourceVersion to which this reference is made, if any."),
    fieldPath: str("If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement."),
  },
};

const localObjectReference: JSONSchemaProps = {
  type: "object",
  description: "LocalObjectReference contains enough information to let you locate the referenced object inside the same namespace.",
  properties: { name: str("Name of the referent.") },
};

const conditionsSchema: JSONSchemaProps = {
  type: "array",
  description: "Conditions.",
  items: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
};

function builtin(rt: Omit<ResourceType, "builtin" | "key" | "listKind" | "nameRule" | "generation"> & Partial<Pick<ResourceType, "nameRule" | "generation">>): ResourceType {
  return { nameRule: "subdomain", generation: false, ...rt, builtin: true, listKind: `${rt.kind}List`, key: `${rt.group}/${rt.plural}` };
}

export function builtinTypes(): ResourceType[] {
  return [
    builtin({
      group: "",
      version: "v1",
      kind: "Namespace",
      plural: "namespaces",
      singular: "namespace",
      namespaced: false,
      shortNames: ["ns"],
      categories: [],
      statusSubresource: true,
      nameRule: "label",
      fieldSelectors: { "status.phase": (o) => String((o.status as Record<string, unknown> | undefined)?.phase ?? "") },
      schema: {
        type: "object",
        description: "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
        properties: {
          ...typeMeta,
          spec: {
            type: "object",
            description: "Spec defines the behavior of the Namespace.",
            properties: {
              finalizers: { type: "array", description: "Finalizers is an opaque list of values that must be empty to permanently remove object from storage.", items: { type: "string" } },
            },
          },
          status: {
            type: "object",
            description: "Status describes the current status of a Namespace.",
            properties: {
              phase: str("Phase is the current lifecycle phase of the namespace.", { enum: ["Active", "Terminating"] }),
              conditions: { ...conditionsSchema, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] },
            },
          },
        },
      },
    }),
    builtin({
      group: "",
      version: "v1",
      kind: "Secret",
      plural: "secrets",
      singular: "secret",
      namespaced: true,
      shortNames: [],
      categories: [],
      statusSubresource: false,
      fieldSelectors: { type: (o) => String(o.type ?? "") },
      schema: {
        type: "object",
        description: "Secret holds secret data of a certain type. The total bytes of the values in the Data field must be less than MaxSecretSize bytes.",
        properties: {
          ...typeMeta,
          data: strMap("Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string.", "byte"),
          stringData: strMap("stringData allows specifying non-binary secret data in string form. It is provided as a write-only input field for convenience."),
          type: str("Used to facilitate programmatic handling of secret data."),
          immutable: bool("Immutable, if set to true, ensures that data stored in the Secret cannot be updated (only object metadata can be modified)."),
        },
      },
    }),
    builtin({
      group: "",
      version: "v1",
      kind: "ConfigMap",
      plural: "configmaps",
      singular: "configmap",
      namespaced: true,
      shortNames: ["cm"],
      categories: [],
      statusSubresource: false,
      schema: {
        type: "object",
        description: "ConfigMap holds configuration data for pods to consume.",
        properties: {
          ...typeMeta,
          data: strMap("Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'."),
          binaryData: strMap("BinaryData contains the binary data. Each key must consist of alphanumeric characters, '-', '_' or '.'.", "byte"),
          immutable: bool("Immutable, if set to true, ensures that data stored in the ConfigMap cannot be updated (only object metadata can be modified)."),
        },
      },
    }),
    builtin({
      group: "",
      version: "v1",
      kind: "Event",
      plural: "events",
      singular: "event",
      namespaced: true,
      shortNames: ["ev"],
      categories: [],
      statusSubresource: false,
      fieldSelectors: {
        "involvedObject.kind": (o) => refField(o, "kind"),
        "involvedObject.namespace": (o) => refField(o, "namespace"),
        "involvedObject.name": (o) => refField(o, "name"),
        "involvedObject.uid": (o) => refField(o, "uid"),
        "involvedObject.apiVersion": (o) => refField(o, "apiVersion"),
        "involvedObject.resourceVersion": (o) => refField(o, "resourceVersion"),
        "involvedObject.fieldPath": (o) => refField(o, "fieldPath"),
        reason: (o) => String(o.reason ?? ""),
        reportingComponent: (o) => String(o.reportingComponent ?? ""),
        source: (o) => String((o.source as Record<string, unknown> | undefined)?.component ?? o.reportingComponent ?? ""),
        type: (o) => String(o.type ?? ""),
      },
      schema: {
        type: "object",
        description: "Event is a report of an event somewhere in the cluster.",
        required: ["involvedObject"],
        properties: {
          ...typeMeta,
          involvedObject: objectReference,
          reason: str("This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
          message: str("A human-readable description of the status of this operation."),
          source: {
            type: "object",
            description: "The component reporting this event.",
            properties: { component: str("Component from which the event is generated."), host: str("Node name on which the event is generated.") },
          },
          firstTimestamp: str("The time at which the event was first recorded.", { format: "date-time", nullable: true }),
          lastTimestamp: str("The time at which the most recent occurrence of this event was recorded.", { format: "date-time", nullable: true }),
          count: int("The number of times this event has occurred."),
          type: str("Type of this event (Normal, Warning), new types could be added in the future"),
          eventTime: str("Time when this Event was first observed.", { nullable: true }),
          series: {
            type: "object",
            description: "Data about the Event series this event represents.",
            properties: { count: int("Number of occurrences in this series up to the last heartbeat time"), lastObservedTime: str("Time of the last occurrence observed") },
          },
          action: str("What action was taken/failed regarding to the Regarding object."),
          related: objectReference,
          reportingComponent: str("Name of the controller that emitted this Event."),
          reportingInstance: str("ID of the controller instance."),
        },
      },
    }),
    builtin({
      group: "",
      version: "v1",
      kind: "ServiceAccount",
      plural: "serviceaccounts",
      singular: "serviceaccount",
      namespaced: true,
      shortNames: ["sa"],
      categories: [],
      statusSubresource: false,
      schema: {
        type: "object",
        description:
          "ServiceAccount binds together: a name, understood by users, and perhaps by peripheral systems, for an identity; a principal that can be authenticated and authorized; a set of secrets.",
        properties: {
          ...typeMeta,
          automountServiceAccountToken: bool("AutomountServiceAccountToken indicates whether pods running as this service account should have an API token automatically mounted."),
          imagePullSecrets: { type: "array", description: "ImagePullSecrets is a list of references to secrets in the same namespace to use for pulling any images.", items: localObjectReference },
          secrets: {
            type: "array",
            description: "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
            items: objectReference,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
          },
        },
      },
    }),
    builtin({
      group: "coordination.k8s.io",
      version: "v1",
      kind: "Lease",
      plural: "leases",
      singular: "lease",
      namespaced: true,
      shortNames: [],
      categories: [],
      statusSubresource: false,
      schema: {
        type: "object",
        description: "Lease defines a lease concept.",
        properties: {
          ...typeMeta,
          spec: {
            type: "object",
            description: "spec contains the specification of the Lease.",
            properties: {
              holderIdentity: str("holderIdentity contains the identity of the holder of a current lease.", { nullable: true }),
              leaseDurationSeconds: int("leaseDurationSeconds is a duration that candidates for a lease need to wait to force acquire it.", { nullable: true }),
              acquireTime: str("acquireTime is a time when the current lease was acquired.", { nullable: true }),
              renewTime: str("renewTime is a time when the current holder of a lease has last updated the lease.", { nullable: true }),
              leaseTransitions: int("leaseTransitions is the number of transitions of a lease between holders.", { nullable: true }),
              strategy: str("Strategy indicates the strategy for picking the leader for coordinated leader election.", { nullable: true }),
              preferredHolder: str("PreferredHolder signals to a lease holder that the lease has a more optimal holder and should be given up.", { nullable: true }),
            },
          },
        },
      },
    }),
    builtin({
      group: "apiextensions.k8s.io",
      version: "v1",
      kind: "CustomResourceDefinition",
      plural: "customresourcedefinitions",
      singular: "customresourcedefinition",
      namespaced: false,
      shortNames: ["crd", "crds"],
      categories: ["api-extensions"],
      statusSubresource: true,
      generation: true,
      schema: {
        type: "object",
        description: "CustomResourceDefinition represents a resource that should be exposed on the API server. Its name MUST be in the format <.spec.name>.<.spec.group>.",
        required: ["spec"],
        properties: {
          ...typeMeta,
          spec: {
            type: "object",
            description: "spec describes how the user wants the resources to appear",
            required: ["group", "names", "scope", "versions"],
            properties: {
              group: str("group is the API group of the defined custom resource."),
              names: {
                type: "object",
                description: "names specify the resource and kind names for the custom resource.",
                required: ["plural", "kind"],
                properties: {
                  plural: str("plural is the plural name of the resource to serve."),
                  singular: str("singular is the singular name of the resource."),
                  kind: str("kind is the serialized kind of the resource."),
                  listKind: str("listKind is the serialized kind of the list for this resource."),
                  shortNames: { type: "array", description: "shortNames are short names for the resource.", items: { type: "string" } },
                  categories: { type: "array", description: "categories is a list of grouped resources this custom resource belongs to (e.g. 'all').", items: { type: "string" } },
                },
              },
              scope: str("scope indicates whether the defined custom resource is cluster- or namespace-scoped.", { enum: ["Cluster", "Namespaced"] }),
              versions: {
                type: "array",
                description: "versions is the list of all API versions of the defined custom resource.",
                items: { type: "object", "x-kubernetes-preserve-unknown-fields": true, required: ["name", "served", "storage"] },
              },
              conversion: { type: "object", description: "conversion defines conversion settings for the CRD.", "x-kubernetes-preserve-unknown-fields": true },
              preserveUnknownFields: bool("preserveUnknownFields indicates that object fields which are not specified in the OpenAPI schema should be preserved when persisting to storage."),
            },
          },
          status: { type: "object", description: "status indicates the actual state of the CustomResourceDefinition", "x-kubernetes-preserve-unknown-fields": true },
        },
      },
    }),
  ];
}

function refField(o: Record<string, unknown>, f: string): string {
  const ref = o.involvedObject as Record<string, unknown> | undefined;
  return String(ref?.[f] ?? "");
}
