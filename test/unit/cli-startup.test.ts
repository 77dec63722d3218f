// Issue 14: `dockmesh --help` and `dockmesh plan` must start fast, so they must not load the
// heavy packages that only the long-running commands use (the API client alone is ~75 MB and
// seconds of start-up). Each case runs the CLI with a preload that records every module loaded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../support/golden.js";

const recorder = join(projectRoot, "dist/test/support/module-recorder.js");

/** Packages for the commands that run something (controller, up, graph), never for help or plan. */
const HEAVY = ["@kubernetes/client-node", "better-sqlite3", "ssh2", "winston", "prom-client", "node-forge"];

/** The packages that load as one bundle from dist/vendor/ (tools/build.js), by its file name. */
const VENDORED: Record<string, string> = { "client-node": "@kubernetes/client-node", yaml: "yaml" };

/** The packages (by node_modules/ directory, or their dist/vendor/ bundle) among the modules that `dockmesh ARGS` loads. */
function packagesLoaded(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string; packages: Set<string>; urls: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-modules-"));
  try {
    const out = join(dir, "modules.txt");
    const r = spawnSync(process.execPath, ["--import", recorder, join(projectRoot, "bin/dockmesh.js"), ...args], {
      encoding: "utf8",
      cwd: projectRoot,
      env: { ...process.env, DOCKMESH_MODULES_OUT: out, ...env },
    });
    const urls = readFileSync(out, "utf8").split("\n").filter(Boolean);
    const packages = new Set(urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? VENDORED[/\/dist\/vendor\/([^/]+)\.js$/.exec(u)?.[1] ?? ""] ?? []));
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, packages, urls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const cases: Array<{ args: string[]; usage: RegExp; yaml: boolean }> = [
  { args: ["--help"], usage: /^Usage: dockmesh \[options\] \[command\]/, yaml: false },
  { args: ["plan", "-f", "examples/"], usage: /^MeshNetwork default\/mesh: /, yaml: true },
  ...["up", "controller", "plan", "graph"].flatMap((c) => [
    { args: [c, "--help"], usage: new RegExp(`^Usage: dockmesh ${c} \\[options\\]`), yaml: false },
    { args: ["help", c], usage: new RegExp(`^Usage: dockmesh ${c} \\[options\\]`), yaml: false },
  ]),
];

for (const c of cases) {
  test(`cli start-up: dockmesh ${c.args.join(" ")} works and loads none of ${HEAVY.join(", ")}`, () => {
    const r = packagesLoaded(c.args);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, c.usage);
    assert.ok(r.packages.has("commander"), `the recorder saw commander (it saw: ${[...r.packages].join(", ")})`);
    assert.deepEqual(
      HEAVY.filter((p) => r.packages.has(p)),
      [],
    );
    // Help needs only commander; plan needs yaml for the manifests.
    assert.equal(r.packages.has("yaml"), c.yaml, `yaml loaded: ${r.packages.has("yaml")}`);
  });
}

test("cli start-up: the recorder sees the heavy packages where a command does load them (dockmesh controller)", () => {
  const r = packagesLoaded(["controller"], { KUBECONFIG: join(projectRoot, "no-such-kubeconfig") });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^dockmesh: .*no-such-kubeconfig/);
  for (const p of ["@kubernetes/client-node", "ssh2", "winston", "prom-client"]) assert.ok(r.packages.has(p), `${p} not seen; seen: ${[...r.packages].join(", ")}`);
  // The API client runs as its bundle (tools/build.js), not as the package's ~970 modules.
  const fromPackage = r.urls.filter((u) => u.includes("/node_modules/@kubernetes/client-node/"));
  assert.deepEqual(fromPackage.slice(0, 3), [], `${fromPackage.length} files of @kubernetes/client-node loaded instead of dist/vendor/client-node.js`);
});

test("cli start-up: the API client's bundle leaves out whatwg-url and its Unicode table (node-fetch uses Node's URL)", async () => {
  const bundle = join(projectRoot, "dist/vendor/client-node.js");
  // tr46's toASCII and its IDNA mapping table: 2.7 MB of heap at load in a bundle that has them.
  assert.doesNotMatch(readFileSync(bundle, "utf8"), /toASCII|"xn--"/);
  // …and the client still builds request URLs: node-fetch's URL is Node's own.
  const { KubeConfig, CoreV1Api } = (await import(bundle)) as typeof import("../../vendor/client-node.js");
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:1", skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  await assert.rejects(kc.makeApiClient(CoreV1Api).readNamespace({ name: "default" }), /ECONNREFUSED/);
});
