// The HTTP API's semantics, checked request by request against what kube-apiserver does.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:https";
import { machine, startTestStore, sleep, waitFor, type HttpResult, type TestStore } from "./helpers.js";

const M = "/apis/dockmesh.io/v1alpha1/namespaces/default/machines";
const table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON read field by field

/** Reads a watch stream until `until` says stop, the server ends it, or `ms` passes. */
function watch(s: TestStore, path: string, ms: number, until?: (events: Obj[]) => boolean, headers: Record<string, string> = {}): Promise<{ status: number; events: Obj[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const events: Obj[] = [];
    let buf = "";
    let done = false;
    const req = request(new URL(path, s.url), { ca: s.caCertPem, headers: { Authorization: `Bearer ${s.token}`, ...headers } }, (res) => {
      const finish = (ended: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, events, ended });
      };
      const timer = setTimeout(() => finish(false), ms);
      res.on("data", (d: Buffer) => {
        buf += d.toString();
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.trim()) events.push(JSON.parse(line) as Obj);
        }
        if (until?.(events)) finish(false);
      });
      res.on("end", () => finish(true));
      res.on("error", () => finish(false));
    });
    req.on("error", (e) => (done ? undefined : reject(e)));
    req.end();
  });
}

describe("API semantics", () => {
  let s: TestStore;
  before(async () => {
    s = await startTestStore({ bookmarkIntervalSeconds: 1 });
  });
  after(async () => {
    await s.dispose();
  });
  const create = (body: Obj, path = M, q = "") => s.http("POST", `${path}${q}`, body);
  const get = (name: string, path = M) => s.http("GET", `${path}/${name}`);

  it("needs the bearer token", async () => {
    for (const auth of [undefined, "Bearer wrong", `Basic ${Buffer.from("a:b").toString("base64")}`]) {
      const r = await new Promise<HttpResult>((resolve, reject) => {
        const req = request(new URL("/api/v1/namespaces", s.url), { ca: s.caCertPem, headers: auth ? { Authorization: auth } : {} }, (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: JSON.parse(text) as Obj }));
        });
        req.on("error", reject);
        req.end();
      });
      assert.equal(r.status, 401);
      assert.equal(r.json.kind, "Status");
      assert.equal(r.json.reason, "Unauthorized");
    }
  });

  it("discovery, version, health and OpenAPI", async () => {
    const cases: Array<[string, (r: HttpResult) => void, Record<string, string>?]> = [
      ["/version", (r) => assert.equal(r.json.minor, "32")],
      ["/healthz", (r) => assert.equal(r.text, "ok")],
      ["/readyz", (r) => assert.equal(r.text, "ok")],
      ["/api", (r) => assert.deepEqual(r.json.versions, ["v1"])],
      [
        "/apis",
        (r) => {
          assert.equal(r.headers["content-type"], "application/json");
          const names = (r.json.groups as Obj[]).map((g) => g.name);
          assert.deepEqual(names, ["apiextensions.k8s.io", "authorization.k8s.io", "coordination.k8s.io", "dockmesh.io"]);
          assert.deepEqual((r.json.groups as Obj[])[3]?.preferredVersion, { groupVersion: "dockmesh.io/v1alpha1", version: "v1alpha1" });
        },
        { Accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json" },
      ],
      [
        "/api/v1",
        (r) => {
          const names = (r.json.resources as Obj[]).map((x) => x.name);
          for (const n of ["namespaces", "namespaces/status", "secrets", "configmaps", "events", "serviceaccounts"]) assert.ok(names.includes(n), n);
        },
      ],
      [
        "/apis/dockmesh.io/v1alpha1",
        (r) => {
          assert.equal(r.json.groupVersion, "dockmesh.io/v1alpha1");
          const res = r.json.resources as Obj[];
          const m = res.find((x) => x.name === "machines");
          assert.deepEqual(m, {
            name: "machines",
            singularName: "machine",
            namespaced: true,
            kind: "Machine",
            verbs: ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            shortNames: ["dmm"],
            categories: ["dockmesh"],
          });
          assert.deepEqual(res.find((x) => x.name === "machines/status")?.verbs, ["get", "patch", "update"]);
        },
      ],
      ["/apis/coordination.k8s.io/v1", (r) => assert.equal((r.json.resources as Obj[])[0]?.name, "leases")],
      ["/openapi/v2", (r) => assert.equal(r.status, 404)],
      [
        "/openapi/v3",
        (r) => {
          const paths = r.json.paths as Obj;
          assert.match(paths["apis/dockmesh.io/v1alpha1"].serverRelativeURL, /^\/openapi\/v3\/apis\/dockmesh\.io\/v1alpha1\?hash=[0-9A-F]+$/);
          assert.ok(paths["api/v1"]);
        },
      ],
    ];
    for (const [path, check, headers] of cases) {
      const r = await s.http("GET", path, undefined, headers);
      if (path !== "/openapi/v2") assert.equal(r.status, 200, `${path}: ${r.text}`);
      check(r);
    }
    const doc = (await s.http("GET", "/openapi/v3/apis/dockmesh.io/v1alpha1")).json;
    const patch = doc.paths["/apis/dockmesh.io/v1alpha1/namespaces/{namespace}/machines/{name}"].patch;
    assert.deepEqual(patch["x-kubernetes-group-version-kind"], { group: "dockmesh.io", version: "v1alpha1", kind: "Machine" });
    assert.ok((patch.parameters as Obj[]).some((p) => p.name === "fieldValidation" && p.in === "query"));
    assert.deepEqual(Object.keys(patch.requestBody.content).sort(), ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]);
    assert.deepEqual(doc.components.schemas["io.dockmesh.v1alpha1.Machine"]["x-kubernetes-group-version-kind"], [{ group: "dockmesh.io", kind: "Machine", version: "v1alpha1" }]);
    const core = (await s.http("GET", "/openapi/v3/api/v1")).json;
    assert.ok("application/strategic-merge-patch+json" in core.paths["/api/v1/namespaces/{namespace}/secrets/{name}"].patch.requestBody.content);
  });

  it("create: server-set metadata, status dropped, 409 on a second create, 404 on a missing namespace", async () => {
    const r = await create({ ...machine("c1"), status: { peers: "9/9" } });
    assert.equal(r.status, 201, r.text);
    const m = r.json.metadata;
    assert.match(m.uid, /^[0-9a-f-]{36}$/);
    assert.match(m.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(m.generation, 1);
    assert.match(m.resourceVersion, /^\d+$/);
    assert.equal(r.json.status, undefined);
    const again = await create(machine("c1"));
    assert.equal(again.status, 409);
    assert.equal(again.json.reason, "AlreadyExists");
    assert.equal(again.json.message, 'machines.dockmesh.io "c1" already exists');
    const nons = await create({ ...machine("c2"), metadata: { name: "c2" } }, "/apis/dockmesh.io/v1alpha1/namespaces/nope/machines");
    assert.equal(nons.status, 404);
    assert.equal(nons.json.message, 'namespaces "nope" not found');
    const missing = await get("nope");
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: 'machines.dockmesh.io "nope" not found',
      reason: "NotFound",
      details: { name: "nope", group: "dockmesh.io", kind: "machines" },
      code: 404,
    });
  });

  it("update: resourceVersion required for custom resources, 409 when stale, never creates; generation", async () => {
    const cur = (await get("c1")).json;
    const noRv = structuredClone(cur);
    delete noRv.metadata.resourceVersion;
    let r = await s.http("PUT", `${M}/c1`, noRv);
    assert.equal(r.status, 422, r.text);
    assert.match(r.json.message, /metadata\.resourceVersion: Invalid value: 0x0: must be specified for an update/);
    const changed = structuredClone(cur);
    changed.spec.ssh.host = "changed.example";
    r = await s.http("PUT", `${M}/c1`, changed);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.metadata.generation, 2);
    r = await s.http("PUT", `${M}/c1`, changed); // stale now
    assert.equal(r.status, 409);
    assert.equal(r.json.reason, "Conflict");
    assert.equal(r.json.message, 'Operation cannot be fulfilled on machines.dockmesh.io "c1": the object has been modified; please apply your changes to the latest version and try again');
    const fresh = (await get("c1")).json;
    fresh.metadata.labels = { a: "b" };
    r = await s.http("PUT", `${M}/c1`, fresh);
    assert.equal(r.json.metadata.generation, 2, "a metadata-only change keeps the generation");
    const noop = await s.http("PUT", `${M}/c1`, r.json);
    assert.equal(noop.json.metadata.resourceVersion, r.json.metadata.resourceVersion, "a no-op update writes nothing");
    r = await s.http("PUT", `${M}/ghost`, { ...machine("ghost"), metadata: { name: "ghost", resourceVersion: "1" } });
    assert.equal(r.status, 404);
  });

  it("status subresource: main endpoint keeps status, /status changes only status", async () => {
    let r = await s.http("PATCH", `${M}/c1/status`, [{ op: "add", path: "/status", value: { peers: "1/2" } }], { "Content-Type": "application/json-patch+json" });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status.peers, "1/2");
    const gen = r.json.metadata.generation;
    r = await s.http("PATCH", `${M}/c1`, { status: { peers: "2/2" }, spec: { endpoint: "1.2.3.4:51820" } }, { "Content-Type": "application/merge-patch+json" });
    assert.equal(r.json.status.peers, "1/2");
    assert.equal(r.json.spec.endpoint, "1.2.3.4:51820");
    assert.equal(r.json.metadata.generation, gen + 1);
    const cur = r.json;
    cur.spec.endpoint = "9.9.9.9:1";
    cur.status.peers = "2/2";
    r = await s.http("PUT", `${M}/c1/status`, cur);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.spec.endpoint, "1.2.3.4:51820");
    assert.equal(r.json.status.peers, "2/2");
    assert.equal(r.json.metadata.generation, gen + 1);
  });

  it("fieldValidation Strict / Warn / Ignore, and 422 causes", async () => {
    const body = (name: string) => ({ ...machine(name, { colour: "blue" }) });
    let r = await create(body("fv1"), M, "?fieldValidation=Strict");
    assert.equal(r.status, 400);
    assert.equal(r.json.message, 'strict decoding error: unknown field "spec.colour"');
    r = await create(body("fv2"), M, "?fieldValidation=Warn");
    assert.equal(r.status, 201);
    assert.equal(r.headers.warning, '299 - "unknown field \\"spec.colour\\""');
    assert.equal(r.json.spec.colour, undefined);
    r = await create(body("fv3"), M, "?fieldValidation=Ignore");
    assert.equal(r.status, 201);
    assert.equal(r.headers.warning, undefined);
    r = await create({ ...machine("fv4", { ssh: { host: "bad host!", privateKeySecretRef: {} } }) });
    assert.equal(r.status, 422);
    assert.equal(r.json.reason, "Invalid");
    assert.deepEqual(r.json.details.causes, [
      {
        reason: "FieldValueInvalid",
        message: `Invalid value: "bad host!": spec.ssh.host in body should be a host name or an IP address without a port, such as 203.0.113.10 or host1.example.com (the port goes in port)`,
        field: "spec.ssh.host",
      },
      { reason: "FieldValueRequired", message: "Required value", field: "spec.ssh.privateKeySecretRef.name" },
    ]);
    assert.match(r.json.message, /^Machine\.dockmesh\.io "fv4" is invalid: \[spec\.ssh\.host: Invalid value/);
    r = await create({ ...machine("Bad_Name") });
    assert.equal(r.status, 422);
    assert.equal(r.json.details.causes[0].field, "metadata.name");
    r = await create({ ...machine("badlabel", {}, { "bad key": "v" }) });
    assert.equal(r.status, 422);
    assert.equal(r.json.details.causes[0].field, "metadata.labels");
  });

  it("patch types: strategic merge is 415 on custom resources, fine on built-ins; bad JSON Patch is 422", async () => {
    let r = await s.http("PATCH", `${M}/c1`, { metadata: { labels: { x: "y" } } }, { "Content-Type": "application/strategic-merge-patch+json" });
    assert.equal(r.status, 415);
    assert.equal(r.json.reason, "UnsupportedMediaType");
    r = await s.http("PATCH", `${M}/c1`, [{ op: "test", path: "/spec/ssh/host", value: "wrong" }], { "Content-Type": "application/json-patch+json" });
    assert.equal(r.status, 422);
    r = await s.http("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: "smp" }, data: { a: "1", b: "2" } });
    assert.equal(r.status, 201);
    r = await s.http("PATCH", "/api/v1/namespaces/default/configmaps/smp", { data: { a: null, c: "3" } }, { "Content-Type": "application/strategic-merge-patch+json" });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.data, { b: "2", c: "3" });
  });

  it("Secrets: stringData, base64 checks, well-known types, immutable type", async () => {
    const S = "/api/v1/namespaces/default/secrets";
    const cases: Array<[string, Obj, number, RegExp?]> = [
      ["ok", { metadata: { name: "s-ok" }, type: "kubernetes.io/ssh-auth", stringData: { "ssh-privatekey": "k" } }, 201],
      ["no key", { metadata: { name: "s-nokey" }, type: "kubernetes.io/ssh-auth", data: {} }, 422, /data\[ssh-privatekey\]: Required value/],
      ["bad base64", { metadata: { name: "s-b64" }, data: { k: "not base64!" } }, 400, /Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3/],
      ["bad key", { metadata: { name: "s-key" }, data: { "a/b": "" } }, 422, /a valid config key must consist of alphanumeric characters/],
    ];
    for (const [what, body, code, msg] of cases) {
      const r = await s.http("POST", S, body);
      assert.equal(r.status, code, `${what}: ${r.text}`);
      if (msg) assert.match(r.json.message, msg, what);
    }
    const cur = (await s.http("GET", `${S}/s-ok`)).json;
    assert.deepEqual(cur.data, { "ssh-privatekey": Buffer.from("k").toString("base64") });
    assert.equal(cur.stringData, undefined);
    const r = await s.http("PUT", `${S}/s-ok`, { ...cur, type: "Opaque" });
    assert.equal(r.status, 422);
    assert.match(r.json.message, /type: Invalid value: "Opaque": field is immutable/);
  });

  it("deletecollection deletes what the selector matches and returns it", async () => {
    for (const [name, env] of [
      ["dc-1", "tmp"],
      ["dc-2", "tmp"],
      ["dc-3", "keep"],
    ] as const)
      await create(machine(name, {}, { env }));
    const r = await s.http("DELETE", `${M}?labelSelector=env%3Dtmp`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.kind, "MachineList");
    assert.deepEqual(
      (r.json.items as Obj[]).map((o) => o.metadata.name),
      ["dc-1", "dc-2"],
    );
    assert.equal((await get("dc-1")).status, 404);
    assert.equal((await get("dc-3")).status, 200);
  });

  it("dryRun=All persists nothing", async () => {
    let r = await create(machine("dry"), M, "?dryRun=All");
    assert.equal(r.status, 201);
    assert.equal((await get("dry")).status, 404);
    const before = (await get("c1")).json.metadata.resourceVersion;
    r = await s.http("PATCH", `${M}/c1?dryRun=All`, { spec: { endpoint: "5.5.5.5:5" } }, { "Content-Type": "application/merge-patch+json" });
    assert.equal(r.json.spec.endpoint, "5.5.5.5:5");
    assert.equal((await get("c1")).json.metadata.resourceVersion, before);
    r = await s.http("DELETE", `${M}/c1?dryRun=All`);
    assert.equal(r.status, 200);
    assert.equal((await get("c1")).status, 200);
  });

  it("list: label and field selectors, cluster-wide, Table", async () => {
    await create(machine("sel-a", {}, { env: "lab", tier: "edge" }));
    await create(machine("sel-b", {}, { env: "prod" }));
    const names = async (q: string) => ((await s.http("GET", `${M}?${q}`)).json.items as Obj[]).map((o) => o.metadata.name).filter((n: string) => n.startsWith("sel-"));
    assert.deepEqual(await names("labelSelector=env%3Dlab"), ["sel-a"]);
    assert.deepEqual(await names("labelSelector=env+in+(lab,prod)"), ["sel-a", "sel-b"]);
    assert.deepEqual(await names("labelSelector=!tier"), ["sel-b"]);
    assert.deepEqual(await names("fieldSelector=metadata.name%3Dsel-b"), ["sel-b"]);
    assert.deepEqual(await names("fieldSelector=metadata.name!%3Dsel-b&labelSelector=env"), ["sel-a"]);
    const bad = await s.http("GET", `${M}?fieldSelector=spec.ssh.host%3Dx`);
    assert.equal(bad.status, 400);
    assert.match(bad.json.message, /field label not supported: spec\.ssh\.host/);
    const all = await s.http("GET", "/apis/dockmesh.io/v1alpha1/machines");
    assert.equal(all.json.kind, "MachineList");
    assert.equal(all.json.apiVersion, "dockmesh.io/v1alpha1");
    assert.match(all.json.metadata.resourceVersion, /^\d+$/);
    assert.equal((all.json.items as Obj[])[0]?.kind, "Machine");
    const t = await s.http("GET", `${M}?labelSelector=env%3Dlab`, undefined, { Accept: table });
    assert.equal(t.json.kind, "Table");
    assert.deepEqual(
      (t.json.columnDefinitions as Obj[]).map((c) => `${c.name}:${c.priority}`),
      ["Name:0", "Host:0", "Subnet:0", "Peers:0", "Ready:0", "Reason:0", "DNS:0", "Age:0", "Subnet6:1", "Endpoint:1", "Docker:1", "WireGuard:1", "Public-Key:1"],
    );
    assert.deepEqual(t.json.rows[0].cells.slice(0, 2), ["sel-a", "203.0.113.10"]);
    assert.equal(t.json.rows[0].object.kind, "PartialObjectMetadata");
    const proto = await s.http("GET", M, undefined, { Accept: "application/vnd.kubernetes.protobuf,application/json" });
    assert.equal(proto.headers["content-type"], "application/json");
    assert.equal(proto.json.kind, "MachineList");
  });

  it("watch: synthetic ADDED, resume from a resourceVersion, DELETED with its own RV, bookmarks, timeoutSeconds", async () => {
    const initial = await watch(s, `${M}?watch=true&fieldSelector=metadata.name%3Dsel-a`, 3000, (e) => e.length >= 1);
    assert.equal(initial.status, 200);
    assert.equal(initial.events[0]?.type, "ADDED");
    assert.equal(initial.events[0]?.object.metadata.name, "sel-a");
    const rv = (await s.http("GET", M)).json.metadata.resourceVersion as string;
    const later = watch(s, `${M}?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`, 5000, (e) => e.some((x) => x.type === "DELETED"));
    await sleep(100);
    await s.http("PATCH", `${M}/sel-b`, { metadata: { labels: { env: "staging" } } }, { "Content-Type": "application/merge-patch+json" });
    const del = await s.http("DELETE", `${M}/sel-b`, { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background" });
    assert.equal(del.status, 200);
    assert.deepEqual(
      { status: del.json.status, details: { ...del.json.details, uid: undefined } },
      { status: "Success", details: { name: "sel-b", group: "dockmesh.io", kind: "machines", uid: undefined } },
    );
    const got = (await later).events.filter((e) => e.type !== "BOOKMARK");
    assert.deepEqual(
      got.map((e) => `${e.type} ${e.object.metadata.name}`),
      ["MODIFIED sel-b", "DELETED sel-b"],
    );
    assert.ok(Number(got[1]?.object.metadata.resourceVersion) > Number(got[0]?.object.metadata.resourceVersion));
    assert.ok(got.every((e) => e.object.kind === "Machine" && e.object.apiVersion === "dockmesh.io/v1alpha1"));
    const bm = await watch(s, `${M}?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true&timeoutSeconds=2`, 5000);
    assert.ok(bm.ended, "timeoutSeconds ends the watch");
    const bookmark = bm.events.find((e) => e.type === "BOOKMARK");
    assert.equal(bookmark?.object.kind, "Machine");
    assert.match(bookmark?.object.metadata.resourceVersion, /^\d+$/);
  });

  it("watch: a label change moves objects in and out of a selector; sendInitialEvents", async () => {
    const w = watch(s, `${M}?watch=true&labelSelector=env%3Dlab`, 5000, (e) => e.length >= 3);
    await sleep(100);
    await s.http("PATCH", `${M}/sel-a`, { metadata: { labels: { env: "gone" } } }, { "Content-Type": "application/merge-patch+json" });
    await s.http("PATCH", `${M}/sel-a`, { metadata: { labels: { env: "lab" } } }, { "Content-Type": "application/merge-patch+json" });
    assert.deepEqual(
      (await w).events.map((e) => e.type),
      ["ADDED", "DELETED", "ADDED"],
    );
    const bad = await s.http("GET", `${M}?watch=true&sendInitialEvents=true`);
    assert.equal(bad.status, 422);
    const si = await watch(s, `${M}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&labelSelector=env%3Dlab`, 3000, (e) =>
      e.some((x) => x.type === "BOOKMARK"),
    );
    assert.deepEqual(
      si.events.map((e) => e.type),
      ["ADDED", "BOOKMARK"],
    );
    assert.equal(si.events[1]?.object.metadata.annotations["k8s.io/initial-events-end"], "true");
  });

  it("finalizers: deletionTimestamp, no new finalizers while deleting, removal deletes", async () => {
    let r = await create({ ...machine("fin"), metadata: { name: "fin", finalizers: ["dockmesh.io/cleanup"] } });
    assert.equal(r.status, 201);
    const uid = r.json.metadata.uid as string;
    r = await s.http("DELETE", `${M}/fin`, { preconditions: { uid: "wrong" } });
    assert.equal(r.status, 409);
    r = await s.http("DELETE", `${M}/fin`, { preconditions: { uid } });
    assert.equal(r.status, 200);
    assert.equal(r.json.kind, "Machine");
    assert.ok(r.json.metadata.deletionTimestamp);
    assert.equal(r.json.metadata.deletionGracePeriodSeconds, 0);
    assert.equal(r.json.metadata.generation, 2);
    r = await s.http("PATCH", `${M}/fin`, [{ op: "add", path: "/metadata/finalizers/-", value: "another/one" }], { "Content-Type": "application/json-patch+json" });
    assert.equal(r.status, 422);
    assert.match(r.json.message, /no new finalizers can be added if the object is being deleted/);
    const w = watch(s, `${M}?watch=true&fieldSelector=metadata.name%3Dfin`, 5000, (e) => e.some((x) => x.type === "DELETED"));
    await sleep(100);
    r = await s.http("PATCH", `${M}/fin`, [{ op: "remove", path: "/metadata/finalizers" }], { "Content-Type": "application/json-patch+json" });
    assert.equal(r.status, 200);
    assert.deepEqual(
      (await w).events.map((e) => e.type),
      ["ADDED", "DELETED"],
    );
    assert.equal((await get("fin")).status, 404);
  });

  it("owner references: dependents are garbage-collected with their owner", async () => {
    const owner = (await create(machine("owner"))).json;
    const cm = await s.http("POST", "/api/v1/namespaces/default/secrets", {
      metadata: { name: "owned-key", ownerReferences: [{ apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", name: "owner", uid: owner.metadata.uid, controller: true }] },
      stringData: { k: "v" },
    });
    assert.equal(cm.status, 201, cm.text);
    await s.http("DELETE", `${M}/owner`);
    assert.equal((await s.http("GET", "/api/v1/namespaces/default/secrets/owned-key")).status, 404);
    // propagationPolicy=Orphan keeps the dependent and drops its owner reference
    const owner2 = (await create(machine("owner2"))).json;
    await s.http("POST", "/api/v1/namespaces/default/secrets", {
      metadata: { name: "kept-key", ownerReferences: [{ apiVersion: "dockmesh.io/v1alpha1", kind: "Machine", name: "owner2", uid: owner2.metadata.uid }] },
    });
    const del = await s.http("DELETE", `${M}/owner2`, { propagationPolicy: "Orphan" });
    assert.equal(del.status, 200);
    const kept = await s.http("GET", "/api/v1/namespaces/default/secrets/kept-key");
    assert.equal(kept.status, 200);
    assert.equal(kept.json.metadata.ownerReferences, undefined);
  });

  it("a CRD applied at run time registers its kind: defaults, pruning, int-or-string", async () => {
    const crd = {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "widgets.example.com" },
      spec: {
        group: "example.com",
        scope: "Cluster",
        names: { kind: "Widget", listKind: "WidgetList", plural: "widgets", singular: "widget" },
        versions: [
          {
            name: "v1",
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: "object",
                properties: {
                  spec: {
                    type: "object",
                    properties: {
                      size: { "x-kubernetes-int-or-string": true },
                      colour: { type: "string", default: "blue", enum: ["blue", "red"] },
                      free: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                    },
                  },
                },
              },
            },
          },
        ],
      },
    };
    let r = await s.http("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
    assert.equal(r.status, 201, r.text);
    await waitFor("Established", async () =>
      ((await s.http("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")).json.status?.conditions as Obj[] | undefined)?.some(
        (c) => c.type === "Established" && c.status === "True",
      ),
    );
    const disc = await s.http("GET", "/apis/example.com/v1");
    assert.equal(disc.status, 200);
    r = await s.http("POST", "/apis/example.com/v1/widgets?fieldValidation=Ignore", {
      apiVersion: "example.com/v1",
      kind: "Widget",
      metadata: { name: "w1" },
      spec: { size: "10%", extra: 1, free: { a: { b: 2 } } },
    });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json.spec, { size: "10%", colour: "blue", free: { a: { b: 2 } } });
    r = await s.http("POST", "/apis/example.com/v1/widgets", { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w2" }, spec: { colour: "green" } });
    assert.equal(r.status, 422);
    // Tighten the schema: w1's size no longer validates, but unchanged values are let through (ratcheting).
    const tighter = (await s.http("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")).json;
    tighter.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.size = { type: "integer" };
    r = await s.http("PUT", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com", tighter);
    assert.equal(r.status, 200, r.text);
    r = await s.http("PATCH", "/apis/example.com/v1/widgets/w1", { metadata: { labels: { touched: "yes" } }, spec: { colour: "red" } }, { "Content-Type": "application/merge-patch+json" });
    assert.equal(r.status, 200, r.text);
    r = await s.http("PATCH", "/apis/example.com/v1/widgets/w1", { spec: { size: "20%" } }, { "Content-Type": "application/merge-patch+json" });
    assert.equal(r.status, 422);
    assert.match(r.json.message, /spec\.size: Invalid value: "string": spec\.size in body must be of type integer/);
    r = await s.http("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com");
    assert.equal(r.status, 200);
    await waitFor("the kind to go", async () => (await s.http("GET", "/apis/example.com/v1")).status === 404);
    assert.equal((await s.http("GET", "/apis/example.com/v1/widgets/w1")).status, 404);
  });
});
