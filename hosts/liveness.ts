// The Ready check: between full resyncs, a Ready Machine's host is looked at with one light
// command (no Docker, no iptables): are its WireGuard interfaces there and up, and when did each
// peer last handshake. Idle peers are probed first, as the observe does, so an idle link still
// handshakes. What it prints is checked like every host output (anchored, bounded). The peers come
// from the observe's own `wg show all dump` (handshakes and byte counters, for the per-peer metrics).
import { HostError } from "./errors.js";
import { hostText } from "./host-text.js";
import { isLinkName } from "./observe-values.js";
import { parseWgDump, probeInput, type Probe, type WgInterfaceState } from "./observe.js";
import { LIVENESS_SH } from "./scripts.generated.js";
import { OutputTooLargeError, type HostSession } from "./ssh.js";

/** hosts/scripts/liveness.sh as sent. Arguments: the interfaces; stdin: the probes (probeInput). */
export const LIVENESS_SCRIPT = LIVENESS_SH;

/** A thousand peers print ~200 KiB (a `wg show all dump` line each); a host that prints far more is refused, as for the observe. */
export const LIVENESS_LIMITS = { maxStdoutBytes: 4 * 1024 * 1024, maxStderrBytes: 64 * 1024 } as const;

export interface Liveness {
  /** Interfaces `wg` lists, with each peer's latest handshake (seconds since the epoch, 0: none) and bytes received and sent. */
  wg: Map<string, Pick<WgInterfaceState, "peers">>;
  /** Interfaces asked about that exist, and whether they are up. */
  links: Map<string, boolean>;
}

export function parseLiveness(stdout: string): Liveness {
  const links = new Map<string, boolean>();
  const dump: string[] = [];
  let section = "";
  for (const line of stdout.split("\n")) {
    if (line.startsWith("@@")) {
      section = line;
      continue;
    }
    if (section === "@@wg") {
      dump.push(line);
    } else if (section === "@@links") {
      // "5: dm0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 …"
      const m = /^\d+: ([^:@ ]{1,15})(?:@[^:]*)?: <([A-Z0-9_,-]*)>/.exec(line);
      if (m && isLinkName(m[1])) links.set(m[1], m[2]!.split(",").includes("UP"));
    }
  }
  if (section !== "@@end") throw new Error("the answer ended early");
  return { wg: parseWgDump(dump), links };
}

/** One round trip: probes idle peers, then reads handshakes and the interfaces' state. */
export async function checkLiveness(session: HostSession, ifaces: readonly string[], probes: readonly Probe[]): Promise<Liveness> {
  const input = probeInput(probes);
  const res = await session.exec(LIVENESS_SCRIPT, { args: ifaces, input, timeoutMs: 30_000, ...LIVENESS_LIMITS }).catch((err: unknown) => {
    throw err instanceof OutputTooLargeError ? err.as("ObserveFailed", "checking the host") : err;
  });
  if (res.code !== 0) throw new HostError("ObserveFailed", `checking the host failed (exit ${res.code}): ${hostText(res.stderr.trim())}`);
  try {
    return parseLiveness(res.stdout);
  } catch (err) {
    throw new HostError("ObserveFailed", `checking the host failed: ${hostText((err as Error).message)}`, { cause: err });
  }
}
