// Issue 12 §3: "every command printed in a message is complete, namespace included". The advice
// to release a Machine left out -n <namespace>: run as printed, it annotated nothing (or the
// wrong object). Every kubectl command the code prints names its namespace (or all of them);
// `kubectl apply -f` takes it from the manifests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../support/golden.js";

const DIRS = ["controllers", "hosts", "mesh", "runtime", "cli", "lab", "store"];
const VERBS = /kubectl (annotate|get|describe|delete|create|label|patch|edit|wait|logs|rollout|scale)\b/;

function* sources(dir: string): Generator<string> {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (f.endsWith(".ts")) yield p;
  }
}

/** Each kubectl command in a string literal, from "kubectl" to the end of its string or clause. */
export function printedCommands(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const code = line.trim();
    if (code.startsWith("//") || code.startsWith("*") || code.startsWith("/*")) continue;
    for (const m of line.matchAll(/kubectl [^`"';#]*/g)) if (VERBS.test(m[0].replace(/ -n \S+| --namespace[= ]\S+/g, ""))) out.push(m[0]);
  }
  return out;
}

test("printedCommands finds the commands to check", () => {
  assert.deepEqual(printedCommands("const x = `run: kubectl annotate machine ${name} a=b`;\n// kubectl get pods\n"), ["kubectl annotate machine ${name} a=b"]);
  assert.deepEqual(printedCommands('"kubectl -n ns get machines -w"'), ["kubectl -n ns get machines -w"]);
});

test("every kubectl command the code prints names its namespace", () => {
  const found: string[] = [];
  for (const d of DIRS) {
    for (const file of sources(join(projectRoot, d))) {
      for (const cmd of printedCommands(readFileSync(file, "utf8"))) {
        found.push(cmd);
        assert.match(cmd, /(^kubectl -n \S+ )|( --namespace[= ]\S+)|( -A\b)|( --all-namespaces\b)/, `${file}: "${cmd}" names no namespace`);
      }
    }
  }
  assert.ok(found.length >= 3, `found ${found.length} commands`);
});
