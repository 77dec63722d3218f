// The apply script (hosts/steps.ts: SCRIPT_PRELUDE, then `step N` and one prelude function call
// per step, file contents as base64 lines on stdin) run against a simulated host: each call acts
// on the host's state as the function would on a real one. `set -eu` as in the script: the first
// failing call ends the run with its exit code, after the `@@step` markers of the steps reached.
// A first converge's guard (hosts/fresh-guard.ts) is answered from the host's facts.
import type { SimulatedHost, CommandResult } from "./simulated-host.js";
import { parseApplyBody, type ScriptCall } from "./simulated-shell.js";
import { daemonReload, dnsClean, dnsDisable, dnsDown, dnsEnable, dnsUp, resolvedReload } from "./simulated-resolver.js";
import { INTERFACE_NAME } from "../../api/formats.js";
import { freshGuardVerdict } from "./simulated-observe.js";
import { FRESH_SKIP } from "../../hosts/fresh-guard.js";

export interface ApplyRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Calls that ran to completion. */
  completed: number;
  /** Lines of stdin no write_file read (the probes of an apply-then-observe script). */
  rest: string;
}

const OK: CommandResult = { code: 0 };

/** Runs one prelude function; `stdin` yields the next base64 line for write_file. */
export function runCall(host: SimulatedHost, call: ScriptCall, stdin: () => string | undefined): CommandResult {
  const a = call.args;
  const need = (n: number): CommandResult | undefined => (a.length < n ? { code: 2, stderr: `${call.op}: expected ${n} argument(s), got ${a.length}\n` } : undefined);
  switch (call.op) {
    case "ensure_network":
      return need(1) ?? host.ensureNetwork(a[0]!, a.slice(1));
    case "fresh_network":
      if (need(1)) return need(1)!;
      if (host.networks.has(a[0]!)) return { code: 3, stdout: `${FRESH_SKIP} Docker network ${a[0]} exists\n` };
      return host.ensureNetwork(a[0]!, a.slice(1));
    case "remove_network":
      return need(1) ?? host.removeNetwork(a[0]!);
    case "write_file": {
      const bad = need(3);
      if (bad) return bad;
      const line = stdin();
      if (line === undefined) return { code: 1, stderr: `no content on stdin for ${a[0]}\n` };
      return host.writeFile(a[0]!, Buffer.from(line, "base64").toString("utf8"), a[1]!);
    }
    case "remove_file":
      return need(1) ?? host.removeFile(a[0]!);
    case "wg_up":
      return need(1) ?? host.wgQuickUp(a[0]!);
    case "wg_down":
      return need(1) ?? host.wgQuickDown(a[0]!);
    case "wg_sync":
      return need(1) ?? host.wgSync(a[0]!);
    case "link_up":
      return need(1) ?? host.linkUp(a[0]!);
    case "link_mtu":
      return need(2) ?? host.linkMtu(a[0]!, Number(a[1]));
    case "route_replace":
      return need(2) ?? host.routeReplace(a[0]!, a[1]!);
    case "route_del":
      return need(2) ?? host.routeDel(a[0]!, a[1]!);
    case "ensure_rule":
    case "replace_rule":
    case "delete_rule": {
      const bad = need(2);
      if (bad) return bad;
      const [table, chain, ...rule] = a as [string, string, ...string[]];
      if (call.op !== "delete_rule" && chain.startsWith("DOCKMESH-") && !host.chains.has(`${table}/${chain}`)) host.iptables(["-t", table, "-N", chain]);
      const ipt = (op: string) => host.iptables(["-w", "-t", table, op, chain, ...rule]);
      if (call.op === "ensure_rule") return ipt("-C").code === 0 ? OK : ipt("-I");
      while (ipt("-D").code === 0);
      return call.op === "replace_rule" ? ipt("-I") : OK;
    }
    case "drop_chain": {
      const bad = need(2);
      if (bad) return bad;
      host.iptables(["-t", a[0]!, "-F", a[1]!]);
      host.iptables(["-t", a[0]!, "-X", a[1]!]);
      return OK;
    }
    case "enable_unit":
      if (need(1)) return need(1)!;
      host.enabled.add(a[0]!);
      return { code: 0, stdout: `Created symlink /etc/systemd/system/multi-user.target.wants/wg-quick@${a[0]}.service → /lib/systemd/system/wg-quick@.service.\n` };
    case "disable_unit":
      if (need(1)) return need(1)!;
      host.enabled.delete(a[0]!);
      return OK;
    case "daemon_reload":
      return daemonReload(host);
    // Mesh DNS's resolver (bench/sim/simulated-resolver.ts); the interface names its paths.
    case "dns_up":
    case "dns_down":
    case "dns_enable":
    case "dns_disable":
    case "dns_clean": {
      const bad = need(1);
      if (bad) return bad;
      // The script would build paths from anything; the simulation takes only what the planner sends.
      if (!INTERFACE_NAME.test(a[0]!)) return { code: 2, stderr: `${call.op}: not an interface name: ${a[0]!.slice(0, 40)}\n` };
      const op = { dns_up: dnsUp, dns_down: dnsDown, dns_enable: dnsEnable, dns_disable: dnsDisable, dns_clean: dnsClean }[call.op];
      return op(host, a[0]!);
    }
    case "resolved_reload":
      return resolvedReload();
    default:
      return { code: 127, stderr: `sh: 1: ${call.op}: not found\n` };
  }
}

/**
 * Runs the script body (what follows SCRIPT_PRELUDE) with its stdin. `guard`: a first converge's
 * fresh_guard arguments, checked before the first step (freshGuardVerdict).
 */
export function runApplyScript(host: SimulatedHost, body: string, input: string, guard?: readonly string[]): ApplyRun {
  const lines = input.split("\n").filter((l) => l !== "");
  let next = 0;
  const rest = () =>
    lines
      .slice(next)
      .map((l) => `${l}\n`)
      .join("");
  let parsed: ReturnType<typeof parseApplyBody>;
  try {
    parsed = parseApplyBody(body);
  } catch (err) {
    return { code: 2, stdout: "", stderr: `sh: syntax error: ${(err as Error).message}\n`, completed: 0, rest: rest() };
  }
  const why = guard ? freshGuardVerdict(host, guard) : undefined;
  if (why !== undefined) return { code: 3, stdout: `${FRESH_SKIP} ${why}\n`, stderr: "", completed: 0, rest: rest() };
  const stdin = () => (next < lines.length ? lines[next++] : undefined);
  const out: string[] = [];
  const err: string[] = [];
  let completed = 0;
  for (const call of parsed.calls) {
    out.push(`@@step ${call.index}\n`);
    const r = runCall(host, call, stdin);
    if (r.stdout) out.push(r.stdout);
    if (r.stderr) err.push(r.stderr);
    if (r.code !== 0) return { code: r.code, stdout: out.join(""), stderr: err.join(""), completed, rest: rest() };
    completed++;
  }
  if (parsed.done) out.push("@@step done\n");
  return { code: 0, stdout: out.join(""), stderr: err.join(""), completed, rest: rest() };
}
