// A lab host's own files, prepared in its state directory and bind-mounted over the real
// paths inside the host's private mount namespace: the real machine's files are only read.
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HostPlan, LabPlan } from "./plan.js";

/** A bind mount inside the host: `source` (in the state directory) over `target`. */
export interface BindMount {
  source: string;
  target: string;
}

/** Directories whose per-host copy is bound over the real one (required ones must exist). */
const COPIED_DIRS: readonly { target: string; required: boolean; mode?: number; create?: boolean }[] = [
  { target: "/etc/wireguard", required: true, mode: 0o700 },
  // dockmesh's own files (the mesh DNS resolver's); made empty on the machine when missing, as
  // the bind needs a target, and nothing is ever written to the machine's own copy.
  { target: "/etc/dockmesh", required: true, create: true },
  { target: "/etc/systemd/system", required: true },
  { target: "/etc/sudoers.d", required: true, mode: 0o750 },
  { target: "/etc/docker", required: false },
  { target: "/etc/sysctl.d", required: false },
];

export const HOME_BASE_UID = 2000;

export interface HostFiles {
  binds: BindMount[];
  sshdConfig: string;
  dataRoot: string;
  logDir: string;
  /** Directory bound over /sys/fs/cgroup's temporary mount point while /sys is remounted. */
  cgroupStash: string;
}

function addUser(passwd: string, group: string, shadow: string, user: string): { passwd: string; group: string; shadow: string } {
  if (passwd.split("\n").some((l) => l.startsWith(`${user}:`))) return { passwd, group, shadow };
  const used = new Set<number>();
  for (const l of [...passwd.split("\n"), ...group.split("\n")]) {
    const id = Number(l.split(":")[2]);
    if (Number.isInteger(id)) used.add(id);
  }
  let id = HOME_BASE_UID;
  while (used.has(id) && id < HOME_BASE_UID + 1000) id++;
  const nl = (s: string): string => (s.endsWith("\n") || s === "" ? s : `${s}\n`);
  return {
    passwd: `${nl(passwd)}${user}:x:${id}:${id}:dockmesh lab user:/home/${user}:/bin/bash\n`,
    group: `${nl(group)}${user}:x:${id}:\n`,
    // "*": no password, not locked, so public-key login works.
    shadow: `${nl(shadow)}${user}:*:20000:0:99999:7:::\n`,
  };
}

export function uidOf(passwd: string, user: string): { uid: number; gid: number } {
  const line = passwd.split("\n").find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no passwd entry for ${user}`);
  const f = line.split(":");
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Addresses of the host's eth0 other than `address`: the IPv6 one of a "dual" uplink. */
const otherAddresses = (host: HostPlan): string[] => (host.address6 !== undefined && host.address6 !== host.address ? [host.address6] : []);

export function renderSshdConfig(plan: LabPlan, host: HostPlan, hostKeyPath: string): string {
  return [
    `# sshd of dockmesh lab host ${host.name} (lab ${plan.prefix})`,
    // Every address of its uplink: IPv4, IPv6 ("ipv6" uplink), or both ("dual").
    ...[host.address, ...otherAddresses(host)].map((a) => `ListenAddress ${a}`),
    "Port 22",
    `HostKey ${hostKeyPath}`,
    "PidFile /run/sshd.pid",
    `AuthorizedKeysFile ${join(plan.stateDir, "authorized_keys")}`,
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    // No PAM: the host shares the machine's PAM stack, which expects a systemd/logind that is not there.
    "UsePAM no",
    // The lab's key file lives under /tmp (world-writable), which StrictModes would refuse.
    "StrictModes no",
    "UseDNS no",
    "PrintMotd no",
    "PrintLastLog no",
    "AcceptEnv LANG LC_*",
    "Subsystem sftp /usr/lib/openssh/sftp-server",
    "AllowTcpForwarding yes",
    // A controller opens many connections at once.
    "MaxStartups 200:30:400",
    "MaxSessions 100",
    // A broken or hostile host (LabHostOptions.forceCommand): every login runs this instead.
    ...(host.forceCommand !== undefined ? [`ForceCommand ${host.forceCommand}`] : []),
    "",
  ].join("\n");
}

