// hosts/ssh.ts onRoundTrip: every command run over a real ssh2 connection (to an in-process
// ssh2 server) is reported once, with its duration and whether it worked; unsubscribing stops it.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import ssh2 from "ssh2";
import { generateEd25519 } from "../../lab/keys.js";
import { connect, onRoundTrip, type RoundTrip } from "../../hosts/ssh.js";

const { Server } = ssh2;
let server: InstanceType<typeof Server>;
let port = 0;
const clientKey = generateEd25519("client");

describe("SSH round trip observer", () => {
  before(async () => {
    server = new Server({ hostKeys: [generateEd25519("host").privateKey] }, (client) => {
      client.on("authentication", (ctx) => (ctx.method === "publickey" ? ctx.accept() : ctx.reject(["publickey"])));
      client.on("ready", () => {
        client.on("session", (accept) => {
          const session = accept();
          session.on("exec", (acceptExec, _reject, info) => {
            const stream = acceptExec();
            // Answers after 30 ms, failing for scripts that say so.
            setTimeout(() => {
              stream.write(`ran ${info.command.length} bytes`);
              stream.exit(info.command.includes("fail") ? 3 : 0);
              stream.end();
            }, 30);
          });
        });
      });
      client.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("one report per command, with its duration; none after unsubscribing", async () => {
    const seen: RoundTrip[] = [];
    const off = onRoundTrip((rt) => seen.push(rt));
    const session = await connect({ host: "127.0.0.1", port, user: "root", privateKey: clientKey.privateKey, keySource: "test key" });
    try {
      const r1 = await session.exec("true");
      const r2 = await session.exec("echo fail");
      assert.equal(r1.code, 0);
      assert.equal(r2.code, 3);
      await new Promise((r) => setImmediate(r));
      assert.equal(seen.length, 2);
      for (const rt of seen) {
        assert.ok(rt.durationMs >= 25 && rt.durationMs < 5_000, `a round trip of ${rt.durationMs} ms`);
        assert.equal(rt.ok, true, "a command that ran and exited non-zero still completed its round trip");
      }
      off();
      await session.exec("true");
      assert.equal(seen.length, 2);
    } finally {
      session.close();
    }
  });

  test("an observer that throws does not break the command", async () => {
    const off = onRoundTrip(() => {
      throw new Error("observer bug");
    });
    const session = await connect({ host: "127.0.0.1", port, user: "root", privateKey: clientKey.privateKey, keySource: "test key" });
    try {
      assert.equal((await session.exec("true")).code, 0);
    } finally {
      off();
      session.close();
    }
  });
});
