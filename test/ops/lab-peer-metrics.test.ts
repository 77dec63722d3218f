// Per-peer metrics (issue 15) on real lab hosts: `dockmesh up` with /metrics on, h1 public, n1
// and n2 each behind their own NAT (so n1↔n2 goes through h1, the relay). /metrics shows every
// pair with its handshake age and whether it is relayed; the byte counters grow by at least
// what a fetch between containers carried (read by the 5 s Ready check, not a full resync); and
// once n2 is cut off, h1's handshake with it grows stale (age past 180 s, stale flag 1) while the
// other links stay fresh.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { MeshEnv, startMeshEnv, eventually, yamlDoc } from "../../lab/mesh-env.js";
import { httpGet, metric } from "./controller-process.js";

// This file's own lab: prefix, address blocks and ports differ from every other test's.
const PREFIX = "dmmx";
const LABNET = "198.18.59.0/24";
const PORT = 16479;
const METRICS_PORT = 18479;
const HOSTS = ["h1", "n1", "n2"] as const;
/** The page a fetch carries: far more than keepalives and handshakes add in the same time. */
const PAGE_BYTES = 100_000;

let env: MeshEnv;
const ips = new Map<string, string>();

const scrape = async () => (await httpGet(`http://${env.lab.controllerAddress}:${METRICS_PORT}/metrics`)).text;
const pair = (machine: string, peer: string) => ({ namespace: "default", mesh: "mesh", machine, peer });

