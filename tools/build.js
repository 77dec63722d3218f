#!/usr/bin/env node
// Builds dist/ with esbuild: every TypeScript file of the project compiled to an ES module of
// its own (the layout tsc would write), and the packages in vendor/ bundled into one minified
// module each. Type checking is tsc's (`npm run build` runs `tsc --noEmit` first; the tests
// need it, a user's `npm ci` does not).
//
//   node tools/build.js          what `npm ci` builds ("prepare"): dockmesh itself (tsconfig.app.json)
//   node tools/build.js --all    the whole tree with tests, benchmarks, lab and tools (tsconfig.json)
//
// Why esbuild: it compiles each file alone in milliseconds (tsc took ~20 s of CPU in every
// `npm ci`, and typescript's 23 MB left the install with it), and it bundles: loading
// @kubernetes/client-node as ~970 modules cost ~60 MB of RSS, as one minified module ~20 MB.
// tsconfig.json's isolatedModules makes tsc refuse what a file-by-file compile would get wrong.
import { build } from "esbuild";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The directories a tsconfig compiles ("include"; the file's // comments are not JSON). */
function includes(tsconfig) {
  const text = readFileSync(join(root, tsconfig), "utf8").replace(/^\s*\/\/.*$/gm, "");
  const cfg = JSON.parse(text);
  if (!Array.isArray(cfg.include)) throw new Error(`${tsconfig}: no "include" list`);
  return cfg.include;
}

/** The .ts files under a directory, as tsc finds them (node_modules and hidden directories left out). */
function tsFiles(dir) {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts"))
    .map((e) => relative(root, join(e.parentPath ?? e.path, e.name)))
    .filter((f) => !f.split("/").some((part) => part === "node_modules" || part.startsWith(".")));
}

// Bundled code reaches Node's built-ins through require (CommonJS packages inside): an ES
// module has none, so the bundle makes one.
const REQUIRE_BANNER = 'import { createRequire as __dockmeshCreateRequire } from "node:module"; const require = __dockmeshCreateRequire(import.meta.url);';

// node-fetch 2 (client-node's HTTP) imports whatwg-url, but uses it only where Node has no URL
// class (Node < 7): `const URL = Url.URL || whatwgUrl.URL`. Bundled, whatwg-url and its tr46
// Unicode table are 280 KB of code and 2.7 MB of heap built at load and never read, so the
// bundle gets Node's own URL in its place.
const nodeUrlForWhatwgUrl = {
  name: "node-url-for-whatwg-url",
  setup(b) {
    b.onResolve({ filter: /^whatwg-url$/ }, () => ({ path: "whatwg-url", namespace: "dockmesh-stub" }));
    b.onLoad({ filter: /.*/, namespace: "dockmesh-stub" }, () => ({ contents: "export const URL = globalThis.URL; export default { URL };", loader: "js" }));
  },
};

const common = { platform: "node", format: "esm", target: "node20", logLevel: "warning", absWorkingDir: root };

async function main(argv) {
  const all = argv.includes("--all");
  const dirs = includes(all ? "tsconfig.json" : "tsconfig.app.json");
  const files = dirs.filter((d) => d !== "vendor").flatMap(tsFiles);
  await build({ ...common, entryPoints: files, outdir: "dist", outbase: ".", sourcemap: "linked" });
  // vendor/ was left out above: each of its files becomes a bundle of the package it re-exports.
  await build({
    ...common,
    entryPoints: tsFiles("vendor"),
    outdir: "dist/vendor",
    bundle: true,
    minify: true,
    legalComments: "linked",
    banner: { js: REQUIRE_BANNER },
    plugins: [nodeUrlForWhatwgUrl],
  });
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`tools/build.js: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
