// Security findings 1 and 2 (issue 11) on real lab hosts, against `dockmesh up` in the lab's
// controller namespace: whoever may patch machines/status must not reach a host's shell or files.
// - A newline in status.publicKey is refused by the API server (422 naming the field).
// - A well-formed key of the attacker's in h2's status.publicKey reaches no host: h1 keeps h2's
//   real key (from h2's key Secret) and the two keep handshaking.
// - A status entry for a mesh that no longer exists, naming docker0 or a WireGuard config that is
//   not dockmesh's, tears down nothing: docker0 and its route stay, the other config and its
//   enabled unit stay.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Machine } from "../../api/types.generated.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { MeshEnv, eventually, sleep, startMeshEnv, yamlDoc } from "../../lab/mesh-env.js";

const PREFIX = "dmsecm";
const LABNET = "198.18.51.0/24";
const PORT = 16471;
const HOSTS = ["h1", "h2"] as const;

let env: MeshEnv;
const machine = (name: string) => env.getJson<Machine>(["get", "machine", name]);
const readyReason = async (name: string) => (await machine(name)).status?.conditions?.find((c) => c.type === "Ready");

describe("security: forged Machine status on real hosts", { timeout: 400_000 }, () => {
  before(async () => {
    env = await startMeshEnv({ prefix: PREFIX, labnet: LABNET, hosts: HOSTS.map((name) => ({ name })), port: PORT, resyncPeriod: "5s" });
    await env.kubectlOk(
      ["apply", "-f", "-"],
      env.sshSecretYaml() +
        yamlDoc({ apiVersion: "dockmesh.io/v1alpha1", kind: "MeshNetwork", metadata: { name: "mesh", namespace: "default" }, spec: { cidr: "10.210.0.0/16", interface: "dm0" } }) +
        env.machineYaml([...HOSTS]),
    );
    await env.kubectlOk(["wait", "--for=condition=Ready", "machine/h1", "machine/h2", "--timeout=120s"], undefined, 150_000);
    // Something of the host owner's that dockmesh must never touch: a WireGuard config of its own, enabled.
    await env.lab.execOk("h1", [
      "sh",
      "-c",
      "printf '[Interface]\\nListenPort = 51999\\n' > /etc/wireguard/victim.conf && mkdir -p /etc/systemd/system/multi-user.target.wants && ln -sf /lib/systemd/system/wg-quick@.service /etc/systemd/system/multi-user.target.wants/wg-quick@victim.service",
    ]);
  });
  after(async () => {
    await env?.close();
  });

  test("a newline in status.publicKey is refused by the API server, naming the field", async () => {
    const real = (await machine("h2")).status?.publicKey ?? "";
    const r = await env.kubectl([
      "patch",
      "machine",
      "h2",
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { publicKey: `${real}\n[Interface]\nPreUp = touch /tmp/dockmesh-pwned` } }),
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /status\.publicKey: Invalid value/);
  });

  test("an attacker's key in h2's status and teardown entries naming docker0 and victim in h1's: no host is changed", async () => {
    const h2Secret = await env.getJson<{ data: Record<string, string> }>(["get", "secret", "h2-wireguard"]);
    const h2Key = Buffer.from(h2Secret.data.publicKey!, "base64").toString();
    const attacker = generateKeyPair().publicKey;
    const docker0Before = await env.lab.execOk("h1", ["ip", "-o", "route", "show", "dev", "docker0"]);
    assert.match(docker0Before, /172\.\d+\.\d+\.\d+\/\d+/, "docker0 has its route before");

    await env.kubectlOk(["patch", "machine", "h2", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { publicKey: attacker } })]);
    // The controller writes h2's real key back at once; watch h1 through that window (bounded).
    for (let i = 0; i < 25; i++) {
      const seen = await env.lab.exec("h1", ["sh", "-c", "cat /etc/wireguard/dm0.conf; wg show dm0 peers"]);
      assert.ok(!seen.stdout.includes(attacker), "the attacker's key reached h1");
      await sleep(200);
    }
    const h1 = await machine("h1");
    const forged = [...(h1.status?.networks ?? []), { meshNetwork: "gone", interface: "docker0" }, { meshNetwork: "gone2", interface: "victim", dockerNetwork: "bridge" }];
    await env.kubectlOk(["patch", "machine", "h1", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { networks: forged } })]);
    // h1 reconciles on its status change and writes its networks anew (without the forged ones).
    await eventually("h1 reconciled after the forged status", async () => (((await machine("h1")).status?.networks ?? []).some((n) => n.meshNetwork.startsWith("gone")) ? undefined : true), 60_000);
    await sleep(12_000); // two more resyncs (5 s) of both machines

    const config = await env.lab.execOk("h1", ["cat", "/etc/wireguard/dm0.conf"]);
    assert.ok(config.includes(`PublicKey = ${h2Key}`), "h1 configures h2 with the key from h2's Secret");
    assert.ok(!config.includes(attacker), "the attacker's key from status is in no config");
    const peers = await env.lab.execOk("h1", ["wg", "show", "dm0", "peers"]);
    assert.deepEqual(peers.trim().split("\n"), [h2Key]);
    const link = await env.lab.execOk("h1", ["ip", "-o", "link", "show", "docker0"]);
    assert.match(link, /docker0/, "docker0 still exists");
    assert.equal(await env.lab.execOk("h1", ["ip", "-o", "route", "show", "dev", "docker0"]), docker0Before, "docker0's route is untouched");
    await env.lab.execOk("h1", ["test", "-f", "/etc/wireguard/victim.conf"]);
    await env.lab.execOk("h1", ["test", "-L", "/etc/systemd/system/multi-user.target.wants/wg-quick@victim.service"]);
    const bridge = await env.lab.execOk("h1", ["docker", "network", "ls", "--format", "{{.Name}}"]);
    assert.match(bridge, /^bridge$/m, "Docker's own bridge network is untouched");
    const steps = env.log.split("\n").filter((l) => /\[#\] .*(docker0|victim|network rm bridge)/.test(l));
    assert.deepEqual(steps, [], "no step named docker0, victim or Docker's bridge");
    // Traffic still crosses: the real keys handshake.
    await eventually("h1 and h2 still Ready", async () => ((await readyReason("h1"))?.status === "True" && (await readyReason("h2"))?.status === "True" ? true : undefined), 60_000);
    const h2Bridge = (await machine("h2")).status?.networks?.[0]?.subnet?.replace(/0\/24$/, "1");
    await env.lab.execOk("h1", ["ping", "-c", "1", "-W", "2", "-I", (await machine("h1")).status!.networks![0]!.subnet!.replace(/0\/24$/, "1"), h2Bridge!]);
  });
});
