// shellcheck on every script dockmesh sends to hosts (hosts/scripts/*.sh). The hosts run them
// with `sh -c` (hosts/ssh.ts commandLine), so they are checked as POSIX sh; a ". ./NAME.sh"
// line is followed (-x, relative to the script), as it is inlined when sent. shellcheck comes
// from Debian's package: installed when missing and we are root, otherwise the test fails
// saying what to install. Never skipped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { ensureSystemPackages, inDirs, type Requirement } from "../../lab/requirements.js";
import { run } from "../../lab/proc.js";
import { scriptFiles } from "../../tools/gen-host-scripts.js";
import { projectRoot } from "../support/golden.js";

const SHELLCHECK: Requirement = { binary: "shellcheck", paths: [...inDirs("shellcheck"), "/usr/local/bin/shellcheck"], pkg: "shellcheck" };

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

test("host scripts: shellcheck finds nothing in hosts/scripts/*.sh (as sh, what the hosts run them with)", async () => {
  await ensureSystemPackages({ requirements: [SHELLCHECK], purpose: "the host scripts' shellcheck test", log: (m) => process.stderr.write(`shellcheck test: ${m}\n`) });
  const shellcheck = SHELLCHECK.paths.find(executable);
  assert.ok(shellcheck, "shellcheck is not installed: apt-get install shellcheck");
  const dir = join(projectRoot, "hosts", "scripts");
  const files = scriptFiles(dir);
  assert.ok(files.includes("observe.sh") && files.includes("apply-prelude.sh"), `hosts/scripts has the scripts (found: ${files.join(", ")})`);
  const argv = [shellcheck, "--norc", "--shell=sh", "--external-sources", "--source-path=SCRIPTDIR", "--format=gcc", ...files.map((f) => join(dir, f))];
  const r = await run(argv, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `shellcheck found problems (fix them, or disable one finding on its line with a reason: # shellcheck disable=SCxxxx # why):\n${r.stdout}${r.stderr}`);
});
