// Steady state (issue 7, item 3): what a resync of a converged host costs. N lab hosts (default 4)
// in one mesh, all Ready, `dockmesh up` with a short resync period (5 s); then, over a window
// (default 60 s), from outside the controller:
//   SSH round trips   dockmesh_ssh_roundtrip_seconds_count from its /metrics (commands run)
//   SSH logins        "Accepted publickey" lines in every host's sshd log (connections)
//   API writes        the store's resourceVersion (one per committed write: status, Events, …)
//   CPU               user+system time of the `dockmesh up` process (store and controllers),
//                     less its idle rate measured before any object existed
// each divided by the machine reconciles in the window (dockmesh_reconcile_total{kind="Machine"}).
// Targets: ≤1 SSH round trip and 0 API writes per resync per host.
//   sudo node dist/bench/steady-state.js          (BENCH_HOSTS=4 BENCH_SECONDS=60)
import { sleep, appliedSteps } from "../lab/mesh-env.js";
import { benchMeshEnv, hostNames, meshYaml, requireRoot, table, BENCH_METRICS_PORT } from "./lab-setup.js";
import { sshLogins } from "../lab/lab-checks.js";
import { cpuMs, metricSum, scrape, storeRv } from "./lab-metrics.js";

/** Resync period (BENCH_RESYNC, default 5s: every reconcile a resync) and Ready check period (BENCH_READY_CHECK, default dockmesh's 30s). */
const RESYNC = process.env.BENCH_RESYNC ?? "5s";
const READY_CHECK = process.env.BENCH_READY_CHECK ?? "30s";
const RESYNC_S = Number(/^(\d+)s$/.exec(RESYNC)?.[1] ?? /^(\d+)m$/.exec(RESYNC)?.[1] ?? 5) * (RESYNC.endsWith("m") ? 60 : 1);

interface Sample {
  at: number;
  metrics: string;
  rv: number;
  cpu: number;
  logins: number;
  steps: number;
}

async function main(): Promise<void> {
  requireRoot("bench/steady-state");
  const n = Math.max(2, Math.min(9, Number(process.env.BENCH_HOSTS ?? 4) || 4));
  const windowS = Math.max(10, Math.min(600, Number(process.env.BENCH_SECONDS ?? 60) || 60));
  const hosts = hostNames(n);
  // Log level info: the debug lines of the test harness's default would cost CPU of their own.
  const env = await benchMeshEnv(n, { resyncPeriod: RESYNC, extraArgs: ["--metrics-bind-address", `:${BENCH_METRICS_PORT}`, "--log-level", "info", "--ready-check-period", READY_CHECK] });
  try {
    const pid = env.pid;
    if (!pid) throw new Error("dockmesh up is not running");
    const url = `http://${env.lab.controllerAddress}:${BENCH_METRICS_PORT}/metrics`;
    const sample = async (): Promise<Sample> => ({
      at: Date.now(),
      metrics: await scrape(url),
      rv: await storeRv(env),
      cpu: cpuMs(pid),
      logins: hosts.reduce((a, h) => a + sshLogins(env.lab, h), 0),
      steps: appliedSteps(env.log).length,
    });

    console.error(`steady-state: idle CPU of dockmesh up (no objects) for 15 s…`);
    const i0 = { at: Date.now(), cpu: cpuMs(pid) };
    await sleep(15_000);
    const idleRate = (cpuMs(pid) - i0.cpu) / (Date.now() - i0.at); // CPU ms per ms

    console.error(`steady-state: ${n} hosts, resync every ${RESYNC_S} s; converging…`);
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + meshYaml() + env.machineYaml(hosts));
    await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", ...hosts.map((h) => `machine/${h}`)], undefined, 200_000);
    await sleep(Math.min(3 * RESYNC_S, 30) * 1000); // settle: handshakes recorded, the MeshNetwork's counts written
    console.error(`steady-state: measuring ${windowS} s…`);
    const s0 = await sample();
    await sleep(windowS * 1000);
    const s1 = await sample();

    const d = (f: (s: Sample) => number) => f(s1) - f(s0);
    const m = (name: string, labels: Record<string, string> = {}) => d((s) => metricSum(s.metrics, name, labels));
    const resyncs = m("dockmesh_reconcile_total", { kind: "Machine" });
    const meshReconciles = m("dockmesh_reconcile_total", { kind: "MeshNetwork" });
    const ssh = m("dockmesh_ssh_roundtrip_seconds_count");
    const sshSeconds = m("dockmesh_ssh_roundtrip_seconds_sum");
    const reconcileSeconds = m("dockmesh_reconcile_duration_seconds_sum", { kind: "Machine" });
    const logins = d((s) => s.logins);
    const writes = d((s) => s.rv);
    const cpu = d((s) => s.cpu);
    const elapsed = s1.at - s0.at;
    const idleCpu = idleRate * elapsed;
    const per = (x: number) => (resyncs > 0 ? (x / resyncs).toFixed(2) : "-");
    const ready = (await env.kubectlOk(["get", "machines", "-o", 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}'])).trim();

    console.log(
      `\nSteady state: ${n} hosts Ready (${ready}), resync every ${RESYNC}, Ready check every ${READY_CHECK}, window ${(elapsed / 1000).toFixed(1)} s, ${resyncs} machine reconciles (${meshReconciles} MeshNetwork reconciles)\n`,
    );
    console.log(
      table(
        ["per resync per host", "measured", "target", "window total"],
        [
          ["SSH round trips (commands)", per(ssh), "≤ 1", String(ssh)],
          ["SSH logins (connections)", per(logins), "—", String(logins)],
          ["API writes (store resourceVersions)", per(writes), "0", String(writes)],
          ["apply steps on hosts ([#] lines)", per(d((s) => s.steps)), "0", String(d((s) => s.steps))],
          ["controller CPU ms, less idle", per(cpu - idleCpu), "—", `${Math.round(cpu - idleCpu)} ms`],
          ["controller CPU ms, as measured", per(cpu), "—", `${Math.round(cpu)} ms (idle rate ${(idleRate * 1000).toFixed(1)} ms/s)`],
          ["reconcile wall time ms", per(reconcileSeconds * 1000), "—", `SSH round trip avg ${ssh ? ((sshSeconds * 1000) / ssh).toFixed(0) : "-"} ms`],
        ],
      ),
    );
    // The same per machine and minute: what the Ready check (or a short resync) costs at steady state.
    const perMin = (x: number) => ((x / n / elapsed) * 60_000).toFixed(2);
    console.log(
      `\n${table(
        ["per machine per minute", "measured"],
        [
          ["SSH logins", perMin(logins)],
          ["SSH round trips", perMin(ssh)],
          ["API writes", perMin(writes)],
          ["controller CPU ms, less idle", perMin(cpu - idleCpu)],
        ],
      )}`,
    );
  } finally {
    await env.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
