// deploy/crds and helm/dockmesh/crds are copies of crds/ (kustomize and Helm load nothing from
// outside their directory); `npm run crds:sync` refreshes them.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../support/golden.js";

export function assertSameCrds(copyDir: string): void {
  const src = join(projectRoot, "crds");
  const dst = join(projectRoot, copyDir);
  const yaml = (d: string) =>
    readdirSync(d)
      .filter((f) => f.endsWith(".yaml"))
      .sort();
  assert.deepEqual(yaml(dst), yaml(src), `${copyDir} holds the same files as crds/ (run npm run crds:sync)`);
  for (const f of yaml(src)) {
    assert.equal(readFileSync(join(dst, f), "utf8"), readFileSync(join(src, f), "utf8"), `${copyDir}/${f} is identical to crds/${f} (run npm run crds:sync)`);
  }
}
