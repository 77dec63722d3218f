// The Dockerfile, built and run with a real Docker engine (Debian's docker.io, dockerd of a lab
// host) and no registry: the base image is made here by `docker import` of a root file system
// holding this machine's node binary and the libraries it links; the app comes in through the
// Dockerfile's APP_FROM=context path (.docker-app/: dist, production node_modules). The image
// prints its help, and runs `dockmesh controller --leader-elect` hardened as the Deployment runs
// it (read-only root, user 65532, no capabilities) against an embedded store run from the same
// image: it takes the Lease and reconciles a MeshNetwork.
// Not covered here (no registry or package mirror inside the lab): the default APP_FROM=source
// path (npm ci and tools/build.js in a node:20-bookworm-slim build stage).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { createLab, type Lab } from "../../lab/lab.js";
import { ensureSystemPackages } from "../../lab/requirements.js";
import { projectRoot } from "../support/golden.js";
import { runOk, type RunResult } from "./tools.js";
import { IMAGE_ENV, IMAGE_NODE_FLAGS } from "../../runtime/heap.js";

const PREFIX = "dmops";
const LABNET = "198.18.6.0/24";
const HOST = "img";
const STORE_PORT = 16447;
const METRICS_PORT = 18447;
const BASE = "dockmesh-local/node:20";
const IMAGE = "dockmesh/controller:test";
// Debian's client: it drives the daemon's built-in BuildKit without a buildx plugin.
const DOCKER = "/usr/bin/docker";

let lab: Lab;
let work: string;

/** Shared libraries a binary links (ldd), plus its interpreter. */
async function libraries(binary: string): Promise<string[]> {
  const out = await runOk(["ldd", binary]);
  return [...out.matchAll(/(\/[^\s]+\.so[^\s]*)/g)].map((m) => m[1]!);
}

function copyInto(root: string, path: string): void {
  const target = join(root, path);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(path, target); // follows symlinks: the library's real contents under the linked name
}

/** A tar of a minimal root file system: node, its libraries, passwd with user 65532, /tmp. */
async function baseRootfs(): Promise<string> {
  const root = join(work, "rootfs");
  mkdirSync(join(root, "usr/local/bin"), { recursive: true });
  copyFileSync(process.execPath, join(root, "usr/local/bin/node"));
  const addon = join(projectRoot, "node_modules/better-sqlite3/build/Release/better_sqlite3.node");
  for (const lib of new Set([...(await libraries(process.execPath)), ...(await libraries(addon))])) copyInto(root, lib);
  mkdirSync(join(root, "etc"), { recursive: true });
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\nnonroot:x:65532:\n");
  mkdirSync(join(root, "tmp"));
  chmodSync(join(root, "tmp"), 0o1777);
  const tar = join(work, "node-rootfs.tar");
  await runOk(["tar", "-C", root, "--numeric-owner", "--owner=0", "--group=0", "-cf", tar, "."]);
  return tar;
}

/** The build context: Dockerfile, .dockerignore and .docker-app/ (the built app, production dependencies only). */
async function buildContext(): Promise<string> {
  const ctx = join(work, "context");
  const app = join(ctx, ".docker-app");
  mkdirSync(app, { recursive: true });
  copyFileSync(join(projectRoot, "Dockerfile"), join(ctx, "Dockerfile"));
  copyFileSync(join(projectRoot, ".dockerignore"), join(ctx, ".dockerignore"));
  copyFileSync(join(projectRoot, "package.json"), join(app, "package.json"));
  for (const d of ["bin", "crds"]) cpSync(join(projectRoot, d), join(app, d), { recursive: true });
  for (const d of ["api", "vendor", "cli", "controllers", "hosts", "mesh", "runtime", "store"])
    cpSync(join(projectRoot, "dist", d), join(app, "dist", d), { recursive: true, filter: (s) => !s.endsWith(".map") });
  // Production dependencies: npm's own view of the tree, without dev dependencies (no network).
  const paths = (await runOk(["npm", "ls", "--omit=dev", "--all", "--parseable"], { cwd: projectRoot })).split("\n").filter((p) => p.startsWith(join(projectRoot, "node_modules")));
  for (const p of paths) cpSync(p, join(app, relative(projectRoot, p)), { recursive: true, filter: (s) => s === p || !s.startsWith(join(p, "node_modules")) });
  assert.ok(existsSync(join(app, "node_modules/@kubernetes/client-node/package.json")));
  assert.ok(!existsSync(join(app, "node_modules/typescript")), "no dev dependencies in the image");
  return ctx;
}

