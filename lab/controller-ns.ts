// The controller namespace: a network namespace on the lab net whose only routes are the
// lab's (its /24 and, as an operator's management network would, the NAT'd LANs through
// their routers). A controller run there reaches the lab hosts and nothing else: any other
// destination, a DNS server included, fails at once with "network unreachable".
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { addNetns, inNetns } from "./netns.js";
import { labEnv, run, runOk, type RunOptions, type RunResult } from "./proc.js";
import type { LabPlan } from "./plan.js";
import { plugIntoBridge } from "./root-network.js";

export async function createControllerNs(plan: LabPlan): Promise<void> {
  const c = plan.controller;
  await addNetns(c.netns);
  await plugIntoBridge(plan, c.rootVeth, c.netns, c.address);
  for (const r of c.routes) await runOk(["ip", "-n", c.netns, "route", "replace", r.dst, "via", r.via, "dev", "eth0"]);
}

/** spawn() of argv inside the controller namespace (network only: files and env are the caller's). */
export function spawnInNetns(netns: string, argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const full = inNetns(netns, argv);
  const [cmd, ...args] = full;
  return spawn(cmd ?? "nsenter", args, { env: process.env, ...opts });
}

export function runInNetns(netns: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(inNetns(netns, argv), { env: labEnv(), ...opts });
}
