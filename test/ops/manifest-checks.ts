// Checks shared by the kustomize (deploy/) and Helm (helm/dockmesh) tests: the objects of a
// controller install fit together (service account, bindings, Lease name, probes, flags).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { projectRoot } from "../support/golden.js";
import type { KubeObject } from "./k8s-schema.js";

export interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: { httpGet?: { path?: string; port?: string | number } };
  readinessProbe?: { httpGet?: { path?: string; port?: string | number } };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

export interface DeploymentShape {
  spec: {
    replicas?: number;
    template: { spec: { serviceAccountName?: string; securityContext?: { runAsNonRoot?: boolean }; containers: Container[] } };
  };
}

export function one(objs: readonly KubeObject[], kind: string, filter: (o: KubeObject) => boolean = () => true): KubeObject {
  const found = objs.filter((o) => o.kind === kind && filter(o));
  assert.equal(found.length, 1, `exactly one ${kind}, found ${found.map((o) => o.metadata.name).join(", ") || "none"}`);
  return found[0]!;
}

/** Flags `dockmesh controller --help` lists. */
export function controllerFlags(): Set<string> {
  const r = spawnSync(process.execPath, [join(projectRoot, "bin/dockmesh.js"), "controller", "--help"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return new Set([...r.stdout.matchAll(/(--[a-z][a-z-]*)/g)].map((m) => m[1]!));
}

export function controllerContainer(objs: readonly KubeObject[]): { deployment: KubeObject & DeploymentShape; container: Container } {
  const deployment = one(objs, "Deployment") as KubeObject & DeploymentShape;
  const containers = deployment.spec.template.spec.containers;
  assert.equal(containers.length, 1);
  return { deployment, container: containers[0]! };
}

/** The install hangs together: who runs as what, with which flags, probed where. */
export function checkInstall(objs: readonly KubeObject[], opts: { namespace: string; leaseName: string }): void {
  const { deployment, container } = controllerContainer(objs);
  assert.equal(deployment.metadata.namespace, opts.namespace);
  const sa = one(objs, "ServiceAccount");
  assert.equal(sa.metadata.namespace, opts.namespace);
  assert.equal(deployment.spec.template.spec.serviceAccountName, sa.metadata.name, "the pod runs as the chart's service account");

  const subjectOk = (o: KubeObject) => {
    const subjects = (o as unknown as { subjects: Array<{ kind: string; name: string; namespace: string }> }).subjects;
    assert.deepEqual(subjects, [{ kind: "ServiceAccount", name: sa.metadata.name, namespace: opts.namespace }], `${o.kind} ${o.metadata.name} binds the service account`);
  };
  const crb = one(objs, "ClusterRoleBinding");
  subjectOk(crb);
  const cr = one(objs, "ClusterRole");
  assert.equal((crb as unknown as { roleRef: { name: string } }).roleRef.name, cr.metadata.name);
  const rb = one(objs, "RoleBinding");
  subjectOk(rb);
  const role = one(objs, "Role");
  assert.equal(role.metadata.namespace, opts.namespace, "the Lease role lives where the Lease does");
  assert.equal((rb as unknown as { roleRef: { name: string } }).roleRef.name, role.metadata.name);
  const named = (role as unknown as { rules: Rule[] }).rules.find((r) => r.resourceNames);
  assert.deepEqual(named?.resourceNames, [opts.leaseName], "get/update only on the controller's own Lease");

  // Flags: all known to the CLI; leader election on; the probes and the port match the bind address.
  const args = container.args ?? [];
  assert.equal(args[0], "controller");
  const known = controllerFlags();
  for (const a of args.slice(1)) assert.ok(known.has(a.split("=")[0]!), `flag ${a} is one \`dockmesh controller\` knows`);
  assert.ok(args.includes("--leader-elect"), "leader election is on");
  const bind = args.find((a) => a.startsWith("--metrics-bind-address="));
  const port = container.ports?.find((p) => p.name === "metrics")?.containerPort;
  assert.equal(bind, `--metrics-bind-address=:${port}`);
  assert.equal(container.livenessProbe?.httpGet?.path, "/healthz");
  assert.equal(container.readinessProbe?.httpGet?.path, "/readyz");
  assert.equal(container.livenessProbe?.httpGet?.port, "metrics");
  const env = new Map((container.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
  assert.equal(env.get("POD_NAME"), "metadata.name", "the Lease holder is the pod's name");
  assert.equal(env.get("POD_NAMESPACE"), "metadata.namespace");

  // Hardened: restricted Pod Security.
  assert.equal(deployment.spec.template.spec.securityContext?.runAsNonRoot, true);
  assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
  assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
  assert.deepEqual(container.securityContext?.capabilities?.drop, ["ALL"]);

  const svc = objs.find((o) => o.kind === "Service");
  if (svc) {
    const ports = (svc as unknown as { spec: { ports: Array<{ name: string; targetPort: string }>; selector: Record<string, string> } }).spec;
    assert.equal(ports.ports[0]?.targetPort, "metrics");
    const podLabels = (deployment.spec.template as unknown as { metadata: { labels: Record<string, string> } }).metadata.labels;
    for (const [k, v] of Object.entries(ports.selector)) assert.equal(podLabels[k], v, `the metrics Service selects the pods (${k})`);
  }
}

/** ClusterRole and Role rules as a sorted set of "group resource verb [name]" lines. */
export function permissions(objs: readonly KubeObject[]): string[] {
  const out = new Set<string>();
  for (const o of objs) {
    if (o.kind !== "ClusterRole" && o.kind !== "Role") continue;
    for (const r of (o as unknown as { rules: Rule[] }).rules) {
      for (const g of r.apiGroups)
        for (const res of r.resources) for (const v of r.verbs) out.add(`${o.kind === "Role" ? "ns:" : ""}${g || "core"} ${res} ${v}${r.resourceNames ? ` [${r.resourceNames.join(",")}]` : ""}`);
    }
  }
  return [...out].sort();
}