/** lab.exec with the exit code of a killed command as -1. */
async function labExec(host: string, argv: readonly string[], opts: Parameters<Lab["exec"]>[2]): Promise<RunResult> {
  const r = await lab.exec(host, argv, opts);
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function docker(args: readonly string[], timeoutMs = 300_000): Promise<RunResult> {
  return labExec(HOST, [DOCKER, ...args], { timeoutMs, env: { ...process.env, DOCKER_BUILDKIT: "1" } });
}

async function dockerOk(args: readonly string[], timeoutMs = 300_000): Promise<string> {
  const r = await docker(args, timeoutMs);
  if (r.code !== 0) throw new Error(`docker ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function kubectlIn(args: readonly string[], input?: string): Promise<RunResult> {
  return labExec(HOST, ["kubectl", "--kubeconfig", join(work, "store/kubeconfig"), ...args], { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) });
}

describe("the container image (Dockerfile, real dockerd)", { timeout: 600_000 }, () => {
  before(async () => {
    await ensureSystemPackages();
    work = mkdtempSync(join(tmpdir(), `${PREFIX}-image-`));
    chmodSync(work, 0o755);
    lab = await createLab({ prefix: PREFIX, labnet: LABNET, natLans: { first: 60, last: 69 }, hosts: [{ name: HOST }], log: (m) => process.env.DOCKMESH_TEST_VERBOSE && console.error(`[lab] ${m}`) });
  });

  after(async () => {
    if (lab) {
      await docker(["rm", "-f", "dm-store", "dm-controller"]).catch(() => undefined);
      await lab.destroy();
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("builds from the Dockerfile and runs the controller as the Deployment does", async () => {
    const t0 = Date.now();
    const tar = await baseRootfs();
    await dockerOk(["import", "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin", tar, BASE]);
    const ctx = await buildContext();
    const build = await docker(["build", "--build-arg", `NODE_IMAGE=${BASE}`, "--build-arg", "APP_FROM=context", "-t", IMAGE, ctx], 600_000);
    assert.equal(build.code, 0, `docker build failed:\n${build.stderr}${build.stdout}`);
    console.log(`image built in ${Date.now() - t0} ms`);

    const config = JSON.parse(await dockerOk(["image", "inspect", IMAGE, "--format", "{{json .Config}}"])) as {
      User: string;
      Entrypoint: string[];
      Cmd: string[];
      Env: string[];
      ExposedPorts: Record<string, unknown>;
    };
    assert.equal(config.User, "65532:65532");
    assert.deepEqual(config.Entrypoint, ["node", ...IMAGE_NODE_FLAGS, "/app/bin/dockmesh.js"]);
    for (const [k, v] of Object.entries(IMAGE_ENV)) assert.ok(config.Env.includes(`${k}=${v}`), `the image's environment has ${k}=${v} (runtime/heap.ts IMAGE_ENV): ${config.Env.join(" ")}`);
    assert.deepEqual(config.Cmd, ["controller", "--leader-elect", "--metrics-bind-address=:8080"]);
    assert.ok("8080/tcp" in config.ExposedPorts);
    const size = Number(await dockerOk(["image", "inspect", IMAGE, "--format", "{{.Size}}"]));
    console.log(`image size ${(size / 1e6).toFixed(0)} MB`);

    const help = await dockerOk(["run", "--rm", IMAGE, "controller", "--help"]);
    assert.match(help, /Usage: dockmesh controller \[options\]/);
    assert.match(help, /--leader-elect/);

    // An embedded store from the same image (state in a directory of the work dir), then the
    // controller, hardened, on the host's network.
    const state = join(work, "store");
    // The image runs as 65532, and the store refuses a state dir owned by someone else.
    mkdirSync(state, { mode: 0o700 });
    chownSync(state, 65532, 65532);
    await dockerOk([
      "run",
      "-d",
      "--name",
      "dm-store",
      "--network",
      "host",
      "-v",
      `${state}:${state}`,
      "--entrypoint",
      "node",
      IMAGE,
      "/app/dist/store/serve.js",
      "--state-dir",
      state,
      "--listen",
      `127.0.0.1:${STORE_PORT}`,
    ]);
    const deadline = Date.now() + 60_000;
    while (!existsSync(join(state, "kubeconfig")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.ok(existsSync(join(state, "kubeconfig")), `the store wrote its kubeconfig: ${(await docker(["logs", "dm-store"])).stderr}`);

    await dockerOk([
      "run",
      "-d",
      "--name",
      "dm-controller",
      "--network",
      "host",
      "--read-only",
      "--tmpfs",
      "/tmp",
      "--user",
      "65532:65532",
      "--cap-drop",
      "ALL",
      "--security-opt",
      "no-new-privileges",
      "-e",
      "POD_NAME=dockmesh-controller-0",
      "-e",
      "POD_NAMESPACE=kube-system",
      "-v",
      `${state}/kubeconfig:/etc/dockmesh/kubeconfig:ro`,
      "-e",
      "KUBECONFIG=/etc/dockmesh/kubeconfig",
      IMAGE,
      "controller",
      "--leader-elect",
      `--metrics-bind-address=127.0.0.1:${METRICS_PORT}`,
    ]);

    let holder = "";
    for (let i = 0; i < 100 && holder !== "dockmesh-controller-0"; i++) {
      const r = await kubectlIn(["-n", "kube-system", "get", "lease", "dockmesh-controller", "-o", "jsonpath={.spec.holderIdentity}"]);
      holder = r.stdout.trim();
      if (holder !== "dockmesh-controller-0") await new Promise((res) => setTimeout(res, 300));
    }
    assert.equal(holder, "dockmesh-controller-0", `the controller in the container took the Lease:\n${(await docker(["logs", "dm-controller"])).stderr}`);

    const mesh =
      "apiVersion: dockmesh.io/v1alpha1\nkind: MeshNetwork\nmetadata: { name: mesh, namespace: default }\nspec: { cidr: 10.240.0.0/16, subnetPrefixLength: 24, dockerNetwork: mesh, interface: dm0 }\n";
    const apply = await kubectlIn(["apply", "-f", "-"], mesh);
    assert.equal(apply.code, 0, apply.stderr);
    const wait = await kubectlIn(["wait", "--for=jsonpath={.status.observedGeneration}=1", "--timeout=30s", "meshnetwork/mesh"]);
    assert.equal(wait.code, 0, `the containerised controller reconciled the MeshNetwork: ${wait.stderr}\n${(await docker(["logs", "dm-controller"])).stderr}`);

    const logs = await docker(["logs", "dm-controller"]);
    const lines = (logs.stdout + logs.stderr).split("\n").filter((l) => l.startsWith("{"));
    assert.ok(
      lines.some((l) => (JSON.parse(l) as { message?: string }).message === "acquired the lease; leading"),
      "JSON logs by default in the image",
    );

    const ready = await lab.exec(HOST, [process.execPath, "-e", `fetch("http://127.0.0.1:${METRICS_PORT}/readyz").then(async (r) => { console.log(r.status, await r.text()); })`]);
    assert.match(ready.stdout, /^200 ok/, ready.stderr);

    const stop = await docker(["stop", "-t", "20", "dm-controller"]);
    assert.equal(stop.code, 0);
    const exit = (await dockerOk(["inspect", "dm-controller", "--format", "{{.State.ExitCode}}"])).trim();
    assert.equal(exit, "0", "SIGTERM: a clean exit");
    const released = await kubectlIn(["-n", "kube-system", "get", "lease", "dockmesh-controller", "-o", "jsonpath={.spec.holderIdentity}"]);
    assert.equal(released.stdout.trim(), "", "the Lease was released on the way out");
    assert.ok(readFileSync(join(state, "kubeconfig"), "utf8").includes(`127.0.0.1:${STORE_PORT}`));
  });
});
