// Least privilege: the RBAC rules of deploy/ and of the Helm chart are exactly the
// permissions the controllers' API calls need, found by scanning the sources for
// client-node API methods. A new call without a rule (or a rule nothing uses) fails here.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { projectRoot } from "../support/golden.js";
import { DEFAULT_LEASE_NAME } from "../../cli/controller.js";
import { parseObjects } from "./k8s-schema.js";
import { permissions } from "./manifest-checks.js";
import { helmBinary, helmEnv, runOk } from "./tools.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

const KINDS = ["machines", "meshnetworks"];
const lease = (verb: string, named: boolean) => `ns:coordination.k8s.io leases ${verb}${named ? ` [${DEFAULT_LEASE_NAME}]` : ""}`;

/** client-node method → the permissions it needs (an informer's list also watches). */
const NEEDS: Record<string, string[]> = {
  // SSH key Secrets by name (not watched), and the controller's own ones by name.
  readNamespacedSecret: ["core secrets get"],
  // WireGuard key Secrets; host key records (created on first contact, replaced to follow a pin).
  createNamespacedSecret: ["core secrets create"],
  replaceNamespacedSecret: ["core secrets update"],
  // Only with the label selector app.kubernetes.io/managed-by=dockmesh (RBAC cannot say so;
  // test/security/secrets-watch.test.ts checks the requests, the test below the call).
  listNamespacedSecret: ["core secrets list", "core secrets watch"],
  listSecretForAllNamespaces: ["core secrets list", "core secrets watch"],
  createNamespacedEvent: ["core events create"],
  patchNamespacedEvent: ["core events patch"],
  getNamespacedCustomObject: KINDS.map((k) => `dockmesh.io ${k} get`),
  getClusterCustomObject: KINDS.map((k) => `dockmesh.io ${k} get`),
  listNamespacedCustomObject: KINDS.flatMap((k) => [`dockmesh.io ${k} list`, `dockmesh.io ${k} watch`]),
  listClusterCustomObject: KINDS.flatMap((k) => [`dockmesh.io ${k} list`, `dockmesh.io ${k} watch`]),
  replaceNamespacedCustomObjectStatus: KINDS.map((k) => `dockmesh.io ${k}/status update`),
  replaceClusterCustomObjectStatus: KINDS.map((k) => `dockmesh.io ${k}/status update`),
  // Only the Machine finalizer is patched (controllers/resources.ts).
  patchNamespacedCustomObject: ["dockmesh.io machines patch"],
  readNamespacedLease: [lease("get", true)],
  createNamespacedLease: [lease("create", false)],
  replaceNamespacedLease: [lease("update", true)],
};

/** Every method name of client-node's generated API classes (CoreV1Api, CustomObjectsApi, …). */
function clientNodeMethods(): Set<string> {
  const names = new Set<string>();
  for (const [exported, value] of Object.entries(k8s)) {
    if (!/Api$/.test(exported) || typeof value !== "function") continue;
    for (const m of Object.getOwnPropertyNames((value as { prototype: object }).prototype)) if (m !== "constructor") names.add(m);
  }
  return names;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** client-node API methods called by the code that runs in `dockmesh controller`. */
function calledMethods(): Map<string, string[]> {
  const api = clientNodeMethods();
  const calls = new Map<string, string[]>();
  for (const dir of ["controllers", "runtime", "hosts", "mesh", "cli", "api"]) {
    for (const file of sources(join(projectRoot, dir))) {
      for (const m of readFileSync(file, "utf8").matchAll(/\.([a-zA-Z]+)\s*\(/g)) {
        const name = m[1]!;
        if (!api.has(name) || !/(Namespaced|Cluster|ForAllNamespaces)/.test(name)) continue;
        calls.set(name, [...(calls.get(name) ?? []), relative(projectRoot, file)]);
      }
    }
  }
  return calls;
}

function needed(): string[] {
  const out = new Set<string>();
  for (const method of calledMethods().keys()) for (const p of NEEDS[method] ?? []) out.add(p);
  // An owner reference with blockOwnerDeletion (the WireGuard key Secret) needs update on the
  // owner's finalizers subresource where OwnerReferencesPermissionEnforcement is on.
  if (sources(join(projectRoot, "controllers")).some((f) => /blockOwnerDeletion:\s*true/.test(readFileSync(f, "utf8")))) out.add("dockmesh.io machines/finalizers update");
  return [...out].sort();
}

describe("RBAC is least privilege", () => {
  test("every client-node call in the controller's code has a known permission", () => {
    const unknown = [...calledMethods()].filter(([m]) => !(m in NEEDS));
    assert.deepEqual(unknown, [], "a new API call: add its permission to NEEDS here and to deploy/rbac and the chart");
  });

  test("the controllers' Secret informer is made with the label selector of the Secrets they own", () => {
    const calls = sources(join(projectRoot, "controllers")).flatMap((f) => [...readFileSync(f, "utf8").matchAll(/secretInformer\(([^;]*)\);/g)].map((m) => `${relative(projectRoot, f)}: ${m[1]}`));
    assert.ok(calls.length > 0, "a Secret informer is made");
    for (const c of calls) assert.match(c, /labelSelector: OWNED_SECRETS_SELECTOR/, `an informer over all Secrets: ${c}`);
  });

  test("deploy/ grants exactly what the code needs", async () => {
    const objs = parseObjects(await runOk(["kubectl", "kustomize", "deploy/"]));
    assert.deepEqual(permissions(objs), needed());
  });

  test("the Helm chart grants exactly what the code needs", async () => {
    const home = mkdtempSync(join(tmpdir(), "dockmesh-helm-"));
    try {
      const objs = parseObjects(await runOk([await helmBinary(), "template", "dockmesh", "helm/dockmesh", "--namespace", "dockmesh-system"], { env: helmEnv(home) }));
      assert.deepEqual(permissions(objs), needed());
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
