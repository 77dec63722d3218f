// dockerd and sshd of a lab host, started inside its namespaces and awaited by readiness
// (the Docker API answering /_ping, sshd listening), never by blind sleeps.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { inHost } from "./host-mounts.js";
import { LAB_PATH, isRunning, spawnDetached, waitFor } from "./proc.js";

export const DOCKERD_TIMEOUT_MS = 90_000;
const SSHD_TIMEOUT_MS = 20_000;

function tail(path: string, lines = 8): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** GET /_ping on the host's Docker socket, reached through the holder's mount namespace. */
export function dockerPing(holderPid: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: `/proc/${holderPid}/root/run/docker.sock`, path: "/_ping", timeout: timeoutMs }, (res) => {
      let body = "";
      res.on("data", (b: Buffer) => (body += b.toString()));
      res.on("end", () => resolve(res.statusCode === 200 && body.trim() === "OK"));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(false));
    req.end();
  });
}

export interface DockerdSetup {
  holderPid: number;
  /** Docker manages ip6tables too (LabHostOptions.dockerIp6tables). */
  ip6tables?: boolean;
  host: string;
  dataRoot: string;
  cgroupParent: string;
  logFd: number;
  logPath: string;
}

/** dockerd's flags for managing ip6tables: Docker before 27 has the option only as an experimental one. */
function ip6tablesFlags(): string[] {
  const v = /version (\d+)\./.exec(execFileSync("dockerd", ["--version"], { encoding: "utf8", env: { PATH: LAB_PATH } }))?.[1];
  return Number(v) >= 27 ? ["--ip6tables"] : ["--experimental", "--ip6tables"];
}

export async function startDockerd(s: DockerdSetup): Promise<number> {
  const argv = inHost(s.holderPid, [
    "dockerd",
    "--data-root",
    s.dataRoot,
    "--cgroup-parent",
    `/${s.cgroupParent}`,
    // Containers of a lab host stop within 2 s on shutdown/reboot (the default is 15 s).
    "--shutdown-timeout",
    "2",
    ...(s.ip6tables ? ip6tablesFlags() : []),
  ]);
  const pid = await spawnDetached(argv, { logFd: s.logFd });
  return pid;
}

export async function waitDockerd(pid: number, s: DockerdSetup): Promise<void> {
  await waitFor(
    async () => {
      if (!isRunning(pid)) throw new Error(`dockerd of ${s.host} exited; its log (${s.logPath}) ends:\n${tail(s.logPath)}`);
      return dockerPing(s.holderPid);
    },
    { what: `dockerd of ${s.host} to answer /_ping (log: ${s.logPath})`, timeoutMs: DOCKERD_TIMEOUT_MS, intervalMs: 100 },
  );
}

export interface SshdSetup {
  holderPid: number;
  host: string;
  config: string;
  logFd: number;
  logPath: string;
}

export async function startSshd(s: SshdSetup): Promise<number> {
  return spawnDetached(inHost(s.holderPid, ["/usr/sbin/sshd", "-D", "-e", "-f", s.config]), { logFd: s.logFd });
}

/** True when the network namespace of `pid` has a TCP socket listening on `port` (IPv4, else IPv6: an IPv6-only uplink's sshd). */
export function listening(pid: number, port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const listensIn = (table: string): boolean =>
    table
      .split("\n")
      .slice(1)
      .some((l) => {
        const f = l.trim().split(/\s+/);
        return f[1]?.endsWith(`:${hexPort}`) && f[3] === "0A";
      });
  if (listensIn(readFileSync(`/proc/${pid}/net/tcp`, "utf8"))) return true;
  try {
    return listensIn(readFileSync(`/proc/${pid}/net/tcp6`, "utf8"));
  } catch {
    return false; // no IPv6 in the namespace
  }
}

export async function waitSshd(pid: number, s: SshdSetup): Promise<void> {
  await waitFor(
    async () => {
      if (!isRunning(pid)) throw new Error(`sshd of ${s.host} exited; its log (${s.logPath}) ends:\n${tail(s.logPath)}`);
      return listening(pid, 22);
    },
    { what: `sshd of ${s.host} to listen on port 22 (log: ${s.logPath})`, timeoutMs: SSHD_TIMEOUT_MS, intervalMs: 50 },
  );
}
