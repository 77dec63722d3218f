// On real lab hosts (sshd, dockerd, WireGuard in network namespaces), `dockmesh up` with
// debug JSON logs and /metrics on: two Machines converge, a third is refused by its host
// (a key not in authorized_keys), one WireGuard key is rotated. Then every log line, every
// Event, every status and the /metrics text are searched for the WireGuard private keys
// (from the <machine>-wireguard Secrets, before and after rotation), both SSH private keys
// and the API bearer token: none may appear. /metrics shows SSH round trips, machines by
// condition and peers with a recent handshake; /readyz answers.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { createLab, type Lab } from "../../lab/lab.js";
import { generateEd25519 } from "../../lab/keys.js";
import { ensureSystemPackages } from "../../lab/requirements.js";
import { yamlDoc } from "../../lab/mesh-env.js";
import { ControllerProcess, httpGet, metric, metricSum, sleep } from "./controller-process.js";
import { run } from "./tools.js";

// This file's own lab: prefix, address blocks and ports differ from every other test's.
const PREFIX = "dmops";
const LABNET = "198.18.6.0/24";
const PORT = 16446;
const METRICS_PORT = 18446;

let lab: Lab;
let stateDir: string;
let up: ControllerProcess;
const other = generateEd25519("not-authorized");

async function kubectl(args: readonly string[], input?: string): Promise<string> {
  const r = await run(["kubectl", ...args], { env: { ...process.env, KUBECONFIG: join(stateDir, "kubeconfig") }, ...(input !== undefined ? { input } : {}) });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}\n--- controller log tail ---\n${up?.output.slice(-3000)}`);
  return r.stdout;
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(500);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ""}\n${up.output.slice(-3000)}`);
}

interface SecretJson {
  data?: Record<string, string>;
}

async function wireguardKey(machine: string): Promise<string> {
  const s = JSON.parse(await kubectl(["get", "secret", `${machine}-wireguard`, "-o", "json"])) as SecretJson;
  const key = Buffer.from(s.data?.privateKey ?? "", "base64")
    .toString("utf8")
    .trim();
  assert.match(key, /^[A-Za-z0-9+/]{43}=$/, `${machine}-wireguard holds a WireGuard private key`);
  return key;
}

/** Forms a secret could leak in: as is, base64 of it, and (for PEM/OpenSSH keys) each body line. */
function needles(name: string, secret: string): Array<[string, string]> {
  const out: Array<[string, string]> = [
    [name, secret.trim()],
    [`${name} (base64)`, Buffer.from(secret.trim()).toString("base64")],
  ];
  for (const line of secret.split("\n")) if (line.length >= 20 && !line.startsWith("-----")) out.push([`${name} (line)`, line.trim()]);
  return out;
}

