// The Ready check: between full resyncs, a Ready Machine's host is looked at with one light
// command (no Docker, no iptables): are its WireGuard interfaces there and up, and when did each
// peer last handshake. Idle peers are probed first, as the observe does, so an idle link still
// handshakes. What it prints is checked like every host output (anchored, bounded). It also
// reads each peer's byte counters (`wg show all transfer`) for the per-peer metrics.
import { HostError } from "./errors.js";
import { hostText } from "./host-text.js";
import { counter, isLinkName, isWgKey } from "./observe-values.js";
import { PROBE_IDLE_PEERS, probeInput, type Probe, type WgInterfaceState } from "./observe.js";
import type { HostSession } from "./ssh.js";

export const LIVENESS_SCRIPT = String.raw`
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
${PROBE_IDLE_PEERS}
echo "@@handshakes"
wg show all latest-handshakes 2>/dev/null
echo "@@transfer"
wg show all transfer 2>/dev/null
echo "@@links"
for i in "$@"; do ip -o link show dev "$i" 2>/dev/null; done
echo "@@end"
`;

/** A thousand peers print ~170 KiB (handshakes and byte counters); a host that prints far more is refused, as for the observe. */
export const LIVENESS_LIMITS = { maxStdoutBytes: 4 * 1024 * 1024, maxStderrBytes: 64 * 1024 } as const;

export interface Liveness {
  /** Interfaces `wg` lists, with each peer's latest handshake (seconds since the epoch, 0: none) and bytes received and sent. */
  wg: Map<string, Pick<WgInterfaceState, "peers">>;
  /** Interfaces asked about that exist, and whether they are up. */
  links: Map<string, boolean>;
}

export function parseLiveness(stdout: string): Liveness {
  const out: Liveness = { wg: new Map(), links: new Map() };
  let section = "";
  const byKey = new Map<string, WgInterfaceState["peers"][number]>();
  for (const line of stdout.split("\n")) {
    if (line.startsWith("@@")) {
      section = line;
      continue;
    }
    if (section === "@@handshakes") {
      const [iface, key, t] = line.split("\t");
      if (!isLinkName(iface) || !isWgKey(key)) continue;
      let w = out.wg.get(iface);
      if (!w) out.wg.set(iface, (w = { peers: [] }));
      const p = { publicKey: key, allowedIPs: [], latestHandshake: counter(t) ?? 0, rxBytes: 0, txBytes: 0 };
      w.peers.push(p);
      byKey.set(`${iface}\t${key}`, p);
    } else if (section === "@@transfer") {
      // "dm0\t<key>\t<rx>\t<tx>": only for a peer the handshake lines named.
      const [iface, key, rx, tx] = line.split("\t");
      const p = byKey.get(`${iface}\t${key}`);
      if (p) {
        p.rxBytes = counter(rx) ?? 0;
        p.txBytes = counter(tx) ?? 0;
      }
    } else if (section === "@@links") {
      // "5: dm0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 …"
      const m = /^\d+: ([^:@ ]{1,15})(?:@[^:]*)?: <([A-Z0-9_,-]*)>/.exec(line);
      if (m && isLinkName(m[1])) out.links.set(m[1], m[2]!.split(",").includes("UP"));
    }
  }
  if (section !== "@@end") throw new Error("the answer ended early");
  return out;
}

/** One round trip: probes idle peers, then reads handshakes and the interfaces' state. */
export async function checkLiveness(session: HostSession, ifaces: readonly string[], probes: readonly Probe[]): Promise<Liveness> {
  const input = probeInput(probes);
  const res = await session.exec(LIVENESS_SCRIPT, { args: ifaces, input, timeoutMs: 30_000, ...LIVENESS_LIMITS });
  if (res.code !== 0) throw new HostError("ObserveFailed", `checking the host failed (exit ${res.code}): ${hostText(res.stderr.trim())}`);
  try {
    return parseLiveness(res.stdout);
  } catch (err) {
    throw new HostError("ObserveFailed", `checking the host failed: ${hostText((err as Error).message)}`, { cause: err });
  }
}