describe("per-peer metrics on lab hosts", { timeout: 600_000 }, () => {
  before(async () => {
    env = await startMeshEnv({
      prefix: PREFIX,
      labnet: LABNET,
      natLans: { first: 126, last: 127 },
      hosts: [{ name: "h1" }, { name: "n1", nat: true }, { name: "n2", nat: true }],
      port: PORT,
      // Numbers come from the Ready check between resyncs (it reads `wg show all transfer` too).
      // /metrics listens in the controller namespace only (the lab reaches it at controllerAddress).
      resyncPeriod: "5m",
      extraArgs: ["--ready-check-period", "5s", "--metrics-bind-address", `0.0.0.0:${METRICS_PORT}`],
    });
    const mesh = yamlDoc({
      apiVersion: "dockmesh.io/v1alpha1",
      kind: "MeshNetwork",
      metadata: { name: "mesh", namespace: "default" },
      spec: { cidr: "10.230.0.0/16", dockerNetwork: "mesh", interface: "dm0", natTraversal: "Relay" },
    }); // the relayed pair's series are tested here
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + mesh + env.machineYaml([...HOSTS]));
    await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", ...HOSTS.map((h) => `machine/${h}`)], undefined, 200_000);
    for (const h of HOSTS) ips.set(h, (await env.lab.startHttpd(h, { name: "web", network: "mesh", content: `${h} `.repeat(PAGE_BYTES / 3).slice(0, PAGE_BYTES) })).ip);
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("every pair, relayed or direct, with a fresh handshake", async () => {
    const text = await eventually(
      "all six pairs fresh",
      async () => {
        const t = await scrape();
        const fresh = HOSTS.flatMap((a) => HOSTS.filter((b) => b !== a).map((b) => metric(t, "dockmesh_peer_handshake_stale", pair(a, b))));
        return fresh.every((v) => v === 0) ? t : undefined;
      },
      90_000,
      1000,
    );
    const table: Array<[string, string, number]> = [
      ["n1", "n2", 1],
      ["n2", "n1", 1],
      ["n1", "h1", 0],
      ["h1", "n1", 0],
      ["h1", "n2", 0],
    ];
    for (const [a, b, relayed] of table) assert.equal(metric(text, "dockmesh_peer_relayed", pair(a, b)), relayed, `${a}→${b} relayed`);
    for (const a of HOSTS) {
      for (const b of HOSTS) {
        if (a === b) continue;
        const age = metric(text, "dockmesh_peer_last_handshake_age_seconds", pair(a, b));
        assert.ok(age !== undefined && age >= 0 && age < 180, `${a}→${b} handshake age ${age}`);
      }
    }
    assert.equal(metric(text, "dockmesh_peer_receive_bytes_total", pair("n1", "n2")), undefined, "a relayed pair has no bytes of its own");
    assert.equal(metric(text, "dockmesh_peer_pairs_dropped"), 0);
    console.log(`# ${[...text.matchAll(/^dockmesh_peer_\w+\{/gm)].length} per-peer series for 3 machines (6 pairs)`);
  });

  test("bytes grow when traffic flows between containers", async () => {
    const before = await scrape();
    const txBefore = metric(before, "dockmesh_peer_transmit_bytes_total", pair("h1", "n1")) ?? NaN;
    const rxBefore = metric(before, "dockmesh_peer_receive_bytes_total", pair("n1", "h1")) ?? NaN;
    const totalBefore = metric(before, "dockmesh_machine_peer_transmit_bytes_total", { namespace: "default", machine: "h1" }) ?? NaN;
    assert.ok(Number.isFinite(txBefore) && Number.isFinite(rxBefore), "byte counters are there before");
    // n1's container fetches h1's page three times: h1 sends ≥ 300 kB to n1 over dm0.
    for (let i = 0; i < 3; i++) {
      const body = await env.lab.fetchOk("n1", { network: "mesh", url: `http://${ips.get("h1")}:80/`, timeoutSec: 10 });
      assert.ok(body.length >= PAGE_BYTES - 1, `the whole page came (${body.length} B; the lab trims a trailing space)`);
    }
    const t0 = Date.now();
    const after = await eventually(
      "h1→n1 bytes grew",
      async () => {
        const t = await scrape();
        const tx = metric(t, "dockmesh_peer_transmit_bytes_total", pair("h1", "n1")) ?? 0;
        const rx = metric(t, "dockmesh_peer_receive_bytes_total", pair("n1", "h1")) ?? 0;
        return tx - txBefore >= 3 * PAGE_BYTES && rx - rxBefore >= 3 * PAGE_BYTES ? t : undefined;
      },
      30_000,
      1000,
    );
    const tx = metric(after, "dockmesh_peer_transmit_bytes_total", pair("h1", "n1"))!;
    const rx = metric(after, "dockmesh_peer_receive_bytes_total", pair("n1", "h1"))!;
    console.log(`# h1→n1 sent +${tx - txBefore} B, n1 received +${rx - rxBefore} B from h1 (pages: ${3 * PAGE_BYTES} B), seen ${((Date.now() - t0) / 1000).toFixed(1)} s after the fetches`);
    assert.ok((metric(after, "dockmesh_machine_peer_transmit_bytes_total", { namespace: "default", machine: "h1" }) ?? 0) - totalBefore >= 3 * PAGE_BYTES, "h1's total grew too");
  });

  test("a host cut off: its peers' handshakes with it grow stale; the others stay fresh", async () => {
    const before = await scrape();
    const ageBefore = metric(before, "dockmesh_peer_last_handshake_age_seconds", pair("h1", "n2")) ?? NaN;
    await env.lab.cut("n2");
    const cutAt = Date.now();
    try {
      // WireGuard re-keys every 2 minutes: within 180 s + a Ready check the last handshake is stale.
      const text = await eventually(
        "h1's handshake with n2 stale",
        async () => {
          const t = await scrape();
          return metric(t, "dockmesh_peer_handshake_stale", pair("h1", "n2")) === 1 ? t : undefined;
        },
        240_000,
        2000,
      );
      const age = metric(text, "dockmesh_peer_last_handshake_age_seconds", pair("h1", "n2")) ?? 0;
      const since = (Date.now() - cutAt) / 1000;
      console.log(`# h1→n2 stale ${since.toFixed(0)} s after the cut: age ${age} s (was ${ageBefore} s before)`);
      assert.ok(age >= 180, `age ${age} s is past the 180 s threshold`);
      assert.ok(age >= since - 5, `no handshake since the cut (age ${age} s, cut ${since.toFixed(0)} s ago)`);
      for (const [a, b] of [
        ["h1", "n1"],
        ["n1", "h1"],
      ] as const)
        assert.equal(metric(text, "dockmesh_peer_handshake_stale", pair(a, b)), 0, `${a}→${b} stays fresh`);
    } finally {
      await env.lab.heal("n2");
    }
  });
});
