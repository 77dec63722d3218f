// Scale benchmark (issue 7, items 3 and 4), on SIMULATED hosts: `npm run bench:scale`.
//
//   node dist/bench/scale.js [--sizes 10,100,1000] [--plan-sizes 10,100,1000,2000]
//     [--resync-period 20s] [--steady-periods 3] [--latency-ms 0] [--concurrency 32]
//     [--timeout 30m] [--no-plan] [--no-controller] [--dns on|off]
//
// For each size: the embedded store, a SimulatedHostFleet (one simulated host per Machine,
// behind an in-process ssh2 server on loopback) and `dockmesh controller` as a child process;
// one MeshNetwork, N public Machines, mesh DNS on (the product's default; the simulated hosts are
// Debian 12 with dnsmasq-base) or off. Prints time until every Machine is Ready (and DNSReady),
// the controller's peak RSS, API writes and SSH round trips by kind, then the steady state per
// resync period; and the
// pure planner's time for the whole mesh at each plan size with the growth exponent.
// Ratios are against the smallest size measured in the same run. Nothing leaves loopback.
import { parseArgs } from "node:util";
import { parseDuration } from "../cli/controller.js";
import { exponent, planTime, type PlanPoint } from "./scale-plan.js";
import { dnsCommands, runScale, type ScaleRunResult } from "./scale-run.js";
import { HEAP_GROWING_PERCENT } from "../runtime/heap.js";
import { controllerNodeFlags } from "./scale-proc.js";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "10,100,1000" },
    "plan-sizes": { type: "string", default: "10,100,1000,2000" },
    "nat-plan-sizes": { type: "string", default: "10,100,300,1000" },
    "resync-period": { type: "string", default: "20s" },
    "steady-periods": { type: "string", default: "3" },
    "latency-ms": { type: "string", default: "0" },
    concurrency: { type: "string", default: "32" },
    timeout: { type: "string" },
    "no-plan": { type: "boolean", default: false },
    "no-controller": { type: "boolean", default: false },
    dns: { type: "string", default: "on" },
  },
});

const sizesOf = (text: string, flag: string): number[] => {
  const list = text.split(",").filter(Boolean).map(Number);
  if (list.some((x) => !Number.isInteger(x) || x < 2 || x > 4000)) throw new Error(`${flag}: whole numbers from 2 to 4000, comma-separated, got ${text}`);
  return list;
};

const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : "—");
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;
const ratio = (x: number, base: number) => (base > 0 ? `×${fmt(x / base, 1)}` : "—");

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(head), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}

function printPlanCurve(title: string, points: PlanPoint[]): void {
  console.log(`\n${title}`);
  const rows = points.map((p, i) => [
    String(p.machines),
    String(p.behindNat),
    fmt(p.ms, 2),
    fmt((p.ms * 1000) / p.machines, 0),
    ratio(p.ms, points[0]!.ms),
    i === 0 ? "—" : fmt(exponent(points[i - 1]!, p), 2),
    String(p.repetitions),
  ]);
  console.log(table(["machines", "behind NAT", "whole mesh ms (fastest run)", "µs per host", "vs first", "exponent vs previous", "runs"], rows));
  const worst = Math.max(...points.slice(1).map((p, i) => exponent(points[i]!, p)));
  console.log(`growth exponent at most ${fmt(worst, 2)} (target ≤ 2: ${worst <= 2.05 ? "met" : "MISSED"})`);
}

