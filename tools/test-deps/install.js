#!/usr/bin/env node
// Installs the packages only the lint and the tests use (eslint, typescript-eslint,
// kubernetes-models, ...: ./package.json) into tools/test-deps/node_modules, with `npm ci`
// against ./package-lock.json, once per lockfile: the sha256 of package.json and
// package-lock.json is recorded in node_modules/.dockmesh-lock-sha256, and an equal one skips
// the install. Kept out of the root package so that the root `npm ci` installs only what
// builds and runs dockmesh. typescript is here too: `npm run build` type-checks with its tsc
// (esbuild compiles, tools/build.js), and typescript-eslint uses the same.
// Run by `npm run lint` and test/run.js; by hand: node tools/test-deps/install.js
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const MARK = ".dockmesh-lock-sha256";
const FILES = ["package.json", "package-lock.json"];

function lockHash() {
  const h = createHash("sha256");
  for (const f of FILES) h.update(readFileSync(join(here, f)));
  return h.digest("hex");
}

function installedHash(modules) {
  try {
    return readFileSync(join(modules, MARK), "utf8").trim();
  } catch {
    return undefined;
  }
}

/** npm itself: the one running `npm run ...`, else the one on PATH. */
function npmArgv() {
  const cli = process.env.npm_execpath;
  return cli && basename(cli) === "npm-cli.js" ? [process.execPath, cli] : ["npm"];
}

/**
 * Makes tools/test-deps/node_modules match the lockfile; returns its path. Installs into a temp
 * dir and renames it into place, so two test runs installing at once never mix their files.
 */
export function ensureTestDeps(log = (m) => process.stderr.write(`test-deps: ${m}\n`)) {
  const modules = join(here, "node_modules");
  const want = lockHash();
  if (installedHash(modules) === want) return modules;
  const tmp = mkdtempSync(join(here, ".install-"));
  try {
    for (const f of FILES) copyFileSync(join(here, f), join(tmp, f));
    log(`npm ci in tools/test-deps (the lint and test packages; first run, or its lockfile changed)`);
    const [cmd, ...args] = [...npmArgv(), "ci", "--omit=peer", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", tmp];
    const r = spawnSync(cmd, args, { cwd: tmp, stdio: ["ignore", 2, 2] });
    if (r.error || r.status !== 0) {
      throw new Error(`npm ci in ${here} failed (${r.error?.message ?? `exit ${r.status}`}); check that npm reaches its registry (npm config get registry)`, { cause: r.error });
    }
    writeFileSync(join(tmp, "node_modules", MARK), `${want}\n`);
    for (let attempt = 0; ; attempt++) {
      try {
        renameSync(join(tmp, "node_modules"), modules);
        return modules;
      } catch (e) {
        if (e.code !== "ENOTEMPTY" && e.code !== "EEXIST") throw e;
        // Another run finished first with the same lockfile: use its tree.
        if (installedHash(modules) === want) return modules;
        if (attempt > 3) throw new Error(`cannot replace ${modules}`, { cause: e });
        // An install of an older lockfile: move it aside (removed with tmp), then retry.
        try {
          renameSync(modules, join(tmp, `old-${attempt}`));
        } catch {
          // someone else moved it; retry the rename
        }
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  try {
    ensureTestDeps();
  } catch (e) {
    console.error(`test-deps: ${e.message}`);
    process.exit(1);
  }
}
