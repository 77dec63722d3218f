// Acceptance: the real kubectl binary (1.32) against the embedded store.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { startTestStore, waitFor, sleep, type TestStore } from "./helpers.js";

const group = "dockmesh.io";
const version = "v1alpha1";
const plural = "machines";

function machineYaml(name: string, host: string, extra = ""): string {
  return `apiVersion: dockmesh.io/v1alpha1
kind: Machine
metadata:
  name: ${name}
  labels:
    env: lab
spec:
  ssh:
    host: ${host}
    privateKeySecretRef:
      name: ssh
  endpoint: ${host}:51820
${extra}`;
}

/** A kubectl that runs in the background (get -w, wait, delete); stopped by its PID. */
function background(s: TestStore, args: string[]): { proc: ChildProcess; out: () => string; exited: Promise<number> } {
  const proc = spawn("kubectl", args, {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", KUBECONFIG: s.kubeconfigPath, KUBECACHEDIR: join(s.stateDir, "kubectl-cache"), HOME: s.stateDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) => proc.on("exit", (code) => resolve(code ?? -1)));
  return { proc, out: () => out, exited };
}

function stop(p: ChildProcess): void {
  if (p.exitCode === null && p.pid !== undefined) p.kill("SIGTERM");
}

describe("kubectl against the store", () => {
  let s: TestStore;
  let custom: CustomObjectsApi;
  let core: CoreV1Api;
  const file = (name: string, text: string) => {
    const p = join(s.stateDir, name);
    writeFileSync(p, text);
    return p;
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped custom objects, read field by field
  const getMachine = (name: string) => custom.getNamespacedCustomObject({ group, version, namespace: "default", plural, name }) as Promise<Record<string, any>>;

  before(async () => {
    s = await startTestStore();
    custom = s.kc().makeApiClient(CustomObjectsApi);
    core = s.kc().makeApiClient(CoreV1Api);
  });
  after(async () => {
    await s.dispose();
  });

  it("apply creates, changes, then reports unchanged", async () => {
    const f = file("m1.yaml", machineYaml("m1", "203.0.113.10"));
    let r = await s.kubectl(["apply", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /machine\.dockmesh\.io\/m1 created/);
    r = await s.kubectl(["apply", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /machine\.dockmesh\.io\/m1 unchanged/);
    file("m1.yaml", machineYaml("m1", "203.0.113.11"));
    r = await s.kubectl(["apply", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /machine\.dockmesh\.io\/m1 configured/);
    const m = await getMachine("m1");
    assert.equal(m.spec.ssh.host, "203.0.113.11");
    assert.equal(m.metadata.generation, 2);
    r = await s.kubectl(["apply", "-f", f]);
    assert.match(r.stdout, /unchanged/);
  });

  it("apply of an invalid Machine fails with 422 naming the fields", async () => {
    const f = file(
      "bad.yaml",
      `apiVersion: dockmesh.io/v1alpha1
kind: Machine
metadata: {name: bad}
spec:
  ssh:
    port: 70000
    privateKeySecretRef: {name: ssh}
`,
    );
    const r = await s.kubectl(["apply", "-f", f]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /The Machine "bad" is invalid/);
    assert.match(r.stderr, /spec\.ssh\.host: Required value/);
    assert.match(r.stderr, /spec\.ssh\.port: Invalid value: 70000: spec\.ssh\.port in body should be less than or equal to 65535/);
    const unknown = file("unknown.yaml", machineYaml("bad2", "203.0.113.12", "  colour: blue\n"));
    const r2 = await s.kubectl(["apply", "-f", unknown]);
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /strict decoding error: unknown field "spec\.colour"/);
    const list = (await custom.listNamespacedCustomObject({ group, version, namespace: "default", plural })) as { items: Array<{ metadata: { name: string } }> };
    assert.deepEqual(
      list.items.map((i) => i.metadata.name).filter((n) => n.startsWith("bad")),
      [],
    );
  });

  it("get prints the printer columns, -o wide, -o yaml and -l", async () => {
    let r = await s.kubectl(["get", "machines"]);
    assert.equal(r.code, 0, r.stderr);
    const header = r.stdout.split("\n")[0] ?? "";
    assert.deepEqual(header.trim().split(/\s+/), ["NAME", "HOST", "SUBNET", "PEERS", "READY", "REASON", "DNS", "AGE"]);
    assert.match(r.stdout, /^m1\s+203\.0\.113\.11\s+\d+s$/m);
    r = await s.kubectl(["get", "machines", "-o", "wide"]);
    assert.match(r.stdout.split("\n")[0] ?? "", /ENDPOINT\s+DOCKER\s+WIREGUARD\s+PUBLIC-KEY/);
    assert.match(r.stdout, /203\.0\.113\.11:51820/);
    r = await s.kubectl(["get", "machine", "m1", "-o", "yaml"]);
    assert.match(r.stdout, /^kind: Machine$/m);
    assert.match(r.stdout, /^ {2}uid: [0-9a-f-]{36}$/m);
    assert.match(r.stdout, /^ {2}resourceVersion: "\d+"$/m);
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace: "default",
      plural,
      body: { apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", metadata: { name: "other", labels: { env: "prod" } }, spec: { ssh: { host: "h", privateKeySecretRef: { name: "ssh" } } } },
    });
    r = await s.kubectl(["get", "dmm", "-l", "env=lab", "-o", "name"]);
    assert.equal(r.stdout.trim(), "machine.dockmesh.io/m1");
    r = await s.kubectl(["get", "machines", "-l", "env in (prod)", "-A"]);
    assert.match(r.stdout, /^NAMESPACE\s+NAME/);
    assert.match(r.stdout, /^default\s+other\s+h\s/m);
  });

  it("get -w sees another client's change", async () => {
    const w = background(s, ["get", "machine", "m1", "-w"]);
    try {
      await waitFor("the first row", () => w.out().includes("203.0.113.11"));
      await custom.patchNamespacedCustomObject({
        group,
        version,
        namespace: "default",
        plural,
        name: "m1",
        body: [
          { op: "add", path: "/metadata/labels/seen", value: "yes" },
          { op: "replace", path: "/spec/ssh/host", value: "watched.example" },
        ],
      });
      await waitFor("the changed row", () => w.out().includes("watched.example"));
    } finally {
      stop(w.proc);
    }
  });

  it("wait --for=condition=Ready returns once the condition matches the generation", async () => {
    const gen = (await getMachine("m1")).metadata.generation as number;
    const w = background(s, ["wait", "--for=condition=Ready", "machine/m1", "--timeout=30s"]);
    try {
      const setReady = (observedGeneration: number) =>
        custom.patchNamespacedCustomObjectStatus({
          group,
          version,
          namespace: "default",
          plural,
          name: "m1",
          // client-node sends JSON Patch by default
          body: [
            {
              op: "add",
              path: "/status",
              value: { observedGeneration, conditions: [{ type: "Ready", status: "True", reason: "Converged", message: "all good", lastTransitionTime: "2025-01-01T00:00:00Z", observedGeneration }] },
            },
          ],
        });
      await sleep(500);
      await setReady(gen - 1);
      await sleep(1500);
      assert.equal(w.proc.exitCode, null, `kubectl wait returned for a stale observedGeneration: ${w.out()}`);
      await setReady(gen);
      const code = await Promise.race([w.exited, sleep(20_000).then(() => -2)]);
      assert.equal(code, 0, w.out());
      assert.match(w.out(), /condition met/);
    } finally {
      stop(w.proc);
    }
    const r = await s.kubectl(["get", "machine", "m1"]);
    assert.match(r.stdout, /^m1\s+watched\.example\s+True\s+Converged\s+\d+s$/m);
  });

  it("describe shows the Machine's Events", async () => {
    const m = await getMachine("m1");
    await core.createNamespacedEvent({
      namespace: "default",
      body: {
        metadata: { name: "m1.evt1", namespace: "default" },
        involvedObject: { apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", name: "m1", namespace: "default", uid: m.metadata.uid },
        reason: "Converged",
        message: "host configured: 2 peers",
        type: "Normal",
        source: { component: "dockmesh-controller" },
        firstTimestamp: new Date(),
        lastTimestamp: new Date(),
        count: 1,
      },
    });
    const r = await s.kubectl(["describe", "machine", "m1"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Events:/m);
    assert.match(r.stdout, /Normal\s+Converged\s+\S+\s+dockmesh-controller\s+host configured: 2 peers/);
    const ev = await s.kubectl(["get", "events"]);
    assert.match(ev.stdout, /machine\/m1\s+host configured: 2 peers/);
  });

  it("explain machine.spec shows the descriptions", async () => {
    const r = await s.kubectl(["explain", "machine.spec"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /KIND:\s+Machine/);
    assert.match(r.stdout, /Desired state, owned by the user/);
    assert.match(r.stdout, /ssh\t<Object> -required-/);
    const r2 = await s.kubectl(["explain", "machine.spec.ssh.port"]);
    assert.match(r2.stdout, /TCP port of the host's SSH server \(default 22\)/);
  });

  it("label, annotate, patch --type=json and --type=merge", async () => {
    let r = await s.kubectl(["label", "machine", "m1", "tier=edge"]);
    assert.match(r.stdout, /labeled/);
    r = await s.kubectl(["annotate", "machine", "m1", "note=hello"]);
    assert.match(r.stdout, /annotated/);
    r = await s.kubectl(["patch", "machine", "m1", "--type=json", "-p", '[{"op":"replace","path":"/spec/ssh/host","value":"json.example"}]']);
    assert.equal(r.code, 0, r.stderr);
    r = await s.kubectl(["patch", "machine", "m1", "--type=merge", "-p", '{"spec":{"ssh":{"port":2222}}}']);
    assert.equal(r.code, 0, r.stderr);
    r = await s.kubectl(["patch", "machine", "m1", "-p", '{"spec":{"ssh":{"port":2223}}}']);
    assert.notEqual(r.code, 0, "strategic merge patch on a custom resource must fail (415)");
    assert.match(r.stderr, /UnsupportedMediaType|unknown format|not supported/i);
    const m = await getMachine("m1");
    assert.equal(m.metadata.labels.tier, "edge");
    assert.equal(m.metadata.annotations.note, "hello");
    assert.equal(m.spec.ssh.host, "json.example");
    assert.equal(m.spec.ssh.port, 2222);
  });

  it("edit with a non-interactive EDITOR", async () => {
    const r = await s.kubectl(["edit", "machine", "m1"], { env: { EDITOR: "sed -i s/json.example/edited.example/" } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /edited/);
    assert.equal((await getMachine("m1")).spec.ssh.host, "edited.example");
  });

  it("diff runs a server-side dry run and changes nothing", async () => {
    const f = file("m1.yaml", machineYaml("m1", "diff.example"));
    const before = await getMachine("m1");
    const r = await s.kubectl(["diff", "-f", f]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^-\s+host: edited\.example$/m);
    assert.match(r.stdout, /^\+\s+host: diff\.example$/m);
    const after = await getMachine("m1");
    assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion);
    const none = await s.kubectl(["diff", "-f", file("new.yaml", machineYaml("brand-new", "new.example"))]);
    assert.equal(none.code, 1);
    await assert.rejects(getMachine("brand-new"));
  });

  it("delete with a finalizer waits until the finalizer is removed", async () => {
    await s.kubectl(["apply", "-f", file("mf.yaml", machineYaml("mf", "203.0.113.20"))]);
    await custom.patchNamespacedCustomObject({ group, version, namespace: "default", plural, name: "mf", body: [{ op: "add", path: "/metadata/finalizers", value: ["dockmesh.io/host-cleanup"] }] });
    const d = background(s, ["delete", "machine", "mf", "--timeout=30s"]);
    try {
      const deleting = await waitFor("deletionTimestamp", async () => (await getMachine("mf")).metadata.deletionTimestamp as string | undefined);
      assert.ok(deleting);
      await sleep(1000);
      assert.equal(d.proc.exitCode, null, "kubectl delete returned while the finalizer was still there");
      await custom.patchNamespacedCustomObject({ group, version, namespace: "default", plural, name: "mf", body: [{ op: "remove", path: "/metadata/finalizers" }] });
      const code = await Promise.race([d.exited, sleep(20_000).then(() => -2)]);
      assert.equal(code, 0, d.out());
      assert.match(d.out(), /machine\.dockmesh\.io "mf" deleted/);
    } finally {
      stop(d.proc);
    }
    await assert.rejects(getMachine("mf"), (err: { code?: number }) => err.code === 404);
  });

  it("apply of Secrets and ConfigMaps uses strategic merge (a removed key goes)", async () => {
    const f = file(
      "cm.yaml",
      `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: "1", b: "2"}
---
apiVersion: v1
kind: Secret
metadata: {name: ssh}
stringData: {ssh-privatekey: "not-a-real-key"}
`,
    );
    let r = await s.kubectl(["apply", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    file(
      "cm.yaml",
      `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: "1", c: "3"}
`,
    );
    r = await s.kubectl(["apply", "-f", f]);
    assert.match(r.stdout, /configmap\/settings configured/);
    const cm = await core.readNamespacedConfigMap({ name: "settings", namespace: "default" });
    assert.deepEqual(cm.data, { a: "1", c: "3" });
    const secret = await core.readNamespacedSecret({ name: "ssh", namespace: "default" });
    assert.equal(Buffer.from(secret.data?.["ssh-privatekey"] ?? "", "base64").toString(), "not-a-real-key");
    assert.equal(secret.type, "Opaque");
    r = await s.kubectl(["get", "secret", "ssh"]);
    assert.match(r.stdout, /^ssh\s+Opaque\s+1\s+\d+s$/m);
  });

  it("apply and delete -f of a file holding a Namespace and its objects, as on a real cluster", async () => {
    const f = file(
      "mix.yaml",
      `apiVersion: v1
kind: Namespace
metadata: {name: lab-x}
---
apiVersion: v1
kind: Secret
metadata: {name: key, namespace: lab-x}
type: kubernetes.io/ssh-auth
data: {ssh-privatekey: aGVsbG8=}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: lock, namespace: lab-x}
spec: {holderIdentity: me, leaseDurationSeconds: 15}
`,
    );
    let r = await s.kubectl(["apply", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
    r = await s.kubectl(["apply", "-f", f]);
    assert.deepEqual(r.stdout.trim().split("\n"), ["namespace/lab-x unchanged", "secret/key unchanged", "lease.coordination.k8s.io/lock unchanged"]);
    // The namespace's contents go asynchronously (as the namespace controller does it), so the
    // objects after the Namespace in the file are still there to delete.
    r = await s.kubectl(["delete", "-f", f, "--timeout=20s"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    r = await s.kubectl(["get", "namespace", "lab-x"]);
    assert.match(r.stderr, /namespaces "lab-x" not found/);
  });

  it("namespaces: unknown ones are 404, create and delete work", async () => {
    let r = await s.kubectl(["apply", "-n", "nowhere", "-f", file("m2.yaml", machineYaml("m2", "203.0.113.30"))]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /namespaces "nowhere" not found/);
    // kubectl create sends protobuf bodies for built-in kinds
    r = await s.kubectl(["create", "namespace", "team-a"]);
    assert.equal(r.code, 0, r.stderr);
    r = await s.kubectl(["create", "secret", "generic", "ssh", "-n", "team-a", "--from-literal=ssh-privatekey=k", "--from-literal=empty="]);
    assert.equal(r.code, 0, r.stderr);
    const secret = await core.readNamespacedSecret({ name: "ssh", namespace: "team-a" });
    assert.deepEqual(secret.data, { "ssh-privatekey": Buffer.from("k").toString("base64"), empty: "" });
    r = await s.kubectl(["create", "configmap", "cfg", "-n", "team-a", "--from-literal=a=b"]);
    assert.equal(r.code, 0, r.stderr);
    r = await s.kubectl(["apply", "-n", "team-a", "-f", file("m2.yaml", machineYaml("m2", "203.0.113.30"))]);
    assert.equal(r.code, 0, r.stderr);
    r = await s.kubectl(["delete", "namespace", "team-a", "--timeout=20s"]);
    assert.equal(r.code, 0, r.stderr);
    r = await s.kubectl(["get", "machines", "-A", "-o", "name"]);
    assert.doesNotMatch(r.stdout, /m2/);
    r = await s.kubectl(["get", "secrets,configmaps", "-n", "team-a", "-o", "name"]);
    assert.equal(r.stdout.trim(), "");
    r = await s.kubectl(["get", "ns", "team-a"]);
    assert.match(r.stderr, /namespaces "team-a" not found/);
  });
});
