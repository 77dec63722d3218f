// One lab host at run time: boots (holder, base network and firewall, dockerd, sshd, the
// units enabled in its /etc/systemd/system), runs commands inside, and shuts down.
import { closeSync, existsSync, openSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { sweepCgroup } from "./cgroups.js";
import { prepareHostFiles, type HostFiles } from "./host-files.js";
import { inHost, startHolder } from "./host-mounts.js";
import { startDockerd, startSshd, waitDockerd, waitSshd } from "./host-daemons.js";
import { applyHostFirewall, applyHostNetwork, resetHostNetwork } from "./host-network.js";
import { importArgv } from "./image.js";
import { pidsInNetns } from "./netns.js";
import { describeFailure, run, stopPids, type RunOptions, type RunResult } from "./proc.js";
import type { HostPlan, LabPlan } from "./plan.js";

export interface BootReport {
  /** wg-quick@X units found enabled and brought up with `wg-quick up X`. */
  unitsStarted: string[];
  /** Enabled units that failed to come up, with wg-quick's error. */
  unitsFailed: { unit: string; error: string }[];
  ms: number;
}

/** A command for a host: an argv, or a script for `sh -c`. */
export type HostCommand = readonly string[] | string;

export function toArgv(cmd: HostCommand): string[] {
  return typeof cmd === "string" ? ["sh", "-c", cmd] : [...cmd];
}

export class HostMachine {
  private holder: number | undefined;
  private dockerd: number | undefined;
  private sshd: number | undefined;
  private files: HostFiles | undefined;

  constructor(
    readonly plan: HostPlan,
    private readonly lab: LabPlan,
    private readonly hostPrivateKey: string,
    private readonly imageTar: Promise<string>,
    private readonly log: (m: string) => void,
  ) {}

  get name(): string {
    return this.plan.name;
  }

  /** PIDs the lab started for this host and that are still its current processes. */
  get pids(): { holder?: number; dockerd?: number; sshd?: number } {
    return { holder: this.holder, dockerd: this.dockerd, sshd: this.sshd };
  }

  private holderPid(): number {
    if (this.holder === undefined) throw new Error(`lab host ${this.name} is not running`);
    return this.holder;
  }

  /** Runs a command inside the host's namespaces (not over SSH) and reports the outcome. */
  exec(cmd: HostCommand, opts: RunOptions = {}): Promise<RunResult> {
    return run(inHost(this.holderPid(), toArgv(cmd)), opts);
  }

  async execOk(cmd: HostCommand, opts: RunOptions = {}): Promise<string> {
    const argv = toArgv(cmd);
    const r = await this.exec(argv, opts);
    if (r.code !== 0) throw new Error(`on lab host ${this.name}: ${describeFailure(argv, r)}`);
    return r.stdout;
  }

  /** First boot (first = true) or a boot after shutdown() and a network reset (a reboot). */
  async boot(first: boolean): Promise<BootReport> {
    const t0 = Date.now();
    const files = prepareHostFiles(this.lab, this.plan, this.hostPrivateKey);
    this.files = files;
    const logs = {
      holder: join(files.logDir, "holder.log"),
      dockerd: join(files.logDir, "dockerd.log"),
      sshd: join(files.logDir, "sshd.log"),
    };
    const fds = { holder: openSync(logs.holder, "a"), dockerd: openSync(logs.dockerd, "a"), sshd: openSync(logs.sshd, "a") };
    try {
      await applyHostNetwork(this.plan);
      await applyHostFirewall(this.plan);
      const holder = await startHolder({
        netns: this.plan.netns,
        hostname: this.name,
        binds: files.binds,
        cgroupStash: files.cgroupStash,
        logFd: fds.holder,
      });
      this.holder = holder;
      const dSetup = {
        holderPid: holder,
        ...(this.plan.dockerIp6tables ? { ip6tables: true } : {}),
        host: this.name,
        dataRoot: files.dataRoot,
        cgroupParent: this.plan.cgroupParent,
        logFd: fds.dockerd,
        logPath: logs.dockerd,
      };
      const sSetup = { holderPid: holder, host: this.name, config: files.sshdConfig, logFd: fds.sshd, logPath: logs.sshd };
      this.dockerd = await startDockerd(dSetup);
      this.sshd = await startSshd(sSetup);
      await Promise.all([waitDockerd(this.dockerd, dSetup), waitSshd(this.sshd, sSetup)]);
    } finally {
      for (const fd of Object.values(fds)) closeSync(fd);
    }
    if (first) await this.execOk(importArgv(await this.imageTar), { timeoutMs: 120_000 });
    const report = await this.startEnabledUnits();
    report.ms = Date.now() - t0;
    return report;
  }

  /** wg-quick@X.service and dockmesh-dns-X.service symlinks in any *.wants directory of the host's /etc/systemd/system. */
  enabledWgQuickUnits(): string[] {
    const dir = this.files?.binds.find((b) => b.target === "/etc/systemd/system")?.source;
    if (!dir || !existsSync(dir)) return [];
    const units = new Set<string>();
    for (const wants of readdirSync(dir)
      .filter((d) => d.endsWith(".wants"))
      .sort()) {
      for (const entry of readdirSync(join(dir, wants)).sort()) {
        if (!/^(wg-quick@[^/]+|dockmesh-dns-[^/]+)\.service$/.test(entry)) continue;
        try {
          readlinkSync(join(dir, wants, entry));
          units.add(entry);
        } catch {
          // not a symlink: not an enablement
        }
      }
    }
    return [...units];
  }

  private async startEnabledUnits(): Promise<BootReport> {
    const report: BootReport = { unitsStarted: [], unitsFailed: [], ms: 0 };
    // wg-quick@ units first, then dockmesh-dns- ones (After=wg-quick@…), as systemd would order them.
    const units = this.enabledWgQuickUnits().sort((a, b) => Number(a.startsWith("dockmesh-dns-")) - Number(b.startsWith("dockmesh-dns-")));
    for (const unit of units) {
      // What the unit's ExecStart runs; without systemd to keep it in the foreground, dnsmasq daemonises.
      const argv = unit.startsWith("wg-quick@")
        ? ["wg-quick", "up", unit.slice("wg-quick@".length, -".service".length)]
        : ["/usr/sbin/dnsmasq", `--conf-file=/etc/dockmesh/dns/${unit.slice("dockmesh-dns-".length, -".service".length)}/dnsmasq.conf`];
      const r = await this.exec(argv, { timeoutMs: 60_000 });
      if (r.code === 0) report.unitsStarted.push(unit);
      else {
        const error = describeFailure(argv, r);
        report.unitsFailed.push({ unit, error });
        this.log(`${this.name}: ${unit} failed at boot: ${error}`);
      }
    }
    return report;
  }

  /**
   * Stops the host. "graceful" (a reboot): dockerd first, which stops the containers (each
   * gets its stop timeout, 10 s by default, to exit after SIGTERM), then every other process
   * in the host's network namespace (sshd and its sessions, containerd, wireguard-go, the
   * holder, whose exit drops the private mounts and /run), then anything left in the
   * containers' cgroup. "hard" (power loss; destroy): SIGKILL for all of them at once.
   */
  async shutdown(mode: "graceful" | "hard" = "graceful"): Promise<void> {
    if (mode === "graceful" && this.dockerd !== undefined) await stopPids([this.dockerd], 30_000);
    await stopPids(pidsInNetns(this.plan.netns), mode === "graceful" ? 3000 : 0);
    await sweepCgroup(this.plan.cgroupParent);
    this.holder = this.dockerd = this.sshd = undefined;
  }

  /** Stop everything, lose what a reboot loses, boot again and bring up enabled units. */
  async reboot(mode: "graceful" | "hard" = "graceful"): Promise<BootReport> {
    await this.shutdown(mode);
    await resetHostNetwork(this.plan);
    return this.boot(false);
  }
}
