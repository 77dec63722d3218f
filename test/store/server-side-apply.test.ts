// Acceptance (issue 18): the real kubectl 1.32 and client-node against the store for server-side
// apply, field ownership with a controller writing status, and `kubectl auth can-i`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CustomObjectsApi, type KubernetesObject } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { customResourceStatusClient, writeStatus } from "../../runtime/status.js";
import { kubeApiClient } from "../../runtime/kube-client.js";
import { startTestStore, type TestStore } from "./helpers.js";

const resource = { group: "dockmesh.io", version: "v1alpha1", plural: "machines" };

function machineYaml(name: string, o: { endpoint?: string; labels?: Record<string, string>; ports?: Array<[string, number]> } = {}): string {
  const labels = Object.entries(o.labels ?? {})
    .map(([k, v]) => `    ${k}: ${v}\n`)
    .join("");
  const ports = (o.ports ?? []).map(([mesh, port]) => `  - meshNetwork: ${mesh}\n    port: ${port}\n`).join("");
  return `apiVersion: dockmesh.io/v1alpha1
kind: Machine
metadata:
  name: ${name}
${labels ? `  labels:\n${labels}` : ""}spec:
  ssh:
    host: 203.0.113.10
    privateKeySecretRef:
      name: ssh
${o.endpoint ? `  endpoint: ${o.endpoint}\n` : ""}${ports ? `  endpointPorts:\n${ports}` : ""}`;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl's YAML, read field by field
type Loose = Record<string, any>;

function managersOf(obj: Loose): string[] {
  return ((obj.metadata?.managedFields ?? []) as Loose[]).map((e) => `${e.manager as string}/${e.operation as string}${e.subresource ? `/${e.subresource as string}` : ""}`).sort();
}

describe("server-side apply with kubectl", () => {
  let s: TestStore;
  const file = (name: string, text: string) => {
    const p = join(s.stateDir, name);
    writeFileSync(p, text);
    return p;
  };
  const getYaml = async (what: string[], managed = true): Promise<Loose> => {
    const r = await s.kubectl(["get", ...what, "-o", "yaml", ...(managed ? ["--show-managed-fields"] : [])]);
    assert.equal(r.code, 0, r.stderr);
    return parseAllDocuments(r.stdout)[0]?.toJSON() as Loose;
  };

  before(async () => {
    s = await startTestStore();
  });
  after(async () => {
    await s.dispose();
  });

  it("creates and updates", async () => {
    const f = file("m1.yaml", machineYaml("m1", { endpoint: "203.0.113.10:51820", labels: { env: "lab" } }));
    let r = await s.kubectl(["apply", "--server-side", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /machine\.dockmesh\.io\/m1 serverside-applied/);
    file("m1.yaml", machineYaml("m1", { endpoint: "203.0.113.11:51820", labels: { env: "lab" } }));
    r = await s.kubectl(["apply", "--server-side", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    const m = await getYaml(["machine", "m1"]);
    assert.equal(m.spec.endpoint, "203.0.113.11:51820");
    assert.equal(m.metadata.generation, 2);
    assert.deepEqual(managersOf(m), ["kubectl/Apply"]);
    const fields = m.metadata.managedFields[0].fieldsV1 as Loose;
    assert.deepEqual(Object.keys(fields["f:spec"]).sort(), ["f:endpoint", "f:ssh"]);
    assert.deepEqual(fields["f:metadata"], { "f:labels": { "f:env": {} } });
  });

  it("a second manager changing the same field conflicts; --force-conflicts takes it; both managers are shown", async () => {
    const other = file("m1-gitops.yaml", machineYaml("m1", { endpoint: "198.51.100.7:51820" }));
    let r = await s.kubectl(["apply", "--server-side", "--field-manager=gitops", "-f", other]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Apply failed with 1 conflict: conflict with "kubectl": \.spec\.endpoint/);
    assert.match(r.stderr, /--force-conflicts/);
    assert.equal((await getYaml(["machine", "m1"])).spec.endpoint, "203.0.113.11:51820", "the refused apply changed nothing");

    r = await s.kubectl(["apply", "--server-side", "--field-manager=gitops", "--force-conflicts", "-f", other]);
    assert.equal(r.code, 0, r.stderr);
    const m = await getYaml(["machine", "m1"]);
    assert.equal(m.spec.endpoint, "198.51.100.7:51820");
    assert.deepEqual(managersOf(m), ["gitops/Apply", "kubectl/Apply"]);
    const byManager = Object.fromEntries((m.metadata.managedFields as Loose[]).map((e) => [e.manager, e.fieldsV1]));
    assert.ok("f:endpoint" in byManager.gitops["f:spec"], "gitops owns spec.endpoint now");
    assert.ok(!("f:endpoint" in byManager.kubectl["f:spec"]), "kubectl lost spec.endpoint");
    assert.ok("f:host" in byManager.kubectl["f:spec"]["f:ssh"], "both own spec.ssh.host (same value)");
    assert.ok("f:host" in byManager.gitops["f:spec"]["f:ssh"]);
    // Without --show-managed-fields kubectl hides them, as against a real cluster.
    assert.equal((await getYaml(["machine", "m1"], false)).metadata.managedFields, undefined);
  });

  it("a field removed from the applied file is removed from the object", async () => {
    const f = file(
      "m2.yaml",
      machineYaml("m2", {
        labels: { env: "lab", tier: "edge" },
        ports: [
          ["alpha", 51820],
          ["beta", 51821],
        ],
      }),
    );
    let r = await s.kubectl(["apply", "--server-side", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    file("m2.yaml", machineYaml("m2", { labels: { env: "lab" }, ports: [["beta", 51821]] }));
    r = await s.kubectl(["apply", "--server-side", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    const m = await getYaml(["machine", "m2"]);
    assert.deepEqual(m.metadata.labels, { env: "lab" });
    assert.deepEqual(m.spec.endpointPorts, [{ meshNetwork: "beta", port: 51821 }]);
    file("m2.yaml", machineYaml("m2", { labels: { env: "lab" } }));
    r = await s.kubectl(["apply", "--server-side", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await getYaml(["machine", "m2"])).spec.endpointPorts, undefined);
  });

  it("a controller's status writes do not conflict with the user's apply, and a re-apply keeps status", async () => {
    const f = file("m3.yaml", machineYaml("m3", { endpoint: "203.0.113.30:51820" }));
    let r = await s.kubectl(["apply", "--server-side", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    // As the controllers write status: runtime/status.ts (PUT /status with fieldManager dockmesh-controller).
    const client = customResourceStatusClient<KubernetesObject & { status?: Loose }>(kubeApiClient(s.kc()), resource);
    const live = await client.get("default", "m3");
    const condition = { type: "Ready", status: "True", reason: "Ready", message: "all good", lastTransitionTime: "2025-01-01T00:00:00Z", observedGeneration: 1 };
    const written = await writeStatus(client, live, { conditions: [condition] });
    assert.equal(written.outcome, "written");
    // And a status patch as client-node's patchNamespacedCustomObjectStatus sends it (JSON Patch).
    const custom = s.kc().makeApiClient(CustomObjectsApi);
    await custom.patchNamespacedCustomObjectStatus({ ...resource, namespace: "default", name: "m3", body: [{ op: "add", path: "/status/peers", value: "0/0" }], fieldManager: "dockmesh-controller" });

    let m = await getYaml(["machine", "m3"]);
    assert.deepEqual(managersOf(m), ["dockmesh-controller/Update/status", "kubectl/Apply"]);
    const statusEntry = (m.metadata.managedFields as Loose[]).find((e) => e.subresource === "status") as Loose;
    assert.deepEqual(Object.keys(statusEntry.fieldsV1["f:status"]).sort(), ["f:conditions", "f:peers"]);

    file("m3.yaml", machineYaml("m3", { endpoint: "203.0.113.31:51820" }));
    r = await s.kubectl(["apply", "--server-side", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    m = await getYaml(["machine", "m3"]);
    assert.equal(m.spec.endpoint, "203.0.113.31:51820");
    assert.equal(m.status.peers, "0/0");
    assert.deepEqual(m.status.conditions, [condition]);
    assert.deepEqual(managersOf(m), ["dockmesh-controller/Update/status", "kubectl/Apply"]);

    // A status in the applied file is not the applier's to set through the main endpoint.
    file("m3.yaml", `${machineYaml("m3", { endpoint: "203.0.113.31:51820" })}status:\n  peers: 9/9\n`);
    r = await s.kubectl(["apply", "--server-side", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await getYaml(["machine", "m3"])).status.peers, "0/0");
  });

  it("ConfigMap: data keys are owned one by one; a key dropped from the file goes", async () => {
    const f = file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\ndata:\n  a: '1'\n  b: '2'\n");
    let r = await s.kubectl(["apply", "--server-side", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    r = await s.kubectl(["apply", "--server-side", "--field-manager=other", "-f", "-"], { input: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\ndata:\n  c: '3'\n" });
    assert.equal(r.code, 0, r.stderr);
    file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\ndata:\n  a: '1'\n");
    r = await s.kubectl(["apply", "--server-side", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await getYaml(["configmap", "c1"])).data, { a: "1", c: "3" });
  });

  it("objects created by a plain create record the creator (operation Update), and an apply of its fields conflicts", async () => {
    let r = await s.kubectl(["create", "configmap", "c2", "--from-literal=k=v"]);
    assert.equal(r.code, 0, r.stderr);
    const cm = await getYaml(["configmap", "c2"]);
    assert.deepEqual(managersOf(cm), ["kubectl-create/Update"]);
    r = await s.kubectl(["apply", "--server-side", "-f", "-"], { input: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c2\ndata:\n  k: changed\n" });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /conflict with "kubectl-create" using v1 at [0-9TZ:-]+: \.data\.k/);
  });

  it("client-side apply, then --server-side: kubectl's migration of managedFields goes through; a dropped key goes", async () => {
    const f = file("mig.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mig\ndata:\n  a: '1'\n  b: '2'\n");
    let r = await s.kubectl(["apply", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(managersOf(await getYaml(["configmap", "mig"])), ["kubectl-client-side-apply/Update"]);
    file("mig.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mig\ndata:\n  a: '1'\n");
    r = await s.kubectl(["apply", "--server-side", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    const cm = await getYaml(["configmap", "mig"]);
    assert.deepEqual(cm.data, { a: "1" });
    assert.ok(managersOf(cm).includes("kubectl/Apply"), managersOf(cm).join(", "));
  });

  it("kubectl auth can-i answers yes for the token holder", async () => {
    let r = await s.kubectl(["auth", "can-i", "create", "machines"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "yes");
    r = await s.kubectl(["auth", "can-i", "delete", "secrets", "-n", "kube-system"]);
    assert.equal(r.stdout.trim(), "yes");
    r = await s.kubectl(["auth", "can-i", "--list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\*\.\*\s+\[\]\s+\[\]\s+\[\*\]$/m);
    const review = await s.http("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", { apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview", spec: {} });
    assert.equal(review.status, 422, "exactly one of resourceAttributes and nonResourceAttributes");
    const discovery = await s.http("GET", "/apis/authorization.k8s.io/v1");
    assert.deepEqual(
      (discovery.json.resources as Loose[]).map((x) => [x.name, x.verbs]),
      [
        ["selfsubjectaccessreviews", ["create"]],
        ["selfsubjectrulesreviews", ["create"]],
      ],
    );
  });

  it("apply needs a field manager; force is for apply only; a wrong name is refused", async () => {
    const path = "/api/v1/namespaces/default/configmaps/c9";
    const body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c9\n";
    let r = await s.http("PATCH", path, body, { "Content-Type": "application/apply-patch+yaml" });
    assert.equal(r.status, 422);
    assert.match(String(r.json.message), /fieldManager: Required value: is required for apply patch/);
    r = await s.http("PATCH", `${path}?fieldManager=t`, body, { "Content-Type": "application/apply-patch+yaml" });
    assert.equal(r.status, 201, r.text);
    r = await s.http("PATCH", `${path}?fieldManager=t`, body, { "Content-Type": "application/apply-patch+yaml" });
    assert.equal(r.status, 200, r.text);
    r = await s.http("PATCH", `${path}?force=true`, { data: { a: "b" } }, { "Content-Type": "application/merge-patch+json" });
    assert.equal(r.status, 422);
    assert.match(String(r.json.message), /force: Forbidden: may not be specified for non-apply patch/);
    r = await s.http("PATCH", `${path}?fieldManager=t`, body.replace("c9", "other"), { "Content-Type": "application/apply-patch+yaml" });
    assert.equal(r.status, 400);
    r = await s.http("PATCH", `${path}?fieldManager=t`, `${body}  managedFields: []\n`, { "Content-Type": "application/apply-patch+yaml" });
    assert.equal(r.status, 400);
    assert.match(String(r.json.message), /metadata\.managedFields must be nil/);
  });
});
