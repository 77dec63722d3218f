// What one held SSH connection costs the controller (issue 14's memory at 1,000 machines): the
// mesh DNS holds one per host for its event stream. This process opens N connections through
// hosts/ssh.ts (the controller's own settings: the parsed key, no Nagle, keepalives) to an ssh2
// server in a child process on loopback, starts a long-lived command on each as the DNS stream
// does, and reads its own RSS and heap after a full collection at 0, N/2 and N connections.
// The server is ssh2's, in its own process, so its memory is not counted here.
//
//   node --expose-gc dist/bench/ssh-memory.js [--connections N]   (default 500, at most 2,000)
import { spawn } from "node:child_process";
import { once } from "node:events";
import { generateEd25519 } from "../lab/keys.js";
import { connect, type ConnectedSession, type StreamHandle } from "../hosts/ssh.js";

const MAX_CONNECTIONS = 2000;

// Accepts any public key (a loopback benchmark), answers every exec with a command that never
// ends, prints its port on stdout. Its host key comes in BENCH_HOST_KEY (OpenSSH format).
const SERVER = `
import ssh2 from "ssh2";
const server = new ssh2.Server({ hostKeys: [process.env.BENCH_HOST_KEY] }, (client) => {
  client.on("error", () => {});
  client.on("authentication", (ctx) => ctx.accept());
  client.on("ready", () => client.on("session", (accept) => {
    const session = accept();
    session.on("exec", (acceptExec) => { const ch = acceptExec(); ch.on("error", () => {}); });
  }));
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1 || n > MAX_CONNECTIONS) throw new Error(`${name}: a whole number from 1 to ${MAX_CONNECTIONS}, got ${process.argv[i + 1]}`);
  return n;
}

const gc = (globalThis as { gc?: () => void }).gc;
async function settled(): Promise<{ rssMb: number; heapMb: number; externalMb: number }> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 200));
  }
  const m = process.memoryUsage();
  return { rssMb: m.rss / 2 ** 20, heapMb: m.heapUsed / 2 ** 20, externalMb: (m.external + m.arrayBuffers) / 2 ** 20 };
}

async function main(): Promise<void> {
  if (!gc) throw new Error("run it with node --expose-gc (the figures are read after full collections)");
  const n = arg("--connections", 500);
  const hostKey = generateEd25519("bench-host");
  const server = spawn(process.execPath, ["--input-type=module", "-e", SERVER], {
    stdio: ["ignore", "pipe", "inherit"],
    cwd: new URL("../../", import.meta.url).pathname,
    env: { ...process.env, BENCH_HOST_KEY: hostKey.privateKey },
  });
  try {
    const [chunk] = (await once(server.stdout, "data")) as [Buffer];
    const port = Number(chunk.toString().trim());
    if (!Number.isInteger(port)) throw new Error(`the ssh2 server printed no port: ${chunk.toString()}`);
    const key = generateEd25519("bench");
    const target = { host: "127.0.0.1", port, user: "root", privateKey: key.privateKey, keySource: "bench key" };
    const held: Array<{ s: ConnectedSession; h: StreamHandle }> = [];
    // One connection first: loads ssh2's code and crypto, which the controller has loaded anyway.
    const first = await connect(target);
    held.push({ s: first, h: first.stream("cat", {}, () => undefined) });
    const rows: Array<{ connections: number; rssMb: number; heapMb: number; externalMb: number }> = [{ connections: 1, ...(await settled()) }];
    for (const upTo of [Math.ceil(n / 2), n]) {
      while (held.length < upTo) {
        const batch = Array.from({ length: Math.min(50, upTo - held.length) }, () => connect(target));
        for (const s of await Promise.all(batch)) held.push({ s, h: s.stream("cat", {}, () => undefined) });
      }
      rows.push({ connections: upTo, ...(await settled()) });
    }
    console.log(`Held SSH connections, each with a long-lived command (hosts/ssh.ts to ssh2's server in another process on loopback); Node ${process.version}`);
    console.log("| connections | RSS MB | heap used MB | external + ArrayBuffers MB |\n| --- | --- | --- | --- |");
    for (const r of rows) console.log(`| ${r.connections} | ${r.rssMb.toFixed(1)} | ${r.heapMb.toFixed(1)} | ${r.externalMb.toFixed(1)} |`);
    const a = rows[0]!;
    const b = rows[rows.length - 1]!;
    const per = (x: number, y: number) => (((y - x) * 1024) / (b.connections - a.connections)).toFixed(1);
    console.log(
      `per connection: RSS ${per(a.rssMb, b.rssMb)} KB, heap ${per(a.heapMb, b.heapMb)} KB, external ${per(a.externalMb, b.externalMb)} KB; ×1,000: RSS ${(((b.rssMb - a.rssMb) * 1000) / (b.connections - a.connections)).toFixed(0)} MB`,
    );
    for (const { s, h } of held) {
      h.close();
      s.close();
    }
  } finally {
    server.kill();
  }
}

main().catch((err: unknown) => {
  console.error(`bench/ssh-memory: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
