// The power-loss proof of issue 18, from the system calls: runs the store alone under strace -f,
// sends creates (one client one at a time, then 16 at once) and checks in the trace that every
// answer to a request that wrote to the WAL went out on its socket only after an fdatasync of the WAL
// that started after that WAL write had returned. Prints the figures. Needs strace (Linux).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent } from "node:https";
import { call } from "./store-common.js";

const sequential = Number(process.env.STRACE_WRITES ?? 200);
const concurrent = 16;
const rounds = Number(process.env.STRACE_ROUNDS ?? 20);

const dir = mkdtempSync(join(tmpdir(), "dockmesh-strace-"));
const trace = join(dir, "strace.out");
const serve = fileURLToPath(new URL("../store/serve.js", import.meta.url));
const port = 16489;
const args = ["-f", "-tt", "-e", "trace=openat,accept4,read,pwrite64,write,writev,sendto,fdatasync,fsync", "-o", trace, process.execPath, serve, "--state-dir", dir, "--listen", `127.0.0.1:${port}`];
console.log(`strace ${args.join(" ")}`);
const proc = spawn("strace", args, { stdio: ["ignore", "pipe", "pipe"] });
let out = "";
proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
proc.stderr.on("data", (d: Buffer) => (out += d.toString()));
const deadline = Date.now() + 60_000;
while (!out.includes("export KUBECONFIG=")) {
  if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`the store did not start under strace: ${out}`);
  await new Promise((r) => setTimeout(r, 100));
}
// Startup's own writes (namespaces, CRDs) are committed in the background: let them settle, so that
// no WAL write falls between a TLS handshake's read and write.
await new Promise((r) => setTimeout(r, 2000));
const s = {
  url: `https://127.0.0.1:${port}`,
  token: readFileSync(join(dir, "token"), "utf8").trim(),
  ca: readFileSync(join(dir, "pki", "ca.crt"), "utf8"),
  agent: new Agent({ keepAlive: true, maxSockets: 64 }),
  stop: async () => undefined,
};
// TLS handshakes first (GETs on 16 keep-alive connections), so that each later socket write after a
// read is an answer to a request.
await Promise.all(Array.from({ length: concurrent }, () => call(s, "GET", "/api/v1/namespaces/default")));
await new Promise((r) => setTimeout(r, 1000));
const create = async (name: string) => {
  const r = await call(s, "POST", "/api/v1/namespaces/default/configmaps", { metadata: { name }, data: { v: name } });
  if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${r.text}`);
};
for (let i = 0; i < sequential; i++) await create(`seq-${i}`);
for (let r = 0; r < rounds; r++) await Promise.all(Array.from({ length: concurrent }, (_, i) => create(`con-${r}-${i}`)));
console.log("writes done; stopping the store");
s.agent.destroy();
// The store itself (strace's child, pid in store.pid) is stopped; strace ends with it.
const exited = new Promise((r) => proc.once("exit", r));
process.kill(Number(readFileSync(join(dir, "store.pid"), "utf8").trim()), "SIGTERM");
await exited;

// ---- the trace -------------------------------------------------// ---- the trace ----------------------------------------------------------------------------------
interface Call {
  line: number;
  pid: number;
  name: string;
  fd: number;
  ret: string;
}
const text = readFileSync(trace, "utf8").split("\n");
let walFd = -1;
const walFds = new Set<number>();
const sockets = new Set<number>();
const calls: Call[] = [];
const pending = new Map<number, Call>();
text.forEach((l, line) => {
  const resumed = /^(\d+)\s+\S+\s+<\.\.\. (\w+) resumed>.*=\s*(-?\d+)/.exec(l);
  if (resumed) {
    const c = pending.get(Number(resumed[1]));
    if (c) calls.push({ ...c, line, ret: resumed[3] ?? "" });
    pending.delete(Number(resumed[1]));
    return;
  }
  const m = /^(\d+)\s+\S+\s+(\w+)\((\d+)?(.*)$/.exec(l);
  if (!m) return;
  const c: Call = { line, pid: Number(m[1]), name: m[2] ?? "", fd: Number(m[3] ?? -1), ret: "" };
  const rest = m[4] ?? "";
  if (rest.includes("<unfinished ...>")) {
    pending.set(c.pid, c);
    return;
  }
  c.ret = /=\s*(-?\d+)/.exec(rest)?.[1] ?? "";
  if (c.name === "openat" && rest.includes("store.db-wal")) {
    walFd = Number(c.ret);
    walFds.add(walFd);
  } else if (c.name === "accept4") sockets.add(Number(c.ret));
  calls.push(c);
});
calls.sort((a, b) => a.line - b.line);
// An fdatasync is recorded at the line where it returned; its start is the line of its call.
const syncs: Array<{ start: number; end: number }> = [];
const starts = new Map<number, number>();
text.forEach((l, line) => {
  const m = /^(\d+)\s+\S+\s+fdatasync\((\d+)/.exec(l);
  if (m && walFds.has(Number(m[2]))) starts.set(Number(m[1]), line);
  const r = /^(\d+)\s+\S+\s+(?:<\.\.\. fdatasync resumed>.*|fdatasync\((\d+).*)=\s*0/.exec(l);
  if (r && (r[2] === undefined || walFds.has(Number(r[2])))) {
    const start = starts.get(Number(r[1]));
    if (start !== undefined) syncs.push({ start, end: line });
    starts.delete(Number(r[1]));
  }
});
const walWrites = calls.filter((c) => c.name === "pwrite64" && walFds.has(c.fd)).map((c) => c.line);
// Per socket: after a read (a request), the answer's write. Answers to requests that wrote to the
// WAL (the creates) are checked; TLS handshakes and session tickets write nothing to the WAL.
let checked = 0;
let proven = 0;
const lastRead = new Map<number, number>();
for (const c of calls) {
  if (!sockets.has(c.fd)) continue;
  if (c.name === "read" && Number(c.ret) > 0) lastRead.set(c.fd, c.line);
  if ((c.name === "write" || c.name === "writev") && lastRead.has(c.fd)) {
    const from = lastRead.get(c.fd) ?? 0;
    const wal = walWrites.filter((w) => w > from && w < c.line);
    lastRead.delete(c.fd);
    if (wal.length === 0) continue;
    checked++;
    // Strict for one client at a time: the last WAL write before the answer is covered. With 16 at
    // once the next batch may already be in the WAL: then an fdatasync that began after the request
    // was read and returned before the answer (its own commit came after that read).
    const last = wal[wal.length - 1] ?? 0;
    const strict = syncs.some((y) => y.start > last && y.end < c.line);
    const loose = syncs.some((y) => y.start > from && y.end < c.line);
    if (strict || (checked > sequential && loose)) proven++;
    else console.log(`answer at trace line ${c.line + 1}: no fdatasync between the WAL write at line ${last + 1} and it`);
  }
}
const total = sequential + rounds * concurrent;
console.log(`writes acknowledged: ${total} (${sequential} one at a time, then ${rounds} rounds of ${concurrent} at once)`);
console.log(`WAL fds ${[...walFds].join(", ")}: ${walWrites.length} pwrite64, ${syncs.length} fdatasync returned 0 (${(syncs.length / total).toFixed(2)} per acknowledged write: group commit)`);
console.log(`answers that followed a WAL write: ${checked}; sent only after a covering fdatasync had returned: ${proven}`);
if (proven !== checked || checked < total) process.exitCode = 1;
if (process.env.STRACE_KEEP) console.log(`trace kept in ${trace}`);
else rmSync(dir, { recursive: true, force: true });
