// The layers point one way (docs/architecture.md): cli → controllers → hosts → mesh, runtime →
// api; the store serves the API and knows only api/. A module that imports against the arrow
// fails here, naming the file and the import.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../support/golden.js";

/** Layer → the layers its modules may import (besides its own and packages; vendor/ is packages:
 * the bundled entry points of @kubernetes/client-node and yaml). */
const ALLOWED: Record<string, readonly string[]> = {
  api: [],
  mesh: ["api"],
  runtime: ["api"],
  hosts: ["api", "mesh"],
  controllers: ["api", "mesh", "runtime", "hosts"],
  store: ["api"],
};

test("every layer imports only the layers below it", () => {
  const wrong: string[] = [];
  for (const [layer, allowed] of Object.entries(ALLOWED)) {
    for (const file of readdirSync(join(projectRoot, layer)).filter((f) => f.endsWith(".ts"))) {
      const text = readFileSync(join(projectRoot, layer, file), "utf8");
      // Static and dynamic imports alike: `from "../x/..."`, `import("../x/...")`.
      for (const m of text.matchAll(/(?:from|import\()\s*"\.\.\/([a-z-]+)\//g)) {
        if (m[1] !== "vendor" && !allowed.includes(m[1]!)) wrong.push(`${layer}/${file} imports ../${m[1]}/`);
      }
    }
  }
  assert.deepEqual(wrong, [], "imports against the layering (docs/architecture.md)");
});
