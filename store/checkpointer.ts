// Worker thread that checkpoints the store's SQLite WAL into the database file. A checkpoint
// fsyncs; run on the main thread (SQLite's autocheckpoint) it stalled requests and watch delivery
// for ~10 ms every few hundred commits. PASSIVE never blocks the writer.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const db = new Database((workerData as { path: string }).path);
db.pragma("busy_timeout = 1000");
parentPort?.on("message", (msg: string) => {
  if (msg !== "checkpoint") return;
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // busy or closing: the next request tries again
  }
});
parentPort?.on("close", () => db.close());
