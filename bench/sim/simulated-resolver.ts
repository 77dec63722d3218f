// Mesh DNS's resolver on a simulated host (the apply script's dns_* functions, hosts/steps.ts):
// systemd as far as its units go (load on first use, daemon-reload, restart, stop, enable,
// disable) and dnsmasq as far as starting goes (its command line, its config file read and
// checked, its pid file). A dnsmasq that runs is a process in the host's table with the command
// line the observe looks for; it answers no queries (nothing here sends any).
import { DNSMASQ_PATH, dnsPaths } from "../../mesh/dns-plan.js";
import { splitRuleLine } from "../../hosts/observe.js";
import type { CommandResult, SimulatedHost } from "./simulated-host.js";

const OK: CommandResult = { code: 0 };
const fail = (stderr: string, code = 1): CommandResult => ({ code, stderr: `${stderr}\n` });

const WANTS = "/etc/systemd/system/multi-user.target.wants";
const unitFile = (unit: string) => `/etc/systemd/system/${unit}`;

/**
 * The dnsmasq options the simulation understands: those mesh/dns-plan.ts writes. Any other line
 * is refused as dnsmasq refuses an option it does not know, so a config the planner starts to
 * write differently shows here first instead of passing unread.
 */
const FLAGS = new Set(["bind-dynamic", "no-hosts", "domain-needed"]);
const VALUED = new Set(["listen-address", "port", "hostsdir", "local", "local-ttl", "resolv-file", "pid-file"]);

/** A dnsmasq config file: option → values (a flag has one empty value); or dnsmasq's complaint. */
export function parseDnsmasqConf(text: string, path: string): Map<string, string[]> | CommandResult {
  const out = new Map<string, string[]>();
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    const key = eq < 0 ? line : line.slice(0, eq);
    const value = eq < 0 ? "" : line.slice(eq + 1);
    if (eq < 0 ? !FLAGS.has(key) : !VALUED.has(key) || value === "") return fail(`dnsmasq: bad option at line ${i + 1} of ${path}`);
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

/**
 * Runs dnsmasq with this argv: `--conf-file=PATH` read and checked, the pid file written. From a
 * shell it daemonises (the exit status is the parent's); under a unit it stays in the foreground.
 */
function startDnsmasq(host: SimulatedHost, argv: readonly string[], unit?: string): CommandResult {
  if (argv[0] !== DNSMASQ_PATH || !host.dnsmasq) return fail(`sh: 1: ${argv[0] ?? ""}: not found`, 127);
  let conf: string | undefined;
  for (const a of argv.slice(1)) {
    if (a.startsWith("--conf-file=")) conf = a.slice("--conf-file=".length);
    else if (a !== "--keep-in-foreground") return fail("dnsmasq: bad command line options: try --help");
  }
  const f = conf === undefined ? undefined : host.files.get(conf);
  if (conf === undefined || !f) return fail(`dnsmasq: cannot read ${conf ?? "/etc/dnsmasq.conf"}: No such file or directory`, 3);
  const opts = parseDnsmasqConf(f.content, conf);
  if (!(opts instanceof Map)) return opts;
  const pid = host.spawn(argv, unit);
  const pidFile = opts.get("pid-file")?.at(-1);
  if (pidFile) host.files.set(pidFile, { content: `${pid}\n`, mode: "644" });
  return OK;
}

/** SIGTERM to a dnsmasq: it exits and removes its pid file. */
function stopDnsmasq(host: SimulatedHost, pid: number): void {
  const p = host.processes.get(pid);
  if (!p) return;
  host.kill(pid);
  const conf = p.argv.find((a) => a.startsWith("--conf-file="))?.slice("--conf-file=".length);
  const opts = conf ? host.files.get(conf) : undefined;
  const parsed = opts ? parseDnsmasqConf(opts.content, conf!) : undefined;
  const pidFile = parsed instanceof Map ? parsed.get("pid-file")?.at(-1) : undefined;
  if (pidFile && host.files.get(pidFile)?.content === `${pid}\n`) host.files.delete(pidFile);
}

// --- systemd --------------------------------------------------------------------------------

const noSystemd = () => fail("System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down");

/** The unit as systemd has it: loaded already, else loaded now from its file; undefined when there is none. */
function loadUnit(host: SimulatedHost, unit: string): string | undefined {
  const loaded = host.loadedUnits.get(unit);
  if (loaded !== undefined) return loaded;
  const f = host.files.get(unitFile(unit));
  if (!f) return undefined;
  host.loadedUnits.set(unit, f.content);
  return f.content;
}

/** The ExecStart= of a unit's [Service] section, as argv. */
function execStart(text: string): string[] | undefined {
  let section = "";
  let argv: string[] | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (/^\[.+\]$/.test(line)) section = line;
    else if (section === "[Service]" && line.startsWith("ExecStart=")) argv = splitRuleLine(line.slice("ExecStart=".length));
  }
  return argv;
}

