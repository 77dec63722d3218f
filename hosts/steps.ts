// Apply steps and the one script that runs them. Each step is one echoed command (like
// wg-quick's "[#] …" lines) calling a fixed shell function (hosts/scripts/apply-prelude.sh) with
// single-quoted arguments; file contents (private keys among them) travel on stdin, one base64
// line per file, so no secret ever appears in a command line, a process list or a log.
import { shJoin, shQuote } from "../mesh/shell.js";
import { NO_CONTROL, UnsafeValueError, controlCharacter } from "../api/formats.js";
import { OBSERVE_SCRIPT } from "./observe.js";
import { FRESH_PRELUDE } from "./fresh-guard.js";
import { APPLY_PRELUDE_SH } from "./scripts.generated.js";

import type { Step } from "../mesh/commands.js";
// The steps themselves are built from the plan in mesh/commands.ts.
export type { Step, StepOp } from "../mesh/commands.js";

/** The shell functions the steps call: hosts/scripts/apply-prelude.sh as sent. */
export const SCRIPT_PRELUDE = APPLY_PRELUDE_SH;

/**
 * An apply-then-observe script opens with this: the steps run in a subshell, where `set -eu`
 * ends them at the first failure, and the observe after it runs whatever happened.
 */
export const APPLY_OPEN = "(\n";

/** The line between the two parts: "@@dockmesh applied <the subshell's exit code>". */
export const APPLIED_MARK = "@@dockmesh applied";

/**
 * What follows the steps of an apply-then-observe script: the subshell closed, its exit code,
 * then the observe script (hosts/observe.ts), whose arguments are the script's own (interfaces,
 * "--", networks) and whose probes are what stdin holds after the files' lines.
 */
export const OBSERVE_AFTER_APPLY = `)\nprintf '${APPLIED_MARK} %s\\n' "$?"\n${OBSERVE_SCRIPT}`;

export interface RenderOptions {
  /** Observe after the steps, in the same script (OBSERVE_AFTER_APPLY). */
  observe?: boolean;
  /** A first converge's guard (hosts/fresh-guard.ts), checked before the first step; implies observe. */
  guard?: readonly string[];
}

/**
 * The whole apply script and its stdin. An argument with a control character is refused (an
 * UnsafeValueError): quoting keeps it one shell word, but no value dockmesh plans has one, so it
 * can only come from a forged or broken input, and would go on into a config line or a log.
 */
export function renderScript(steps: readonly Step[], opts: RenderOptions = {}): { script: string; input: string } {
  if (opts.guard)
    for (const [j, a] of opts.guard.entries()) if (!NO_CONTROL.test(a)) throw new UnsafeValueError(`fresh_guard argument ${j + 1}`, `contains a control character (${controlCharacter(a)}); refused`);
  const observe = Boolean(opts.observe || opts.guard);
  const lines = observe ? [APPLY_OPEN + SCRIPT_PRELUDE + (opts.guard ? `${FRESH_PRELUDE}fresh_guard ${shJoin(opts.guard)} </dev/null` : "")] : [SCRIPT_PRELUDE];
  const input: string[] = [];
  steps.forEach((s, i) => {
    s.args.forEach((a, j) => {
      if (!NO_CONTROL.test(a)) throw new UnsafeValueError(`step ${s.op} argument ${j + 1}`, `contains a control character (${controlCharacter(a)}); refused`);
    });
    lines.push(`step ${i}`);
    // Only write_file reads stdin; everything else gets /dev/null so nothing eats file contents.
    lines.push(`${s.op}${s.args.length ? " " + shJoin(s.args) : ""}${s.op === "write_file" ? "" : " </dev/null"}`);
    if (s.op === "write_file") input.push(Buffer.from(s.content ?? "", "utf8").toString("base64"));
  });
  lines.push("step done");
  return { script: lines.join("\n") + "\n" + (observe ? OBSERVE_AFTER_APPLY : ""), input: input.map((l) => l + "\n").join("") };
}

export const displayArgv = (argv: readonly string[]): string => argv.map(shQuote).join(" ");
