// Tests that need system commands get them: installed with apt-get when running as root,
// otherwise a failure that says exactly what to install. Never a silent skip.
import { execFileSync } from "node:child_process";

export interface Requirement {
  command: string;
  aptPackage: string;
}

function has(command: string): boolean {
  try {
    execFileSync("sh", ["-c", 'command -v "$1"', "sh", command], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

let updated = false;

export async function requireCommands(reqs: readonly Requirement[]): Promise<void> {
  const missing = reqs.filter((r) => !has(r.command));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((r) => r.aptPackage))];
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${missing.map((r) => r.command).join(", ")}: run as root, or install them first: apt-get install -y ${pkgs.join(" ")}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (!updated) {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
    updated = true;
  }
  execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...pkgs], { stdio: "inherit", env });
  const still = missing.filter((r) => !has(r.command));
  if (still.length) throw new Error(`apt-get installed ${pkgs.join(" ")} but ${still.map((r) => r.command).join(", ")} is still missing`);
}
