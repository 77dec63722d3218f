// Parses one YAML request body off the event loop (store/yaml-body.ts starts it and kills it when
// its time budget runs out). Limits what the main thread gets back: node count, nesting depth,
// aliases; duplicate keys are found here in linear time (the yaml package's own check compares
// every pair of keys of a map: 25,000 keys took 42 s).
import { parentPort, workerData } from "node:worker_threads";
import { isMap, isScalar, isSeq, parseDocument, type Node } from "../vendor/yaml.js";

export interface YamlJob {
  text: string;
  maxNodes: number;
  maxDepth: number;
  maxAliases: number;
}

export type YamlResult = { ok: true; json: string } | { ok: false; tooLarge: boolean; message: string };

class Limit extends Error {}

function check(job: YamlJob, root: Node | null): void {
  let nodes = 0;
  const stack: Array<{ node: unknown; depth: number; path: string }> = [{ node: root, depth: 1, path: "" }];
  while (stack.length > 0) {
    const { node, depth, path } = stack.pop() as { node: unknown; depth: number; path: string };
    if (++nodes > job.maxNodes) throw new Limit(`more than ${job.maxNodes} values; send fewer fields or split the object`);
    if (depth > job.maxDepth) throw new Limit(`nested deeper than ${job.maxDepth} levels at ${path.length > 80 ? `${path.slice(0, 80)}…` : path}`);
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (seen.has(key)) throw new Error(`duplicate key ${JSON.stringify(key)} in ${path || "the top-level map"}`);
        seen.add(key);
        stack.push({ node: pair.value, depth: depth + 1, path: `${path}.${key}` });
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push({ node: item, depth: depth + 1, path: `${path}[${i}]` }));
    }
  }
}

function parse(job: YamlJob): YamlResult {
  try {
    const doc = parseDocument(job.text, { uniqueKeys: false, prettyErrors: false });
    const [error] = doc.errors;
    if (error) throw error;
    check(job, doc.contents);
    return { ok: true, json: JSON.stringify(doc.toJS({ maxAliasCount: job.maxAliases }) ?? null) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, tooLarge: err instanceof Limit || /alias/i.test(message), message };
  }
}

parentPort?.postMessage(parse(workerData as YamlJob));
