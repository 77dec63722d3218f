// Issue 12 §5: docs/benchmarks.md named a DESIGN.md the repository does not have. Every relative
// link and every *.md file named in README.md and docs/*.md exists.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { projectRoot } from "../support/golden.js";

const docs = [
  "README.md",
  ...readdirSync(join(projectRoot, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

for (const d of docs) {
  test(`${d}: relative links and named .md files exist`, () => {
    const text = readFileSync(join(projectRoot, d), "utf8");
    for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      assert.ok(existsSync(resolve(dirname(join(projectRoot, d)), target)), `${d}: link to ${target} does not exist`);
    }
    for (const m of text.matchAll(/\b([A-Z][A-Za-z0-9_-]*\.md)\b/g)) {
      const name = m[1]!;
      const found = existsSync(join(projectRoot, name)) || existsSync(join(projectRoot, "docs", name)) || existsSync(join(dirname(join(projectRoot, d)), name));
      assert.ok(found, `${d} names ${name}, which the repository does not have`);
    }
  });
}
