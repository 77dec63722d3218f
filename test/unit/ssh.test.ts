// hosts/ssh.ts against real SSH servers (ssh2's server, in process, on loopback): key
// authentication, host keys pinned or recorded, a bastion, sudo, and what each failure says.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect as netConnect, type AddressInfo } from "node:net";
import ssh2 from "ssh2";
import { generateEd25519 } from "../../lab/keys.js";
import { connect, fingerprintOf, pinFingerprint, publicKeyLine, type SshTarget } from "../../hosts/ssh.js";
import { HostError } from "../../hosts/errors.js";

const { Server, utils } = ssh2;
const clientKey = generateEd25519("client");
const otherKey = generateEd25519("other");
const allowed = (utils.parseKey(clientKey.publicKey) as ssh2.ParsedKey).getPublicSSH();

interface Running {
  server: InstanceType<typeof Server>;
  port: number;
  hostKey: string;
  fingerprint: string;
  commands: string[];
}

async function sshServer(): Promise<Running> {
  const hostKey = generateEd25519("host");
  const commands: string[] = [];
  const server = new Server({ hostKeys: [hostKey.privateKey] }, (client) => {
    let user = "";
    client.on("authentication", (ctx) => {
      user = ctx.username;
      if (ctx.method === "publickey" && ctx.key.data.equals(allowed)) ctx.accept();
      else ctx.reject(["publickey"]);
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        accept().on("exec", (acceptExec, _reject, info) => {
          const stream = acceptExec();
          commands.push(info.command);
          if (info.command.includes("lose-connection")) {
            // The host goes away mid-command: no exit status, the connection just ends.
            setTimeout(() => client.end(), 50);
            return;
          }
          if (user === "nosudo" && info.command.startsWith("sudo -n ")) {
            stream.stderr.write("sudo: a password is required\n");
            stream.exit(1);
          } else {
            stream.write(`ok as ${user}`);
            stream.exit(0);
          }
          stream.end();
        });
      });
      // Port forwarding, for use as a bastion: only to loopback.
      client.on("tcpip", (accept, reject, info) => {
        if (!info.destIP.startsWith("127.")) return reject();
        const out = netConnect(info.destPort, info.destIP, () => {
          const ch = accept();
          ch.pipe(out).pipe(ch);
        });
        out.on("error", () => reject());
      });
    });
    client.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const blob = hostKey.publicKey.split(" ")[1]!;
  return { server, port: (server.address() as AddressInfo).port, hostKey: hostKey.publicKey.split(" ").slice(0, 2).join(" "), fingerprint: fingerprintOf(Buffer.from(blob, "base64")), commands };
}

let target: Running;
let bastion: Running;
const to = (s: Running, extra: Partial<SshTarget> = {}): SshTarget => ({
  host: "127.0.0.1",
  port: s.port,
  user: "root",
  privateKey: clientKey.privateKey,
  keySource: "Secret default/ssh key ssh-privatekey",
  ...extra,
});

async function failure(t: SshTarget): Promise<HostError> {
  try {
    (await connect(t)).close();
  } catch (err) {
    assert.ok(err instanceof HostError, String(err));
    return err;
  }
  assert.fail("connect should have failed");
}

