// Issue 11, finding 5: the API server held unauthenticated connections forever (requestTimeout: 0
// turned Node's header timeout off; 300 half-sent requests stayed open past 75 s). Slow clients of
// every kind must now be closed within the configured timeouts, the number of connections without
// the token is capped, and meanwhile kubectl gets answers and a long-lived watch keeps working.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { after, before, describe, it } from "node:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { sleep, tempDir, waitFor } from "../store/helpers.js";
import { spawnStore, type StoreProcess } from "./store-process.js";

type Kind = "tls, half a request" | "tls, a header byte every 400 ms" | "tls, nothing sent" | "tcp, nothing sent" | "tcp, half a ClientHello";

interface Slow {
  kind: Kind;
  /** When the slow part began: after the handshake for TLS, after connect for TCP. */
  since: number;
  closedAt?: number;
}

// A TLS record header announcing a 512-byte handshake message, and only the start of it.
const halfClientHello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

function openSlow(store: StoreProcess, kind: Kind): Promise<Slow> {
  return new Promise((resolve, reject) => {
    const slow: Slow = { kind, since: 0 };
    const track = (s: Socket) => {
      s.on("error", () => {});
      // Read what the server sends (a 408): unread data would hold back the end of the stream.
      s.resume();
      s.on("close", () => {
        slow.closedAt = Date.now();
        if (slow.since === 0) reject(new Error(`${kind}: closed before it was set up`));
      });
    };
    if (kind.startsWith("tls")) {
      const s = tlsConnect({ host: store.host, port: store.port, ca: store.caCertPem, servername: "localhost" }, () => {
        slow.since = Date.now();
        if (kind === "tls, half a request") s.write("GET /api/v1/namespaces HTTP/1.1\r\nHost: localhost\r\nAuthoriz");
        if (kind === "tls, a header byte every 400 ms") {
          // Never idle, so only the header timeout can close it; bounded: at most 25 bytes.
          s.write("GET /api HTTP/1.1\r\n");
          let n = 0;
          const t = setInterval(() => (++n > 25 || s.destroyed ? clearInterval(t) : s.write("X")), 400);
          s.once("close", () => clearInterval(t));
        }
        resolve(slow);
      });
      track(s);
    } else {
      const s = tcpConnect({ host: store.host, port: store.port }, () => {
        slow.since = Date.now();
        if (kind === "tcp, half a ClientHello") s.write(halfClientHello);
        resolve(slow);
      });
      track(s);
    }
  });
}

/** Opens `count` slow connections of each kind, `batch` at a time. */
async function openMany(store: StoreProcess, counts: Array<[Kind, number]>, batch = 50): Promise<Slow[]> {
  const kinds = counts.flatMap(([k, n]) => Array.from({ length: n }, () => k));
  const out: Slow[] = [];
  for (let i = 0; i < kinds.length; i += batch) out.push(...(await Promise.all(kinds.slice(i, i + batch).map((k) => openSlow(store, k)))));
  return out;
}

/** `kubectl get namespaces --watch-only`, collecting its output. */
function startWatch(store: StoreProcess, stateDir: string) {
  const child = spawn("kubectl", ["get", "namespaces", "--watch-only", "-o", "name"], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", KUBECONFIG: store.kubeconfigPath, HOME: stateDir, KUBECACHEDIR: join(stateDir, "kubectl-cache") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  return {
    output: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: () => child.kill("SIGTERM"),
  };
}

async function kubectlAnswers(store: StoreProcess, boundMs: number): Promise<number[]> {
  const took: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    const r = await store.kubectl(["get", "namespaces", "-o", "name"], boundMs * 2);
    took.push(Date.now() - t0);
    assert.equal(r.code, 0, `kubectl get namespaces failed while slow connections were open: ${r.stderr}`);
    assert.match(r.stdout, /namespace\/default/);
  }
  assert.ok(Math.max(...took) < boundMs, `kubectl took ${took.join(", ")} ms (bound ${boundMs} ms) while slow connections were open`);
  return took;
}

