// How server-side apply sees a schema, as structured-merge-diff does: an object with properties is a
// struct (its properties are "named fields"), one with additionalProperties a map, both granular
// unless x-kubernetes-map-type is atomic; a list is atomic unless x-kubernetes-list-type says map
// (x-kubernetes-list-map-keys) or set; x-kubernetes-preserve-unknown-fields and schema-less values are
// "deduced": objects are granular maps, lists atomic. metadata has ObjectMeta's types.
import type { JSONSchemaProps } from "../api/crd-schema.js";
import type { ResourceType } from "./registry.js";
import { isPlainObject } from "./validation.js";

/** Schema of a value nothing describes: structured-merge-diff's __untyped_deduced_. */
export const deduced: JSONSchemaProps = { "x-kubernetes-preserve-unknown-fields": true };

const scalar = (type: JSONSchemaProps["type"]): JSONSchemaProps => ({ type });
const stringMap: JSONSchemaProps = { type: "object", additionalProperties: scalar("string") };

/** metav1.ObjectMeta's list and map types (ownerReferences keyed by uid, finalizers a set). */
export const objectMetaTypes: JSONSchemaProps = {
  type: "object",
  properties: {
    name: scalar("string"),
    generateName: scalar("string"),
    namespace: scalar("string"),
    selfLink: scalar("string"),
    uid: scalar("string"),
    resourceVersion: scalar("string"),
    generation: scalar("integer"),
    creationTimestamp: scalar("string"),
    deletionTimestamp: scalar("string"),
    deletionGracePeriodSeconds: scalar("integer"),
    labels: stringMap,
    annotations: stringMap,
    ownerReferences: {
      type: "array",
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["uid"],
      items: {
        type: "object",
        properties: { apiVersion: scalar("string"), kind: scalar("string"), name: scalar("string"), uid: scalar("string"), controller: scalar("boolean"), blockOwnerDeletion: scalar("boolean") },
      },
    },
    finalizers: { type: "array", "x-kubernetes-list-type": "set", items: scalar("string") },
    managedFields: { type: "array", items: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
  },
};

const roots = new WeakMap<ResourceType, JSONSchemaProps>();

/** The schema of a whole object of kind rt as apply merges it (metadata as ObjectMeta). */
export function rootSchema(rt: ResourceType): JSONSchemaProps {
  let r = roots.get(rt);
  if (!r) {
    r = { ...rt.schema, type: "object", properties: { ...(rt.schema.properties ?? {}), metadata: objectMetaTypes, apiVersion: scalar("string"), kind: scalar("string") } };
    roots.set(rt, r);
  }
  return r;
}

/** The schema of field `key` of an object, or undefined when the schema does not allow it (pruned). */
export function fieldSchema(s: JSONSchemaProps, key: string): JSONSchemaProps | undefined {
  const p = s.properties?.[key];
  if (p) return p;
  if (isPlainObject(s.additionalProperties)) return s.additionalProperties;
  if (s.additionalProperties === true || s["x-kubernetes-preserve-unknown-fields"] === true || (!s.properties && s.type === undefined)) return deduced;
  return undefined;
}

/** A named field is a property of a struct; keys of a map are not. */
export function isNamedField(s: JSONSchemaProps, key: string): boolean {
  return s.properties?.[key] !== undefined;
}

export function mapIsAtomic(s: JSONSchemaProps): boolean {
  return s["x-kubernetes-map-type"] === "atomic";
}

export type ListType = { type: "atomic" } | { type: "set" } | { type: "map"; keys: string[] };

export function listType(s: JSONSchemaProps): ListType {
  const lt = s["x-kubernetes-list-type"];
  if (lt === "set") return { type: "set" };
  if (lt === "map") return { type: "map", keys: [...(s["x-kubernetes-list-map-keys"] ?? [])].sort() };
  return { type: "atomic" };
}

export function itemSchema(s: JSONSchemaProps): JSONSchemaProps {
  return s.items ?? deduced;
}
