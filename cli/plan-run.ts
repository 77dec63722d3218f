// The work of `dockmesh plan -f FILES` (imported lazily by cli/plan.ts): what would be configured
// on each host, without touching any.
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { planAll } from "../mesh/plan.js";
import { renderHostPlan } from "../mesh/render.js";
import { DEFAULT_SSH_PORT, DEFAULT_SSH_USER } from "../mesh/defaults.js";
import { describeManifest, readManifests, ManifestError, type Manifest } from "./manifests.js";
import { checkManifest } from "./validate.js";
import { DEFAULT_PLAN_FACTS, readHostFacts } from "./host-facts.js";
import type { HostFacts } from "../mesh/plan.js";
import type { PlanFlags } from "./plan.js";

export interface PlanOutput {
  text: string;
  errors: string[];
}

/**
 * Plans manifests into the text `dockmesh plan` prints; errors name file, object and field.
 * `facts`: per Machine ("namespace/name"), as --host-facts gives them; others get DEFAULT_PLAN_FACTS.
 */
export function planManifests(manifests: readonly Manifest[], facts: ReadonlyMap<string, HostFacts> = new Map(), factsFile?: string): PlanOutput {
  const errors: string[] = [];
  const meshes: MeshNetwork[] = [];
  const machines: Machine[] = [];
  const origin = new Map<string, Manifest>();
  for (const m of manifests) {
    const problems = checkManifest(m.object);
    if (problems === "ignore") continue;
    if (problems.length) {
      errors.push(...problems.map((p) => `${describeManifest(m)}: ${p.field}: ${p.message}`));
      continue;
    }
    const obj = m.object as unknown as Machine | MeshNetwork;
    const ns = obj.metadata.namespace ?? "default";
    obj.metadata.namespace = ns;
    const key = `${obj.kind}/${ns}/${obj.metadata.name}`;
    const first = origin.get(key);
    if (first) {
      errors.push(`${describeManifest(m)}: metadata.name: declared twice (also in ${first.file}); rename one`);
      continue;
    }
    origin.set(key, m);
    if (obj.kind === "Machine") machines.push(obj);
    else meshes.push(obj);
  }
  const known = new Set(machines.map((m) => `${m.metadata.namespace}/${m.metadata.name}`));
  for (const k of facts.keys()) if (!known.has(k)) errors.push(`${factsFile ?? "host facts"}: ${k}: no such Machine in the manifests`);
  if (errors.length) return { text: "", errors };

  const hostFacts = new Map([...known].map((k) => [k, facts.get(k) ?? DEFAULT_PLAN_FACTS]));
  const plan = planAll(meshes, machines, new Map(), hostFacts);
  for (const e of plan.errors) {
    const m = origin.get(`${e.kind}/${e.namespace}/${e.name}`);
    errors.push(`${m ? m.file + ": " : ""}${e.kind} ${e.namespace}/${e.name}: ${e.field}: ${e.message}`);
  }
  const sections = plan.meshes.map((p) => {
    const pool6 = p.mesh.cidrV6 !== undefined ? `, IPv6 pool ${p.mesh.cidrV6}, /${p.mesh.subnetPrefixLengthV6} per machine` : "";
    const lines = [`MeshNetwork ${p.mesh.namespace}/${p.mesh.name}: pool ${p.mesh.cidr}, /${p.mesh.subnetPrefixLength} per machine${pool6}, ${p.members.length} member(s)`];
    if (p.refused) lines.push(`  REFUSED (${p.refused.field}, see the errors): nothing allocated, configured on no machine`);
    for (const a of p.allocations) lines.push(`  ${a.machine}: ${a.subnet}${a.subnetV6 !== undefined ? ` ${a.subnetV6}` : ""}`);
    for (const r of p.relays) lines.push(`  ${r.machines[0]} <-> ${r.machines[1]}: both behind NAT, relayed via ${r.via}`);
    for (const u of p.unreachablePairs) lines.push(`  ${u}: UNREACHABLE (both behind NAT, no member with an endpoint)`);
    return lines.join("\n") + "\n";
  });
  const byName = new Map(machines.map((m) => [`${m.metadata.namespace}/${m.metadata.name}`, m]));
  for (const h of plan.hosts) {
    const m = byName.get(`${h.namespace}/${h.machine}`)!;
    const ssh = `ssh ${m.spec.ssh.user ?? DEFAULT_SSH_USER}@${m.spec.ssh.host}:${m.spec.ssh.port ?? DEFAULT_SSH_PORT}${m.spec.ssh.bastion ? ` via ${m.spec.ssh.bastion.host}` : ""}`;
    sections.push(renderHostPlan(h, ssh, facts.has(`${h.namespace}/${h.machine}`) ? `from ${factsFile ?? "--host-facts"}` : "assumed; set with --host-facts FILE"));
  }
  return { text: sections.join("\n"), errors: [...new Set(errors)] };
}

/** `dockmesh plan`: prints the plan, the errors first on stderr (exit code 1 if any). */
export function runPlan(opts: PlanFlags): void {
  let out: PlanOutput;
  try {
    out = planManifests(readManifests(opts.filename), opts.hostFacts ? readHostFacts(opts.hostFacts) : new Map(), opts.hostFacts);
  } catch (err) {
    if (err instanceof ManifestError) out = { text: "", errors: [err.message] };
    else throw err;
  }
  // Errors first: what is refused matters more than what would be configured.
  for (const e of out.errors) process.stderr.write(`error: ${e}\n`);
  process.stdout.write(out.text);
  if (out.errors.length) process.exitCode = 1;
}
