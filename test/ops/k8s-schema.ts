// Validation of rendered manifests against the upstream Kubernetes OpenAPI schemas that the
// kubernetes-models package carries (compiled validators per kind; no schema written here).
// prometheus-operator kinds (the chart's optional ServiceMonitor) use the CRD's schema vendored
// from @kubernetes-models/prometheus-operator (test/vendor/prometheus-operator/README.md).
import { createRequire } from "node:module";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { projectRoot } from "../support/golden.js";

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
}

/** The documents of a YAML stream (empty ones dropped). */
export function parseObjects(text: string): KubeObject[] {
  const docs = parseAllDocuments(text);
  const out: KubeObject[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`YAML error: ${d.errors[0]!.message}`);
    const v = d.toJS() as KubeObject | null;
    if (v) out.push(v);
  }
  return out;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/**
 * Throws unless obj validates against the schema of its apiVersion and kind (an unknown kind
 * fails too: every object must have an upstream schema).
 */
/** ajv's compiled validator: true, or false with its errors on the function. */
interface CompiledValidator {
  (data: unknown): boolean;
  errors?: Array<{ instancePath: string; message?: string; params?: unknown }> | null;
}

const VENDORED: Record<string, string> = {
  "monitoring.coreos.com/v1/ServiceMonitor": "test/vendor/prometheus-operator/MonitoringCoreosComV1ServiceMonitor.cjs",
};

function validateVendored(obj: KubeObject, file: string, what: string): void {
  const { validate } = createRequire(join(projectRoot, file))(join(projectRoot, file)) as { validate: CompiledValidator };
  if (!validate(obj)) {
    const errs = (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params ?? {})}`).join("; ");
    throw new Error(`${what} does not validate against the ${obj.apiVersion} ${obj.kind} schema: ${errs}`);
  }
}

export async function validateObject(obj: KubeObject): Promise<void> {
  const what = `${obj.kind} ${obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ""}${obj.metadata?.name}`;
  const vendored = VENDORED[`${obj.apiVersion}/${obj.kind}`];
  if (vendored) return validateVendored(obj, vendored, what);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(`kubernetes-models/${obj.apiVersion}`)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${what}: no upstream schema for apiVersion ${obj.apiVersion}`, { cause: err });
  }
  const Model = mod[obj.kind] as ModelClass | undefined;
  if (typeof Model !== "function") throw new Error(`${what}: no upstream schema for kind ${obj.kind} in ${obj.apiVersion}`);
  try {
    new Model(obj).validate();
  } catch (err) {
    throw new Error(`${what} does not validate against the ${obj.apiVersion} ${obj.kind} schema: ${(err as Error).message}`, { cause: err });
  }
}

export async function validateAll(objs: readonly KubeObject[]): Promise<void> {
  for (const o of objs) await validateObject(o);
}
