// The guard of a first converge in one round trip (hosts/fresh.ts): before applying a plan made
// from guessed host facts, the script checks on the host that it has nothing of ours under those
// names and that the facts the plan depends on are the guessed ones. When anything differs it
// applies nothing ("@@fresh-skip <why>", exit 3), and the observe that follows in the same
// script gives the controller what it needs for an ordinary pass. Only an optimisation: the
// controller diffs the host after the script either way, so a guard that judged wrong costs
// another pass, never a wrong end state.
import { FRESH_GUARD_SH } from "./scripts.generated.js";

/** The line the guard prints when it applies nothing; the rest of the line says why (fresh-guard.sh spells it; test/unit/host-scripts checks). */
export const FRESH_SKIP = "@@fresh-skip";

/**
 * Shell functions for the apply script's prelude (hosts/scripts/fresh-guard.sh as sent): each
 * check mirrors what the controller derives from an observation (hosts/observe.ts hostFacts,
 * uplinkMtu; mesh/dns-plan.ts decideMode). fresh_guard's arguments: guardArgs.
 */
export const FRESH_PRELUDE = FRESH_GUARD_SH;

/** The facts a plan depends on, as the guard's arguments ("-": not checked). */
export interface GuardFacts {
  uplinkMtu?: number;
  rawTable: boolean;
  inputDrops: boolean;
  /** Whether dnsmasq must be installed, when a planned mesh has DNS. */
  dnsmasq?: boolean;
  /** Whether systemd-resolved must be the resolver, when a planned mesh has DNS. */
  resolved?: boolean;
  /**
   * ip6tables' raw table, when a planned mesh is dual-stack. Its DOCKER-USER chain is not checked:
   * the rules that depend on it come from PostUp lines that pick the chain on the host.
   */
  ipv6?: { rawTable: boolean };
}

const yn = (b: boolean | undefined): string => (b === undefined ? "-" : b ? "yes" : "no");

/** fresh_guard's arguments, in its order, then the interfaces. */
export function guardArgs(f: GuardFacts, ifaces: readonly string[]): string[] {
  return [f.uplinkMtu === undefined ? "-" : String(Math.trunc(f.uplinkMtu)), yn(f.rawTable), yn(f.inputDrops), yn(f.dnsmasq), yn(f.resolved), yn(f.ipv6?.rawTable), ...ifaces];
}
