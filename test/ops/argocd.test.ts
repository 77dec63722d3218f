// The Argo CD health checks (deploy/argocd/health-*.lua) under a real Lua 5.1 interpreter
// (Debian's lua5.1; Argo CD's gopher-lua is Lua 5.1) with dkjson decoding the object, on the
// fixtures in test/argocd/fixtures: Healthy, Progressing (new, generation not yet observed,
// stale condition, peers pending), Degraded, being deleted. And the argocd-cm snippet holds
// exactly those scripts.
import { describe, test, before } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { projectRoot } from "../support/golden.js";
import { ensureSystemPackages, type Requirement } from "../../lab/requirements.js";
import { argocdCmYaml, luaOf } from "./argocd-cm.js";
import { parseObjects, validateAll } from "./k8s-schema.js";
import { run } from "./tools.js";

const LUA: Requirement[] = [
  { binary: "lua5.1", paths: ["/usr/bin/lua5.1"], pkg: "lua5.1" },
  { binary: "dkjson (Lua module)", paths: ["/usr/share/lua/5.1/dkjson.lua"], pkg: "lua-dkjson", file: true },
];

interface HealthTest {
  script: string;
  inputPath: string;
  healthStatus: { status: string; message: string };
}

const FIXTURES = join(projectRoot, "test/argocd/fixtures");
const cases = (parse(readFileSync(join(FIXTURES, "health_test.yaml"), "utf8")) as { tests: HealthTest[] }).tests;

async function health(script: string, object: unknown): Promise<{ status: string; message: string }> {
  const r = await run(["lua5.1", join(projectRoot, "test/argocd/harness.lua"), join(projectRoot, "deploy/argocd", script)], { input: JSON.stringify(object), cwd: projectRoot });
  assert.equal(r.code, 0, `lua5.1 ${script}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { status: string; message: string };
}

describe("Argo CD health checks (Lua 5.1)", () => {
  before(async () => {
    await ensureSystemPackages({ requirements: LUA });
  });

  test("the interpreter is Lua 5.1", async () => {
    const r = await run(["lua5.1", "-v"]);
    assert.match(r.stdout + r.stderr, /^Lua 5\.1/);
  });

  for (const c of cases) {
    test(`${c.script} on ${c.inputPath} → ${c.healthStatus.status}`, async () => {
      const object = parse(readFileSync(join(FIXTURES, c.inputPath), "utf8")) as unknown;
      assert.deepEqual(await health(c.script, object), c.healthStatus);
    });
  }

  test("the fixtures cover Healthy, Progressing, Degraded and being deleted for both kinds", () => {
    for (const script of ["health-machine.lua", "health-meshnetwork.lua"]) {
      const mine = cases.filter((c) => c.script === script);
      for (const s of ["Healthy", "Progressing", "Degraded"])
        assert.ok(
          mine.some((c) => c.healthStatus.status === s),
          `${script}: a ${s} fixture`,
        );
      assert.ok(
        mine.some((c) => /deleting/.test(c.inputPath)),
        `${script}: a fixture being deleted`,
      );
      assert.ok(
        mine.some((c) => /generation-not-observed/.test(c.inputPath)),
        `${script}: a fixture whose generation is not observed yet`,
      );
    }
  });

  test("deploy/argocd/argocd-cm.yaml holds exactly the two scripts, under Argo CD's keys", async () => {
    const text = readFileSync(join(projectRoot, "deploy/argocd/argocd-cm.yaml"), "utf8");
    assert.equal(text, argocdCmYaml(), "regenerate deploy/argocd/argocd-cm.yaml from the .lua files (see test/ops/argocd-cm.ts)");
    const cm = parseObjects(text);
    await validateAll(cm);
    const data = (cm[0] as unknown as { data: Record<string, string> }).data;
    assert.equal(data["resource.customizations.health.dockmesh.io_Machine"], luaOf("Machine"));
    assert.equal(data["resource.customizations.health.dockmesh.io_MeshNetwork"], luaOf("MeshNetwork"));
  });
});