function printRuns(runs: ScaleRunResult[], resyncMs: number, latencyMs: number): void {
  const base = runs[0]!;
  console.log(
    `\nController on SIMULATED hosts (resync ${resyncMs / 1000} s, simulated host latency ${latencyMs} ms per command; node ${controllerNodeFlags().join(" ")}, heap growing ${HEAP_GROWING_PERCENT} %)`,
  );
  for (const r of runs) {
    const t = r.ssh.total;
    const per = (x: number) => fmt(x / r.machines, 1);
    console.log(
      `N=${r.machines}: SSH round trips by kind (DNS ${r.dns ? "on" : "off"}, until converged): ${t.observes} observe, ${t.applies} apply (${t.steps} steps), ${t.readyChecks} Ready check, ` +
        `${t.dnsStreams} DNS stream, ${t.dnsInspects} DNS inspect, ${t.dnsWrites} DNS write (${t.dnsNoResolver} "no resolver yet"), ${t.unknown} other (failed: ${t.failures}); ${t.sessions} sessions; ` +
        `per machine ${per(t.observes)} observe, ${per(t.applies)} apply, ${per(t.readyChecks)} Ready check, ${per(dnsCommands(t))} DNS`,
    );
    if (r.meshTripsToReady)
      console.log(
        `N=${r.machines}: mesh round trips on the way to each machine's own Ready (its first converge counted once; resyncs of machines already Ready left out): mean ${fmt(r.meshTripsToReady.mean, 3)}, busiest host ${r.meshTripsToReady.max}`,
      );
  }
  const rows = runs.map((r) => [
    String(r.machines),
    r.converged ? fmt(r.convergeMs / 1000, 1) : `> ${fmt(r.convergeMs / 1000, 0)} (not converged)`,
    ratio(r.convergeMs, base.convergeMs),
    !r.dnsReady ? "off" : r.dnsReady.ms !== undefined ? fmt(r.dnsReady.ms / 1000, 1) : `${r.dnsReady.machines}/${r.machines} at the end`,
    mb(r.peakRssBytes),
    fmt(r.cpuMsToConverge / 1000, 1),
    String(r.writes.total),
    fmt(r.writes.total / r.machines, 1),
    `${r.writes.machines} / ${r.writes.meshNetworks} / ${r.writes.secrets} / ${r.writes.events}`,
    String(r.ssh.total.roundTrips),
    `${fmt(r.ssh.perHostMean, 1)} / ${r.ssh.perHostMax}`,
    String(r.reconciles),
  ]);
  console.log(
    table(
      [
        "machines",
        "converge s",
        "vs first",
        "DNSReady s",
        "controller peak RSS",
        "controller CPU s",
        "API writes",
        "writes/machine",
        "Machine / MeshNetwork / Secret / Event writes",
        "SSH round trips",
        "per host mean / max",
        "Machine reconciles",
      ],
      rows,
    ),
  );
  const steady = runs.filter((r) => r.steady);
  if (steady.length) {
    console.log("\nSteady state (after convergence), per resync period");
    console.log(
      table(
        [
          "machines",
          "window (periods)",
          "SSH round trips per host (max)",
          "DNS commands per host",
          "SSH sessions per host",
          "round trips per session",
          "API writes",
          "controller CPU ms",
          "CPU ms per host",
          "reconciles",
        ],
        steady.map((r) => {
          const s = r.steady!;
          return [
            String(r.machines),
            fmt(s.periods, 2),
            `${fmt(s.roundTripsPerHostPerResync, 2)} (${fmt(s.maxRoundTripsPerHostPerResync, 2)})`,
            fmt(s.dnsCommandsPerHostPerResync, 2),
            fmt(s.sessionsPerHostPerResync, 2),
            fmt(s.roundTripsPerSession, 2),
            fmt(s.writesPerResync, 1),
            fmt(s.cpuMsPerResync, 0),
            fmt(s.cpuMsPerResync / r.machines, 2),
            fmt(s.reconcilesPerResync, 0),
          ];
        }),
      ),
    );
  }
  console.log("\nTargets:");
  for (const r of runs) {
    const s = r.steady;
    const checks = [
      `RSS ≤ 200 MB (issue 14, at 1,000 machines): ${r.peakRssBytes <= 200 * 2 ** 20 ? "met" : "MISSED"} (${mb(r.peakRssBytes)})`,
      `converged: ${r.converged ? "yes" : "NO"}`,
      ...(r.dnsReady ? [`DNSReady: ${r.dnsReady.ms !== undefined ? "all" : `${r.dnsReady.machines}/${r.machines} (NOT all)`}`] : []),
      `unknown commands = 0: ${r.ssh.total.unknown === 0 ? "met" : "MISSED"} (${r.ssh.total.unknown}); failed commands: ${r.ssh.total.failures}`,
      ...(s
        ? [
            `round trips per host per resync ≤ 1: ${s.maxRoundTripsPerHostPerResync <= 1 ? "met" : "MISSED"} (busiest host ${fmt(s.maxRoundTripsPerHostPerResync, 2)}, mean ${fmt(s.roundTripsPerHostPerResync, 2)}, per session ${fmt(s.roundTripsPerSession, 2)}; Ready checks apart: ${fmt(s.readyChecksPerHostPerResync, 2)} per host, mesh DNS's commands apart: ${fmt(s.dnsCommandsPerHostPerResync, 2)} per host)`,
            `API writes per resync = 0: ${s.writesPerResync === 0 ? "met" : "MISSED"} (${fmt(s.writesPerResync, 1)})`,
          ]
        : []),
    ];
    console.log(`  N=${r.machines}: ${checks.join("; ")}`);
  }
}

async function main(): Promise<void> {
  const resyncMs = parseDuration(values["resync-period"] ?? "20s", "--resync-period");
  const steadyPeriods = Number(values["steady-periods"]);
  const latencyMs = Number(values["latency-ms"]);
  const concurrency = Number(values.concurrency);
  if (values.dns !== "on" && values.dns !== "off") throw new Error(`--dns: on or off, got ${values.dns}`);
  const dns = values.dns === "on";
  console.log(`dockmesh scale benchmark — SIMULATED hosts (SimulatedHostFleet: in-process ssh2 server on loopback, in-memory host state); ${new Date().toISOString()}, Node ${process.version}`);

  if (!values["no-plan"]) {
    const points = sizesOf(values["plan-sizes"] ?? "", "--plan-sizes").map((n) => planTime(n));
    printPlanCurve("Plan time, pure planner (planMesh + planHost for every member), all machines public", points);
    const nat = sizesOf(values["nat-plan-sizes"] ?? "", "--nat-plan-sizes").map((n) => planTime(n, 10));
    printPlanCurve("Plan time with every 10th machine behind NAT (relayed pairs)", nat);
  }

  if (!values["no-controller"]) {
    const runs: ScaleRunResult[] = [];
    for (const n of sizesOf(values.sizes ?? "", "--sizes")) {
      const timeoutMs = values.timeout ? parseDuration(values.timeout, "--timeout") : Math.max(120_000, n * 1_800);
      runs.push(await runScale({ machines: n, resyncMs, steadyPeriods, convergeTimeoutMs: timeoutMs, latencyMs, concurrency, dns, progress: (l) => console.log(l) }));
    }
    printRuns(runs, resyncMs, latencyMs);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:scale: ${err instanceof Error ? err.stack : String(err)}`);
    for (let c = err instanceof Error ? err.cause : undefined; c; c = c instanceof Error ? c.cause : undefined) console.error(`  caused by: ${c instanceof Error ? c.message : String(c)}`);
    process.exit(1);
  },
);
