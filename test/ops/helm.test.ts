// helm/dockmesh with the real helm 3 binary: lint passes; template renders objects that
// validate against the upstream schemas; the CRDs are crds/; each value reaches the
// Deployment; values.schema.json refuses bad values; RBAC equals deploy/'s.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { projectRoot } from "../support/golden.js";
import { DEFAULT_LEASE_NAME } from "../../cli/controller.js";
import { parseObjects, validateAll, type KubeObject } from "./k8s-schema.js";
import { checkInstall, controllerContainer, permissions } from "./manifest-checks.js";
import { assertSameCrds } from "./crd-copies.js";
import { helmBinary, helmEnv, run, runOk } from "./tools.js";

let helm: string;
let home: string;

async function template(...args: string[]): Promise<KubeObject[]> {
  return parseObjects(await runOk([helm, "template", "dockmesh", "helm/dockmesh", "--namespace", "dockmesh-system", ...args], { env: helmEnv(home) }));
}

describe("helm/dockmesh (real helm)", () => {
  before(async () => {
    helm = await helmBinary();
    home = mkdtempSync(join(tmpdir(), "dockmesh-helm-"));
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  test("helm lint --strict passes", async () => {
    const r = await run([helm, "lint", "--strict", "helm/dockmesh"], { env: helmEnv(home) });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test("helm template (with CRDs) renders objects that validate against the upstream schemas", async () => {
    const objs = await template("--include-crds");
    assert.deepEqual(objs.map((o) => o.kind).sort(), [
      "ClusterRole",
      "ClusterRoleBinding",
      "CustomResourceDefinition",
      "CustomResourceDefinition",
      "Deployment",
      "Role",
      "RoleBinding",
      "Service",
      "ServiceAccount",
    ]);
    await validateAll(objs);
    checkInstall(objs, { namespace: "dockmesh-system", leaseName: DEFAULT_LEASE_NAME });
  });

  test("the chart's CRDs are crds/, byte for byte", async () => {
    assertSameCrds("helm/dockmesh/crds");
    const objs = await template("--include-crds");
    for (const f of ["dockmesh.io_machines.yaml", "dockmesh.io_meshnetworks.yaml"]) {
      const src = parse(readFileSync(join(projectRoot, "crds", f), "utf8")) as KubeObject;
      assert.deepEqual(
        objs.find((o) => o.kind === "CustomResourceDefinition" && o.metadata.name === src.metadata.name),
        src,
      );
    }
  });

  test("values reach the Deployment: image, replicas, resources, log level and format, resync period, concurrency", async () => {
    const objs = await template(
      "--set",
      "image.repository=registry.test/dockmesh/controller",
      "--set",
      "image.tag=9.9.9",
      "--set",
      "replicas=3",
      "--set",
      "resources.requests.cpu=200m",
      "--set",
      "resources.limits.memory=1Gi",
      "--set",
      "logLevel=debug",
      "--set",
      "logFormat=text",
      "--set",
      "resyncPeriod=30s",
      "--set",
      "concurrency=4",
      "--set",
      "metrics.port=9090",
    );
    await validateAll(objs);
    const { deployment, container } = controllerContainer(objs);
    assert.equal(deployment.spec.replicas, 3);
    assert.equal(container.image, "registry.test/dockmesh/controller:9.9.9");
    assert.deepEqual(container.resources, { requests: { cpu: "200m", memory: "96Mi" }, limits: { memory: "1Gi" } });
    for (const a of ["--log-level=debug", "--log-format=text", "--resync-period=30s", "--concurrency=4", "--metrics-bind-address=:9090"])
      assert.ok(container.args?.includes(a), `${a} in ${container.args?.join(" ")}`);
    checkInstall(objs, { namespace: "dockmesh-system", leaseName: DEFAULT_LEASE_NAME });
    const defaults = controllerContainer(await template()).container;
    assert.equal(defaults.image, "dockmesh/controller:0.1.0", "the tag defaults to the chart's appVersion");
  });

  test("leader election off: no Lease role, no --leader-elect", async () => {
    const objs = await template("--set", "leaderElection.enabled=false");
    await validateAll(objs);
    assert.ok(!objs.some((o) => o.kind === "Role" || o.kind === "RoleBinding"));
    assert.ok(!controllerContainer(objs).container.args?.some((a) => a.startsWith("--leader-elect")));
  });

  test("values.schema.json refuses bad values", async () => {
    for (const bad of ["logLevel=loud", "logFormat=xml", "concurrency=0", "resyncPeriod=often", "replicaCount=2"]) {
      const r = await run([helm, "template", "dockmesh", "helm/dockmesh", "--set", bad], { env: helmEnv(home) });
      assert.notEqual(r.code, 0, `--set ${bad} must fail`);
      assert.match(r.stderr, /values don't meet the specifications of the schema|schema/i, bad);
    }
  });

  test("optional ServiceMonitor (prometheus-operator schema) and Grafana dashboard ConfigMap", async () => {
    const objs = await template(
      "--set",
      "metrics.serviceMonitor.enabled=true",
      "--set",
      "metrics.serviceMonitor.labels.release=kps",
      "--set",
      "metrics.serviceMonitor.interval=15s",
      "--set",
      "grafanaDashboard.enabled=true",
      "--set",
      "metrics.peerMaxPairs=250",
    );
    await validateAll(objs);
    const sm = objs.find((o) => o.kind === "ServiceMonitor") as KubeObject & {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string; interval: string }> };
    };
    const svc = objs.find((o) => o.kind === "Service") as KubeObject & { spec: { ports: Array<{ name: string }> } };
    assert.ok(sm && svc, "a ServiceMonitor and the metrics Service");
    assert.equal(sm.apiVersion, "monitoring.coreos.com/v1");
    assert.equal(sm.metadata.labels?.["release"], "kps");
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(svc.metadata.labels?.[k], v, `the ServiceMonitor selects the Service (${k})`);
    assert.deepEqual(
      sm.spec.endpoints.map((e) => [e.port, e.path, e.interval]),
      [["metrics", "/metrics", "15s"]],
    );
    assert.ok(
      svc.spec.ports.some((p) => p.name === "metrics"),
      "the Service's port is named metrics",
    );
    const cm = objs.find((o) => o.kind === "ConfigMap") as KubeObject & { data: Record<string, string> };
    assert.equal(cm.metadata.labels?.["grafana_dashboard"], "1");
    assert.deepEqual(
      JSON.parse(cm.data["dockmesh.json"]!),
      JSON.parse(readFileSync(join(projectRoot, "helm/dockmesh/dashboards/dockmesh.json"), "utf8")),
      "the ConfigMap carries dashboards/dockmesh.json",
    );
    assert.ok(controllerContainer(objs).container.args?.includes("--peer-metrics-max-pairs=250"));
    checkInstall(objs, { namespace: "dockmesh-system", leaseName: DEFAULT_LEASE_NAME });
    assert.ok(controllerContainer(await template()).container.args?.includes("--peer-metrics-max-pairs=1000"), "the default cap");
  });

  test("the ServiceMonitor schema check fails on a broken ServiceMonitor; the chart refuses one without its Service", async () => {
    const objs = await template("--set", "metrics.serviceMonitor.enabled=true");
    const sm = objs.find((o) => o.kind === "ServiceMonitor")!;
    const table: Array<[string, (o: KubeObject & { spec: Record<string, unknown> }) => void]> = [
      ["endpoints is not a list", (o) => (o.spec["endpoints"] = { port: "metrics" })],
      ["selector is a string", (o) => (o.spec["selector"] = "app=dockmesh")],
      ["scheme is not http or https", (o) => (o.spec["endpoints"] = [{ port: "metrics", scheme: "gopher" }])],
    ];
    for (const [what, breakIt] of table) {
      const bad = structuredClone(sm) as KubeObject & { spec: Record<string, unknown> };
      breakIt(bad);
      await assert.rejects(validateAll([bad]), /does not validate against the monitoring\.coreos\.com\/v1 ServiceMonitor schema/, what);
    }
    const r = await run([helm, "template", "dockmesh", "helm/dockmesh", "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.service.enabled=false"], { env: helmEnv(home) });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /metrics\.serviceMonitor\.enabled needs metrics\.service\.enabled/);
    for (const bad of ["metrics.serviceMonitor.interval=often", "metrics.peerMaxPairs=-1", "grafanaDashboard.enable=true"]) {
      const b = await run([helm, "template", "dockmesh", "helm/dockmesh", "--set", bad], { env: helmEnv(home) });
      assert.notEqual(b.code, 0, `--set ${bad} must fail`);
      assert.match(b.stderr, /schema/i, bad);
    }
  });

  test("the chart's RBAC is deploy/'s", async () => {
    const fromKustomize = parseObjects(await runOk(["kubectl", "kustomize", "deploy/"]));
    assert.deepEqual(permissions(await template()), permissions(fromKustomize));
  });
});
