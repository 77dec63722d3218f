// Decide, for the mesh DNS resolver of one interface: the plan (mesh/dns-plan.ts) against what the
// host shows → the steps that converge it, or that remove it when the mesh's DNS is off. Its
// firewall rules are planned rules of the mesh (mesh/plan.ts) and go with them. Pure.
import { createHash } from "node:crypto";
import { daemonReload, dnsClean, dnsDisable, dnsDown, dnsEnable, dnsUp, resolvedReload, writeDnsFile } from "../mesh/commands.js";
import { dnsPaths, type DnsPlan } from "../mesh/dns-plan.js";
import type { Step } from "./steps.js";
import type { HostObservation } from "./observe.js";

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** The steps that make the host's resolver for `iface` match `plan` (undefined: the mesh's DNS is off). */
export function dnsSteps(iface: string, plan: DnsPlan | undefined, obs: HostObservation): Step[] {
  if (!plan) return dnsRemovalSteps(iface, obs);
  // Without dnsmasq there is nothing to run: the DNSReady condition says what to install, and the
  // mesh itself is configured as usual.
  if (!obs.resolver.dnsmasq) return [];
  const f = obs.ifaces.get(iface);
  const files = f?.files ?? new Map<string, string | undefined>();
  const steps: Step[] = [];
  const confChanged = files.get(plan.conf.path) !== sha256(plan.conf.content);
  if (confChanged) steps.push(writeDnsFile(plan.conf.path, plan.conf.content));
  const unitChanged = files.get(plan.unit.path) !== sha256(plan.unit.content);
  if (unitChanged) steps.push(writeDnsFile(plan.unit.path, plan.unit.content));
  // Right after the unit (mesh/commands.ts reloadUnlessLater counts on nothing between them).
  if (unitChanged && obs.systemd) steps.push(daemonReload());
  const dropInPath = dnsPaths(iface).resolvedDropIn;
  if (plan.resolvedDropIn) {
    if (files.get(dropInPath) !== sha256(plan.resolvedDropIn.content)) steps.push(writeDnsFile(dropInPath, plan.resolvedDropIn.content), resolvedReload());
  } else if (f?.mine.has(dropInPath)) {
    steps.push({ op: "remove_file", args: [dropInPath], display: `rm ${dropInPath}` }, resolvedReload());
  }
  if (!f?.dnsEnabled) steps.push(dnsEnable(plan));
  if (!f?.dnsRunning || confChanged || unitChanged) steps.push(dnsUp(plan));
  return steps;
}

/**
 * Everything of the resolver for `iface` that the host shows as ours: the process started with
 * our config, our unit's enablement, the files starting with our "Managed by dockmesh" line.
 * `withFiles` false: the files are removed by the caller (the whole mesh's teardown).
 */
export function dnsRemovalSteps(iface: string, obs: HostObservation, withFiles = true): Step[] {
  const f = obs.ifaces.get(iface);
  if (!f) return [];
  const p = dnsPaths(iface);
  const mineDns = [p.conf, p.records, p.unitPath, p.resolvedDropIn].filter((x) => f.mine.has(x));
  if (!f.dnsRunning && mineDns.length === 0) return [];
  const steps: Step[] = [];
  if (f.dnsRunning) steps.push(dnsDown(iface));
  if (f.dnsEnabled && f.mine.has(p.unitPath)) steps.push(dnsDisable(iface));
  if (withFiles) for (const path of mineDns) steps.push({ op: "remove_file", args: [path], display: `rm ${path}` });
  if (f.mine.has(p.resolvedDropIn)) steps.push(resolvedReload());
  if (mineDns.length) steps.push(dnsClean(iface));
  return steps;
}
