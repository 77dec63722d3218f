// The floor of time-to-mesh: dockmesh's end state (Docker network, wg-quick config with its
// PostUp rules, routes, drop-in, enabled unit, the mesh DNS resolver) reached by the least work
// there is: keys made locally, the plan computed locally (dockmesh's own planner, so the end state
// is the same), then one SSH connection and one command per host, all hosts at once, each
// returning once its peers have handshaken (Ready, as dockmesh's Ready means it).
import type { Lab, LabHost } from "../lab/lab.js";
import type { Machine, MeshNetwork } from "../api/types.generated.js";
import { connect, type HostSession, type SshTarget } from "../hosts/ssh.js";
import { observeHost, hostFacts } from "../hosts/observe.js";
import { diffHost } from "../hosts/diff.js";
import { generateKeyPair, type KeyPair } from "../mesh/keys.js";
import { planAll, type HostFacts, type NetworkPlan } from "../mesh/plan.js";
import { dockerNetworkCreateArgv, renderWgConfig } from "../mesh/render.js";
import { shJoin } from "../mesh/shell.js";
import { MESH } from "./lab-setup.js";
import { gatewayOf } from "../mesh/ipv4.js";

function targetOf(lab: Lab, h: LabHost): SshTarget {
  return { host: h.sshHost, port: h.sshPort, user: h.sshUser, privateKey: lab.sshPrivateKey, keySource: "the lab's key", hostKeyPin: h.hostKey };
}

async function withSession<T>(lab: Lab, host: string, fn: (s: HostSession) => Promise<T>): Promise<T> {
  const s = await connect(targetOf(lab, lab.host(host)));
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}

/**
 * What a script written for these hosts knows in advance (not timed): uplink MTU, whether
 * INPUT drops, whether the raw table is there. One observation per host.
 */
export async function hostFactsOf(lab: Lab, hosts: readonly string[]): Promise<Map<string, HostFacts>> {
  const facts = await Promise.all(hosts.map((h) => withSession(lab, h, async (s) => hostFacts(await observeHost(s, { ifaces: [], nets: [] })))));
  return new Map(hosts.map((h, i) => [`default/${h}`, facts[i]!]));
}

function manifests(lab: Lab, hosts: readonly string[]): { mesh: MeshNetwork; machines: Machine[] } {
  const mesh: MeshNetwork = {
    apiVersion: "dockmesh.io/v1alpha1",
    kind: "MeshNetwork",
    metadata: { name: MESH.name, namespace: "default" },
    spec: { cidr: MESH.cidr, subnetPrefixLength: MESH.prefixLength, dockerNetwork: MESH.dockerNetwork, interface: MESH.iface },
  };
  const machines = hosts.map((name): Machine => {
    const h = lab.host(name);
    return {
      apiVersion: "dockmesh.io/v1alpha1",
      kind: "Machine",
      metadata: { name, namespace: "default" },
      spec: { ssh: { host: h.sshHost, privateKeySecretRef: { name: "lab-ssh" } }, endpoint: `${h.publicEndpoint}:${MESH.listenPort}` },
    };
  });
  return { mesh, machines };
}

/**
 * Ready as dockmesh's Ready means it: every peer has handshaken. One ping per peer through the
 * tunnel (from our bridge's address to the peer's) makes WireGuard handshake, as dockmesh's
 * probes do; then `wg show` is read every 100 ms until no peer has a handshake time of 0
 * (bounded: 60 s). Shared by the floor and the manual procedure's end.
 */
export function handshakeWaitScript(iface: string, source: string, peerAddresses: readonly string[]): string {
  return [
    `for a in ${peerAddresses.length ? shJoin(peerAddresses) : ""}; do ping -c 1 -W 1 -I ${shJoin([source])} "$a" </dev/null >/dev/null 2>&1 & done`,
    "n=0",
    `until wg show ${shJoin([iface])} latest-handshakes | awk '$2 == 0 { z = 1 } END { exit z }'; do`,
    '  n=$((n + 1)); [ "$n" -le 600 ] || { echo "not every peer handshook within 60 s" >&2; exit 1; }',
    "  sleep 0.1",
    "done",
  ].join("\n");
}

