// Durable writes per second through the store's HTTPS API: creates of ConfigMaps from 16
// concurrent keep-alive clients for a fixed time (bounded in count too). In the same run, side by
// side: SQLite's own ceiling on this disk with synchronous=FULL and one row per transaction (what a
// store that fsyncs every commit on its own could reach at best), and the store with
// --unsafe-no-fsync (acknowledged before fdatasync, as before issue 18). Prints the figures.
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { call, percentile, startBenchStore } from "./store-common.js";

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
const maxWrites = 200_000;

interface Run {
  writes: number;
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

async function storeRun(extraArgs: string[]): Promise<Run> {
  const s = await startBenchStore(extraArgs);
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
    return { writes: ok, perSecond: ok / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors };
  } finally {
    await s.stop();
  }
}

/** SQLite alone, in this process: WAL, synchronous=FULL, one row (a stored ConfigMap's size) per transaction. */
function sqliteFullBaseline(): { tx: number; perSecond: number } {
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-bench-sqlite-"));
  const db = new Database(join(dir, "baseline.db"));
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.exec("CREATE TABLE objects (key TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, rv INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (key, ns, name)) WITHOUT ROWID");
    const insert = db.prepare("INSERT INTO objects (key, ns, name, rv, data) VALUES (?, ?, ?, ?, ?)");
    const row = JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "w0-0", namespace: "default", labels: { bench: "writes" } }, data: { i: "0", payload: "x".repeat(200) } });
    const one = db.transaction((i: number) => insert.run("/configmaps", "default", `r${i}`, i, row));
    let n = 0;
    const start = performance.now();
    const end = start + seconds * 1000;
    while (performance.now() < end && n < maxWrites) one(n++);
    return { tx: n, perSecond: n / ((performance.now() - start) / 1000) };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const durable = await storeRun([]);
const baseline = sqliteFullBaseline();
const unsafe = await storeRun(["--unsafe-no-fsync"]);
const f = (r: Run) => `${r.writes} creates in ${seconds} s = ${r.perSecond.toFixed(0)} writes/s; latency p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms; errors ${r.errors}`;
console.log(`store writes, ${concurrency} concurrent clients:`);
console.log(`  durable (fdatasync before the reply, group commit): ${f(durable)}`);
console.log(`  SQLite alone, synchronous=FULL, one row per transaction: ${baseline.tx} transactions = ${baseline.perSecond.toFixed(0)} tx/s`);
console.log(`  ratio durable store / SQLite FULL ceiling: ${(durable.perSecond / baseline.perSecond).toFixed(2)}`);
console.log(`  --unsafe-no-fsync (acknowledged before fdatasync; a power cut can lose writes): ${f(unsafe)}`);
