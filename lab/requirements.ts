// The Debian packages the lab needs, checked by the binaries they provide. Missing ones are
// installed when we are root, otherwise the error names the exact apt-get command.
import { accessSync, constants, existsSync, openSync, readSync, closeSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { labEnv, run } from "./proc.js";

export interface Requirement {
  /** What the lab uses it for / how it is named in messages. */
  binary: string;
  /** Absolute paths, any of which satisfies the requirement. */
  paths: readonly string[];
  /** Debian package that provides it. */
  pkg: string;
  /** Extra check on the found file (e.g. busybox must be statically linked). */
  check?: (path: string) => boolean;
  /** A file that need not be executable (e.g. a Lua module); default false. */
  file?: boolean;
}

export const inDirs = (name: string): string[] => ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map((d) => join(d, name));

export const REQUIREMENTS: readonly Requirement[] = [
  { binary: "dockerd", paths: inDirs("dockerd"), pkg: "docker.io" },
  { binary: "docker", paths: inDirs("docker"), pkg: "docker.io" },
  { binary: "sshd", paths: ["/usr/sbin/sshd"], pkg: "openssh-server" },
  { binary: "wg", paths: inDirs("wg"), pkg: "wireguard-tools" },
  { binary: "wg-quick", paths: inDirs("wg-quick"), pkg: "wireguard-tools" },
  { binary: "wireguard-go", paths: inDirs("wireguard-go"), pkg: "wireguard-go" },
  { binary: "iptables", paths: inDirs("iptables"), pkg: "iptables" },
  { binary: "ip", paths: inDirs("ip"), pkg: "iproute2" },
  { binary: "busybox (static)", paths: ["/bin/busybox", "/usr/bin/busybox"], pkg: "busybox-static", check: isStaticElf },
  { binary: "nsenter", paths: inDirs("nsenter"), pkg: "util-linux" },
  { binary: "unshare", paths: inDirs("unshare"), pkg: "util-linux" },
  { binary: "mount", paths: inDirs("mount"), pkg: "mount" },
  { binary: "sudo", paths: inDirs("sudo"), pkg: "sudo" },
  { binary: "sysctl", paths: inDirs("sysctl"), pkg: "procps" },
  { binary: "tar", paths: inDirs("tar"), pkg: "tar" },
  // `systemctl enable wg-quick@wg0` on a lab host (no systemd runs there) only needs the binary.
  { binary: "systemctl", paths: inDirs("systemctl"), pkg: "systemd" },
  // Pings with DF set (busybox's ping cannot) to prove the MTU across the tunnel.
  { binary: "ping", paths: inDirs("ping"), pkg: "iputils-ping" },
  // The mesh DNS resolver on every host: the binary alone (dnsmasq-base), without the dnsmasq
  // package's system-wide service, which would take port 53 on every address.
  { binary: "dnsmasq", paths: inDirs("dnsmasq"), pkg: "dnsmasq-base" },
];

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** An ELF executable without a PT_INTERP program header is statically linked. */
export function isStaticElf(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const head = Buffer.alloc(64);
    if (readSync(fd, head, 0, 64, 0) < 64 || head.readUInt32BE(0) !== 0x7f454c46) return false;
    if (head[4] !== 2 || head[5] !== 1) return false; // only 64-bit little-endian is expected here
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3) return false; // PT_INTERP
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The requirements not met on this machine. */
export function findMissing(reqs: readonly Requirement[] = REQUIREMENTS): Requirement[] {
  return reqs.filter((r) => !r.paths.some((p) => (r.file ? existsSync(p) : isExecutable(p)) && (r.check ? r.check(p) : true)));
}

/** Distinct packages for the missing requirements, in a stable order. */
export function packagesFor(missing: readonly Requirement[]): string[] {
  return [...new Set(missing.map((r) => r.pkg))].sort();
}

export function installCommand(pkgs: readonly string[]): string {
  return `apt-get install -y --no-install-recommends ${pkgs.join(" ")}`;
}

export function describeMissing(missing: readonly Requirement[]): string {
  return missing.map((r) => `${r.binary} (package ${r.pkg})`).join(", ");
}

function aptListsPresent(): boolean {
  try {
    return readdirSync("/var/lib/apt/lists").some((f) => f.endsWith("_Packages") || f.endsWith("_Packages.lz4"));
  } catch {
    return false;
  }
}

const APT_TIMEOUT_MS = 15 * 60_000;

async function apt(args: readonly string[]): Promise<void> {
  const argv = ["apt-get", ...args];
  const r = await run(argv, { timeoutMs: APT_TIMEOUT_MS, env: labEnv({ DEBIAN_FRONTEND: "noninteractive" }) });
  if (r.code !== 0) {
    const tail = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-8).join("\n");
    throw new Error(`${argv.join(" ")} ${r.timedOut ? "timed out" : `exited ${r.code}`}: ${tail}`);
  }
}

export interface EnsureOptions {
  /** Progress messages (what is being installed); default: stderr. */
  log?: (msg: string) => void;
  /** For tests: pretend to be this uid. */
  uid?: number;
  /** For tests: check these instead of REQUIREMENTS. */
  requirements?: readonly Requirement[];
  /** Who needs the packages, for the messages; default "the lab". */
  purpose?: string;
}

/**
 * Makes sure every binary the lab needs is present. As root, installs what is missing
 * (`apt-get update` first when the package lists are absent, or when the install cannot
 * find a package); otherwise throws an Error naming the exact command to run. Never skips.
 */
export async function ensureSystemPackages(opts: EnsureOptions = {}): Promise<void> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`lab: ${m}\n`));
  const reqs = opts.requirements ?? REQUIREMENTS;
  const purpose = opts.purpose ?? "the lab";
  const missing = findMissing(reqs);
  // Only wireguard-go needs the tun device: other callers (unzip for the tests' tools) do not.
  if (reqs.some((r) => r.binary === "wireguard-go") && !existsSync("/dev/net/tun")) {
    throw new Error("the lab needs /dev/net/tun (wireguard-go creates its interface there); load the tun module: modprobe tun");
  }
  if (missing.length === 0) return;
  const pkgs = packagesFor(missing);
  const uid = opts.uid ?? process.getuid?.() ?? -1;
  if (uid !== 0) {
    throw new Error(`${purpose} needs ${describeMissing(missing)}, which are not installed; as root run: ` + `apt-get update && ${installCommand(pkgs)}`);
  }
  log(`installing ${pkgs.join(" ")} (missing: ${describeMissing(missing)})`);
  const install = ["install", "-y", "--no-install-recommends", ...pkgs];
  try {
    if (!aptListsPresent()) await apt(["update"]);
    try {
      await apt(install);
    } catch (first) {
      log(`apt-get install failed (${(first as Error).message.split("\n")[0]}); running apt-get update and retrying`);
      await apt(["update"]);
      await apt(install);
    }
  } catch (e) {
    throw new Error(`could not install the packages ${purpose} needs (${pkgs.join(" ")}); try: apt-get update && ${installCommand(pkgs)}`, {
      cause: e,
    });
  }
  const still = findMissing(reqs);
  if (still.length > 0) {
    throw new Error(`after installing ${pkgs.join(" ")}, still missing: ${describeMissing(still)}`);
  }
}
