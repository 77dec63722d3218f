// Containers for assertions: an httpd serving a known page, a one-shot fetch from another
// container, a container's address. All run through the host's own Docker engine.
import type { HostMachine } from "./host-machine.js";
import { LAB_IMAGE } from "./image.js";
import type { RunResult } from "./proc.js";

export async function runContainer(host: HostMachine, name: string, args: readonly string[]): Promise<string> {
  const out = await host.execOk(["docker", "run", "-d", "--name", name, ...args], { timeoutMs: 60_000 });
  return out.trim();
}

export interface HttpdOptions {
  name: string;
  network: string;
  /** Body of /index.html. */
  content: string;
  /** Fixed address in the network (default: Docker assigns one). */
  ip?: string;
  /** Docker restart policy (e.g. "unless-stopped" to come back after lab.reboot). */
  restart?: string;
}

/** Starts busybox httpd serving `content` at / and returns the container's address. */
export async function startHttpd(host: HostMachine, o: HttpdOptions): Promise<{ ip: string }> {
  await runHttpd(host, o);
  return { ip: await containerIp(host, o.name, o.network) };
}

/** startHttpd without the address lookup (for `network: "none"`: it has none until connected). */
export async function runHttpd(host: HostMachine, o: HttpdOptions): Promise<void> {
  const args = ["--network", o.network, ...(o.ip ? ["--ip", o.ip] : []), ...(o.restart ? ["--restart", o.restart] : [])];
  // The page arrives as a positional parameter, never as script text.
  // sh stays PID 1 and exits on SIGTERM (httpd as PID 1 would ignore it, and every docker stop
  // or lab.reboot would wait out the 10 s stop timeout).
  const script = 'mkdir -p /www && printf "%s" "$1" > /www/index.html && httpd -f -p 80 -h /www & trap "exit 0" TERM; wait';
  await runContainer(host, o.name, [...args, LAB_IMAGE, "sh", "-c", script, "httpd", o.content]);
}

/** The container's address in the named network. */
export async function containerIp(host: HostMachine, name: string, network: string): Promise<string> {
  const json = await host.execOk(["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", name]);
  const nets = JSON.parse(json) as Record<string, { IPAddress?: string }>;
  const ip = nets[network]?.IPAddress;
  if (!ip) throw new Error(`container ${name} on ${host.name} has no address in network ${network} (it has: ${Object.keys(nets).join(", ")})`);
  return ip;
}

export interface FetchOptions {
  network: string;
  /** Full URL with an explicit port (busybox wget needs it): http://10.200.2.2:80/ */
  url: string;
  timeoutSec?: number;
  /** Run the fetch in this running container of the host (e.g. an httpd) instead of the idle fetcher. */
  container?: string;
}

/** Name of the idle container fetches run in (one per network, started on first use). */
export function fetcherName(network: string): string {
  return `lab-fetch-${network}`.replace(/[^a-zA-Z0-9_.-]/g, "_");
}

async function ensureFetcher(host: HostMachine, network: string): Promise<string> {
  const name = fetcherName(network);
  const state = await host.exec(["docker", "inspect", "--format", "{{.State.Running}}", name]);
  if (state.code === 0 && state.stdout.trim() === "true") return name;
  if (state.code === 0) await host.execOk(["docker", "rm", "-f", name]);
  // sh as PID 1 with a TERM trap: stops at once on docker stop / lab.reboot.
  await runContainer(host, name, ["--network", network, LAB_IMAGE, "sh", "-c", 'trap "exit 0" TERM; sleep 2147483647 & wait']);
  return name;
}

/**
 * Fetches a URL from a container on `host` attached to `network` (an idle "lab-fetch-<network>"
 * container, started on first use: `docker exec` takes ~50 ms where `docker run` takes ~1.5 s).
 * stdout is the body; a non-zero code means no page.
 */
export async function fetchFrom(host: HostMachine, o: FetchOptions): Promise<RunResult> {
  const t = String(o.timeoutSec ?? 5);
  const name = o.container ?? (await ensureFetcher(host, o.network));
  // busybox `timeout` bounds it: busybox wget's own -T crashes (exit 139) in the static build.
  return host.exec(["docker", "exec", name, "timeout", t, "wget", "-q", "-O", "-", o.url], {
    timeoutMs: (o.timeoutSec ?? 5) * 1000 + 30_000,
  });
}
