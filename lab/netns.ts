// Named network namespaces (/run/netns/<name>) and running commands in them.
import { readdirSync, readlinkSync, statSync } from "node:fs";
import { runOk } from "./proc.js";

export const NETNS_DIR = "/run/netns";

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

/** argv running `argv` in the named network namespace only (root's mounts and /run stay visible). */
export function inNetns(name: string, argv: readonly string[]): string[] {
  return ["nsenter", `--net=${netnsPath(name)}`, "--", ...argv];
}

export function listNetns(): string[] {
  try {
    return readdirSync(NETNS_DIR).sort();
  } catch {
    return [];
  }
}

export async function addNetns(name: string): Promise<void> {
  await runOk(["ip", "netns", "add", name]);
  await runOk(["ip", "-n", name, "link", "set", "lo", "up"]);
}

export async function deleteNetns(name: string): Promise<void> {
  if (!listNetns().includes(name)) return;
  await runOk(["ip", "netns", "delete", name]);
}

/** Inode of the namespace behind /run/netns/<name>, or undefined when it does not exist. */
function netnsInode(name: string): number | undefined {
  try {
    return statSync(netnsPath(name)).ino;
  } catch {
    return undefined;
  }
}

/**
 * PIDs of every process whose network namespace is the named one (what `ip netns pids`
 * reports): the namespace is the identity, so a reused PID of an unrelated process is
 * never matched.
 */
export function pidsInNetns(name: string): number[] {
  const ino = netnsInode(name);
  if (ino === undefined) return [];
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const link = readlinkSync(`/proc/${entry}/ns/net`); // "net:[4026532281]"
      if (link === `net:[${ino}]`) out.push(Number(entry));
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  return out;
}
