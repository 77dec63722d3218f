// createLab(): N simulated Docker hosts that are real to a controller (own network and mount
// namespace, dockerd, sshd, iptables, WireGuard), on one machine, torn down by destroy().
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { lstatSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clearLab, describeCleanup, isEmptyReport } from "./cleanup.js";
import { fetchFrom, containerIp, runContainer, runHttpd, startHttpd, type FetchOptions, type HttpdOptions } from "./containers.js";
import { createControllerNs, runInNetns, spawnInNetns, tcpFromNetns } from "./controller-ns.js";
import { HostMachine, type BootReport, type HostCommand } from "./host-machine.js";
import { buildImageTar, LAB_IMAGE } from "./image.js";
import { generateEd25519, keyWithoutComment } from "./keys.js";
import { describeHosts, type LabHost } from "./lab-host.js";
import { addNetns } from "./netns.js";
import type { LabOptions } from "./options.js";
import { planLab, uplinkCidrs, type LabPlan } from "./plan.js";
import { describeFailure, runOk, type RunOptions, type RunResult } from "./proc.js";
import { createRouter } from "./router.js";
import { addRootRoute6, addRootRoutes, addRootRules, checkLabnetFree, createBridge, plugIntoBridge } from "./root-network.js";
import { SshSession } from "./ssh.js";

export type { LabHost } from "./lab-host.js";
export type { LabOptions, LabHostOptions, Uplink } from "./options.js";
export type { BootReport, HostCommand } from "./host-machine.js";
export type { RunResult } from "./proc.js";
export { LAB_IMAGE } from "./image.js";

export interface LabTimings {
  createMs: number;
  destroyMs?: number;
}

export class Lab {
  readonly hosts: readonly LabHost[];
  readonly image = LAB_IMAGE;
  readonly timings: LabTimings = { createMs: 0 };
  private destroyed = false;

  /** @internal use createLab() */
  constructor(
    readonly plan: LabPlan,
    private readonly machines: ReadonlyMap<string, HostMachine>,
    hostKeys: ReadonlyMap<string, string>,
    readonly sshPrivateKey: string,
    readonly sshPublicKey: string,
    private readonly log: (m: string) => void,
  ) {
    this.hosts = describeHosts(plan, hostKeys);
  }

  get prefix(): string {
    return this.plan.prefix;
  }
  /** Network namespace for running the controller (/run/netns/<controllerNs>). */
  get controllerNs(): string {
    return this.plan.controller.netns;
  }
  /** The controller namespace's address: where the root namespace reaches what runs there. */
  get controllerAddress(): string {
    return this.plan.controller.address;
  }
  /** The controller namespace's IPv6 address: only in a lab where some host has an IPv6 uplink. */
  get controllerAddress6(): string | undefined {
    return this.plan.controller.address6;
  }
  /** The root namespace's address on the lab net. */
  get rootAddress(): string {
    return this.plan.bridgeAddress;
  }
  get stateDir(): string {
    return this.plan.stateDir;
  }

  /** The PIDs the lab started and still runs, per host (holder of its namespaces, dockerd, sshd). */
  processes(): Record<string, { holder?: number; dockerd?: number; sshd?: number }> {
    return Object.fromEntries([...this.machines.values()].map((m) => [m.name, m.pids]));
  }

