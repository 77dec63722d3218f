// Disruption (issue 7, item 2): packets lost on running flows between two lab hosts while a third
// joins the mesh, has its key rotated, and leaves. Two flows, h1→h2 and h2→h1 (ping every 20 ms
// between their containers, through the tunnel); losses are counted by sequence number and put in
// the phase they happened in. Also lists what dockmesh ran on h1 and h2 meanwhile (no interface
// restart expected: live peer changes). Target: 0 packets lost.
//   sudo node dist/bench/disruption.js          (BENCH_INTERVAL_MS=20 BENCH_RUNS=1)
import type { Machine } from "../api/types.generated.js";
import { eventually, sleep, appliedSteps, type MeshEnv } from "../lab/mesh-env.js";
import { benchMeshEnv, meshYaml, requireRoot, secs, table, MESH } from "./lab-setup.js";
import { PingFlow, type FlowReport } from "./lab-flow.js";

interface Phase {
  name: string;
  start: number;
  end: number;
  /** Counts toward the target (0 lost); the others are for information. */
  counted: boolean;
}

const machine = (env: MeshEnv, name: string) => env.getJson<Machine>(["get", "machine", name]);

async function wgPeers(env: MeshEnv, host: string): Promise<string[]> {
  return (await env.lab.execOk(host, ["wg", "show", MESH.iface, "peers"])).split("\n").filter(Boolean);
}

/** Waits until h1 and h2 each have exactly `keys` (besides each other) as WireGuard peers, with a handshake. */
async function peersSettled(env: MeshEnv, want: (host: string) => readonly string[], what: string): Promise<void> {
  await eventually(
    what,
    async () => {
      for (const h of ["h1", "h2"]) {
        const live = await wgPeers(env, h);
        const expected = want(h);
        if (live.length !== expected.length || expected.some((k) => !live.includes(k))) return undefined;
      }
      return true;
    },
    120_000,
    200,
  );
}

async function run(intervalMs: number): Promise<{ phases: Phase[]; flows: Array<[string, FlowReport]>; steps: string[] }> {
  const env = await benchMeshEnv(3);
  try {
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + meshYaml() + env.machineYaml(["h1", "h2"]));
    await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", "machine/h1", "machine/h2"], undefined, 200_000);
    const key = async (h: string) => (await machine(env, h)).status?.publicKey ?? "";
    const k1 = await key("h1");
    const k2 = await key("h2");
    const { ip: ip1 } = await env.lab.startHttpd("h1", { name: "web", network: MESH.dockerNetwork, content: "h1" });
    const { ip: ip2 } = await env.lab.startHttpd("h2", { name: "web", network: MESH.dockerNetwork, content: "h2" });
    const stepsFrom = appliedSteps(env.log).length;

    const flows = [
      ["h1→h2", await PingFlow.start(env.lab, "h1", { name: "flow", network: MESH.dockerNetwork, target: ip2, intervalMs })],
      ["h2→h1", await PingFlow.start(env.lab, "h2", { name: "flow", network: MESH.dockerNetwork, target: ip1, intervalMs })],
    ] as const;
    const phases: Phase[] = [];
    const phase = async (name: string, fn: () => Promise<void>, counted = true) => {
      const start = Date.now();
      await fn();
      phases.push({ name, start, end: Date.now(), counted });
      console.error(`  ${name}: ${secs(Date.now() - start)} s`);
    };

    await phase("before (idle mesh)", () => sleep(3000));
    let k3 = "";
    await phase("h3 joins (apply → Ready, on h1 and h2 as a peer)", async () => {
      await env.kubectlOk(["apply", "-f", "-"], env.machineYaml(["h3"]));
      await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", "machine/h3"], undefined, 200_000);
      k3 = await key("h3");
      await peersSettled(env, (h) => [h === "h1" ? k2 : k1, k3], "h3 on h1 and h2");
    });
    await phase("h3 re-keyed (annotation → new key on h1 and h2)", async () => {
      await env.kubectlOk(["annotate", "--overwrite", "machine", "h3", "dockmesh.io/rotate-key=bench-1"]);
      const rotated = await eventually(
        "h3 rotated",
        async () => {
          const m = await machine(env, "h3");
          return m.status?.keyRotation === "bench-1" && m.status.publicKey && m.status.publicKey !== k3 ? m.status.publicKey : undefined;
        },
        120_000,
        200,
      );
      await peersSettled(env, (h) => [h === "h1" ? k2 : k1, rotated], "h3's new key on h1 and h2");
      await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", "machine/h3"], undefined, 200_000);
    });
    await phase("h3 leaves (delete → torn down, gone from h1 and h2)", async () => {
      await env.kubectlOk(["delete", "machine", "h3", "--timeout=120s"], undefined, 150_000);
      await peersSettled(env, (h) => [h === "h1" ? k2 : k1], "h3 gone from h1 and h2");
    });
    await phase("after", () => sleep(3000));
    // For information: rotating the key of one end of the flows. A WireGuard peer has one key, so
    // the flows stop from the moment one side uses the new key until the other side has it.
    await phase(
      "h2 re-keyed (an end of the flows; information only)",
      async () => {
        await env.kubectlOk(["annotate", "--overwrite", "machine", "h2", "dockmesh.io/rotate-key=bench-2"]);
        const rotated = await eventually(
          "h2 rotated",
          async () => {
            const m = await machine(env, "h2");
            return m.status?.keyRotation === "bench-2" && m.status.publicKey && m.status.publicKey !== k2 ? m.status.publicKey : undefined;
          },
          120_000,
          200,
        );
        await eventually("h1 has h2's new key", async () => ((await wgPeers(env, "h1")).includes(rotated) ? true : undefined), 120_000, 200);
        await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", "machine/h1", "machine/h2"], undefined, 200_000);
        await sleep(2000);
      },
      false,
    );

    const reports: Array<[string, FlowReport]> = [];
    for (const [name, f] of flows) reports.push([name, await f.stop()]);
    const steps = appliedSteps(env.log)
      .slice(stepsFrom)
      .filter((l) => /^default\/h[12] /.test(l));
    return { phases, flows: reports, steps };
  } finally {
    await env.close();
  }
}

