// Validation of rendered manifests against the upstream Kubernetes OpenAPI schemas that the
// kubernetes-models package carries (compiled validators per kind; no schema written here).
// prometheus-operator kinds (the chart's optional ServiceMonitor) use the CRD's schema from
// @kubernetes-models/prometheus-operator, the same project's package for that CRD (4.x: the major
// whose validate/base/apimachinery dependencies match kubernetes-models 4.5). Both are test-only
// packages in tools/test-deps (installed by test/run.js, not by the root npm ci).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
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

/** Where the models of an apiVersion live: kubernetes-models, or the package of a CRD's project. */
function modelModule(apiVersion: string): string {
  return apiVersion.startsWith("monitoring.coreos.com/") ? `@kubernetes-models/prometheus-operator/${apiVersion}` : `kubernetes-models/${apiVersion}`;
}

const TEST_DEPS = join(projectRoot, "tools/test-deps");

/** A module of a package in tools/test-deps/node_modules (imported from there, not from here). */
async function importTestDep(specifier: string): Promise<Record<string, unknown>> {
  const loader = (await import(pathToFileURL(join(TEST_DEPS, "load.js")).href)) as { load(s: string): Promise<Record<string, unknown>> };
  return loader.load(specifier);
}

/**
 * Throws unless obj validates against the schema of its apiVersion and kind (an unknown kind
 * fails too: every object must have an upstream schema).
 */
export async function validateObject(obj: KubeObject): Promise<void> {
  const what = `${obj.kind} ${obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ""}${obj.metadata?.name}`;
  if (!existsSync(join(TEST_DEPS, "node_modules/kubernetes-models"))) {
    throw new Error(`kubernetes-models is not installed in ${TEST_DEPS}: run node tools/test-deps/install.js (test/run.js and npm test do)`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = await importTestDep(modelModule(obj.apiVersion));
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
