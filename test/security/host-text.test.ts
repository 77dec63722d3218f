// Security finding 3: host text that goes into conditions (observe's and apply's standard error,
// docker's own error) has its escape sequences and control characters removed and is bounded;
// a command's output past its bound is ObserveFailed or ApplyFailed, saying how much came.
/* eslint-disable no-control-regex -- finding control characters in host text is the point */
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostText } from "../../hosts/host-text.js";
import { observeHost } from "../../hosts/observe.js";
import { applySteps } from "../../hosts/apply.js";
import { HostError } from "../../hosts/errors.js";
import { OutputTooLargeError, type ExecOptions, type ExecResult, type HostSession } from "../../hosts/ssh.js";

const cases: Array<{ name: string; text: string; max?: number; want: string }> = [
  { name: "plain text is kept", text: "iptables: No chain/target/match by that name.", want: "iptables: No chain/target/match by that name." },
  { name: "CSI colours and screen clears go", text: "\x1b[31mred\x1b[0m \x1b[2J\x1b[Hdone", want: "red done" },
  { name: "an OSC title (BEL- and ST-terminated) goes", text: "\x1b]0;owned\x07a\x1b]8;;http://evil\x1b\\b", want: "ab" },
  { name: "the one-byte CSI and other C1 controls go", text: "a\x9b2Jb\x85c", want: "a2Jbc" },
  { name: "NUL, backspace, carriage return, DEL go", text: "a\x00b\x08c\rd\x7fe", want: "abcde" },
  { name: "bidi overrides and zero-width characters go", text: "safe\u202egnp.exe\u200b", want: "safegnp.exe" },
  { name: "newlines become '; ', tabs spaces", text: "one\ntwo\tthree\n", want: "one; two three; " },
  { name: "long text is cut with an ellipsis", text: "x".repeat(1000), max: 10, want: `${"x".repeat(9)}…` },
  { name: "megabytes are cut without scanning them all", text: `\x1b[2J${"y".repeat(50 * 1024 * 1024)}`, max: 20, want: `${"y".repeat(19)}…` },
];

for (const c of cases) {
  test(`hostText: ${c.name}`, () => assert.equal(hostText(c.text, c.max), c.want));
}

/**
 * Stands in for a host that answers one fixed result: a lab host's real observe and apply scripts
 * do not fail this way, so this fake is what makes them.
 */
class FixedAnswerSessionFake implements HostSession {
  readonly fingerprint = "SHA256:fake";
  roundTrips = 0;
  readonly opts: Array<ExecOptions | undefined> = [];
  constructor(private readonly answer: ExecResult | Error) {}
  exec(_script: string, opts?: ExecOptions): Promise<ExecResult> {
    this.roundTrips++;
    this.opts.push(opts);
    return this.answer instanceof Error ? Promise.reject(this.answer) : Promise.resolve(this.answer);
  }
  close(): void {}
}

const hostile = `\x1b]0;owned\x07\x1b[2J${"E".repeat(1024 * 1024)}\nlast line \x1b[31mred\x1b[0m\n`;

test("observeHost: a failing script's stderr reaches the error without escapes, bounded", async () => {
  const err = await observeHost(new FixedAnswerSessionFake({ code: 1, stdout: "", stderr: hostile }), { ifaces: [], nets: [] }).catch((e: unknown) => e);
  assert.ok(err instanceof HostError);
  assert.equal(err.reason, "ObserveFailed");
  assert.doesNotMatch(err.message, /[\x00-\x1f\x7f-\x9f]/);
  assert.ok(err.message.length < 600, `bounded: ${err.message.length}`);
});

test("applySteps: a failed step's last stderr lines reach the error without escapes, bounded", async () => {
  const step = { op: "link_up" as const, args: ["dm0"], display: "ip link set dev dm0 up" };
  const err = await applySteps(new FixedAnswerSessionFake({ code: 1, stdout: "@@step 0\n", stderr: hostile }), [step]).catch((e: unknown) => e);
  assert.ok(err instanceof HostError);
  assert.equal(err.reason, "ApplyFailed");
  assert.match(err.message, /^step 1 of 1 \(ip link set dev dm0 up\) failed: .*last line red$/);
  assert.doesNotMatch(err.message, /[\x00-\x1f\x7f-\x9f]/);
  assert.ok(err.message.length < 600, `bounded: ${err.message.length}`);
});

test("applySteps: a step number the host made up counts as none reached", async () => {
  const step = { op: "link_up" as const, args: ["dm0"], display: "ip link set dev dm0 up" };
  const err = await applySteps(new FixedAnswerSessionFake({ code: 1, stdout: "@@step 1e9\n", stderr: "boom\n" }), [step]).catch((e: unknown) => e);
  assert.ok(err instanceof HostError);
  assert.equal(err.message, "step 1 of 1 (ip link set dev dm0 up) failed: boom");
});

const MiB = 1024 * 1024;
const overflow = [
  {
    name: "observeHost",
    run: (s: HostSession) => observeHost(s, { ifaces: ["dm0"], nets: ["mesh"] }),
    reason: "ObserveFailed",
    message: /^observing the host failed: the host answered more than 17 MiB on stdout \(limit 16 MiB\); /,
    limits: { maxStdoutBytes: 16 * MiB, maxStderrBytes: MiB },
  },
  {
    name: "applySteps",
    run: (s: HostSession) => applySteps(s, [{ op: "link_up", args: ["dm0"], display: "ip link set dev dm0 up" }]),
    reason: "ApplyFailed",
    message: /^applying changes failed: the host answered more than 17 MiB on stdout \(limit 4 MiB\); /,
    limits: { maxStdoutBytes: 4 * MiB, maxStderrBytes: MiB },
  },
];
for (const c of overflow) {
  test(`${c.name}: bounds its output and reports an overflow as ${c.reason}`, async () => {
    const session = new FixedAnswerSessionFake(new OutputTooLargeError("stdout", 17 * MiB + 5, c.limits.maxStdoutBytes, "ssh root@h:22"));
    const err = await c.run(session).catch((e: unknown) => e);
    assert.ok(err instanceof HostError);
    assert.equal(err.reason, c.reason);
    assert.match(err.message, c.message);
    assert.equal(session.opts[0]?.maxStdoutBytes, c.limits.maxStdoutBytes);
    assert.equal(session.opts[0]?.maxStderrBytes, c.limits.maxStderrBytes);
  });
}
