// changed (runtime/informer.ts): an update counts only when the facts differ between the object
// before it and after it; an arrival and a deletion always count.
import { test } from "node:test";
import assert from "node:assert/strict";
import { changed } from "../../runtime/informer.js";

test("changed: first sight, same facts, changed facts, deletion, then sight again", () => {
  const obj = (labels: string) => ({ metadata: { namespace: "ns", name: "a", labels: { l: labels } } });
  const facts = (o: ReturnType<typeof obj>) => o.metadata.labels.l;
  const steps: Array<[string, ReturnType<typeof obj>, ReturnType<typeof obj> | undefined, boolean]> = [
    ["ADDED", obj("x"), undefined, true],
    ["MODIFIED", obj("x"), obj("x"), false],
    ["MODIFIED", obj("y"), obj("x"), true],
    ["DELETED", obj("y"), obj("y"), true],
    ["ADDED", obj("y"), undefined, true],
  ];
  for (const [type, object, old, want] of steps) assert.equal(changed({ type: type as "ADDED", object, ...(old ? { old } : {}) }, facts), want, `${type} ${object.metadata.labels.l}`);
});
