// Idle memory of `dockmesh controller` (issue 14: ≤120 MB): the controller against an embedded
// store holding one MeshNetwork and no Machines, started, synced and left alone; its RSS read
// from /proc after a settle time. Beside it in the same run, as the baseline, a bare Node
// process with the same flags and environment (`node -e` that only waits).
//
//   node dist/bench/idle-memory.js [--runs 3] [--settle 10s] [--bin NAME=DIR/dist/cli/main.js ...]
//
// Each --bin is another build's CLI (e.g. a worktree of an older commit) measured the same way;
// the runs alternate between the variants.
import { mkdtempSync, rmSync } from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { startStore } from "../store/server.js";
import { GROUP, VERSION } from "../controllers/resources.js";
import { IMAGE_ENV, IMAGE_NODE_FLAGS } from "../runtime/heap.js";
import { ControllerChild, procStats } from "./scale-proc.js";
import { benchMesh, BENCH_NAMESPACE } from "./scale-plan.js";
import { parseDuration } from "../cli/controller.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (b: number) => (b / 2 ** 20).toFixed(1);
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** RSS of a bare node that waits, with the controller's flags and environment. */
async function bareNode(settleMs: number): Promise<{ rss: number; peak: number }> {
  const p = spawn(process.execPath, [...IMAGE_NODE_FLAGS, "-e", "setInterval(() => {}, 1e9)"], { stdio: "ignore", env: { ...process.env, ...IMAGE_ENV } });
  try {
    await sleep(settleMs);
    const s = procStats(p.pid ?? 0);
    return { rss: s.rss, peak: s.peakRss };
  } finally {
    p.kill("SIGKILL");
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, settle: { type: "string", default: "10s" }, bin: { type: "string", multiple: true, default: [] } } });
  const runs = Number(values.runs);
  const settleMs = parseDuration(values.settle, "--settle");
  const variants: Array<{ name: string; main?: string }> = [{ name: "this build" }, ...values.bin.map((b) => ({ name: b.slice(0, b.indexOf("=")), main: b.slice(b.indexOf("=") + 1) }))];
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-idle-"));
  const store = await startStore({ stateDir: join(dir, "store"), listen: "127.0.0.1:0" });
  const figures = new Map<string, { rss: number[]; peak: number[] }>();
  for (const name of ["node (bare)", ...variants.map((v) => v.name)]) figures.set(name, { rss: [], peak: [] });
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(store.kubeconfigPath);
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: BENCH_NAMESPACE, plural: "meshnetworks", body: benchMesh({ dns: true }) });
    console.log(
      `Idle controller memory: one MeshNetwork, no Machines, RSS read ${settleMs / 1000} s after /metrics answers; ${runs} run(s); node ${IMAGE_NODE_FLAGS.join(" ")}, ${Object.entries(IMAGE_ENV)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );
    for (let run = 0; run < runs; run++) {
      const order = run % 2 === 0 ? variants : [...variants].reverse();
      const bare = await bareNode(settleMs);
      figures.get("node (bare)")!.rss.push(bare.rss);
      figures.get("node (bare)")!.peak.push(bare.peak);
      for (const v of order) {
        const child = await ControllerChild.start({
          kubeconfig: store.kubeconfigPath,
          resyncPeriod: "5m",
          concurrency: 8,
          logFile: join(dir, `controller-${run}.log`),
          ...(v.main ? { main: v.main } : {}),
        });
        try {
          await sleep(settleMs);
          const s = child.stats();
          figures.get(v.name)!.rss.push(s.rss);
          figures.get(v.name)!.peak.push(s.peakRss);
          console.log(`  run ${run + 1}: ${v.name}: RSS ${mb(s.rss)} MB (peak ${mb(s.peakRss)} MB); bare node ${mb(bare.rss)} MB`);
        } finally {
          await child.stop();
        }
      }
    }
    const bare = median(figures.get("node (bare)")!.rss);
    console.log("\n| process | median RSS MB | median peak MB | RSS − bare node MB | target ≤120 MB |");
    console.log("| --- | --- | --- | --- | --- |");
    for (const [name, f] of figures) {
      const rss = median(f.rss);
      const target = name === "node (bare)" ? "" : rss <= 120 * 2 ** 20 ? "met" : "MISSED";
      console.log(`| ${name} | ${mb(rss)} | ${mb(median(f.peak))} | ${name === "node (bare)" ? "" : mb(rss - bare)} | ${target} |`);
    }
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
