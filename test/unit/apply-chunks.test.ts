// hosts/apply.ts: an apply too long for one SSH command (35,000-byte packets on dropbear and
// ssh2 servers; 128 KiB for the `sh -c` argument on Linux) goes as several commands, in order,
// each under the limit; a small one stays one round trip; a failure names the step of the whole.
// The commands run on a simulated host (bench/sim), which parses them as a shell would.
import { test } from "node:test";
import assert from "node:assert/strict";
import { applySteps, chunkSteps, MAX_SCRIPT_BYTES } from "../../hosts/apply.js";
import { HostError } from "../../hosts/errors.js";
import { SCRIPT_PRELUDE, type Step } from "../../hosts/steps.js";
import type { ExecOptions, ExecResult, HostSession } from "../../hosts/ssh.js";
import { shQuote } from "../../mesh/shell.js";
import { SimulatedHost } from "../../bench/sim/simulated-host.js";
import { runApplyScript } from "../../bench/sim/simulated-apply.js";
import { parseExecCommand } from "../../bench/sim/simulated-shell.js";

/** A session whose commands run on a simulated host; records each command's length. */
function sessionOn(host: SimulatedHost): HostSession & { commands: number[] } {
  const commands: number[] = [];
  return {
    fingerprint: "SHA256:test",
    commands,
    get roundTrips() {
      return commands.length;
    },
    async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
      const command = ["sh", "-c", script, "sh", ...(opts.args ?? [])].map(shQuote).join(" ");
      commands.push(Buffer.byteLength(command));
      const parsed = parseExecCommand(command)!;
      return runApplyScript(host, parsed.script.slice(SCRIPT_PRELUDE.length), opts.input ?? "");
    },
    close() {},
  };
}

const route = (i: number): Step => {
  const dst = `10.${Math.floor(i / 256)}.${i % 256}.0/24`;
  return { op: "route_replace", args: [dst, "dm0"], display: `ip route replace ${dst} dev dm0` };
};
const config = (peers: number): Step => ({
  op: "write_file",
  args: ["/etc/wireguard/dm0.conf", "600", "700"],
  display: "write /etc/wireguard/dm0.conf (mode 0600)",
  content: `[Interface]\nPrivateKey = ${"A".repeat(43)}=\nListenPort = 51820\n${Array.from({ length: peers }, (_, i) => `\n[Peer]\nPublicKey = ${"B".repeat(43)}=\nAllowedIPs = ${route(i).args[0]}\n`).join("")}`,
});

test("apply: a first apply for 2,000 peers goes in commands under the SSH packet limit, all steps done in order", async () => {
  const host = new SimulatedHost({ name: "a" });
  const steps: Step[] = [
    config(2000),
    { op: "wg_up", args: ["dm0"], display: "wg-quick up dm0" },
    ...Array.from({ length: 2000 }, (_, i) => route(i)),
    { op: "enable_unit", args: ["dm0"], display: "systemctl enable wg-quick@dm0.service" },
  ];
  const session = sessionOn(host);
  const logged: string[] = [];
  const r = await applySteps(session, steps, (l) => logged.push(l));
  assert.equal(r.done.length, steps.length);
  assert.ok(session.commands.length >= 4, `${session.commands.length} commands`);
  for (const len of session.commands) assert.ok(len <= 35_000 - 100, `a command of ${len} bytes`);
  assert.deepEqual(
    logged,
    steps.map((s) => `[#] ${s.display}`),
    "every step reported once, in order",
  );
  assert.equal(host.routes.filter((x) => x.dev === "dm0").length, 2000);
  assert.ok(host.enabled.has("dm0"));
  assert.equal(host.files.get("/etc/wireguard/dm0.conf")?.content, steps[0]!.content, "file contents still travel on stdin, with their own step");
});

test("apply: a small apply is one command, as before", async () => {
  const session = sessionOn(new SimulatedHost({ name: "a" }));
  await applySteps(session, [config(3), { op: "wg_up", args: ["dm0"], display: "wg-quick up dm0" }, route(0), route(1), route(2)]);
  assert.equal(session.commands.length, 1);
  assert.deepEqual(chunkSteps([]), []);
});

test("apply: a failure in a later command names the step of the whole apply; nothing after it runs", async () => {
  const host = new SimulatedHost({ name: "a" });
  // No dm0 link: every route_replace fails; make the first chunk succeed with harmless steps.
  const harmless = Array.from({ length: 900 }, (_, i): Step => ({ op: "route_del", args: [route(i).args[0]!, "dm0"], display: `ip route del ${i}` }));
  const steps = [...harmless, route(5000), { op: "enable_unit", args: ["dm0"], display: "enable" } as Step];
  const chunks = chunkSteps(steps);
  assert.ok(chunks.length >= 2 && chunks[0]!.length < 900, "the failing step is not in the first command");
  const session = sessionOn(host);
  await assert.rejects(applySteps(session, steps), (err: unknown) => {
    assert.ok(err instanceof HostError);
    assert.equal(err.reason, "ApplyFailed");
    assert.match(err.message, new RegExp(`^step 901 of ${steps.length} \\(ip route replace 10\\.19\\.136\\.0/24 dev dm0\\) failed: Cannot find device "dm0"`));
    return true;
  });
  assert.equal(host.enabled.size, 0, "the step after the failed one did not run");
});

test("apply: chunks stay under the limit for long arguments too, and a single oversized step runs alone", () => {
  const long = (n: number): Step => ({ op: "ensure_rule", args: ["filter", "DOCKER-USER", "-m", "comment", "--comment", `it's ${"x".repeat(n)}`], display: "rule" });
  const chunks = chunkSteps([long(100), long(40_000), long(100)], MAX_SCRIPT_BYTES);
  assert.deepEqual(
    chunks.map((c) => c.length),
    [1, 1, 1],
  );
});
