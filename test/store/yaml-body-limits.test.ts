// The YAML body limits, each hit on its own with limits small enough that no other limit (and no
// machine load) can answer first. test/security/store-request-bodies.test.ts sends the real sizes
// to the running API server, where a loaded machine may hit the time budget before the count.
import { test } from "node:test";
import assert from "node:assert/strict";
import { YamlBodyParser, defaultYamlLimits, type YamlLimits } from "../../store/yaml-body.js";

const limits = (patch: Partial<YamlLimits>): YamlLimits => ({ ...defaultYamlLimits, budgetMs: 30_000, ...patch });

const rows: Array<{ name: string; limits: Partial<YamlLimits>; body: string; status: number; message: RegExp }> = [
  {
    name: "one value over the count",
    limits: { maxNodes: 10 },
    body: `x: [${"1,".repeat(10)}1]\n`,
    status: 413,
    message: /^YAML request body too complex: more than 10 values; send fewer fields or split the object$/,
  },
  { name: "one level over the depth", limits: { maxDepth: 5 }, body: `x: ${"{a: ".repeat(6)}1${"}".repeat(6)}\n`, status: 413, message: /nested deeper than 5 levels/ },
  {
    name: "a budget too short for the body",
    limits: { budgetMs: 1 },
    body: `x: [${"1,".repeat(100_000)}1]\n`,
    status: 413,
    message: /^YAML request body too complex: not parsed within 1 ms; send it as JSON or make it smaller$/,
  },
  { name: "not YAML", limits: {}, body: "x: [1, 2\n", status: 400, message: /^error decoding YAML: / },
];

for (const r of rows) {
  test(`YAML body: ${r.name} → ${r.status}`, async () => {
    const err = await new YamlBodyParser(limits(r.limits)).parse(r.body).then(
      () => assert.fail("parsed"),
      (e: { code?: number; status?: number; message: string }) => e,
    );
    assert.equal(err.code ?? err.status, r.status, err.message);
    assert.match(err.message, r.message);
  });
}

test("YAML body: within every limit, it parses", async () => {
  const parsed = await new YamlBodyParser(limits({ maxNodes: 13, maxDepth: 5 })).parse(`x: [${"1,".repeat(9)}1]\n`);
  assert.deepEqual(parsed, { x: Array(10).fill(1) });
});