function stopUnitProcesses(host: SimulatedHost, unit: string): void {
  for (const p of [...host.processes.values()]) if (p.unit === unit) stopDnsmasq(host, p.pid);
}

/** `systemctl restart UNIT`: stops what runs, starts ExecStart. Type=simple: a start that fails after the fork is still success. */
export function systemctlRestart(host: SimulatedHost, unit: string): CommandResult {
  if (host.systemdVersion === undefined) return noSystemd();
  const text = loadUnit(host, unit);
  if (text === undefined) return fail(`Failed to restart ${unit}: Unit ${unit} not found.`, 5);
  const onDisk = host.files.get(unitFile(unit))?.content;
  const warning =
    onDisk !== undefined && onDisk !== text ? `Warning: The unit file, source configuration file or drop-ins of ${unit} changed on disk. Run 'systemctl daemon-reload' to reload units.\n` : "";
  stopUnitProcesses(host, unit);
  const argv = execStart(text);
  if (argv) startDnsmasq(host, argv, unit);
  return warning ? { code: 0, stderr: warning } : OK;
}

/** `systemctl stop UNIT`. */
export function systemctlStop(host: SimulatedHost, unit: string): CommandResult {
  if (host.systemdVersion === undefined) return noSystemd();
  if (loadUnit(host, unit) === undefined) return fail(`Failed to stop ${unit}: Unit ${unit} not loaded.`, 5);
  stopUnitProcesses(host, unit);
  return OK;
}

/** `systemctl daemon-reload`: every loaded unit read again from its file; one whose file went and that runs nothing is gone. */
export function daemonReload(host: SimulatedHost): CommandResult {
  if (host.systemdVersion === undefined) return OK; // the script runs it only under systemd
  for (const unit of [...host.loadedUnits.keys()]) {
    const f = host.files.get(unitFile(unit));
    if (f) host.loadedUnits.set(unit, f.content);
    else if (![...host.processes.values()].some((p) => p.unit === unit)) host.loadedUnits.delete(unit);
  }
  return OK;
}

// --- the apply script's functions -----------------------------------------------------------

/** The pid in the resolver's pid file when it names a dnsmasq started with this mesh's config (dns_pid). */
export function dnsPid(host: SimulatedHost, iface: string): number | undefined {
  const p = dnsPaths(iface);
  const digits = (host.files.get(p.pidFile)?.content ?? "").slice(0, 12).replace(/[^0-9]/g, "");
  if (!digits) return undefined;
  const proc = host.processes.get(Number(digits));
  return proc && proc.argv.join(" ").includes(p.conf) ? proc.pid : undefined;
}

export function dnsUp(host: SimulatedHost, iface: string): CommandResult {
  const p = dnsPaths(iface);
  if (host.systemdVersion !== undefined) {
    // `systemctl restart … 2>&1`: what it says comes on standard output.
    const r = systemctlRestart(host, p.unit);
    return { code: r.code, stdout: (r.stdout ?? "") + (r.stderr ?? "") };
  }
  const pid = dnsPid(host, iface);
  if (pid !== undefined) stopDnsmasq(host, pid);
  // `… 2>&1`: dnsmasq's complaint (or the shell's) on standard output.
  const r = startDnsmasq(host, [DNSMASQ_PATH, `--conf-file=${p.conf}`]);
  return { code: r.code, stdout: r.stderr ?? "" };
}

export function dnsDown(host: SimulatedHost, iface: string): CommandResult {
  const p = dnsPaths(iface);
  if (host.systemdVersion !== undefined) systemctlStop(host, p.unit);
  const pid = dnsPid(host, iface);
  if (pid !== undefined) stopDnsmasq(host, pid);
  host.files.delete(p.pidFile);
  return OK;
}

export function dnsEnable(host: SimulatedHost, iface: string): CommandResult {
  const p = dnsPaths(iface);
  if (!host.files.has(p.unitPath)) return { code: 1, stdout: `Failed to enable unit: Unit file ${p.unit} does not exist.\n` };
  if (host.dnsEnabled.has(iface)) return OK;
  host.dnsEnabled.add(iface);
  return { code: 0, stdout: `Created symlink ${WANTS}/${p.unit} → ${p.unitPath}.\n` };
}

export function dnsDisable(host: SimulatedHost, iface: string): CommandResult {
  const p = dnsPaths(iface);
  if (!host.dnsEnabled.delete(iface)) return OK;
  return { code: 0, stdout: `Removed "${WANTS}/${p.unit}".\n` };
}

/** The records writer's leftover temporary file; the directories (not modelled) with it. */
export function dnsClean(host: SimulatedHost, iface: string): CommandResult {
  host.files.delete(`${dnsPaths(iface).dir}/.mesh.tmp`);
  return OK;
}

/** `systemctl try-reload-or-restart systemd-resolved.service || true`: systemd-resolved is not simulated. */
export function resolvedReload(): CommandResult {
  return OK;
}
