// Containers of a lab host live in their own cgroup parent (dockerd --cgroup-parent), named
// like the host's namespace: after a crash, its container processes are found there.
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { signal, sleep, isAlive, isZombie } from "./proc.js";

/** Mount points of every cgroup (v1) and cgroup2 hierarchy on this machine. */
export function cgroupRoots(): string[] {
  const roots: string[] = [];
  for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const f = line.split(" ");
    if (f[2] === "cgroup" || f[2] === "cgroup2") roots.push(f[1] ?? "");
  }
  return roots.filter((r) => r !== "");
}

/** Directories of the named cgroup in every hierarchy, deepest first. */
function cgroupDirs(name: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      try {
        if (statSync(p).isDirectory()) walk(p);
      } catch {
        // removed meanwhile
      }
    }
    out.push(dir);
  };
  for (const root of cgroupRoots()) {
    const dir = join(root, name);
    if (existsSync(dir)) walk(dir);
  }
  return out;
}

function procsOf(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Kills (SIGKILL) every process left in the named cgroup and removes its directories from
 * every hierarchy. Returns how many processes were killed.
 */
export async function sweepCgroup(name: string): Promise<number> {
  if (!name || name.includes("/") || name.startsWith(".")) throw new Error(`refusing to sweep cgroup "${name}"`);
  const dirs = cgroupDirs(name);
  if (dirs.length === 0) return 0;
  const pids = [...new Set(dirs.flatMap(procsOf))];
  for (const pid of pids) signal(pid, "SIGKILL");
  for (let i = 0; i < 50 && pids.some((p) => isAlive(p) && !isZombie(p)); i++) await sleep(50);
  // A cgroup can be removed only once its last process is gone; that can lag a moment.
  for (let attempt = 0; attempt < 20; attempt++) {
    let left = 0;
    for (const dir of cgroupDirs(name)) {
      try {
        rmdirSync(dir);
      } catch {
        left++;
      }
    }
    if (left === 0) break;
    await sleep(100);
  }
  return pids.length;
}
