// Issue 11, finding 6: the state files inherited the dir's mode. store.db, -wal and -shm were 0644;
// in a pre-existing 0755 --state-dir another user read the SSH private key (a Secret) out of the
// WAL, and a pre-existing 0644 kubeconfig stayed 0644 with the token written into it. At each start
// the dir is now 0700 and every file in it 0600, whatever the umask; foreign owners and links are refused.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { startStore } from "../../store/server.js";
import { startTestStore, tempDir, type TestStore } from "../store/helpers.js";

const marker = "SEC-FILE-MODES-PRIVATE-KEY-MARKER";
const nobody = { uid: 65534, gid: 65534 };

/** Mode (octal string) of every file and dir under `dir`, by relative path. */
function modes(dir: string, rel = ""): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(join(dir, rel))) {
    const p = join(rel, name);
    const st = statSync(join(dir, p));
    out.set(p, (st.mode & 0o777).toString(8));
    if (st.isDirectory()) for (const [k, v] of modes(dir, p)) out.set(k, v);
  }
  return out;
}

function assertPrivate(stateDir: string, when: string): Map<string, string> {
  assert.equal((statSync(stateDir).mode & 0o777).toString(8), "700", `${when}: state dir mode`);
  const m = modes(stateDir);
  for (const [p, mode] of m) assert.equal(mode, p === "pki" ? "700" : "600", `${when}: mode of ${p}`);
  return m;
}

/** Runs `cat path` as nobody:nogroup without supplementary groups. */
function readAsNobody(path: string): { ok: boolean; out: string } {
  const r = spawnSync("setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat", path], { encoding: "utf8", timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** A parent dir others may traverse (mkdtemp's is 0700), so only the state dir's own modes protect it. */
function openParent(prefix: string): string {
  const parent = tempDir(prefix);
  chmodSync(parent, 0o755);
  return parent;
}

async function writeSecret(store: TestStore): Promise<void> {
  const r = await store.http("POST", "/api/v1/namespaces/default/secrets", {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "ssh" },
    type: "kubernetes.io/ssh-auth",
    stringData: { "ssh-privatekey": marker },
  });
  assert.equal(r.status, 201, r.text);
}

describe("security: modes of the state dir and its files (issue 11, finding 6)", () => {
  const parents: string[] = [];
  after(() => {
    for (const p of parents) rmSync(p, { recursive: true, force: true });
  });

  it("a pre-existing 0755 dir with a 0644 kubeconfig: 0700/0600 after start and after writes (umask 0); nobody reads nothing", async () => {
    const parent = openParent("sec-modes");
    parents.push(parent);
    const stateDir = join(parent, "state");
    mkdirSync(stateDir, { mode: 0o755 });
    chmodSync(stateDir, 0o755);
    writeFileSync(join(stateDir, "kubeconfig"), "# an old kubeconfig\n", { mode: 0o644 });
    chmodSync(join(stateDir, "kubeconfig"), 0o644);
    // Control: the method below does see a readable file.
    writeFileSync(join(parent, "readable"), "x", { mode: 0o644 });
    chmodSync(join(parent, "readable"), 0o644);
    assert.ok(readAsNobody(join(parent, "readable")).ok, "nobody cannot read a 0644 file: the test cannot tell");

    const old = process.umask(0);
    let store: TestStore;
    try {
      store = await startTestStore({}, stateDir);
    } finally {
      process.umask(old);
    }
    try {
      assertPrivate(stateDir, "after start");
      await writeSecret(store);
      const after = assertPrivate(stateDir, "after a write");
      assert.ok(after.has("store.db-wal") && after.has("store.db-shm"), `no WAL yet: ${[...after.keys()].join(", ")}`);
      for (const p of ["store.db", "store.db-wal", "store.db-shm", "kubeconfig", "token", "store.pid", "pki/ca.key", "pki/server.key", "pki/ca.crt"]) {
        const r = readAsNobody(join(stateDir, p));
        assert.ok(!r.ok, `nobody read ${p}`);
        assert.match(r.out, /Permission denied/, `${p}: ${r.out}`);
      }
    } finally {
      await store.close();
    }
  });

  it("a dir an older version left 0755 with 0644 files: made private again at the next start", async () => {
    const parent = openParent("sec-modes-old");
    parents.push(parent);
    const stateDir = join(parent, "state");
    const first = await startTestStore({}, stateDir);
    await writeSecret(first);
    await first.close();
    chmodSync(stateDir, 0o755);
    chmodSync(join(stateDir, "pki"), 0o755);
    for (const [p, mode] of modes(stateDir)) if (mode !== "755") chmodSync(join(stateDir, p), 0o644);
    assert.ok(readAsNobody(join(stateDir, "store.db")).ok, "setup: the loosened database is readable");

    const second = await startTestStore({}, stateDir);
    try {
      assertPrivate(stateDir, "after restart");
      await writeSecret(second).catch(() => undefined); // exists already: any write will do
      await second.http("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: "sec-modes" } });
      assertPrivate(stateDir, "after a write");
      assert.ok(existsSync(join(stateDir, "store.db-wal")));
      const r = readAsNobody(join(stateDir, "store.db-wal"));
      assert.ok(!r.ok && !r.out.includes(marker), "nobody read the WAL");
    } finally {
      await second.close();
    }
  });

  it("a state dir that is a symbolic link to a dir of the same user is followed and made private", async () => {
    const parent = openParent("sec-modes-link");
    parents.push(parent);
    const target = join(parent, "elsewhere");
    mkdirSync(target, { mode: 0o755 });
    chmodSync(target, 0o755);
    symlinkSync(target, join(parent, "state"));
    const store = await startTestStore({}, join(parent, "state"));
    try {
      assertPrivate(target, "after start");
    } finally {
      await store.close();
    }
  });

  const refusals: Array<{ name: string; setup: (stateDir: string) => void; error: RegExp }> = [
    {
      name: "a state dir owned by another user",
      setup: (d) => {
        mkdirSync(d, { mode: 0o700 });
        chownSync(d, nobody.uid, nobody.gid);
      },
      error: /state.* is owned by uid 65534, not by this process \(uid \d+\)/,
    },
    {
      name: "a key file owned by another user",
      setup: (d) => {
        mkdirSync(join(d, "pki"), { recursive: true, mode: 0o700 });
        writeFileSync(join(d, "pki", "ca.key"), "planted\n", { mode: 0o600 });
        chownSync(join(d, "pki", "ca.key"), nobody.uid, nobody.gid);
      },
      error: /pki\/ca\.key is owned by uid 65534/,
    },
    {
      name: "a kubeconfig that is a symbolic link",
      setup: (d) => {
        mkdirSync(d, { mode: 0o700 });
        writeFileSync(join(d, "..", "elsewhere"), "not ours\n", { mode: 0o644 });
        symlinkSync(join(d, "..", "elsewhere"), join(d, "kubeconfig"));
      },
      error: /kubeconfig must be a regular file \(found a symbolic link\)/,
    },
  ];
  for (const r of refusals) {
    it(`refuses to start with ${r.name}, and says why`, async () => {
      const parent = openParent("sec-modes-refuse");
      parents.push(parent);
      const stateDir = join(parent, "state");
      r.setup(stateDir);
      await assert.rejects(startStore({ stateDir, listen: "127.0.0.1:0" }), r.error);
      assert.ok(!existsSync(join(stateDir, "store.db")), "the store went on and created its database");
    });
  }
});
