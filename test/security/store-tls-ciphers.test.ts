// Issue 11, finding 10: TLS 1.2 accepted static-RSA key exchange and CBC-SHA1 suites. Only
// forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305) and TLS 1.3 are offered now,
// as by kube-apiserver; kubectl still connects.
import { strict as assert } from "node:assert";
import { connect, type ConnectionOptions } from "node:tls";
import { after, before, describe, it } from "node:test";
import { startTestStore, type TestStore } from "../store/helpers.js";

type Outcome = { ok: true; version: string; cipher: string } | { ok: false; error: string };

function handshake(store: TestStore, opts: ConnectionOptions): Promise<Outcome> {
  const u = new URL(store.url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port), ca: store.caCertPem, servername: "localhost", ...opts }, () => {
      resolve({ ok: true, version: s.getProtocol() ?? "", cipher: s.getCipher().name });
      s.destroy();
    });
    s.on("error", (err) => resolve({ ok: false, error: err.message }));
    s.setTimeout(5000, () => s.destroy(new Error("handshake timed out")));
  });
}

const cases: Array<{ name: string; opts: ConnectionOptions; accept: boolean }> = [
  { name: "TLS 1.2 AES128-SHA (static RSA, CBC-SHA1)", opts: { maxVersion: "TLSv1.2", ciphers: "AES128-SHA" }, accept: false },
  { name: "TLS 1.2 AES256-SHA256 (static RSA, CBC)", opts: { maxVersion: "TLSv1.2", ciphers: "AES256-SHA256" }, accept: false },
  { name: "TLS 1.2 AES128-GCM-SHA256 (static RSA)", opts: { maxVersion: "TLSv1.2", ciphers: "AES128-GCM-SHA256" }, accept: false },
  { name: "TLS 1.2 ECDHE-RSA-AES128-SHA (CBC-SHA1)", opts: { maxVersion: "TLSv1.2", ciphers: "ECDHE-RSA-AES128-SHA" }, accept: false },
  { name: "TLS 1.2 ECDHE-RSA-AES256-SHA384 (CBC)", opts: { maxVersion: "TLSv1.2", ciphers: "ECDHE-RSA-AES256-SHA384" }, accept: false },
  { name: "TLS 1.2 DHE-RSA-AES128-GCM-SHA256", opts: { maxVersion: "TLSv1.2", ciphers: "DHE-RSA-AES128-GCM-SHA256" }, accept: false },
  { name: "TLS 1.1", opts: { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" }, accept: false },
  { name: "TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256", opts: { maxVersion: "TLSv1.2", ciphers: "ECDHE-RSA-AES128-GCM-SHA256" }, accept: true },
  { name: "TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384", opts: { maxVersion: "TLSv1.2", ciphers: "ECDHE-RSA-AES256-GCM-SHA384" }, accept: true },
  { name: "TLS 1.2 ECDHE-RSA-CHACHA20-POLY1305", opts: { maxVersion: "TLSv1.2", ciphers: "ECDHE-RSA-CHACHA20-POLY1305" }, accept: true },
  { name: "TLS 1.3", opts: { minVersion: "TLSv1.3" }, accept: true },
];

describe("security: TLS versions and cipher suites of the API server (issue 11, finding 10)", () => {
  let store: TestStore;
  before(async () => {
    store = await startTestStore();
  });
  after(async () => {
    await store?.dispose();
  });

  for (const c of cases) {
    it(`${c.accept ? "accepts" : "refuses"} ${c.name}`, async () => {
      const r = await handshake(store, c.opts);
      if (c.accept) {
        assert.ok(r.ok, `handshake failed: ${r.ok ? "" : r.error}`);
        if (c.opts.maxVersion === "TLSv1.2") assert.equal(r.version, "TLSv1.2");
        if (c.opts.ciphers) assert.equal(r.cipher, c.opts.ciphers);
      } else {
        assert.ok(!r.ok, `the server accepted it: ${r.ok ? `${r.version} ${r.cipher}` : ""}`);
      }
    });
  }

  it("kubectl still connects", async () => {
    const r = await store.kubectl(["get", "namespaces", "-o", "name"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /namespace\/kube-system/);
  });
});
