// The manual procedure dockmesh automates (WireGuard and a Docker network per host, by hand), scripted the
// way a person follows it: logged in to every machine over SSH, one command per step,
// step by step across the machines, copying keys from one terminal to the others.
// It proves the lab works, and is the "manual procedure" baseline of the benchmarks.
import type { Lab, LabHost } from "./lab.js";
import { describeFailure, type RunResult } from "./proc.js";
import type { SshSession } from "./ssh.js";

export interface ManualMember {
  host: LabHost;
  /** The machine's Docker subnet, unique in the mesh (e.g. 10.200.1.0/24). */
  subnet: string;
}

export interface ManualOptions {
  /** Docker network name (default "multi-host", as in the article). */
  network?: string;
  /** WireGuard interface (default "wg0"). */
  iface?: string;
  listenPort?: number;
  /** MTU of the Docker network; wg-quick gives the tunnel 1500 - 80 = 1420 (default 1420). */
  mtu?: number;
  persistentKeepalive?: number;
  /** Step 5 of the article: PostUp/PostDown, systemd drop-in, `systemctl enable` (default true). */
  persist?: boolean;
  /** Called after each step, for progress output. */
  onStep?: (s: ManualStep) => void;
}

export interface ManualStep {
  host: string;
  /** Article step, e.g. "1 docker network", "2 wg genkey". */
  step: string;
  command: string;
  ms: number;
}

export interface ManualReport {
  steps: ManualStep[];
  totalMs: number;
  /** WireGuard public key of every member. */
  publicKeys: Record<string, string>;
  /** Pairs left out because both are behind NAT (the article's "requires a relay server"). */
  skippedPairs: string[];
  /** The fixed bridge name of the Docker network on every host. */
  bridge: string;
}

interface Ctx {
  session: SshSession;
  member: ManualMember;
}

