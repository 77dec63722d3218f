import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { ApiException } from "@kubernetes/client-node";
import { REDACTED, createLogger, describeError, redactText, redactValue, resolveLogFormat } from "../../runtime/log.js";
import { captureLogger, flush } from "./helpers.js";

// Test keys, made up for these tests (not used anywhere).
const WG_KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDx\n-----END OPENSSH PRIVATE KEY-----";

test("redactText removes keys and tokens, keeps the rest", () => {
  const cases: Array<{ name: string; in: string; want: string }> = [
    { name: "wg-quick line", in: `[Interface]\nPrivateKey = ${WG_KEY}\nListenPort = 51820`, want: `[Interface]\nPrivateKey = ${REDACTED}\nListenPort = 51820` },
    { name: "JSON field", in: `{"privateKey":"${WG_KEY}","publicKey":"${WG_KEY}"}`, want: `{"privateKey":"${REDACTED}","publicKey":"${WG_KEY}"}` },
    { name: "public key alone stays", in: `PublicKey = ${WG_KEY}`, want: `PublicKey = ${WG_KEY}` },
    { name: "OpenSSH block", in: `key: ${PEM} end`, want: "key: [REDACTED PRIVATE KEY] end" },
    { name: "RSA PEM block cut off", in: "-----BEGIN RSA PRIVATE KEY-----\nMIIEow", want: "[REDACTED PRIVATE KEY]" },
    { name: "public PEM stays", in: "-----BEGIN PUBLIC KEY-----\nMFkw", want: "-----BEGIN PUBLIC KEY-----\nMFkw" },
    { name: "bearer token", in: "Authorization: Bearer eyJhbGciOi.J9.x-y_z", want: `Authorization: Bearer ${REDACTED}` },
    { name: "token= in a URL-ish string", in: "connect ?token=abc123&x=1", want: `connect ?token=${REDACTED}&x=1` },
    { name: "password: in text", in: "password: hunter2 rejected", want: `password: ${REDACTED} rejected` },
    { name: "ordinary advice untouched", in: "ssh root@203.0.113.10: key in Secret default/ssh rejected", want: "ssh root@203.0.113.10: key in Secret default/ssh rejected" },
  ];
  for (const c of cases) assert.equal(redactText(c.in), c.want, c.name);
});

test("redactValue drops sensitive fields whole, recurses, never mutates", () => {
  const input = {
    machine: "default/m1",
    privateKey: "anything at all",
    nested: { token: { id: 1 }, password: "p", note: `PrivateKey=${WG_KEY}`, list: [PEM, "ok"] },
    privateKeySecretRef: { name: "ssh", key: "ssh-privatekey" },
    err: new Error("outer", { cause: new Error(`inner PrivateKey ${WG_KEY}`) }),
    empty: "",
  };
  const copy = structuredClone({ ...input, err: undefined });
  const out = redactValue(input) as Record<string, unknown>;
  assert.deepEqual(out, {
    machine: "default/m1",
    privateKey: REDACTED,
    nested: { token: REDACTED, password: REDACTED, note: `PrivateKey=${REDACTED}`, list: ["[REDACTED PRIVATE KEY]", "ok"] },
    privateKeySecretRef: { name: "ssh", key: "ssh-privatekey" },
    err: `outer: inner PrivateKey ${REDACTED}`,
    empty: "",
  });
  assert.deepEqual({ ...input, err: undefined }, copy);
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic["self"] = cyclic;
  assert.deepEqual(redactValue(cyclic), { a: 1, self: "[Circular]" });
});

test("the logger redacts message and fields before writing", async () => {
  const { logger, lines } = captureLogger();
  logger.info(`rendered config PrivateKey = ${WG_KEY}`, { privateKey: WG_KEY, config: `PrivateKey = ${WG_KEY}`, host: "h1" });
  await flush();
  const line = lines[0];
  assert.ok(line);
  assert.equal(line.message, `rendered config PrivateKey = ${REDACTED}`);
  assert.equal(line["privateKey"], REDACTED);
  assert.equal(line["config"], `PrivateKey = ${REDACTED}`);
  assert.equal(line["host"], "h1");
  assert.ok(!JSON.stringify(lines).includes(WG_KEY));
});

test("format: json in a cluster or when asked, text in a terminal", () => {
  const cases: Array<{ name: string; format?: "json" | "text" | "auto"; env: Record<string, string>; tty: boolean; want: "json" | "text" }> = [
    { name: "terminal", env: {}, tty: true, want: "text" },
    { name: "pipe", env: {}, tty: false, want: "json" },
    { name: "in a cluster, even on a tty", env: { KUBERNETES_SERVICE_HOST: "10.0.0.1" }, tty: true, want: "json" },
    { name: "explicit json", format: "json", env: {}, tty: true, want: "json" },
    { name: "explicit text wins over cluster", format: "text", env: { KUBERNETES_SERVICE_HOST: "10.0.0.1" }, tty: false, want: "text" },
    { name: "env format", env: { DOCKMESH_LOG_FORMAT: "json" }, tty: true, want: "json" },
    { name: "auto reads env", format: "auto", env: { DOCKMESH_LOG_FORMAT: "text" }, tty: false, want: "text" },
  ];
  for (const c of cases) assert.equal(resolveLogFormat(c.format, c.env, c.tty), c.want, c.name);
});

test("text format: one line per entry with level, message and fields; levels filter", async () => {
  let out = "";
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      out += chunk.toString();
      cb();
    },
  });
  const logger = createLogger({ format: "text", level: "info", stream, env: {} });
  logger.info("machine converged\nsecond line", { key: "default/m1", peers: "2/2", note: "has space" });
  logger.debug("not shown");
  logger.child({ component: "informer" }).warn("watch failed", { error: "connection refused" });
  await flush();
  const lines = out.trimEnd().split("\n");
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? "", /^\d{4}-\d\d-\d\dT\S+Z INFO {2}machine converged\\nsecond line key=default\/m1 peers=2\/2 note="has space"$/);
  assert.match(lines[1] ?? "", /WARN {2}watch failed component=informer error="connection refused"$/);
});

test("describeError joins the cause chain without repeats", () => {
  assert.equal(describeError(new Error("a", { cause: new Error("b", { cause: new Error("c") }) })), "a: b: c");
  assert.equal(describeError(new Error("reconcile: b", { cause: new Error("b") })), "reconcile: b");
  assert.equal(describeError("plain"), "plain");
});

test("describeError shortens client-node's ApiException to the server's message", () => {
  const status = JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message: 'machines.dockmesh.io "x" not found', reason: "NotFound", code: 404 });
  const cases: Array<{ name: string; err: unknown; want: string }> = [
    { name: "Status body", err: new ApiException(404, "Unknown API Status Code!", status, { "content-type": "application/json" }), want: 'machines.dockmesh.io "x" not found (HTTP 404)' },
    { name: "plain body", err: new ApiException(502, "Unknown API Status Code!", "bad gateway\n", {}), want: "bad gateway (HTTP 502)" },
    { name: "no body", err: new ApiException(401, "Unauthorized", undefined, {}), want: "HTTP 401" },
    {
      name: "wrapped",
      err: new Error("write status of Machine default/x", { cause: new ApiException(409, "Unknown API Status Code!", status, {}) }),
      want: 'write status of Machine default/x: machines.dockmesh.io "x" not found (HTTP 409)',
    },
  ];
  for (const c of cases) assert.equal(describeError(c.err), c.want, c.name);
});