/** Writes the host's files (idempotent: existing copies are kept, e.g. across a reboot). */
export function prepareHostFiles(plan: LabPlan, host: HostPlan, hostPrivateKey: string): HostFiles {
  const d = host.dir;
  const etc = join(d, "etc");
  const logDir = join(d, "logs");
  const dataRoot = join(d, "docker");
  const cgroupStash = join(d, ".cgroup");
  for (const p of [d, etc, logDir, dataRoot, cgroupStash]) mkdirSync(p, { recursive: true });
  const binds: BindMount[] = [];

  for (const c of COPIED_DIRS) {
    if (!existsSync(c.target) && c.create) mkdirSync(c.target, { recursive: true, mode: 0o755 });
    if (!existsSync(c.target)) {
      if (c.required) throw new Error(`${c.target} does not exist on this machine; is its package installed? (see ensureSystemPackages)`);
      continue;
    }
    const copy = join(etc, c.target.slice("/etc/".length).replaceAll("/", "-"));
    if (!existsSync(copy)) {
      cpSync(c.target, copy, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      if (c.mode !== undefined) chmodSync(copy, c.mode);
    }
    binds.push({ source: copy, target: c.target });
  }

  const passwdPath = join(etc, "passwd");
  const groupPath = join(etc, "group");
  const shadowPath = join(etc, "shadow");
  if (!existsSync(passwdPath)) {
    let files = { passwd: readFileSync("/etc/passwd", "utf8"), group: readFileSync("/etc/group", "utf8"), shadow: readFileSync("/etc/shadow", "utf8") };
    if (host.sshUser !== "root") files = addUser(files.passwd, files.group, files.shadow, host.sshUser);
    writeFileSync(passwdPath, files.passwd, { mode: 0o644 });
    writeFileSync(groupPath, files.group, { mode: 0o644 });
    writeFileSync(shadowPath, files.shadow, { mode: 0o640 });
    chownSync(shadowPath, 0, gidOfShadowGroup(files.group));
  }
  binds.push({ source: passwdPath, target: "/etc/passwd" }, { source: groupPath, target: "/etc/group" }, { source: shadowPath, target: "/etc/shadow" });

  const sudoers = join(etc, "sudoers.d");
  if (host.sshUser !== "root") {
    writeFileSync(join(sudoers, "dockmesh-lab"), `# dockmesh lab: ${host.sshUser} may run anything without a password\n${host.sshUser} ALL=(ALL:ALL) NOPASSWD: ALL\n`, {
      mode: 0o440,
    });
  }

  const hostsPath = join(etc, "hosts");
  const own = [host.address, ...otherAddresses(host)].map((a) => `${a}\t${host.name}\n`).join("");
  writeFileSync(hostsPath, `127.0.0.1\tlocalhost\n127.0.1.1\t${host.name}\n${own}::1\tlocalhost ip6-localhost ip6-loopback\n`);
  const hostnamePath = join(etc, "hostname");
  writeFileSync(hostnamePath, `${host.name}\n`);
  // The host's resolver is its own address, where nothing answers port 53: a lookup the mesh's
  // DNS resolver forwards (any name outside its zone) fails at once inside the host instead of
  // leaving the machine for the machine's real resolvers.
  const resolvPath = join(etc, "resolv.conf");
  writeFileSync(resolvPath, `# dockmesh lab host ${host.name}: no resolver outside the lab\nnameserver ${host.address}\n`);
  binds.push({ source: hostsPath, target: "/etc/hosts" }, { source: hostnamePath, target: "/etc/hostname" }, { source: resolvPath, target: "/etc/resolv.conf" });

  // Home directories: /root and /home are the host's own, so nothing lands in the machine's.
  const rootHome = join(d, "root");
  const homes = join(d, "home");
  mkdirSync(rootHome, { recursive: true, mode: 0o700 });
  mkdirSync(homes, { recursive: true });
  if (host.sshUser !== "root") {
    const home = join(homes, host.sshUser);
    mkdirSync(home, { recursive: true, mode: 0o755 });
    const { uid, gid } = uidOf(readFileSync(passwdPath, "utf8"), host.sshUser);
    chownSync(home, uid, gid);
  }
  binds.push({ source: rootHome, target: "/root" }, { source: homes, target: "/home" });

  const hostKeyPath = join(d, "ssh_host_ed25519_key");
  if (!existsSync(hostKeyPath)) writeFileSync(hostKeyPath, hostPrivateKey, { mode: 0o600 });
  const sshdConfig = join(d, "sshd_config");
  writeFileSync(sshdConfig, renderSshdConfig(plan, host, hostKeyPath), { mode: 0o644 });

  return { binds, sshdConfig, dataRoot, logDir, cgroupStash };
}

function gidOfShadowGroup(group: string): number {
  const line = group.split("\n").find((l) => l.startsWith("shadow:"));
  const gid = line ? Number(line.split(":")[2]) : 0;
  return Number.isInteger(gid) ? gid : 0;
}
