// Durable writes per second through the store's HTTPS API: creates of ConfigMaps from 16
// concurrent keep-alive clients for a fixed time (bounded in count too). Prints the figures.
import { performance } from "node:perf_hooks";
import { call, percentile, startBenchStore } from "./store-common.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
const maxWrites = 200_000;

const s = await startBenchStore();
try {
  // warm-up: TLS sessions and JIT
  await Promise.all(Array.from({ length: concurrency }, (_, w) => call(s, "POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: `warm-${w}` }, data: { v: "x" } })));
  const latencies: number[] = [];
  let n = 0;
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = 0; performance.now() < end && n < maxWrites; i++) {
        n++;
        const t0 = performance.now();
        const r = await call(s, "POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: `w${w}-${i}`, labels: { bench: "writes" } }, data: { i: String(i), payload: "x".repeat(200) } });
        latencies.push(performance.now() - t0);
        if (r.status !== 201) errors++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const ok = latencies.length - errors;
  console.log(`store writes: ${ok} creates in ${elapsed.toFixed(1)} s with ${concurrency} concurrent clients = ${(ok / elapsed).toFixed(0)} durable writes/s`);
  console.log(`  latency p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms; errors ${errors}`);
  console.log(`  (SQLite WAL, synchronous=NORMAL: each acknowledged write is committed to the WAL before the reply)`);
} finally {
  await s.stop();
}
