// Issue 11, finding 9: YAML bodies blocked the event loop (289 KB of YAML with 25,000 keys held the
// server for 42 s) and application/apply-patch+yaml was parsed before the 415. With the token, no
// single request may keep the server from answering others: while each of these bodies is sent,
// another client's GETs must be answered within a second.
import { strict as assert } from "node:assert";
import { request } from "node:https";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { httpRequest, sleep, tempDir, type HttpResult } from "../store/helpers.js";
import { spawnStore, type StoreProcess } from "./store-process.js";

const MiB = 1024 * 1024;
const boundMs = 1000;
const cmPath = "/api/v1/namespaces/default/configmaps";

function yamlConfigMap(name: string, keys: number): string {
  const lines = [`apiVersion: v1`, `kind: ConfigMap`, `metadata:`, `  name: ${name}`, `data:`];
  for (let i = 0; i < keys; i++) lines.push(`  k${i}: v`);
  return `${lines.join("\n")}\n`;
}

/** Nine levels of aliases, each to ten of the level below: 10^9 values if expanded. */
function billionLaughs(): string {
  const lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: laughs}", 'l0: &l0 "lol"'];
  for (let i = 1; i <= 9; i++) lines.push(`l${i}: &l${i} [${Array.from({ length: 10 }, () => `*l${i - 1}`).join(", ")}]`);
  lines.push("data: {a: *l9}");
  return `${lines.join("\n")}\n`;
}

function jsonConfigMap(name: string, bytes: number): string {
  const data: Record<string, string> = {};
  for (let i = 0, size = 100; size < bytes; i++) {
    data[`k${i}`] = "v";
    size += `"k${i}":"v",`.length;
  }
  return JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data });
}

interface Row {
  name: string;
  method: string;
  path: string;
  contentType: string;
  body: () => string;
  /** Acceptable answers. */
  status: number[];
  message?: RegExp;
}

const rows: Row[] = [
  { name: "the reported body: YAML, 25,000 keys (289 KB)", method: "POST", path: cmPath, contentType: "application/yaml", body: () => yamlConfigMap("keys-25k", 25_000), status: [201, 413] },
  {
    name: "YAML just under 3 MiB: 250,000 keys",
    method: "POST",
    path: cmPath,
    contentType: "application/yaml",
    body: () => yamlConfigMap("keys-250k", 250_000),
    status: [413],
    message: /YAML request body too complex/,
  },
  { name: "YAML aliases, a billion laughs", method: "POST", path: cmPath, contentType: "application/yaml", body: billionLaughs, status: [400, 413], message: /alias/i },
  { name: "YAML nested 1,000,000 levels deep", method: "POST", path: cmPath, contentType: "application/yaml", body: () => `${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}`, status: [400, 413] },
  {
    name: "YAML nested 1,001 maps deep (small)",
    method: "POST",
    path: cmPath,
    contentType: "application/yaml",
    body: () => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\nx: ${"{a: ".repeat(1001)}1${"}".repeat(1001)}\n`,
    status: [413],
    message: /nested deeper than 1000 levels/,
  },
  {
    name: "YAML of 200,001 values in a flow sequence",
    method: "POST",
    path: cmPath,
    contentType: "application/yaml",
    body: () => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: many}\nx: [${"1,".repeat(200_000)}1]\n`,
    status: [413],
    message: /more than 200000 values|not parsed within 2000 ms/,
  },
  // (Which of the two limits answers first depends on the machine's load; each is tested alone in test/store/yaml-body-limits.test.ts.)
  // Server-side apply (issue 18) parses its YAML in the same worker, with the same limits.
  {
    name: "server-side apply with 3 MiB of YAML",
    method: "PATCH",
    path: `${cmPath}/keys-25k?fieldManager=sec`,
    contentType: "application/apply-patch+yaml",
    body: () => yamlConfigMap("keys-25k", 250_000).slice(0, 3 * MiB - 1),
    status: [413],
    message: /YAML request body too complex/,
  },
  {
    name: "JSON just under 3 MiB: a ConfigMap of 280,000 keys",
    method: "POST",
    path: cmPath,
    contentType: "application/json",
    body: () => jsonConfigMap("json-big", 3 * MiB - 4096),
    status: [201, 413, 422],
  },
  { name: "JSON over 3 MiB", method: "POST", path: cmPath, contentType: "application/json", body: () => jsonConfigMap("json-over", 3 * MiB + 4096), status: [413], message: /limit is 3145728/ },
];

