// A lab host's private mount (and UTS) namespace, held open by a "holder" process that
// sleeps inside it; dockerd, sshd and lab.exec enter it with nsenter -t <holder>.
import { readFileSync, readlinkSync } from "node:fs";
import type { BindMount } from "./host-files.js";
import { netnsPath } from "./netns.js";
import { isRunning, runOk, spawnDetached, waitFor } from "./proc.js";

/** argv running `argv` inside the host: its network, mount and UTS namespaces. */
export function inHost(holderPid: number, argv: readonly string[]): string[] {
  return ["nsenter", "-t", String(holderPid), "-n", "-m", "-u", "--", ...argv];
}

export interface HolderSetup {
  netns: string;
  hostname: string;
  binds: readonly BindMount[];
  cgroupStash: string;
  logFd: number;
}

/**
 * Starts the holder (`nsenter --net unshare -m -u --propagation private sleep infinity`, not
 * `ip netns exec`, which remounts /sys and hides the cgroup v1 mounts dockerd needs), then
 * inside it: a fresh sysfs showing this namespace's interfaces with the cgroup tree put back,
 * a tmpfs /run, the per-host bind mounts, the host name. Returns the holder's PID.
 */
export async function startHolder(s: HolderSetup): Promise<number> {
  const argv = ["nsenter", `--net=${netnsPath(s.netns)}`, "unshare", "--mount", "--uts", "--propagation", "private", "--", "sleep", "infinity"];
  const pid = await spawnDetached(argv, { logFd: s.logFd });
  const ownMnt = readlinkSync("/proc/self/ns/mnt");
  await waitFor(
    async () => {
      if (!isRunning(pid)) throw new Error(`holder ${pid} exited`);
      return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "sleep" && readlinkSync(`/proc/${pid}/ns/mnt`) !== ownMnt;
    },
    { what: `the namespace holder of ${s.hostname} to start`, timeoutMs: 10_000, intervalMs: 20 },
  );
  const inside = (...a: string[]): Promise<string> => runOk(inHost(pid, a));
  try {
    await inside("mount", "--rbind", "/sys/fs/cgroup", s.cgroupStash);
    await inside("mount", "-t", "sysfs", "sysfs", "/sys");
    await inside("mount", "--rbind", s.cgroupStash, "/sys/fs/cgroup");
    await inside("umount", "-l", s.cgroupStash);
    await inside("mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs", "/run");
    await inside("mkdir", "-p", "-m", "0755", "/run/sshd", "/run/lock");
    for (const b of s.binds) await inside("mount", "--bind", b.source, b.target);
    await inside("hostname", s.hostname);
  } catch (e) {
    throw new Error(`setting up the mount namespace of ${s.hostname}`, { cause: e });
  }
  return pid;
}
