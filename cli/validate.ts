// Checks a manifest the way the API server would before `dockmesh plan` trusts it: the same
// structural-schema validation the embedded store runs (crds/ is the schema), strict about
// unknown fields, plus the object-metadata rules. The CRDs come from api/crds.generated.ts (crds/
// as a module), not from the YAML: parsing that would take most of the command's start-up.
import type { CustomResourceDefinition } from "../api/crd-schema.js";
import { CRDS } from "../api/crds.generated.js";
import { applySchema, isPlainObject, validateObjectMeta, type SchemaResult } from "../store/validation.js";

export interface Problem {
  field: string;
  message: string;
}

const IGNORED = new Set(["v1/Secret", "v1/ConfigMap", "v1/Namespace"]);
let crds: Map<string, CustomResourceDefinition> | undefined;

function crdFor(kind: string): CustomResourceDefinition | undefined {
  crds ??= new Map(CRDS.map((c) => [`${c.spec.group}/${c.spec.versions[0]!.name}/${c.spec.names.kind}`, c]));
  return crds.get(kind);
}

/** "ignore" for kinds plan does not use (Secrets, …); otherwise the problems found (none: valid). */
export function checkManifest(obj: Record<string, unknown>): Problem[] | "ignore" {
  const gvk = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  if (IGNORED.has(gvk)) return "ignore";
  const crd = crdFor(gvk);
  if (!crd) return [{ field: "kind", message: `${gvk} is not a dockmesh kind; expected apiVersion dockmesh.io/v1alpha1 with kind Machine or MeshNetwork` }];
  if (!isPlainObject(obj.metadata)) return [{ field: "metadata", message: "Required value: every object needs metadata with a name" }];
  const problems: Problem[] = validateObjectMeta({ namespace: "default", ...obj.metadata }, "subdomain", true).map((c) => ({ field: c.field, message: c.message }));
  const schema = crd.spec.versions[0]!.schema.openAPIV3Schema;
  for (const key of Object.keys(obj)) {
    if (!["apiVersion", "kind", "metadata", "spec", "status"].includes(key)) problems.push({ field: key, message: `unknown field "${key}"` });
  }
  if (obj.spec === undefined) problems.push({ field: "spec", message: "Required value" });
  else {
    const out: SchemaResult = { causes: [], unknown: [] };
    applySchema(schema.properties!.spec!, structuredClone(obj.spec), "spec", out);
    problems.push(...out.causes.map((c) => ({ field: c.field, message: c.message })));
    problems.push(...out.unknown.map((f) => ({ field: f, message: `unknown field "${f}" (strict decoding, as kubectl apply does)` })));
  }
  return problems;
}
