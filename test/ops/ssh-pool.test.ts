// hosts/ssh-pool.ts against real OpenSSH sshd on loopback: leases of one target share one
// connection (sshd logs one login) and run commands at the same time over it; a first contact
// (no host key known yet), another key or another expected host key get their own; the last lease
// closes it; a host whose sshd allows one channel a connection (MaxSessions 1) still runs every
// command, on a connection of its own.
import { describe, test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { connect as tcpConnect, createServer } from "node:net";
import { spawn, type ChildProcess } from "node:child_process";
import { generateEd25519 } from "../../lab/keys.js";
import { ensureSystemPackages } from "../../lab/requirements.js";
import { SessionPool } from "../../hosts/ssh-pool.js";
import { fingerprintOf, type SshTarget } from "../../hosts/ssh.js";

const SSHD = { binary: "sshd", paths: ["/usr/sbin/sshd"], pkg: "openssh-server" };

interface Sshd {
  port: number;
  fingerprint: string;
  log: () => string;
  stop: () => void;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });

async function startSshd(dir: string, name: string, maxSessions: number, authorized: string): Promise<Sshd> {
  const host = generateEd25519(`${name}-host`);
  const keyPath = join(dir, `${name}_host_key`);
  writeFileSync(keyPath, host.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, "authorized_keys"), authorized, { mode: 0o600 });
  const port = await freePort();
  const config = join(dir, `${name}_sshd_config`);
  writeFileSync(
    config,
    [
      "ListenAddress 127.0.0.1",
      `Port ${port}`,
      `HostKey ${keyPath}`,
      `PidFile ${join(dir, `${name}.pid`)}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "UseDNS no",
      "LogLevel VERBOSE",
      `MaxSessions ${maxSessions}`,
      "",
    ].join("\n"),
  );
  const logPath = join(dir, `${name}.log`);
  const proc: ChildProcess = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config, "-E", logPath], { stdio: "ignore" });
  const blob = Buffer.from(host.publicKey.trim().split(/\s+/)[1]!, "base64");
  // Listening: a TCP connect succeeds (bounded: 100 tries, 50 ms apart).
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (up) break;
    if (i >= 100 || proc.exitCode !== null) throw new Error(`sshd ${name} did not listen on 127.0.0.1:${port}; its log: ${readLog(logPath)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, fingerprint: fingerprintOf(blob), log: () => readLog(logPath), stop: () => proc.kill() };
}

const readLog = (p: string) => {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
};
/** Logins sshd accepted so far (one per connection). */
const logins = (d: Sshd) =>
  d
    .log()
    .split("\n")
    .filter((l) => l.includes("Accepted publickey")).length;

describe("SSH connection pool on real sshd", () => {
  let dir: string;
  let wide: Sshd;
  let narrow: Sshd;
  const user = userInfo().username;
  const key = generateEd25519("client");
  const other = generateEd25519("other-client");
  const target = (d: Sshd, over: Partial<SshTarget> = {}): SshTarget => ({
    host: "127.0.0.1",
    port: d.port,
    user,
    privateKey: key.privateKey,
    keySource: "test key",
    recordedFingerprint: d.fingerprint,
    ...over,
  });

  // Whatever a test opened is closed after it, passed or failed: an open connection would keep
  // this process (and sshd's session) running.
  const opened: Array<{ close(): void }> = [];
  const held = <T extends { close(): void }>(x: T): T => (opened.push(x), x);
  const leaseFrom = async (pool: SessionPool, t: SshTarget) => held(await pool.lease(t));
  afterEach(() => {
    for (const x of opened.splice(0).reverse()) x.close();
  });

  before(async () => {
    await ensureSystemPackages({ requirements: [SSHD], purpose: "the SSH pool test" });
    // sshd started as root wants its privilege separation directory (Debian's package makes it at boot).
    if (process.getuid?.() === 0 && !existsSync("/run/sshd")) mkdirSync("/run/sshd", { mode: 0o755 });
    dir = mkdtempSync(join(tmpdir(), "dm-sshpool-"));
    const authorized = `${key.publicKey.trim()}\n${other.publicKey.trim()}\n`;
    wide = await startSshd(dir, "wide", 10, authorized);
    narrow = await startSshd(dir, "narrow", 1, authorized);
  });
  after(() => {
    wide?.stop();
    narrow?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("leases of one target share one connection and run commands at once; the last lease closes it", async () => {
    const pool = new SessionPool();
    const before = logins(wide);
    const a = await leaseFrom(pool, target(wide));
    const b = await leaseFrom(pool, target(wide));
    assert.equal(pool.opened, 1, "one connection for two leases");
    assert.equal(pool.size, 1);
    // A long-running stream on one lease while the other runs commands (mesh DNS and a Machine look).
    const lines: string[] = [];
    const stream = held(a.stream("echo ready; cat", {}, (l) => lines.push(l)));
    const [r1, r2] = await Promise.all([b.exec("echo one"), b.exec("echo two", { input: "" })]);
    assert.deepEqual([r1.stdout, r2.stdout], ["one\n", "two\n"]);
    assert.equal(b.fingerprint, wide.fingerprint);
    for (let i = 0; i < 100 && !lines.includes("ready"); i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(lines, ["ready"]);
    b.close();
    b.close(); // idempotent: gives back once
    const c = await leaseFrom(pool, target(wide));
    assert.equal((await c.exec("echo three")).stdout, "three\n", "the connection is still open for the stream's lease");
    c.close();
    stream.close();
    a.close();
    assert.equal(pool.size, 0, "the last lease closed it");
    for (let i = 0; i < 100 && logins(wide) < before + 1; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(logins(wide) - before, 1, "sshd saw one login");
    const d = await leaseFrom(pool, target(wide));
    assert.equal(pool.opened, 2, "a lease after the last one closed connects anew");
    assert.equal((await d.exec("echo four")).stdout, "four\n");
    d.close();
  });

  test("not shared: a first contact, another key, another expected host key", async () => {
    const pool = new SessionPool();
    const kept = await leaseFrom(pool, target(wide));
    const cases: Array<[string, SshTarget]> = [
      ["no host key known yet (first contact)", target(wide, { recordedFingerprint: undefined })],
      ["another private key", target(wide, { privateKey: other.privateKey })],
    ];
    for (const [what, t] of cases) {
      const n = pool.opened;
      const s = await leaseFrom(pool, t);
      assert.equal(pool.opened, n + 1, `${what}: a connection of its own`);
      assert.equal((await s.exec("echo x")).stdout, "x\n", what);
      s.close();
    }
    // Another expected host key: its own connection, and the handshake refuses the real one.
    const n = pool.opened;
    await assert.rejects(pool.lease(target(wide, { recordedFingerprint: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" })), /host key changed/);
    assert.equal(pool.opened, n + 1);
    assert.equal(pool.size, 1, "only the held connection is in the pool");
    kept.close();
  });

  test("MaxSessions 1: a lease whose channel the shared connection refuses runs on a connection of its own", async () => {
    const pool = new SessionPool();
    const a = await leaseFrom(pool, target(narrow));
    const lines: string[] = [];
    const stream = held(a.stream("echo ready; cat", {}, (l) => lines.push(l)));
    for (let i = 0; i < 100 && !lines.includes("ready"); i++) await new Promise((r) => setTimeout(r, 20));
    const b = await leaseFrom(pool, target(narrow));
    assert.equal(pool.opened, 1);
    const r = await b.exec("echo refused-then-own");
    assert.equal(r.stdout, "refused-then-own\n");
    assert.equal(pool.opened, 2, "the command ran on a second connection");
    // Every further command too (each on a connection of its own: a second channel on one could
    // race sshd freeing the slot of the first), 5 in a row.
    for (let i = 0; i < 5; i++) assert.equal((await b.exec(`echo again ${i}`)).stdout, `again ${i}\n`);
    assert.equal(pool.opened, 7);
    b.close();
    stream.close();
    a.close();
  });
});
