// The controller namespace: a network namespace on the lab net whose only routes are the
// lab's (its /24 and, as an operator's management network would, the NAT'd LANs through
// their routers). A controller run there reaches the lab hosts and nothing else: any other
// destination, a DNS server included, fails at once with "network unreachable". In a lab with
// IPv6 uplinks it also has an address on the lab's IPv6 /64 (and no other IPv6 route).
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { Duplex } from "node:stream";
import { addNetns, inNetns } from "./netns.js";
import { labEnv, run, runOk, type RunOptions, type RunResult } from "./proc.js";
import { uplinkCidrs, type LabPlan } from "./plan.js";
import { plugIntoBridge } from "./root-network.js";
import type { SshTransport } from "./ssh.js";

export async function createControllerNs(plan: LabPlan): Promise<void> {
  const c = plan.controller;
  await addNetns(c.netns);
  await plugIntoBridge(plan, c.rootVeth, c.netns, uplinkCidrs(c));
  for (const r of c.routes) await runOk(["ip", "-n", c.netns, "route", "replace", r.dst, "via", r.via, "dev", "eth0"]);
}

/** spawn() of argv inside the controller namespace (network only: files and env are the caller's). */
export function spawnInNetns(netns: string, argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const full = inNetns(netns, argv);
  const [cmd, ...args] = full;
  return spawn(cmd ?? "nsenter", args, { env: process.env, ...opts });
}

/** Node, inside the namespace: a TCP connection to argv[1]:argv[2], piped to stdin/stdout. */
const TCP_PIPE = [
  'const s = require("node:net").connect({ host: process.argv[1], port: Number(process.argv[2]) });',
  "process.stdin.pipe(s);",
  "s.pipe(process.stdout);",
  's.on("error", (e) => { console.error(e.message); process.exit(1); });',
  's.on("close", () => process.exit(0));',
].join(" ");

/**
 * A TCP connection to host:port opened from inside the namespace (a node process started there,
 * its stdin/stdout the stream): how the root namespace, which has no lab IPv6 address, reaches
 * an IPv6-only lab host. close() kills that process (by its own PID).
 */
export function tcpFromNetns(netns: string, host: string, port: number): SshTransport {
  const child = spawnInNetns(netns, [process.execPath, "-e", TCP_PIPE, host, String(port)], { stdio: ["pipe", "pipe", "ignore"] });
  child.on("error", () => undefined); // a failed start ends the stream: the SSH connection reports it
  if (!child.stdin || !child.stdout) throw new Error(`no stdio for the connection to ${host}:${port} from namespace ${netns}`);
  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
  stream.on("error", () => undefined); // surfaces as the SSH connection's own error
  return {
    stream,
    close: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

export function runInNetns(netns: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(inNetns(netns, argv), { env: labEnv(), ...opts });
}
