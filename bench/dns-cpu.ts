// CPU time spent on a lab host, from /proc: every process in the host's network namespace (what
// `ip netns pids` lists: dockerd, containerd and its shims, sshd and the controller's sessions
// with what they run, dnsmasq; containers' own processes have namespaces of their own and are not
// in it). utime+stime+cutime+cstime: a process that starts and ends inside the window is counted
// through its parent's cutime/cstime once reaped (a short SSH connection by the sshd listener, a
// command by its session's shell). Processes alive at both ends count their difference, those
// that appeared count whole. Resolution: a clock tick (10 ms) per process.
import { readFileSync } from "node:fs";
import { pidsInNetns } from "../lab/netns.js";
import { CLOCK_TICKS_PER_S } from "./scale-proc.js";

export type CpuGroup = "ssh" | "events" | "dnsmasq" | "docker" | "other";
export const CPU_GROUPS: readonly CpuGroup[] = ["ssh", "events", "dnsmasq", "docker", "other"];

interface Proc {
  comm: string;
  ppid: number;
  /** Start time (ticks since boot): with the pid, the identity of the process. */
  start: string;
  ticks: number;
}

export type NetnsSample = Map<number, Proc>;

function readProc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    // Fields after ") ": state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17) … starttime(22).
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { comm, ppid: Number(f[1]), start: f[19]!, ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined; // exited meanwhile
  }
}

export function sampleNetns(netns: string): NetnsSample {
  const out: NetnsSample = new Map();
  for (const pid of pidsInNetns(netns)) {
    const p = readProc(pid);
    if (p) out.set(pid, p);
  }
  return out;
}

const DOCKER = /^(dockerd|containerd|containerd-shim.*|docker-proxy|runc)$/;

/**
 * dnsmasq; a docker CLI under sshd alive at both ends of the window (the records half's long-lived
 * `docker events`); sshd and anything else under it (the controller's sessions and what they ran);
 * Docker's daemons; the rest.
 */
function groupOf(pid: number, procs: NetnsSample, lived: boolean): CpuGroup {
  const p = procs.get(pid)!;
  if (p.comm === "dnsmasq") return "dnsmasq";
  if (DOCKER.test(p.comm)) return "docker";
  for (let q: Proc | undefined = p, i = 0; q && i < 64; q = procs.get(q.ppid), i++) if (q.comm.startsWith("sshd")) return p.comm === "docker" && lived ? "events" : "ssh";
  return "other";
}

/** CPU ms per group between two samples of one namespace. */
export function cpuBetween(before: NetnsSample, after: NetnsSample): Record<CpuGroup, number> {
  const out: Record<CpuGroup, number> = { ssh: 0, events: 0, dnsmasq: 0, docker: 0, other: 0 };
  for (const [pid, p] of after) {
    const b = before.get(pid);
    const lived = b !== undefined && b.start === p.start;
    const ticks = lived ? p.ticks - b.ticks : p.ticks;
    out[groupOf(pid, after, lived)] += (ticks * 1000) / CLOCK_TICKS_PER_S;
  }
  return out;
}

/** The machine's busy CPU ms so far (/proc/stat), to show what else ran during a window. */
export { machineCpuMs } from "./lab-metrics.js";
