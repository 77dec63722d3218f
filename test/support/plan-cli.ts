// `dockmesh plan` run as a user runs it, on manifests written to a temporary directory.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "./golden.js";

/** The error lines of `dockmesh plan -f` for these manifests (it must refuse them), without the "error: FILE: " part. */
export function planErrors(manifests: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-plan-"));
  try {
    writeFileSync(join(dir, "all.yaml"), manifests);
    const r = spawnSync(process.execPath, [join(projectRoot, "bin/dockmesh.js"), "plan", "-f", dir], { encoding: "utf8" });
    assert.equal(r.status, 1, r.stderr);
    return r.stderr
      .trim()
      .split("\n")
      .map((l) => l.replace(/^error: [^:]+: /, ""));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