async function main(): Promise<void> {
  requireRoot("bench/disruption");
  const intervalMs = Math.max(10, Number(process.env.BENCH_INTERVAL_MS ?? 20) || 20);
  const runs = Math.max(1, Math.min(5, Number(process.env.BENCH_RUNS ?? 1) || 1));
  const rows: string[][] = [];
  const summary: string[][] = [];
  let total = 0;
  for (let r = 1; r <= runs; r++) {
    console.error(`disruption: run ${r}/${runs} (ping every ${intervalMs} ms both ways between h1 and h2)`);
    const { phases, flows, steps } = await run(intervalMs);
    for (const p of phases) {
      const lost = flows.map(([, f]) => f.lostAt.filter((t) => t >= p.start && t < p.end).length);
      if (p.counted) total += lost.reduce((a, b) => a + b, 0);
      const sent = Math.round((p.end - p.start) / intervalMs);
      rows.push([String(r), p.name, secs(p.end - p.start), ...lost.map((x) => `${x} of ~${sent}`)]);
    }
    for (const [name, f] of flows) summary.push([String(r), name, String(f.sent), String(f.received), String(f.lost.length), f.summary]);
    const ops = [...new Set(steps.map((l) => l.replace(/^default\/(h\d) \[#\] /, "$1: ").replace(/10\.210\.\d+\.0\/24/g, "SUBNET")))];
    console.log(`run ${r}: dockmesh ran on h1 and h2: ${ops.join(" | ") || "nothing"}`);
    if (steps.some((l) => /wg-quick (up|down)|ip link set dev dm0 (up|down)/.test(l))) console.log(`run ${r}: WARNING: an interface was restarted on h1 or h2`);
  }
  console.log(`\nDisruption: packets lost on the flows h1→h2 and h2→h1 (ping every ${intervalMs} ms) per phase:\n`);
  console.log(table(["run", "phase", "s", "lost h1→h2", "lost h2→h1"], rows));
  console.log("\nWhole runs (lost = sequence numbers never answered, below the last answered one):\n");
  console.log(table(["run", "flow", "sent", "received", "lost", "ping's own summary"], summary));
  console.log(`\nLost while h3 joined, was re-keyed and left (and before/after): ${total} (target 0).`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
