// Golden files live in test/golden/ (source tree). UPDATE_GOLDEN=1 rewrites them.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

/** The project root, from dist/test/support/. */
export const projectRoot = fileURLToPath(new URL("../../../", import.meta.url));

export function assertGolden(name: string, actual: string): void {
  const path = `${projectRoot}test/golden/${name}`;
  if (process.env.UPDATE_GOLDEN === "1" || !existsSync(path)) {
    if (process.env.CI && !existsSync(path)) assert.fail(`golden file ${path} is missing; run the test with UPDATE_GOLDEN=1 and commit it`);
    writeFileSync(path, actual);
    return;
  }
  assert.equal(actual, readFileSync(path, "utf8"), `output differs from ${path} (UPDATE_GOLDEN=1 rewrites it after review)`);
}
