// Preload for `node --import` that records which modules a process loads, one a line, into the
// file named by $DOCKMESH_MODULES_OUT: every module through the ESM loader (module-hooks.ts), and
// at exit the CommonJS modules, which a package's own require() loads past the ESM hooks on Node 20.
import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";

const out = process.env["DOCKMESH_MODULES_OUT"];
if (!out) throw new Error("module-recorder: set DOCKMESH_MODULES_OUT to the file to record into");
register(new URL("./module-hooks.js", import.meta.url), { data: { out } });
const require = createRequire(import.meta.url);
process.on("exit", () => {
  appendFileSync(
    out,
    Object.keys(require.cache)
      .map((f) => `${pathToFileURL(f).href}\n`)
      .join(""),
  );
});
