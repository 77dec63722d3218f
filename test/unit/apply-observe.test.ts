// Apply and observe in one round trip (hosts/apply.ts applyThenObserve, hosts/steps.ts
// OBSERVE_AFTER_APPLY): how the script is rendered, how its combined output is read back, and,
// run by a real sh with the host's tools stubbed, that the observe runs after a failed step too
// and reads its probes from what stdin holds after the files' lines.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyThenObserve } from "../../hosts/apply.js";
import { APPLIED_MARK, APPLY_OPEN, OBSERVE_AFTER_APPLY, renderScript, SCRIPT_PRELUDE, type Step } from "../../hosts/steps.js";
import { FRESH_PRELUDE } from "../../hosts/fresh-guard.js";
import { parseObservation } from "../../hosts/observe.js";
import { HostError } from "../../hosts/errors.js";
import type { ExecOptions, ExecResult, HostSession } from "../../hosts/ssh.js";
import { UnsafeValueError } from "../../api/formats.js";

const linkUp: Step = { op: "link_up", args: ["dm0"], display: "ip link set dev dm0 up" };
const mtu: Step = { op: "link_mtu", args: ["dm0", "1420"], display: "ip link set dev dm0 mtu 1420" };

/** A minimal observe answer: tools, a Docker version, the end marker. */
const OBSERVED = ["@@dockmesh tools", "docker yes", "wg yes", "@@dockmesh docker-version", 'api {"Version":"27.5.1"}', "@@dockmesh end", ""].join("\n");

class ScriptedSession implements HostSession {
  readonly fingerprint = "SHA256:fake";
  readonly sent: Array<{ script: string; opts: ExecOptions | undefined }> = [];
  get roundTrips(): number {
    return this.sent.length;
  }
  constructor(private readonly answers: ExecResult[]) {}
  exec(script: string, opts?: ExecOptions): Promise<ExecResult> {
    this.sent.push({ script, opts });
    const a = this.answers.shift();
    return a ? Promise.resolve(a) : Promise.reject(new Error("no more answers"));
  }
  close(): void {}
}

test("rendering: plain, then-observe and guarded scripts", () => {
  const plain = renderScript([linkUp]);
  assert.ok(plain.script.startsWith(SCRIPT_PRELUDE) && !plain.script.includes(APPLIED_MARK));
  const observed = renderScript([linkUp], { observe: true });
  assert.ok(observed.script.startsWith(APPLY_OPEN + SCRIPT_PRELUDE));
  assert.ok(observed.script.endsWith(OBSERVE_AFTER_APPLY));
  assert.match(observed.script, /\nstep 0\nlink_up dm0 <\/dev\/null\nstep done\n\)\nprintf '@@dockmesh applied %s\\n' "\$\?"\n/);
  const guarded = renderScript([linkUp], { guard: ["1500", "yes", "no", "no", "-", "-", "-", "dm0"] });
  assert.ok(guarded.script.startsWith(APPLY_OPEN + SCRIPT_PRELUDE + FRESH_PRELUDE + "fresh_guard 1500 yes no no - - - dm0 </dev/null\nstep 0\n"), "the guard runs before the first step");
  assert.ok(guarded.script.endsWith(OBSERVE_AFTER_APPLY), "a guard implies the observe");
  assert.throws(
    () => renderScript([linkUp], { guard: ["1500\nreboot"] }),
    (err: unknown) => err instanceof UnsafeValueError && /fresh_guard argument 1/.test(err.message),
  );
});

interface ReadCase {
  name: string;
  stdout: string;
  code?: number;
  stderr?: string;
  done: number;
  error?: RegExp;
  observed: boolean;
  skipped?: string;
}

const readCases: ReadCase[] = [
  { name: "all steps done, then the host as observed", stdout: `@@step 0\n@@step 1\n@@step done\n${APPLIED_MARK} 0\n${OBSERVED}`, done: 2, observed: true },
  {
    name: "step 2 failed: step 1 done, the error names step 2, the host is still observed",
    stdout: `@@step 0\n@@step 1\n${APPLIED_MARK} 2\n${OBSERVED}`,
    stderr: "RTNETLINK answers: Invalid argument\n",
    done: 1,
    error: /step 2 of 2 \(ip link set dev dm0 mtu 1420\) failed: RTNETLINK answers: Invalid argument/,
    observed: true,
  },
  {
    name: "the guard applied nothing: skipped, no error, observed",
    stdout: `@@fresh-skip interface dm0 exists\n${APPLIED_MARK} 3\n${OBSERVED}`,
    done: 0,
    observed: true,
    skipped: "interface dm0 exists",
  },
  { name: "no marker (the script died in the apply): an error and no observation", stdout: "@@step 0\n", code: 137, done: 0, error: /failed: exit code 137/, observed: false },
  {
    name: "observe sections printed by the apply part are not the observation",
    stdout: `@@step 0\n@@dockmesh tools\ndocker no\n@@dockmesh end\n@@step 1\n@@step done\n${APPLIED_MARK} 0\n${OBSERVED}`,
    done: 2,
    observed: true,
  },
  {
    name: "a truncated observation: no observation (the caller looks again), the steps still done",
    stdout: `@@step 0\n@@step 1\n@@step done\n${APPLIED_MARK} 0\n@@dockmesh tools\n`,
    done: 2,
    observed: false,
  },
];

