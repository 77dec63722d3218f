// Loads the CustomResourceDefinitions shipped in crds/ (the schema source of truth).
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { parse } from "../vendor/yaml.js";

/** The subset of an OpenAPI v3 schema that Kubernetes structural schemas use. */
export interface JSONSchemaProps {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps | boolean;
  items?: JSONSchemaProps;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  nullable?: boolean;
  default?: unknown;
  anyOf?: JSONSchemaProps[];
  "x-kubernetes-int-or-string"?: boolean;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-list-type"?: string;
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-map-type"?: string;
  "x-kubernetes-embedded-resource"?: boolean;
}

export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    group: string;
    scope: "Namespaced" | "Cluster";
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames?: string[]; categories?: string[] };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: Record<string, never> };
      additionalPrinterColumns?: Array<{ name: string; type: string; jsonPath: string; description?: string; priority?: number; format?: string }>;
      schema: { openAPIV3Schema: JSONSchemaProps };
    }>;
  };
}

/** crds/ of this package, found from the compiled file's location (dist/api → ../../crds). */
export const crdDir = fileURLToPath(new URL("../../crds/", import.meta.url));

/** Every CRD in crds/, sorted by file name. */
export function loadCrds(dir: string = crdDir): CustomResourceDefinition[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => parse(readFileSync(join(dir, f), "utf8")) as CustomResourceDefinition);
}

export function loadCrd(kind: "Machine" | "MeshNetwork", dir: string = crdDir): CustomResourceDefinition {
  const crd = loadCrds(dir).find((c) => c.spec.names.kind === kind);
  if (!crd) throw new Error(`no CRD for kind ${kind} in ${dir}`);
  return crd;
}