function wgConfig(
  self: ManualMember,
  privateKey: string,
  peers: { m: ManualMember; publicKey: string }[],
  o: Required<Omit<ManualOptions, "onStep">>,
  bridge: string,
  withPersistence: boolean,
): string {
  const lines = ["[Interface]", `ListenPort = ${o.listenPort}`, `PrivateKey = ${privateKey}`];
  if (withPersistence) {
    lines.push(
      `PostUp = iptables -I DOCKER-USER -i %i -o ${bridge} -j ACCEPT; iptables -t nat -I POSTROUTING -s ${self.subnet} -o %i -j RETURN`,
      `PostDown = iptables -D DOCKER-USER -i %i -o ${bridge} -j ACCEPT; iptables -t nat -D POSTROUTING -s ${self.subnet} -o %i -j RETURN`,
    );
  }
  for (const p of peers) {
    lines.push("", "[Peer]", `PublicKey = ${p.publicKey}`, `# Docker subnet on ${p.m.host.name}`, `AllowedIPs = ${p.m.subnet}`);
    if (p.m.host.publicEndpoint) lines.push(`Endpoint = ${p.m.host.publicEndpoint}:${o.listenPort}`);
    if (self.host.nat || p.m.host.nat) lines.push(`PersistentKeepalive = ${o.persistentKeepalive}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Runs the article's steps 1-3 and 5 on the members (step 4, testing, is the caller's) and
 * returns what was done. NAT<->NAT pairs are left out, as the article says they need a relay.
 */
export async function runManualProcedure(lab: Lab, members: readonly ManualMember[], opts: ManualOptions = {}): Promise<ManualReport> {
  const o = {
    network: opts.network ?? "multi-host",
    iface: opts.iface ?? "wg0",
    listenPort: opts.listenPort ?? 51820,
    mtu: opts.mtu ?? 1420,
    persistentKeepalive: opts.persistentKeepalive ?? 25,
    persist: opts.persist ?? true,
  };
  const bridge = `br-${o.network}`.slice(0, 15);
  const t0 = Date.now();
  const steps: ManualStep[] = [];
  const sessions: Ctx[] = [];
  const report: ManualReport = { steps, totalMs: 0, publicKeys: {}, skippedPairs: [], bridge };

  const step = async (c: Ctx, name: string, argv: readonly string[], input?: string): Promise<RunResult> => {
    const full = c.session.asRoot(argv);
    const s0 = Date.now();
    const r = await c.session.run(full, input === undefined ? {} : { input });
    if (r.code !== 0) throw new Error(`manual procedure, step "${name}" on ${c.member.host.name}: ${describeFailure(full, r)}`);
    const s: ManualStep = { host: c.member.host.name, step: name, command: full.join(" "), ms: Date.now() - s0 };
    steps.push(s);
    opts.onStep?.(s);
    return r;
  };
  const writeFile = (c: Ctx, name: string, path: string, content: string): Promise<RunResult> =>
    // The person's editor: the file arrives on stdin, created 0600 (umask 077 as in the article).
    step(c, name, ["sh", "-c", 'umask 077 && cat > "$1"', "sh", path], content);

  try {
    for (const m of members) sessions.push({ session: await lab.ssh(m.host), member: m });

    // Step 1: a Docker network with a unique subnet, wg0 trusted, fixed bridge name and MTU.
    for (const c of sessions) {
      await step(c, "1 docker network create", [
        "docker",
        "network",
        "create",
        "--subnet",
        c.member.subnet,
        "-o",
        `com.docker.network.bridge.trusted_host_interfaces=${o.iface}`,
        "-o",
        `com.docker.network.bridge.name=${bridge}`,
        "-o",
        `com.docker.network.driver.mtu=${o.mtu}`,
        o.network,
      ]);
    }
    // Step 2: open the WireGuard port, generate keys, write wg0.conf, bring the tunnel up.
    const keys = new Map<string, { priv: string; pub: string }>();
    for (const c of sessions) {
      await step(c, "2 open WireGuard port", ["iptables", "-I", "INPUT", "-p", "udp", "--dport", String(o.listenPort), "-j", "ACCEPT"]);
      const priv = (await step(c, "2 wg genkey", ["wg", "genkey"])).stdout.trim();
      const pub = (await step(c, "2 wg pubkey", ["wg", "pubkey"], `${priv}\n`)).stdout.trim();
      keys.set(c.member.host.name, { priv, pub });
      report.publicKeys[c.member.host.name] = pub;
    }
    const peersOf = (c: Ctx): { m: ManualMember; publicKey: string }[] =>
      members
        .filter((m) => m !== c.member)
        .filter((m) => {
          const bothNat = m.host.nat && c.member.host.nat;
          const pair = [m.host.name, c.member.host.name].sort().join("<->");
          if (bothNat && !report.skippedPairs.includes(pair)) report.skippedPairs.push(pair);
          return !bothNat;
        })
        .map((m) => ({ m, publicKey: keys.get(m.host.name)?.pub ?? "" }));
    const confPath = `/etc/wireguard/${o.iface}.conf`;
    for (const c of sessions) {
      const k = keys.get(c.member.host.name);
      if (!k) throw new Error(`no keys for ${c.member.host.name}`);
      await writeFile(c, `2 write ${confPath}`, confPath, wgConfig(c.member, k.priv, peersOf(c), o, bridge, false));
    }
    for (const c of sessions) await step(c, "2 wg-quick up", ["wg-quick", "up", o.iface]);
    for (const c of sessions) await step(c, "2 wg show", ["wg", "show", o.iface]);
    // Step 3: let the tunnel into the bridge, and keep Docker's MASQUERADE off tunnel traffic.
    for (const c of sessions) {
      await step(c, "3 DOCKER-USER accept", ["iptables", "-I", "DOCKER-USER", "-i", o.iface, "-o", bridge, "-j", "ACCEPT"]);
      await step(c, "3 nat RETURN", ["iptables", "-t", "nat", "-I", "POSTROUTING", "-s", c.member.subnet, "-o", o.iface, "-j", "RETURN"]);
    }
    // Step 5: persistence: PostUp/PostDown in wg0.conf, the drop-in ordering it after Docker, enable.
    if (o.persist) {
      for (const c of sessions) {
        const k = keys.get(c.member.host.name);
        if (!k) throw new Error(`no keys for ${c.member.host.name}`);
        await writeFile(c, "5 add PostUp/PostDown", confPath, wgConfig(c.member, k.priv, peersOf(c), o, bridge, true));
        const dropIn = `/etc/systemd/system/wg-quick@${o.iface}.service.d`;
        await step(c, "5 mkdir drop-in", ["mkdir", "-p", dropIn]);
        await writeFile(c, "5 write drop-in", `${dropIn}/docker-dependency.conf`, "[Unit]\nAfter=docker.service\nRequires=docker.service\n");
        await step(c, "5 systemctl enable", ["systemctl", "enable", `wg-quick@${o.iface}.service`]);
        // `systemctl daemon-reload` needs a running systemd; lab hosts have none (as `is-enabled` shows).
        await step(c, "5 systemctl is-enabled", ["systemctl", "is-enabled", `wg-quick@${o.iface}.service`]);
      }
    }
  } finally {
    for (const c of sessions) c.session.close();
  }
  report.totalMs = Date.now() - t0;
  return report;
}
