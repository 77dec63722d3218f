// Host-side CPU of lab hosts, per host: every process in the host's network namespace (dockerd,
// containerd, sshd and the sessions it reaped, wireguard-go, dnsmasq, containers), from /proc.
// A process alive at both marks counts with what it and its reaped children used in between; one
// started since counts whole. A command's processes end up in its parent's reaped-children times
// (sshd's session → shell → tools), so short-lived tools are counted once their session closed.
import { readFileSync } from "node:fs";
import { pidsInNetns } from "../lab/netns.js";
import { CLOCK_TICKS_PER_S } from "./scale-proc.js";

interface ProcTimes {
  /** Start time in ticks since boot: with the PID, the process's identity. */
  start: string;
  /** utime + stime + cutime + cstime, ticks. */
  ticks: number;
}

function times(pid: number): ProcTimes | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14-17 (utime, stime, cutime, cstime) and 22 (starttime), counted from field 3 (state).
    return { start: f[19]!, ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined; // exited meanwhile
  }
}

function snapshot(netns: string): Map<number, ProcTimes> {
  const out = new Map<number, ProcTimes>();
  for (const pid of pidsInNetns(netns)) {
    const t = times(pid);
    if (t) out.set(pid, t);
  }
  return out;
}

/** CPU milliseconds each host's namespace used since construction. */
export class HostCpu {
  private readonly marks: Map<string, Map<number, ProcTimes>>;

  /** `hosts`: host name → its network namespace. */
  constructor(private readonly hosts: ReadonlyMap<string, string>) {
    this.marks = new Map([...hosts].map(([h, ns]) => [h, snapshot(ns)]));
  }

  /** host → CPU ms since construction. */
  since(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [h, ns] of this.hosts) {
      const before = this.marks.get(h)!;
      let ticks = 0;
      for (const [pid, t] of snapshot(ns)) {
        const b = before.get(pid);
        ticks += b && b.start === t.start ? t.ticks - b.ticks : t.ticks;
      }
      out.set(h, (ticks * 1000) / CLOCK_TICKS_PER_S);
    }
    return out;
  }
}