  host(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`lab ${this.prefix} has no host "${name}" (hosts: ${this.hosts.map((x) => x.name).join(", ")})`);
    return h;
  }

  private machine(host: string | LabHost): HostMachine {
    const name = typeof host === "string" ? host : host.name;
    const m = this.machines.get(name);
    if (!m) throw new Error(`lab ${this.prefix} has no host "${name}"`);
    if (this.destroyed) throw new Error(`lab ${this.prefix} is destroyed`);
    return m;
  }

  /** Runs a command inside the host's namespaces directly (not over SSH), as root. */
  exec(host: string | LabHost, cmd: HostCommand, opts: RunOptions = {}): Promise<RunResult> {
    return this.machine(host).exec(cmd, opts);
  }

  /** exec() that throws (with the host, command and stderr) unless the command exits 0; returns stdout. */
  execOk(host: string | LabHost, cmd: HostCommand, opts: RunOptions = {}): Promise<string> {
    return this.machine(host).execOk(cmd, opts);
  }

  /**
   * Opens an SSH session (ssh2, the lab key, host key checked, through the bastion if any). A host
   * with an IPv6-only uplink is reached over IPv6 from the controller namespace (the root namespace
   * has no lab IPv6 address), as the controller would.
   */
  ssh(host: string | LabHost, opts: { readyTimeoutMs?: number; user?: string } = {}): Promise<SshSession> {
    const h = typeof host === "string" ? this.host(host) : host;
    return SshSession.open(
      {
        host: h.sshHost,
        port: h.sshPort,
        user: opts.user ?? h.sshUser,
        hostKey: h.hostKey,
        privateKey: this.sshPrivateKey,
        ...(h.bastion ? { bastion: { host: h.bastion.host, port: h.bastion.port, user: h.bastion.user, hostKey: h.bastion.hostKey } } : {}),
        ...(h.uplink === "ipv6" && !h.bastion ? { transport: () => tcpFromNetns(this.controllerNs, h.sshHost, h.sshPort) } : {}),
      },
      opts.readyTimeoutMs,
    );
  }

  /** spawn() inside the controller namespace: argv reaches only lab addresses. */
  spawnInControllerNs(argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    return spawnInNetns(this.controllerNs, argv, opts);
  }

  /** Runs argv to completion inside the controller namespace. */
  execInControllerNs(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return runInNetns(this.controllerNs, argv, opts);
  }

  /** `docker run -d --name <name> <args...>` on the host; returns the container ID. */
  runContainer(host: string | LabHost, name: string, args: readonly string[]): Promise<string> {
    return runContainer(this.machine(host), name, args);
  }

  /** Starts an httpd container serving `content` at /; returns its address in `network`. */
  startHttpd(host: string | LabHost, opts: HttpdOptions): Promise<{ ip: string }> {
    return startHttpd(this.machine(host), opts);
  }

  /** startHttpd without the address lookup (for `network: "none"`, connected later). */
  runHttpd(host: string | LabHost, opts: HttpdOptions): Promise<void> {
    return runHttpd(this.machine(host), opts);
  }

  /** Fetches a URL (with an explicit :port) from a container on the host in `network` (see fetchFrom). */
  fetch(host: string | LabHost, opts: FetchOptions): Promise<RunResult> {
    return fetchFrom(this.machine(host), opts);
  }

  /** fetch() that throws unless it succeeds; returns the body. */
  async fetchOk(host: string | LabHost, opts: FetchOptions): Promise<string> {
    const r = await this.fetch(host, opts);
    const name = typeof host === "string" ? host : host.name;
    if (r.code !== 0) throw new Error(`fetching ${opts.url} from a container on ${name}: ${describeFailure(["wget", opts.url], r)}`);
    return r.stdout;
  }

  containerIp(host: string | LabHost, name: string, network: string): Promise<string> {
    return containerIp(this.machine(host), name, network);
  }

  /**
   * Reboots a host: stops all its processes (containers too), flushes its iptables, links,
   * routes and /run, starts dockerd and sshd again, then runs `wg-quick up X` for every
   * wg-quick@X unit enabled in its /etc/systemd/system. Containers with a restart policy return.
   * `hard`: a power loss instead of a clean shutdown (everything gets SIGKILL at once).
   */
  async reboot(host: string | LabHost, opts: { hard?: boolean } = {}): Promise<BootReport> {
    const m = this.machine(host);
    this.log(`rebooting ${m.name}${opts.hard ? " (hard: power loss)" : ""}`);
    return m.reboot(opts.hard ? "hard" : "graceful");
  }

  private uplink(host: string | LabHost): string[] {
    const p = this.machine(host).plan;
    // The far end of the host's cable: its veth end on the bridge, or the router's LAN port.
    return p.router ? ["-n", p.router.netns, "link", "set", "lan0"] : ["link", "set", p.rootVeth ?? ""];
  }

  /** Cuts the host off the network (its cable is pulled: the far end of its link goes down). */
  async cut(host: string | LabHost): Promise<void> {
    await runOk(["ip", ...this.uplink(host), "down"]);
  }

  /** Plugs the host back in. */
  async heal(host: string | LabHost): Promise<void> {
    await runOk(["ip", ...this.uplink(host), "up"]);
  }

  /**
   * Stops every process the lab started (and whatever else runs in its namespaces) and removes
   * its namespaces, bridge, veths, root iptables rules and state directory. Idempotent.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    const t0 = Date.now();
    this.destroyed = true;
    const results = await Promise.allSettled([...this.machines.values()].map((m) => m.shutdown("hard")));
    const report = await clearLab(this.plan.prefix, this.plan.stateDir);
    this.timings.destroyMs = Date.now() - t0;
    this.log(`lab ${this.prefix} destroyed in ${this.timings.destroyMs} ms (${describeCleanup(report)})`);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed.length > 0) throw new Error(`lab ${this.prefix}: stopping hosts failed (everything was removed anyway)`, { cause: failed[0]?.reason });
  }
}

async function buildLab(plan: LabPlan, log: (m: string) => void, keys: LabOptions["keys"]): Promise<Lab> {
  mkdirSync(plan.stateDir, { recursive: true, mode: 0o755 });
  // It sits in /tmp: make sure it is ours (a real directory owned by root), not a planted link.
  const st = lstatSync(plan.stateDir);
  if (!st.isDirectory() || st.uid !== 0) throw new Error(`${plan.stateDir} is not a directory owned by root; remove it and try again`);
  const client = keys?.client ?? generateEd25519(`dockmesh-lab-${plan.prefix}`);
  writeFileSync(join(plan.stateDir, "authorized_keys"), `${client.publicKey}\n`, { mode: 0o644 });
  writeFileSync(join(plan.stateDir, "id_ed25519"), client.privateKey, { mode: 0o600 });
  writeFileSync(join(plan.stateDir, "id_ed25519.pub"), `${client.publicKey}\n`, { mode: 0o644 });
  const imageTar = buildImageTar(plan.stateDir);
  imageTar.catch(() => undefined); // awaited by every host's first boot

  await checkLabnetFree(plan);
  await createBridge(plan);
  await addRootRoute6(plan);
  await addRootRules(plan, log);
  await createControllerNs(plan);
  await Promise.all(
    plan.hosts.map(async (h) => {
      await addNetns(h.netns);
      if (h.rootVeth) await plugIntoBridge(plan, h.rootVeth, h.netns, uplinkCidrs(h));
      else await createRouter(plan, h);
    }),
  );
  await addRootRoutes(plan);

  const machines = new Map<string, HostMachine>();
  const hostKeys = new Map<string, string>();
  for (const h of plan.hosts) {
    const k = keys?.hosts.get(h.name) ?? generateEd25519(`${plan.prefix}-${h.name}`);
    hostKeys.set(h.name, keyWithoutComment(k.publicKey));
    machines.set(h.name, new HostMachine(h, plan, k.privateKey, imageTar, log));
  }
  const lab = new Lab(plan, machines, hostKeys, client.privateKey, client.publicKey, log);
  await Promise.all(
    [...machines.values()].map(async (m) => {
      const r = await m.boot(true);
      log(`host ${m.name} up in ${r.ms} ms`);
    }),
  );
  return lab;
}

/**
 * Creates a lab: clears leftovers with the same prefix (a crashed earlier run), then builds
 * the bridge, the controller namespace, the routers and the hosts (in parallel). On failure
 * everything created so far is removed and the error says what failed.
 */
export async function createLab(opts: LabOptions): Promise<Lab> {
  const t0 = Date.now();
  const log = opts.log ?? (() => undefined);
  const plan = planLab(opts);
  const leftovers = await clearLab(plan.prefix, plan.stateDir);
  if (!isEmptyReport(leftovers)) log(`lab ${plan.prefix}: removed leftovers of an earlier run: ${describeCleanup(leftovers)}`);
  try {
    const lab = await buildLab(plan, log, opts.keys);
    lab.timings.createMs = Date.now() - t0;
    log(`lab ${plan.prefix} with ${plan.hosts.length} hosts created in ${lab.timings.createMs} ms`);
    return lab;
  } catch (e) {
    try {
      await clearLab(plan.prefix, plan.stateDir);
    } catch (cleanupError) {
      log(`lab ${plan.prefix}: cleanup after the failure failed too: ${(cleanupError as Error).message}`);
    }
    throw new Error(`creating lab ${plan.prefix} failed (everything it had created was removed)`, { cause: e });
  }
}

/** Removes a lab by prefix without a Lab object (the demo's `down`, or a manual cleanup). */
export { clearLab } from "./cleanup.js";
