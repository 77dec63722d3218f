// Security finding 3: one hostile or broken host must not crash the control plane. A lab host
// whose sshd forces every login to run `head -c 629145600 /dev/zero` (600 MiB, after terminal
// escape sequences) stands in for it, next to a healthy host.
// - hosts/ssh.ts against that real sshd: exec fails quickly with the bounded-output HostError,
//   the process's memory grows by far less than the output, no escape sequence reaches the result.
// - `dockmesh up` with a Machine on that host: the Machine gets Ready=False/ObserveFailed saying
//   how much the host answered, the controller stays up (same PID) with a bounded RSS, its API
//   server answers, and the healthy host becomes Ready.
// Before the fix, exec buffered everything: the process died with ERR_STRING_TOO_LONG (the
// controller again 9 s after each restart).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Machine } from "../../api/types.generated.js";
import type { ExecOptions } from "../../hosts/ssh.js";
import { MeshEnv, startMeshEnv, eventually, yamlDoc } from "../../lab/mesh-env.js";
import { sshLogins } from "../../lab/lab-checks.js";
import { projectRoot } from "../support/golden.js";
import type { ExecChildResult } from "./ssh-exec-child.js";

const PREFIX = "dmsecb";
const LABNET = "198.18.52.0/24";
const PORT = 16472;
const METRICS_PORT = 18472;
const FLOOD_BYTES = 629_145_600; // 600 MiB
const MiB = 1024 * 1024;

let env: MeshEnv;
const machine = (name: string) => env.getJson<Machine>(["get", "machine", name]);
const cond = (m: Machine, type: string) => m.status?.conditions?.find((c) => c.type === type);
const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
// eslint-disable-next-line no-control-regex -- looking for control characters is the point
const CONTROLS = /[\x00-\x1f\x7f-\x9f]/;

/** Runs one exec on a lab host through hosts/ssh.ts in a process of its own in the controller namespace. */
async function execInChild(host: string, script: string, opts?: ExecOptions): Promise<ExecChildResult> {
  const h = env.lab.host(host);
  const target = { host: h.sshHost, port: h.sshPort, user: h.sshUser, privateKey: env.lab.sshPrivateKey, keySource: "the lab key", hostKeyPin: h.hostKey };
  const p = env.lab.spawnInControllerNs([process.execPath, join(projectRoot, "dist/test/security/ssh-exec-child.js")], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  p.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  p.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => p.kill("SIGKILL"), 120_000);
  const code = await new Promise<number | null>((resolve) => {
    p.on("close", (c) => resolve(c));
    p.stdin!.end(JSON.stringify({ target, script, opts }));
  });
  clearTimeout(timer);
  assert.equal(code, 0, `the exec child ended with ${code}: ${stderr.slice(-2000)}`);
  return JSON.parse(stdout) as ExecChildResult;
}

function procKib(pid: number, field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
}