describe("security: slow connections to the API server (issue 11, finding 5)", () => {
  const timeoutMs = 2000;
  let stateDir: string;
  let store: StoreProcess;

  before(async () => {
    stateDir = tempDir("sec-conn");
    store = await spawnStore({
      stateDir,
      listen: "127.0.0.1:0",
      connections: { handshakeTimeoutMs: timeoutMs, headersTimeoutMs: timeoutMs, idleTimeoutMs: timeoutMs, maxUnauthenticatedConnections: 1000, maxConnections: 2000 },
    });
  });
  after(async () => {
    await store?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("closes 400 slow connections of five kinds within the timeouts; kubectl answers and a watch idle for longer stays open", async () => {
    const watch = startWatch(store, stateDir);
    const watchStart = Date.now();
    const slow = await openMany(store, [
      ["tls, half a request", 100],
      ["tls, a header byte every 400 ms", 50],
      ["tls, nothing sent", 100],
      ["tcp, nothing sent", 100],
      ["tcp, half a ClientHello", 50],
    ]);
    const took = await kubectlAnswers(store, 5000);
    // Node checks header deadlines every timeout/4; 2.5 s more for a loaded machine.
    const deadline = timeoutMs + timeoutMs / 4 + 2500;
    await waitFor("the slow connections to be closed", () => slow.every((s) => s.closedAt !== undefined), deadline + 1000, 100).catch(() => undefined);
    const byKind = new Map<Kind, number[]>();
    for (const s of slow) byKind.set(s.kind, [...(byKind.get(s.kind) ?? []), s.closedAt === undefined ? Infinity : s.closedAt - s.since]);
    for (const [kind, lifetimes] of byKind) {
      const open = lifetimes.filter((l) => l === Infinity).length;
      assert.equal(open, 0, `${kind}: ${open} of ${lifetimes.length} still open ${deadline + 1000} ms later`);
      const max = Math.max(...lifetimes);
      const min = Math.min(...lifetimes);
      assert.ok(max <= deadline, `${kind}: closed after up to ${max} ms, want ≤ ${deadline}`);
      assert.ok(min >= timeoutMs - 300, `${kind}: one closed after ${min} ms, before the ${timeoutMs} ms timeout`);
      console.log(`# ${kind}: ${lifetimes.length} closed after ${min}-${max} ms`);
    }
    console.log(`# kubectl get namespaces with 400 slow connections open: ${took.join(", ")} ms`);

    // The watch has been silent for longer than every timeout; it must still deliver.
    await sleep(Math.max(0, watchStart + 3 * timeoutMs - Date.now()));
    const created = await store.kubectl(["create", "namespace", "sec-watch-probe"]);
    assert.equal(created.code, 0, created.stderr);
    await waitFor("the watch to report the new namespace", () => watch.output().includes("namespace/sec-watch-probe"), 10_000);
    assert.ok(watch.alive(), `kubectl get -w exited: ${watch.output()}`);
    watch.stop();
  });
});

describe("security: cap on connections without the token (issue 11, finding 5)", () => {
  const cap = 50;
  let stateDir: string;
  let store: StoreProcess;

  before(async () => {
    stateDir = tempDir("sec-conn-cap");
    // Timeouts long enough that only the cap can close anything during the test.
    store = await spawnStore({ stateDir, listen: "127.0.0.1:0", connections: { handshakeTimeoutMs: 60_000, headersTimeoutMs: 60_000, idleTimeoutMs: 60_000, maxUnauthenticatedConnections: cap } });
  });
  after(async () => {
    await store?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("closes the oldest connections past the cap, not kubectl's watch; kubectl still answers", async () => {
    const watch = startWatch(store, stateDir);
    await waitFor("the watch to start", async () => {
      await sleep(200);
      return watch.alive();
    });
    await sleep(1000);
    const slow = await openMany(store, [
      ["tls, half a request", 100],
      ["tls, nothing sent", 100],
      ["tcp, nothing sent", 100],
    ]);
    await waitFor(`all but ${cap} slow connections to be closed`, () => slow.filter((s) => s.closedAt === undefined).length <= cap, 5000).catch(() => undefined);
    const open = slow.filter((s) => s.closedAt === undefined);
    assert.ok(open.length <= cap, `${open.length} of ${slow.length} connections without the token still open, cap ${cap}`);
    // The newest survive: eviction goes oldest first.
    assert.ok(
      slow.slice(-cap + 10).every((s) => s.closedAt === undefined),
      "one of the newest connections was closed",
    );
    const took = await kubectlAnswers(store, 5000);
    console.log(`# ${slow.length - open.length} of ${slow.length} closed by the cap of ${cap}; kubectl: ${took.join(", ")} ms`);
    const created = await store.kubectl(["create", "namespace", "sec-cap-probe"]);
    assert.equal(created.code, 0, created.stderr);
    await waitFor("the watch to report the new namespace", () => watch.output().includes("namespace/sec-cap-probe"), 10_000);
    watch.stop();
  });
});
