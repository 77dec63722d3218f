// FactsSeen: an event counts only when the facts it carries changed; a deletion always counts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FactsSeen } from "../../runtime/informer.js";

test("FactsSeen: first sight, same facts, changed facts, deletion, then sight again", () => {
  const seen = new FactsSeen();
  const obj = (labels: string) => ({ metadata: { namespace: "ns", name: "a", labels: { l: labels } } });
  const facts = (o: ReturnType<typeof obj>) => o.metadata.labels.l;
  const steps: Array<[string, ReturnType<typeof obj>, boolean]> = [
    ["ADDED", obj("x"), true],
    ["MODIFIED", obj("x"), false],
    ["MODIFIED", obj("y"), true],
    ["DELETED", obj("y"), true],
    ["ADDED", obj("y"), true],
  ];
  for (const [type, object, want] of steps) assert.equal(seen.changed({ type: type as "ADDED", object }, facts), want, `${type} ${object.metadata.labels.l}`);
});