describe("security: request bodies cannot stall the API server (issue 11, finding 9)", () => {
  let stateDir: string;
  let store: StoreProcess;

  before(async () => {
    stateDir = tempDir("sec-bodies");
    store = await spawnStore({ stateDir, listen: "127.0.0.1:0" });
  });
  after(async () => {
    await store?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  /** GETs, one after another, until `done` settles (at most 60 s); the longest wait. */
  async function probeWhile(done: Promise<unknown>): Promise<{ max: number; count: number }> {
    let finished = false;
    void done.finally(() => (finished = true)).catch(() => undefined);
    let max = 0;
    let count = 0;
    const end = Date.now() + 60_000;
    while ((!finished || count < 3) && Date.now() < end) {
      const t0 = Date.now();
      const r = await httpRequest(store, "GET", "/api/v1/namespaces/default").catch(() => undefined);
      const took = Date.now() - t0;
      assert.equal(r?.status, 200, "a GET failed while the body was sent");
      max = Math.max(max, took);
      count++;
      await sleep(20);
    }
    return { max, count };
  }

  for (const row of rows) {
    it(`${row.name}: ${row.status.join(" or ")}, and other clients are answered within ${boundMs} ms meanwhile`, async () => {
      const body = row.body();
      const t0 = Date.now();
      const sent: Promise<HttpResult> = httpRequest(store, row.method, row.path, body, { "Content-Type": row.contentType });
      const [res, probe] = await Promise.all([sent, probeWhile(sent)]);
      const took = Date.now() - t0;
      console.log(`# ${row.name}: ${(body.length / 1024).toFixed(0)} KiB → ${res.status} in ${took} ms; ${probe.count} GETs, slowest ${probe.max} ms; ${String(res.json.message ?? "").slice(0, 120)}`);
      assert.ok(row.status.includes(res.status), `status ${res.status}: ${res.text.slice(0, 300)}`);
      if (row.message) assert.match(String(res.json.message), row.message);
      assert.ok(probe.max < boundMs, `a GET took ${probe.max} ms while the body was being handled`);
    });
  }

  it("an apply-patch without fieldManager is refused before its body arrives; a declared length over 3 MiB before it is read", async () => {
    const cases: Array<{ method: string; path: string; contentType: string; length: number; status: number }> = [
      { method: "PATCH", path: `${cmPath}/keys-25k`, contentType: "application/apply-patch+yaml", length: 2 * MiB, status: 422 },
      { method: "POST", path: cmPath, contentType: "application/json", length: 1024 * MiB, status: 413 },
      { method: "POST", path: cmPath, contentType: "application/yaml", length: 1024 * MiB, status: 413 },
    ];
    for (const c of cases) {
      const t0 = Date.now();
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(new URL(c.path, store.url), {
          method: c.method,
          ca: store.caCertPem,
          headers: { Authorization: `Bearer ${store.token}`, "Content-Type": c.contentType, "Content-Length": String(c.length) },
          timeout: 10_000,
        });
        req.on("response", (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        req.on("timeout", () => req.destroy(new Error(`${c.contentType}: no answer within 10 s while the body was withheld`)));
        req.on("error", reject);
        req.flushHeaders(); // and never send the body
      });
      const took = Date.now() - t0;
      assert.equal(status, c.status, c.contentType);
      assert.ok(took < boundMs, `${c.contentType}: answered after ${took} ms`);
    }
  });
});
