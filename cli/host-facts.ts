// What `dockmesh plan` assumes about each host, where the controller observes it: the uplink's
// MTU (for mtu: auto), whether INPUT drops (then the WireGuard port is opened), whether the raw
// table is there (Docker 28+ drops tunnel traffic there unless let past), whether systemd runs it.
// Defaults are a typical current host; --host-facts FILE sets them per Machine.
import { readFileSync } from "node:fs";
import { parse } from "../vendor/yaml.js";
import type { HostFacts } from "../mesh/plan.js";
import { DEFAULT_UPLINK_MTU } from "../mesh/defaults.js";
import { ManifestError } from "./manifests.js";

/**
 * A typical host today: Ethernet MTU, Docker 28+ (raw table), no INPUT firewall, systemd with
 * systemd-resolved as the resolver (Ubuntu's default) and dnsmasq installed.
 */
export const DEFAULT_PLAN_FACTS: Readonly<PlanFacts> = {
  uplinkMtu: DEFAULT_UPLINK_MTU,
  rawTable: true,
  inputDrops: false,
  systemd: true,
  resolver: { dnsmasq: true, resolvedStub: true, systemdVersion: 255 },
};

/** The facts a manifest plan assumes (a host's Docker networks are only known by observing it). */
type PlanFacts = Required<Omit<HostFacts, "dockerNetworks" | "rawTableV6" | "dockerUserV6" | "ipv6Forwarding" | "inputDropsV6">>;

const EXAMPLE = "h1: {uplinkMtu: 1500, rawTable: true, inputDrops: false, systemd: true}";

/**
 * Reads a --host-facts file: a YAML mapping from Machine ("name" in namespace default, or
 * "namespace/name") to its facts; a fact left out keeps its default. Keys are "namespace/name".
 */
export function readHostFacts(file: string): Map<string, PlanFacts> {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw new ManifestError(`${file}: cannot read host facts: ${(cause as Error).message.split("\n")[0]}`, { cause });
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new ManifestError(`${file}: host facts must be a mapping from Machine name to facts, e.g. ${EXAMPLE}`);
  const out = new Map<string, PlanFacts>();
  for (const [machine, value] of Object.entries(doc as Record<string, unknown>)) {
    const key = machine.includes("/") ? machine : `default/${machine}`;
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw new ManifestError(`${file}: ${machine}: facts must be a mapping, e.g. ${EXAMPLE}`);
    const facts: PlanFacts = { ...DEFAULT_PLAN_FACTS };
    for (const [field, v] of Object.entries(value as Record<string, unknown>)) {
      if (field === "uplinkMtu") {
        if (typeof v !== "number" || !Number.isInteger(v) || v < 576 || v > 65535)
          throw new ManifestError(`${file}: ${machine}.uplinkMtu: ${JSON.stringify(v)} is not an MTU; give an integer from 576 to 65535`);
        facts.uplinkMtu = v;
      } else if (field === "rawTable" || field === "inputDrops" || field === "systemd") {
        if (typeof v !== "boolean") throw new ManifestError(`${file}: ${machine}.${field}: ${JSON.stringify(v)} is not true or false`);
        facts[field] = v;
      } else if (field === "resolvedStub") {
        // systemd-resolved is the host's resolver: the mesh DNS containers mode auto is resolved.
        if (typeof v !== "boolean") throw new ManifestError(`${file}: ${machine}.${field}: ${JSON.stringify(v)} is not true or false`);
        facts.resolver = { ...facts.resolver, resolvedStub: v };
      } else {
        throw new ManifestError(`${file}: ${machine}.${field}: unknown host fact; known: uplinkMtu, rawTable, inputDrops, systemd, resolvedStub`);
      }
    }
    // Without systemd there is no systemd-resolved.
    if (!facts.systemd) facts.resolver = { dnsmasq: facts.resolver.dnsmasq, resolvedStub: false };
    out.set(key, facts);
  }
  return out;
}
