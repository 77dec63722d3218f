// What the demo keeps in its directory besides the manifests: its keys (so a second `lab:up`
// builds hosts with the same host keys and the same client key, and the manifests applied
// before stay valid), and an ssh_config with a known_hosts file, so `ssh -F DIR/ssh_config m1 CMD`
// works from a script, without a terminal to answer ssh's host key question.
import { existsSync, readFileSync } from "node:fs";
import { writePrivateFile } from "../store/state-dir.js";
import { join } from "node:path";
import { generateEd25519, keyWithoutComment, type KeyPair } from "./keys.js";
import type { LabHost } from "./lab-host.js";

export const KEYS_FILE = "keys.json";

interface KeysFile {
  client: KeyPair;
  hosts: Record<string, KeyPair>;
}

const isPair = (x: unknown): x is KeyPair =>
  typeof x === "object" &&
  x !== null &&
  typeof (x as KeyPair).privateKey === "string" &&
  typeof (x as KeyPair).publicKey === "string" &&
  (x as KeyPair).privateKey.startsWith("-----BEGIN OPENSSH PRIVATE KEY-----");

/** The demo's keys from DIR/keys.json (mode 0600), made and saved for hosts that have none yet. */
export function demoKeys(dir: string, prefix: string, hostNames: readonly string[]): { client: KeyPair; hosts: Map<string, KeyPair> } {
  const path = join(dir, KEYS_FILE);
  let saved: Partial<KeysFile> = {};
  if (existsSync(path)) {
    try {
      saved = JSON.parse(readFileSync(path, "utf8")) as Partial<KeysFile>;
    } catch (err) {
      throw new Error(`${path} is not the demo's keys file; remove it to make new keys (then re-apply the manifests)`, { cause: err });
    }
  }
  const client = isPair(saved.client) ? saved.client : generateEd25519(`dockmesh-lab-${prefix}`);
  const hosts = new Map<string, KeyPair>();
  for (const n of hostNames) {
    const k = saved.hosts?.[n];
    hosts.set(n, isPair(k) ? k : generateEd25519(`${prefix}-${n}`));
  }
  const out: KeysFile = { client, hosts: Object.fromEntries(hosts) };
  // Private keys: 0600 whatever the file was, never through a link (as the store's own secrets).
  writePrivateFile(path, `${JSON.stringify(out, null, 2)}\n`);
  return { client, hosts };
}

const hostPattern = (host: string, port: number) => (port === 22 ? host : `[${host}]:${port}`);

/** known_hosts lines for every host (and bastion) the lab reports. */
export function knownHosts(hosts: readonly LabHost[]): string {
  const lines = new Set<string>();
  for (const h of hosts) {
    lines.add(`${hostPattern(h.sshHost, h.sshPort)} ${keyWithoutComment(h.hostKey)}`);
    if (h.bastion) lines.add(`${hostPattern(h.bastion.host, h.bastion.port)} ${keyWithoutComment(h.bastion.hostKey)}`);
  }
  return [...lines].join("\n") + "\n";
}

/** An ssh_config naming each host: `ssh -F DIR/ssh_config m1 docker ps` needs no terminal. */
export function sshConfig(dir: string, hosts: readonly LabHost[]): string {
  // Paths are quoted values of ssh_config lines: a quote or a line break would end them.
  if (/["\r\n]/.test(dir)) throw new Error(`the lab directory ${JSON.stringify(dir)} has a quote or a line break, which an ssh_config cannot hold; use another --dir`);
  const blocks = hosts.map((h) =>
    [`Host ${h.name}`, `  HostName ${h.sshHost}`, `  Port ${h.sshPort}`, `  User ${h.sshUser}`, ...(h.bastion ? [`  ProxyJump ${h.bastion.user}@${h.bastion.host}:${h.bastion.port}`] : [])].join("\n"),
  );
  const common = [
    "Host *",
    `  IdentityFile "${join(dir, "id_ed25519")}"`,
    "  IdentitiesOnly yes",
    `  UserKnownHostsFile "${join(dir, "known_hosts")}"`,
    "  StrictHostKeyChecking yes",
    "  BatchMode yes",
    "  LogLevel ERROR",
  ].join("\n");
  return `# Written by lab:up: ssh -F ${join(dir, "ssh_config")} <host> <command>\n${[...blocks, common].join("\n\n")}\n`;
}