describe("security: a host that answers 600 MiB", { timeout: 600_000 }, () => {
  before(async () => {
    env = await startMeshEnv({
      prefix: PREFIX,
      labnet: LABNET,
      natLans: { first: 110, last: 111 },
      hosts: [{ name: "good" }, { name: "flood", forceCommand: `printf '\\033]0;owned\\007\\033[2J\\033[31m'; head -c ${FLOOD_BYTES} /dev/zero` }],
      port: PORT,
      resyncPeriod: "5s",
      extraArgs: ["--metrics-bind-address", `127.0.0.1:${METRICS_PORT}`],
    });
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("ssh: exec on the flooding host fails with the bounded-output error, quickly, in bounded memory", async () => {
    const r = await execInChild("flood", "echo hello");
    console.log(
      `# flood exec: ${r.ms} ms, RSS ${mib(r.rssStartBytes)} at start, peak ${mib(r.rssPeakBytes)} (+${mib(r.rssPeakBytes - r.rssStartBytes)}; the host had ${mib(FLOOD_BYTES)} to send); ${r.reason}: ${r.message}`,
    );
    assert.equal(r.ok, false);
    assert.equal(r.reason, "OutputTooLarge");
    assert.match(r.message ?? "", /: the host answered more than 1 MiB on stdout \(limit 1 MiB\); the command was stopped$/);
    assert.equal(r.controls, false, "no escape sequence reached the error");
    assert.ok(r.ms < 15_000, `failed within ${r.ms} ms`);
    assert.ok(r.rssPeakBytes - r.rssStartBytes < 64 * MiB, `RSS grew by ${mib(r.rssPeakBytes - r.rssStartBytes)}, far less than the ${mib(FLOOD_BYTES)} the host sent`);
  });

  test("ssh: standard error is bounded on its own; output under the bound is whole", async () => {
    const err = await execInChild("good", "head -c 8388608 /dev/zero >&2");
    assert.equal(err.reason, "OutputTooLarge");
    assert.match(err.message ?? "", /more than 1 MiB on stderr \(limit 1 MiB\)/);
    const big = await execInChild("good", "head -c 3000000 /dev/zero | tr '\\0' x", { maxStdoutBytes: 4 * MiB });
    assert.deepEqual([big.ok, big.code, big.stdoutBytes], [true, 0, 3_000_000]);
  });

  test("dockmesh up: the flooding Machine is ObserveFailed, the controller stays up and bounded, the good one becomes Ready", async () => {
    const pid = env.pid;
    assert.ok(pid, "the controller runs");
    const rssStart = procKib(pid, "VmRSS");
    const mesh = yamlDoc({
      apiVersion: "dockmesh.io/v1alpha1",
      kind: "MeshNetwork",
      metadata: { name: "mesh", namespace: "default" },
      spec: { cidr: "10.232.0.0/16", dockerNetwork: "mesh", interface: "dm0" },
    });
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + mesh + env.machineYaml(["good", "flood"]));

    const flood = await eventually(
      "flood Ready=False/ObserveFailed",
      async () => {
        const m = await machine("flood");
        return cond(m, "Ready")?.reason === "ObserveFailed" ? m : undefined;
      },
      120_000,
      1000,
    );
    const ready = cond(flood, "Ready")!;
    const reachable = cond(flood, "Reachable")!;
    console.log(`# flood: Ready=${ready.status}/${ready.reason}: ${ready.message}`);
    assert.equal(ready.status, "False");
    assert.deepEqual([reachable.status, reachable.reason], ["False", "ObserveFailed"]);
    assert.match(reachable.message, /^observing the host failed: the host answered more than \d+ MiB on stdout \(limit 16 MiB\); /);
    assert.doesNotMatch(JSON.stringify(flood.status), /\\u00|\\u001b/, "no control character in the Machine's status");
    assert.ok(!CONTROLS.test(reachable.message));

    // The controller goes on retrying the host (with backoff) and stays the same process.
    const logins = sshLogins(env.lab, "flood");
    await eventually("two more tries on flood", async () => (sshLogins(env.lab, "flood") >= logins + 2 ? true : undefined), 90_000, 500);
    await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", "machine/good"], undefined, 200_000);
    assert.equal(env.pid, pid, "the controller is the same process");
    const list = await env.kubectlOk(["get", "machines"]);
    assert.match(list, /^good\b/m);
    assert.match(list, /^flood\b/m);
    const rssNow = procKib(pid, "VmRSS");
    const rssPeak = procKib(pid, "VmHWM");
    console.log(`# controller PID ${pid}: RSS ${mib(rssStart)} before the Machines, ${mib(rssNow)} now, peak ${mib(rssPeak)}; flood logins: ${sshLogins(env.lab, "flood")}`);
    assert.ok(rssPeak < rssStart + 160 * MiB, `the controller's peak RSS ${mib(rssPeak)} stays near its ${mib(rssStart)} (each try sees 600 MiB)`);
    assert.equal(env.log.includes("ERR_STRING_TOO_LONG"), false);
  });
});