for (const c of readCases) {
  test(`reading an apply-then-observe answer: ${c.name}`, async () => {
    const session = new ScriptedSession([{ code: c.code ?? 0, stdout: c.stdout, stderr: c.stderr ?? "" }]);
    const r = await applyThenObserve(session, [linkUp, mtu], { ifaces: ["dm0"], nets: ["mesh"], probes: [{ iface: "dm0", source: "10.0.0.1", publicKey: "K", address: "10.0.1.1" }] });
    assert.equal(session.sent.length, 1, "one round trip");
    assert.deepEqual(session.sent[0]!.opts?.args, ["dm0", "--", "mesh"]);
    assert.equal(session.sent[0]!.opts?.input, "dm0 10.0.0.1 K 10.0.1.1\n", "the probes follow the files' lines (none here)");
    assert.equal(r.done.length, c.done);
    if (c.error) assert.ok(r.error instanceof HostError && c.error.test(r.error.message), r.error?.message);
    else assert.equal(r.error, undefined);
    assert.equal(r.observation !== undefined, c.observed);
    if (r.observation) assert.equal(r.observation.tools.docker, true, "the observation after the marker, not the apply's lines");
    assert.equal(r.skipped, c.skipped);
  });
}

/** The host's tools for a real sh: each call is logged; `ip link set … mtu` fails when FAIL_MTU is set. */
const STUBS = String.raw`
ip() { echo "ip $*" >> "$LOG"; case "$*" in *" mtu "*) [ -z "@{FAIL_MTU:-}" ] || { echo "RTNETLINK answers: Invalid argument" >&2; return 2; } ;; -j*) echo '[]' ;; esac; }
ping() { for a in "$@"; do last=$a; done; echo "ping $last" >> "$LOG"; }
wg() { if [ "$1 $2 $3" = "show all latest-handshakes" ]; then printf 'dm0\tK\t0\n'; fi; return 0; }
iptables() { return 1; }
docker() { return 1; }
base64() { command base64 "$@"; }
`.replaceAll("@{", "${");

function runReal(steps: Step[], env: Record<string, string>): { stdout: string; log: string[]; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-apply-observe-"));
  const log = join(dir, "log");
  const probes = "dm0 10.0.0.1 K 10.0.1.1\n";
  const { script, input } = renderScript(steps, { observe: true });
  const r = spawnSync("sh", ["-c", `${STUBS}\n${script}`, "sh", "dm0", "--"], { input: input + probes, env: { PATH: "/usr/bin:/bin", LOG: log, ...env }, encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  let lines: string[] = [];
  try {
    lines = readFileSync(log, "utf8").trim().split("\n");
  } catch {
    lines = [];
  }
  return { stdout: r.stdout, log: lines, dir };
}

test("a real sh: the steps, the marker with their exit code, then the observe with the probes left on stdin", () => {
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-apply-observe-file-"));
  try {
    const file: Step = { op: "write_file", args: [join(dir, "sub", "f.conf"), "600", "700"], display: "write f.conf", content: "secret\n" };
    const open: Step = { op: "write_file", args: [join(dir, "sub", "g.conf"), "644", "755"], display: "write g.conf", content: "not secret\n" };
    const odd: Step = { op: "write_file", args: [join(dir, "h.conf"), "640", "755"], display: "write h.conf", content: "group\n" };
    const ok = runReal([file, open, odd, linkUp, mtu], {});
    const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
    assert.deepEqual(
      [mode(join(dir, "sub")), mode(join(dir, "sub", "f.conf")), mode(join(dir, "sub", "g.conf")), mode(join(dir, "h.conf"))],
      ["700", "600", "644", "640"],
      "each file with its mode, a new directory with its own",
    );
    assert.equal(readFileSync(join(dir, "sub", "g.conf"), "utf8"), "not secret\n");
    assert.deepEqual(readdirSync(join(dir, "sub")).sort(), ["f.conf", "g.conf"], "no temporary file left");
    assert.match(ok.stdout, new RegExp(`@@step done\\n${APPLIED_MARK} 0\\n`));
    assert.equal(readFileSync(join(dir, "sub", "f.conf"), "utf8"), "secret\n", "the file came from the first stdin line");
    assert.deepEqual(
      ok.log.filter((l) => !l.startsWith("ip -j")),
      ["ip link set dev dm0 up", "ip link set dev dm0 mtu 1420", "ping 10.0.1.1"],
      "the steps, then the probe read after the file's line",
    );
    assert.ok(parseObservation(ok.stdout.slice(ok.stdout.indexOf(APPLIED_MARK))).tools.wg, "observed");
    rmSync(ok.dir, { recursive: true, force: true });

    const failed = runReal([linkUp, mtu, linkUp], { FAIL_MTU: "1" });
    assert.match(failed.stdout, new RegExp(`@@step 1\\n${APPLIED_MARK} 2\\n`), "set -e ended the steps at the failure, with its exit code");
    assert.ok(!failed.stdout.includes("@@step 2"), "nothing after the failed step");
    assert.ok(failed.log.includes("ping 10.0.1.1"), "the observe (and its probes) ran anyway");
    assert.match(failed.stdout, /^@@dockmesh end$/m);
    rmSync(failed.dir, { recursive: true, force: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