describe("SSH to hosts", () => {
  before(async () => {
    target = await sshServer();
    bastion = await sshServer();
  });
  after(async () => {
    for (const s of [target, bastion]) await new Promise<void>((r) => s.server.close(() => r()));
  });

  test("connects, records the host key's fingerprint, runs a command as the user", async () => {
    const s = await connect(to(target));
    try {
      assert.equal(s.fingerprint, target.fingerprint);
      assert.deepEqual(await s.exec("echo hi"), { code: 0, stdout: "ok as root", stderr: "" });
      assert.equal(s.roundTrips, 1);
    } finally {
      s.close();
    }
  });

  test("arguments reach the host single-quoted; a non-root user goes through sudo -n", async () => {
    const s = await connect(to(target, { user: "deploy" }));
    try {
      await s.exec('printf %s "$1"', { args: ["$(reboot); `id`"] });
      assert.equal(target.commands.at(-1), `sudo -n sh -c 'printf %s "$1"' sh '$(reboot); \`id\`'`);
    } finally {
      s.close();
    }
  });

  for (const c of [
    { name: "a pin as a known_hosts key", pin: () => target.hostKey },
    { name: "a pin as a fingerprint", pin: () => target.fingerprint },
  ]) {
    test(`host key: ${c.name} is accepted`, async () => {
      (await connect(to(target, { hostKeyPin: c.pin() }))).close();
      assert.equal(pinFingerprint(c.pin()), target.fingerprint);
    });
  }

  test("host key: a wrong pin is refused, naming both keys and the field to change", async () => {
    const e = await failure(to(target, { hostKeyPin: bastion.hostKey }));
    assert.equal(e.reason, "HostKeyMismatch");
    assert.match(
      e.message,
      new RegExp(
        `expected ${esc(bastion.fingerprint)} \\(pinned in spec\\.ssh\\.hostKey\\), got ${esc(target.fingerprint)}; refusing to connect.*set spec\\.ssh\\.hostKey to ${esc(target.fingerprint)}`,
      ),
    );
  });

  test("host key: a key different from the one recorded on first contact is refused", async () => {
    const e = await failure(to(target, { recordedFingerprint: bastion.fingerprint }));
    assert.equal(e.reason, "HostKeyMismatch");
    assert.match(e.message, /\(recorded on first contact\)/);
  });

  test("a rejected key names the Secret and the public key to authorize", async () => {
    const e = await failure(to(target, { privateKey: otherKey.privateKey }));
    assert.equal(e.reason, "AuthFailed");
    assert.match(
      e.message,
      /^ssh root@127\.0\.0\.1:\d+: key in Secret default\/ssh key ssh-privatekey rejected; add its public key \(ssh-ed25519 AAAA[^ )]*\) to ~root\/\.ssh\/authorized_keys on 127\.0\.0\.1$/,
    );
    // The whole key, ready to paste (issue 12: it was cut after 60 characters).
    assert.ok(e.message.includes(`(${publicKeyLine(otherKey.privateKey)})`), e.message);
    assert.ok(!e.message.includes("PRIVATE KEY"));
  });

  test("a key that is not a key is KeyInvalid, without echoing the Secret's content", async () => {
    const e = await failure(to(target, { privateKey: "hunter2 not a key" }));
    assert.equal(e.reason, "KeyInvalid");
    assert.ok(!e.message.includes("hunter2"));
  });

  test("a public key where the private key belongs is KeyInvalid, naming the Secret and the fix", async () => {
    const e = await failure(to(target, { privateKey: clientKey.publicKey }));
    assert.equal(e.reason, "KeyInvalid");
    assert.match(e.message, /Secret default\/ssh key ssh-privatekey is not a usable SSH private key \(no private key in it\); store an unencrypted OpenSSH or PEM private key there/);
  });

  test("one key, many connections: each logs in, and a wrong key after it is still refused (the parsed-key cache is keyed by the key)", async () => {
    for (let i = 0; i < 3; i++) {
      const s = await connect(to(target));
      s.close();
    }
    assert.equal((await failure(to(target, { privateKey: otherKey.privateKey }))).reason, "AuthFailed");
    (await connect(to(target))).close();
  });

  test("a connection lost mid-command is Unreachable, at once, saying so", async () => {
    const s = await connect(to(target));
    try {
      const t0 = Date.now();
      await assert.rejects(s.exec("lose-connection"), (err: unknown) => {
        assert.ok(err instanceof HostError, String(err));
        assert.equal(err.reason, "Unreachable");
        assert.match(err.message, /^ssh root@127\.0\.0\.1:\d+: the connection was lost while a command ran; is the host up and reachable from the controller\?$/);
        return true;
      });
      assert.ok(Date.now() - t0 < 5_000, "not after the command's timeout");
    } finally {
      s.close();
    }
  });

  test("nothing listening: Unreachable, connection refused", async () => {
    const free = await new Promise<number>((resolve) => {
      const s = new Server({ hostKeys: [generateEd25519("x").privateKey] }, () => {});
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const e = await failure(to(target, { port: free }));
    assert.equal(e.reason, "Unreachable");
    assert.match(e.message, /connection refused; is sshd running and listening on port \d+\?/);
  });

  test("sudo that wants a password is SudoFailed, with the sudoers line to add", async () => {
    const s = await connect(to(target, { user: "nosudo" }));
    try {
      await assert.rejects(s.exec("true"), (e: HostError) => e.reason === "SudoFailed" && /add "nosudo ALL=\(ALL\) NOPASSWD: ALL" to \/etc\/sudoers\.d\/dockmesh/.test(e.message));
    } finally {
      s.close();
    }
  });

  test("through a bastion: both host keys recorded, same rules for both", async () => {
    const s = await connect(to(target, { bastion: { ...to(bastion) } }));
    try {
      assert.equal(s.fingerprint, target.fingerprint);
      assert.equal(s.bastionFingerprint, bastion.fingerprint);
      assert.equal((await s.exec("true")).stdout, "ok as root");
    } finally {
      s.close();
    }
    const e = await failure(to(target, { bastion: { ...to(bastion), hostKeyPin: target.hostKey } }));
    assert.equal(e.reason, "HostKeyMismatch");
    assert.match(e.message, /^bastion: .*set spec\.ssh\.bastion\.hostKey to /);
    const t = await failure(to(target, { recordedFingerprint: bastion.fingerprint, bastion: to(bastion) }));
    assert.match(t.message, /^ssh root@127\.0\.0\.1:\d+: host key changed/);
  });

  test("a bastion that cannot reach the host says so", async () => {
    const e = await failure({ ...to(target), host: "127.0.0.1", port: 1, bastion: to(bastion) });
    assert.equal(e.reason, "Unreachable");
    assert.match(e.message, /via bastion 127\.0\.0\.1: the bastion could not open a connection to 127\.0\.0\.1:1/);
  });
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
