// deploy/: `kubectl kustomize deploy/` renders; every object validates against the upstream
// Kubernetes schema of its kind (kubernetes-models); the CRDs are crds/; the install fits together.
import { describe, test, before } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { projectRoot } from "../support/golden.js";
import { DEFAULT_LEASE_NAME } from "../../cli/controller.js";
import { parseObjects, validateAll, validateObject, type KubeObject } from "./k8s-schema.js";
import { checkInstall } from "./manifest-checks.js";
import { assertSameCrds } from "./crd-copies.js";
import { runOk } from "./tools.js";

let objs: KubeObject[];

describe("deploy/ (kustomize)", () => {
  before(async () => {
    objs = parseObjects(await runOk(["kubectl", "kustomize", "deploy/"]));
  });

  test("renders the namespace, CRDs, service account, RBAC, Deployment and metrics Service", () => {
    assert.deepEqual(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      "ClusterRole/dockmesh-controller",
      "ClusterRoleBinding/dockmesh-controller",
      "CustomResourceDefinition/machines.dockmesh.io",
      "CustomResourceDefinition/meshnetworks.dockmesh.io",
      "Deployment/dockmesh-controller",
      "Namespace/dockmesh-system",
      "Role/dockmesh-leader-election",
      "RoleBinding/dockmesh-leader-election",
      "Service/dockmesh-controller-metrics",
      "ServiceAccount/dockmesh-controller",
    ]);
  });

  test("every object validates against the upstream schema of its kind", async () => {
    await validateAll(objs);
  });

  test("the validation is real: a broken Deployment and an unknown kind are refused", async () => {
    const dep = structuredClone(objs.find((o) => o.kind === "Deployment")!) as KubeObject & { spec: Record<string, unknown> };
    dep.spec.replicas = "two";
    await assert.rejects(validateObject(dep), /spec\/replicas must be integer/);
    await assert.rejects(validateObject({ apiVersion: "apps/v1", kind: "Deploymnet", metadata: { name: "x" } }), /no upstream schema for kind Deploymnet/);
  });

  test("the CRDs are those of crds/, byte for byte in deploy/crds and in substance once rendered", () => {
    assertSameCrds("deploy/crds");
    for (const f of ["dockmesh.io_machines.yaml", "dockmesh.io_meshnetworks.yaml"]) {
      const src = parse(readFileSync(join(projectRoot, "crds", f), "utf8")) as KubeObject & { spec: unknown };
      const rendered = objs.find((o) => o.kind === "CustomResourceDefinition" && o.metadata.name === src.metadata.name) as KubeObject & { spec: unknown };
      assert.deepEqual(rendered.spec, src.spec);
    }
  });

  test("the install fits together: service account, bindings, the Lease role, flags, probes, hardening", () => {
    checkInstall(objs, { namespace: "dockmesh-system", leaseName: DEFAULT_LEASE_NAME });
    for (const o of objs)
      if (!["Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"].includes(o.kind)) assert.equal(o.metadata.namespace, "dockmesh-system", `${o.kind} ${o.metadata.name}`);
  });
});