describe("secrets never leak; metrics on real hosts", { timeout: 600_000 }, () => {
  before(async () => {
    await ensureSystemPackages();
    lab = await createLab({
      prefix: PREFIX,
      labnet: LABNET,
      natLans: { first: 60, last: 69 },
      hosts: [{ name: "h1" }, { name: "h2" }],
      log: (m) => process.env.DOCKMESH_TEST_VERBOSE && console.error(`[lab] ${m}`),
    });
    stateDir = mkdtempSync(join(tmpdir(), `${PREFIX}-state-`));
    up = new ControllerProcess(
      "dockmesh up",
      [
        "up",
        "--state-dir",
        stateDir,
        "--listen",
        `${lab.controllerAddress}:${PORT}`,
        "--resync-period",
        "10s",
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "--metrics-bind-address",
        `${lab.controllerAddress}:${METRICS_PORT}`,
      ],
      { ...process.env, DOCKMESH_LOG_LEVEL: "debug" },
      (argv, env) => lab.spawnInControllerNs(argv, { stdio: ["ignore", "pipe", "pipe"], env }),
    );
    await up.waitFor("dockmesh up", () => up.output.includes("controllers running"), 60_000);
  });

  after(async () => {
    await up?.kill("SIGTERM");
    await lab?.destroy();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  test("no private key or token in any log line, Event, status or metric", async () => {
    const machines = ["h1", "h2"]
      .map((n) => {
        const h = lab.host(n);
        return yamlDoc({
          apiVersion: "dockmesh.io/v1alpha1",
          kind: "Machine",
          metadata: { name: n, namespace: "default", labels: { mesh: "one" } },
          spec: { ssh: { host: h.sshHost, port: h.sshPort, user: h.sshUser, privateKeySecretRef: { name: "lab-ssh" } }, endpoint: `${h.publicEndpoint}:51820` },
        });
      })
      .join("");
    const refused = yamlDoc({
      apiVersion: "dockmesh.io/v1alpha1",
      kind: "Machine",
      metadata: { name: "refused", namespace: "default", labels: { mesh: "two" } },
      spec: { ssh: { host: lab.host("h2").sshHost, port: 22, privateKeySecretRef: { name: "other-ssh" } }, endpoint: "198.18.6.250:51820" },
    });
    const secrets =
      yamlDoc({ apiVersion: "v1", kind: "Secret", metadata: { name: "lab-ssh", namespace: "default" }, type: "kubernetes.io/ssh-auth", stringData: { "ssh-privatekey": lab.sshPrivateKey } }) +
      yamlDoc({ apiVersion: "v1", kind: "Secret", metadata: { name: "other-ssh", namespace: "default" }, type: "kubernetes.io/ssh-auth", stringData: { "ssh-privatekey": other.privateKey } });
    const mesh =
      yamlDoc({
        apiVersion: "dockmesh.io/v1alpha1",
        kind: "MeshNetwork",
        metadata: { name: "mesh", namespace: "default" },
        spec: { cidr: "10.230.0.0/16", subnetPrefixLength: 24, dockerNetwork: "mesh", interface: "dm0", machineSelector: { matchLabels: { mesh: "one" } } },
      }) +
      // The refused machine alone in a mesh of its own: it is contacted (and refused) without holding up h1 and h2.
      yamlDoc({
        apiVersion: "dockmesh.io/v1alpha1",
        kind: "MeshNetwork",
        metadata: { name: "other", namespace: "default" },
        spec: { cidr: "10.231.0.0/16", subnetPrefixLength: 24, dockerNetwork: "other", interface: "dm1", listenPort: 51821, machineSelector: { matchLabels: { mesh: "two" } } },
      });
    await kubectl(["apply", "-f", "-"], secrets + mesh + machines + refused);

    await kubectl(["wait", "--for=condition=Ready", "--timeout=240s", "machine/h1", "machine/h2"]);
    await eventually("refused machine AuthFailed", async () => {
      const m = JSON.parse(await kubectl(["get", "machine", "refused", "-o", "json"])) as { status?: { conditions?: Array<{ type: string; reason: string }> } };
      return m.status?.conditions?.find((c) => c.type === "Reachable")?.reason === "AuthFailed" ? true : undefined;
    });

    const keysBefore = { h1: await wireguardKey("h1"), h2: await wireguardKey("h2") };
    // Rotation: a new key for h1; the old one must not leak on its way out either.
    await kubectl(["annotate", "machine", "h1", "dockmesh.io/rotate-key=r1"]);
    const rotated = await eventually("h1's key rotated", async () => {
      const k = await wireguardKey("h1");
      return k !== keysBefore.h1 ? k : undefined;
    });
    await kubectl(["wait", "--for=condition=Ready", "--timeout=180s", "machine/h1", "machine/h2"]);

    const kubeconfig = parse(readFileSync(join(stateDir, "kubeconfig"), "utf8")) as { users: Array<{ user: { token?: string } }> };
    const token = kubeconfig.users[0]?.user.token ?? "";
    assert.ok(token.length >= 20, "the bearer token was found");

    const secretsToFind: Array<[string, string]> = [
      ...needles("h1 WireGuard private key", keysBefore.h1),
      ...needles("h1 WireGuard private key after rotation", rotated),
      ...needles("h2 WireGuard private key", keysBefore.h2),
      ...needles("SSH private key", lab.sshPrivateKey),
      ...needles("unauthorized SSH private key", other.privateKey),
      ...needles("bearer token", token),
    ];

    // The search works: the key Secret itself holds the key in the form searched for.
    const secretJson = await kubectl(["get", "secret", "h2-wireguard", "-o", "json"]);
    assert.ok(secretJson.includes(Buffer.from(keysBefore.h2).toString("base64")), "the search strings are the right encoding");

    const metricsText = (await httpGet(`http://${lab.controllerAddress}:${METRICS_PORT}/metrics`)).text;
    const events = await kubectl(["get", "events", "-A", "-o", "json"]);
    const objects = JSON.parse(await kubectl(["get", "machines,meshnetworks", "-A", "-o", "json"])) as { items: Array<{ kind: string; metadata: { name: string }; status?: unknown }> };
    const statuses = objects.items.map((o) => `${o.kind}/${o.metadata.name} ${JSON.stringify(o.status)}`).join("\n");
    const logLines = up.output.split("\n").filter((l) => l.trim());
    const jsonLines = logLines.filter((l) => l.startsWith("{"));
    assert.ok(jsonLines.length > 20, `the controller logged (debug) ${jsonLines.length} JSON lines`);
    for (const l of jsonLines) JSON.parse(l);
    const eventCount = (JSON.parse(events) as { items: unknown[] }).items.length;
    assert.ok(eventCount > 0, "events were recorded");
    console.log(`searched ${logLines.length} log lines, ${eventCount} events, ${objects.items.length} statuses and /metrics for ${secretsToFind.length} secret forms`);

    const leaks: string[] = [];
    for (const [where, text] of [
      ["a log line", up.output],
      ["an Event", events],
      ["a status", statuses],
      ["/metrics", metricsText],
    ] as const) {
      for (const [what, needle] of secretsToFind) if (text.includes(needle)) leaks.push(`${what} in ${where}`);
    }
    assert.deepEqual(leaks, []);
  });

  test("/metrics: SSH round trips, reconciles, machines by condition, peers with a recent handshake; /readyz", async () => {
    const base = `http://${lab.controllerAddress}:${METRICS_PORT}`;
    const text = (await httpGet(`${base}/metrics`)).text;
    assert.ok((metric(text, "dockmesh_ssh_roundtrip_seconds_count", { outcome: "ok" }) ?? 0) > 0, "SSH round trips observed");
    assert.ok(metricSum(text, "dockmesh_reconcile_total", { kind: "Machine" }) > 0);
    assert.ok(metricSum(text, "dockmesh_reconcile_total", { kind: "MeshNetwork" }) > 0);
    assert.ok((metric(text, "dockmesh_reconcile_errors_total", { kind: "Machine" }) ?? 0) > 0, "the refused machine's failures are counted");
    assert.equal(metric(text, "dockmesh_machines", { condition: "Ready", status: "True" }), 2);
    assert.equal(metric(text, "dockmesh_machines", { condition: "Ready", status: "False" }), 1);
    assert.equal(metric(text, "dockmesh_machines", { condition: "Reachable", status: "False" }), 1);
    assert.equal(metric(text, "dockmesh_peers_recent_handshake", { namespace: "default", machine: "h1" }), 1);
    assert.equal(metric(text, "dockmesh_peers_recent_handshake", { namespace: "default", machine: "h2" }), 1);
    assert.equal(metric(text, "dockmesh_leader_election_is_leader", { lease: "" }), 1, "without election the process always leads");
    const ready = await httpGet(`${base}/readyz?verbose`);
    assert.equal(ready.status, 200, ready.text);
    assert.equal((await httpGet(`${base}/healthz`)).status, 200);
  });
});
