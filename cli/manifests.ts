// Reads multi-document YAML manifests from files and directories, as kubectl -f does.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "../vendor/yaml.js";

export interface Manifest {
  file: string;
  /** 1-based index of the document in its file. */
  doc: number;
  object: Record<string, unknown>;
}

export class ManifestError extends Error {}

function expand(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (cause) {
    throw new ManifestError(`${path}: no such file or directory`, { cause });
  }
  if (!st.isDirectory()) return [path];
  return readdirSync(path)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .map((f) => join(path, f));
}

export function readManifests(paths: readonly string[]): Manifest[] {
  const out: Manifest[] = [];
  for (const file of paths.flatMap(expand)) {
    const text = readFileSync(file, "utf8");
    const docs = parseAllDocuments(text, { prettyErrors: true });
    if (!Array.isArray(docs)) throw new ManifestError(`${file}: not a YAML stream`);
    docs.forEach((d, i) => {
      const err = d.errors[0];
      if (err) throw new ManifestError(`${file}: invalid YAML (document ${i + 1}): ${err.message.split("\n")[0]}`);
      const object: unknown = d.toJS();
      if (object === null || object === undefined) return; // empty document, e.g. a trailing ---
      if (typeof object !== "object" || Array.isArray(object)) throw new ManifestError(`${file}: document ${i + 1} is not a mapping (an object with apiVersion, kind, metadata)`);
      const o = object as Record<string, unknown>;
      if (o.kind === "List" && Array.isArray(o.items)) {
        for (const item of o.items) out.push({ file, doc: i + 1, object: item as Record<string, unknown> });
      } else {
        out.push({ file, doc: i + 1, object: o });
      }
    });
  }
  return out;
}

export function describeManifest(m: Manifest): string {
  const meta = (m.object.metadata ?? {}) as { name?: unknown; namespace?: unknown };
  const name = typeof meta.name === "string" ? meta.name : "(no name)";
  const ns = typeof meta.namespace === "string" ? meta.namespace : "default";
  return `${m.file}: ${String(m.object.kind ?? "(no kind)")} ${ns}/${name}`;
}