/** The one command a host gets: its files arrive on stdin (one base64 line each). */
function hostScript(net: NetworkPlan): string {
  // The same argv apply's ensure_network uses (mesh/commands.ts).
  const createArgs = dockerNetworkCreateArgv(net);
  const conf = net.wireguard.configPath;
  const dropIn = net.unit.dropInPath;
  const dir = (p: string) => p.slice(0, p.lastIndexOf("/"));
  const dns = net.dns;
  const lines = [
    "set -eu",
    "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "IFS= read -r conf; IFS= read -r dropin",
    `${shJoin(createArgs)} >/dev/null`,
    `mkdir -p -m 700 ${shJoin([dir(conf)])}; (umask 077; printf %s "$conf" | base64 -d > ${shJoin([conf])})`,
    `mkdir -p -m 755 ${shJoin([dir(dropIn)])}; printf %s "$dropin" | base64 -d > ${shJoin([dropIn])}`,
    `wg-quick up ${shJoin([net.wireguard.interface])} 2>&1`,
    `systemctl enable ${shJoin([net.unit.unit])} >/dev/null 2>&1`,
  ];
  if (dns) {
    // The mesh's DNS resolver, as dockmesh runs it where systemd does not (the lab): its config
    // and unit, the unit enabled, dnsmasq started with the config.
    const records = `${dir(dns.conf.path)}/records`;
    lines.push(
      "IFS= read -r dnsconf; IFS= read -r dnsunit",
      `mkdir -p -m 755 ${shJoin([records])}; chmod 755 ${shJoin(["/etc/dockmesh", dir(dir(dns.conf.path)), dir(dns.conf.path)])}`,
      `printf %s "$dnsconf" | base64 -d > ${shJoin([dns.conf.path])}; printf %s "$dnsunit" | base64 -d > ${shJoin([dns.unit.path])}`,
      `systemctl enable ${shJoin([dns.unit.name])} >/dev/null 2>&1`,
      `/usr/sbin/dnsmasq --conf-file=${shJoin([dns.conf.path])} 2>&1`,
    );
  }
  const peers = net.wireguard.peers.filter((p) => p.publicKey).map((p) => gatewayOf(p.allowedIPs[0]!));
  lines.push(handshakeWaitScript(net.wireguard.interface, gatewayOf(net.subnet), peers));
  return lines.join("\n");
}

export interface FloorRun {
  keys: Map<string, KeyPair>;
  plans: Map<string, NetworkPlan[]>;
  /** host → when its command returned (ms since the epoch). */
  doneAt: Map<string, number>;
}

/** Configures every host at once: keys and plan locally, one SSH connection and one command each. */
export async function runFloor(lab: Lab, hosts: readonly string[], facts: ReadonlyMap<string, HostFacts>): Promise<FloorRun> {
  const keys = new Map(hosts.map((h) => [h, generateKeyPair()]));
  const { mesh, machines } = manifests(lab, hosts);
  const planned = planAll([mesh], machines, new Map([...keys].map(([h, k]) => [h, k.publicKey])), facts);
  if (planned.errors.length) throw new Error(`floor: the plan has errors: ${planned.errors.map((e) => `${e.name} ${e.field}: ${e.message}`).join("; ")}`);
  const plans = new Map(planned.hosts.map((p) => [p.machine, p.networks]));
  const doneAt = new Map<string, number>();
  await Promise.all(
    hosts.map((h) =>
      withSession(lab, h, async (s) => {
        const net = plans.get(h)?.[0];
        if (!net) throw new Error(`floor: no plan for ${h}`);
        const files = [renderWgConfig(net, keys.get(h)!.privateKey), net.unit.dropInContent, ...(net.dns ? [net.dns.conf.content, net.dns.unit.content] : [])];
        const input = files.map((t) => Buffer.from(t).toString("base64") + "\n").join("");
        const r = await s.exec(hostScript(net), { input, timeoutMs: 90_000 });
        if (r.code !== 0) throw new Error(`floor: the script failed on ${h} (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-500)}`);
        doneAt.set(h, Date.now());
      }),
    ),
  );
  return { keys, plans, doneAt };
}

/** Untimed: what dockmesh would still change on each host after the floor (empty = same end state). */
export async function floorLeftovers(lab: Lab, hosts: readonly string[], run: FloorRun): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  await Promise.all(
    hosts.map((h) =>
      withSession(lab, h, async (s) => {
        const networks = run.plans.get(h) ?? [];
        const obs = await observeHost(s, { ifaces: networks.map((n) => n.wireguard.interface), nets: networks.map((n) => n.docker.name) });
        const key = run.keys.get(h)!;
        const d = diffHost({ networks, privateKey: key.privateKey, publicKey: key.publicKey, previous: [] }, obs);
        out.set(h, [...d.steps.map((x) => x.display), ...d.blockers.map((b) => `blocked: ${b.message}`)]);
      }),
    ),
  );
  return out;
}

/**
 * Waits on every host at once, over one SSH command each, until each has handshaken with every
 * other (handshakeWaitScript): the manual procedure's Ready. `subnets`: each host's Docker subnet.
 */
export async function waitForHandshakes(lab: Lab, hosts: readonly string[], subnets: ReadonlyMap<string, string>, iface: string): Promise<void> {
  await Promise.all(
    hosts.map((h) =>
      withSession(lab, h, async (s) => {
        const peers = hosts.filter((x) => x !== h).map((x) => gatewayOf(subnets.get(x)!));
        const r = await s.exec(
          ["set -eu", "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", handshakeWaitScript(iface, gatewayOf(subnets.get(h)!), peers)].join("\n"),
          { timeoutMs: 90_000 },
        );
        if (r.code !== 0) throw new Error(`handshakes on ${h} (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-500)}`);
      }),
    ),
  );
}
