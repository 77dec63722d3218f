// hosts/ssh.ts stream(): lines as they arrive (split across packets or not), a bound on a line's
// length, close() ending the command, and a lost connection as Unreachable. Against ssh2's server
// in process on loopback (a real SSH connection).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import ssh2 from "ssh2";
import { generateEd25519 } from "../../lab/keys.js";
import { connect, OutputTooLargeError, type StreamingHostSession } from "../../hosts/ssh.js";
import { HostError } from "../../hosts/errors.js";

const { Server, utils } = ssh2;
const clientKey = generateEd25519("client");
const allowed = (utils.parseKey(clientKey.publicKey) as ssh2.ParsedKey).getPublicSSH();
let server: InstanceType<typeof Server>;
let port = 0;
let stdinEnded = false;

before(async () => {
  server = new Server({ hostKeys: [generateEd25519("host").privateKey] }, (client) => {
    client.on("authentication", (ctx) => (ctx.method === "publickey" && ctx.key.data.equals(allowed) ? ctx.accept() : ctx.reject(["publickey"])));
    client.on("ready", () => {
      client.on("session", (accept) => {
        accept().on("exec", (acceptExec, _reject, info) => {
          const s = acceptExec();
          if (info.command.includes("LINES")) {
            s.write("one\ntw");
            setTimeout(() => s.write("o\nthree\n\nlast-without-newline"), 20);
            setTimeout(() => (s.exit(0), s.end()), 40);
          } else if (info.command.includes("LONG")) {
            s.write("short\n" + "x".repeat(3000));
          } else if (info.command.includes("WAIT")) {
            s.write("ready\n");
            s.on("end", () => (stdinEnded = true));
            s.resume();
          } else if (info.command.includes("LOSE")) {
            s.write("ready\n");
            setTimeout(() => client.end(), 30);
          }
        });
      });
    });
    client.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as AddressInfo).port;
});

after(() => server.close());

const session = (): Promise<StreamingHostSession> => connect({ host: "127.0.0.1", port, user: "root", privateKey: clientKey.privateKey, keySource: "test" });

test("lines arrive one by one, whatever the packets; a last line without newline counts", async () => {
  const s = await session();
  const lines: string[] = [];
  const h = s.stream("LINES", {}, (l) => lines.push(l));
  assert.deepEqual(await h.done, { code: 0, stderr: "" });
  assert.deepEqual(lines, ["one", "two", "three", "", "last-without-newline"]);
  s.close();
});

test("a line longer than the bound ends the command with OutputTooLarge", async () => {
  const s = await session();
  const lines: string[] = [];
  const h = s.stream("LONG", { maxLineBytes: 1024 }, (l) => lines.push(l));
  await assert.rejects(h.done, (e) => e instanceof OutputTooLargeError && /one line of a streaming command/.test(e.message));
  assert.deepEqual(lines, ["short"]);
  s.close();
});

test("close() ends the command: the host sees its input end", async () => {
  const s = await session();
  const lines: string[] = [];
  const h = s.stream("WAIT", {}, (l) => lines.push(l));
  while (lines.length === 0) await new Promise((r) => setTimeout(r, 5));
  h.close();
  assert.deepEqual(await h.done, { code: null, stderr: "" });
  for (let i = 0; i < 100 && !stdinEnded; i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(stdinEnded, "the host saw the end of the input");
  s.close();
});

test("a connection lost while streaming is Unreachable", async () => {
  const s = await session();
  const h = s.stream("LOSE", {}, () => undefined);
  await assert.rejects(h.done, (e) => e instanceof HostError && e.reason === "Unreachable");
  s.close();
});
