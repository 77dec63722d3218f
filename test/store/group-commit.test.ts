// Durability (issue 18): a write is answered, and its watch event sent, only after an fdatasync of
// the WAL that covers it; writes arriving while one fdatasync runs share the next one. A power cut
// cannot be made here: the fdatasync is replaced by a held one (heldFdatasync) that the test lets
// go, around the real fs.fdatasync, to see what waits for it.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { fdatasync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startTestStore, sleep, waitFor, type TestStore } from "./helpers.js";

interface HeldSync {
  fdatasync: (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => void;
  held: () => number;
  calls: () => number;
  /** Lets every held fdatasync run (the real one). */
  release: () => void;
  hold: (on: boolean) => void;
}

function heldFdatasync(): HeldSync {
  let holding = false;
  let calls = 0;
  const queue: Array<() => void> = [];
  return {
    fdatasync: (fd, done) => {
      calls++;
      const run = () => fdatasync(fd, done);
      if (holding) queue.push(run);
      else run();
    },
    held: () => queue.length,
    calls: () => calls,
    release: () => {
      for (const run of queue.splice(0)) run();
    },
    hold: (on) => {
      holding = on;
    },
  };
}

describe("group commit", () => {
  let s: TestStore | undefined;
  after(async () => {
    await s?.dispose();
  });

  it("answers and watch events wait for the fdatasync; concurrent writes share one", async () => {
    const sync = heldFdatasync();
    s = await startTestStore({ fdatasync: sync.fdatasync });
    const store = s;
    // A watch from now on, to see when the event of the held write is sent.
    const events: string[] = [];
    const rv = (await store.http("GET", "/api/v1/namespaces/default/configmaps")).json.metadata.resourceVersion as string;
    const ctrl = new AbortController();
    const { request } = await import("node:https");
    const watch = request(
      new URL(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}`, store.url),
      { ca: store.caCertPem, headers: { Authorization: `Bearer ${store.token}` }, signal: ctrl.signal },
      (res) => {
        res.setEncoding("utf8");
        res.on("data", (d: string) => events.push(...d.split("\n").filter((l) => l !== "")));
        res.on("error", () => undefined);
      },
    );
    watch.on("error", () => undefined);
    watch.end();
    await sleep(200);

    sync.hold(true);
    const first = store.http("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: "first" } });
    await waitFor("the first write's fdatasync to be held", () => sync.held() === 1, 5_000, 5);
    let answered = false;
    void first.then(() => (answered = true));
    // Sixteen more arrive while that fdatasync runs.
    const more = Array.from({ length: 16 }, (_, i) => store.http("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: `more-${i}` } }));
    await sleep(300);
    assert.equal(answered, false, "a write was answered before its fdatasync");
    assert.equal(events.length, 0, "a watcher saw a write before its fdatasync");
    assert.equal(sync.held(), 1, "one fdatasync at a time");
    // The first write is committed (in the WAL file) before its fdatasync began.
    assert.ok(readFileSync(join(store.stateDir, "store.db-wal")).includes("first"));

    const callsBefore = sync.calls();
    sync.release();
    assert.equal((await first).status, 201);
    // The sixteen were committed together when that fdatasync ended, and share the next one.
    await waitFor("the second fdatasync to be held", () => sync.held() === 1, 5_000, 5);
    assert.equal(sync.calls(), callsBefore + 1, "the sixteen writes share one fdatasync");
    await sleep(100);
    assert.equal(events.length, 1, "only the first write's event is out");
    sync.hold(false);
    sync.release();
    for (const r of await Promise.all(more)) assert.equal(r.status, 201, r.text);
    await waitFor("every event", () => events.length === 17, 5_000);
    ctrl.abort();
  });

  it("an fdatasync that fails fails the writes waiting for it (500) and every write after", async () => {
    const dir = s?.stateDir;
    await s?.dispose();
    s = undefined;
    assert.ok(dir);
    let fail = false;
    s = await startTestStore({
      fdatasync: (fd, done) => {
        if (fail) done(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }));
        else fdatasync(fd, done);
      },
    });
    const store = s;
    assert.equal((await store.http("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: "ok" } })).status, 201);
    fail = true;
    const r = await store.http("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: "lost" } });
    assert.equal(r.status, 500);
    assert.match(String(r.json.message), /fdatasync of .*store\.db-wal failed; writes can no longer be made durable: restart the store/);
    fail = false;
    const later = await store.http("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: "later" } });
    assert.equal(later.status, 500, "no write is promised durable after a failed fdatasync");
  });
});
