// Looking at lab hosts from outside (not over SSH, so looking changes nothing the checks count):
// what dockmesh could have changed on a host, the dockmesh rules on it, and the SSH logins its
// sshd accepted.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Lab } from "./lab.js";

/** Everything a converge or teardown touches on a host, as text: equal text, nothing changed. */
export async function hostState(lab: Lab, hosts: readonly string[]): Promise<Map<string, string>> {
  const script = [
    "iptables -S; iptables -t nat -S; iptables -t raw -S",
    "ip -o link show | sed 's/^[0-9]*: //'",
    "ip route show table main",
    "docker network ls --format '{{.Name}} {{.ID}}'",
    "ls -la --time-style=+%s /etc/wireguard",
    "find /etc/systemd/system | sort",
  ].join("; echo ---; ");
  const out = await Promise.all(hosts.map((h) => lab.execOk(h, ["sh", "-c", script])));
  return new Map(hosts.map((h, i) => [h, out[i]!]));
}

/** SSH logins accepted by a lab host's sshd so far (its log lives in the lab's state directory). */
export function sshLogins(lab: Lab, host: string): number {
  try {
    return (readFileSync(join(lab.stateDir, "hosts", host, "logs", "sshd.log"), "utf8").match(/Accepted publickey/g) ?? []).length;
  } catch {
    return 0;
  }
}

/** The host's iptables rules tagged with a dockmesh comment for `iface`, in every table we use. */
export async function dockmeshRules(lab: Lab, host: string, iface: string): Promise<string[]> {
  const out = await lab.execOk(host, ["sh", "-c", "iptables -S; iptables -t nat -S; iptables -t raw -S"]);
  return out.split("\n").filter((l) => l.includes(`dockmesh:${iface}`));
}

/**
 * Everything dockmesh could have left on a host for one mesh, as the host shows it: the link,
 * rules tagged dockmesh:<iface> in every table, routes through it or into the pool, the Docker
 * network, the wg-quick config, the unit drop-in and its enablement. Empty: nothing is left.
 */
export async function meshLeftovers(lab: Lab, host: string, mesh: { iface: string; cidr: string; dockerNetwork: string }): Promise<string[]> {
  const { iface, cidr, dockerNetwork } = mesh;
  const found: string[] = [];
  if ((await lab.exec(host, ["ip", "link", "show", "dev", iface])).code === 0) found.push(`link ${iface}`);
  for (const table of ["filter", "nat", "raw", "mangle"]) {
    const rules = await lab.execOk(host, ["iptables", "-w", "-t", table, "-S"]);
    for (const l of rules.split("\n")) if (l.includes(`dockmesh:${iface}`)) found.push(`${table}: ${l}`);
  }
  const prefix = cidr.split(".").slice(0, 2).join(".") + ".";
  for (const l of (await lab.execOk(host, ["ip", "route", "show"])).split("\n")) if (l.includes(`dev ${iface}`) || l.startsWith(prefix)) found.push(`route ${l}`);
  const networks = (await lab.execOk(host, ["docker", "network", "ls", "--format", "{{.Name}}"])).split("\n");
  if (networks.includes(dockerNetwork)) found.push(`docker network ${dockerNetwork}`);
  const files = await lab.exec(host, ["sh", "-c", `ls -d /etc/wireguard/${iface}.conf /etc/systemd/system/wg-quick@${iface}.service.d /etc/systemd/system/*/wg-quick@${iface}.service 2>/dev/null`]);
  for (const f of files.stdout.split("\n").filter(Boolean)) found.push(`file ${f}`);
  return found;
}
