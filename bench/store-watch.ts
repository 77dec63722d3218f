// Watch delivery latency: 1,000 Machines, 10 watchers, a paced stream of updates; the time from
// sending an update to each watcher receiving its event. Prints p50/p99.
import { request } from "node:https";
import { performance } from "node:perf_hooks";
import { call, percentile, startBenchStore, type BenchStore } from "./store-common.js";

const objects = 1000;
const watchers = 10;
const updates = Number(process.env.BENCH_UPDATES ?? 2000);
const ratePerSecond = Number(process.env.BENCH_RATE ?? 200);
const path = "/apis/dockmesh.io/v1alpha1/namespaces/default/machines";

function openWatch(s: BenchStore, rv: string, onEvent: (seq: number) => void): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(`${path}?watch=true&resourceVersion=${rv}`, s.url), { ca: s.ca, headers: { Authorization: `Bearer ${s.token}` } }, (res) => {
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          const ev = JSON.parse(line) as { object: { metadata: { annotations?: Record<string, string> } } };
          const seq = ev.object.metadata.annotations?.["bench/seq"];
          if (seq !== undefined) onEvent(Number(seq));
        }
      });
      resolve(() => req.destroy());
    });
    req.on("error", reject);
    req.end();
  });
}

const s = await startBenchStore();
try {
  for (let i = 0; i < objects; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, objects - i) }, (_, j) =>
        call(s, "POST", path, {
          apiVersion: "dockmesh.io/v1alpha1",
          kind: "Machine",
          metadata: { name: `m${i + j}` },
          spec: { ssh: { host: `10.0.${Math.floor((i + j) / 250)}.${(i + j) % 250}`, privateKeySecretRef: { name: "ssh" } } },
        }),
      ),
    );
  }
  const list = JSON.parse((await call(s, "GET", path)).text) as { metadata: { resourceVersion: string }; items: unknown[] };
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let received = 0;
  const closers = await Promise.all(
    Array.from({ length: watchers }, () =>
      openWatch(s, list.metadata.resourceVersion, (seq) => {
        const t = sentAt.get(seq);
        if (t !== undefined) latencies.push(performance.now() - t);
        received++;
      }),
    ),
  );
  const pending: Array<Promise<{ status: number }>> = [];
  const gap = 1000 / ratePerSecond;
  const start = performance.now();
  for (let seq = 0; seq < updates; seq++) {
    const due = start + seq * gap;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sentAt.set(seq, performance.now());
    // not awaited here: the pace is set by the clock, not by the replies
    pending.push(call(s, "PATCH", `${path}/m${seq % objects}`, { metadata: { annotations: { "bench/seq": String(seq) } } }, "application/merge-patch+json"));
  }
  const replies = await Promise.all(pending);
  const failed = replies.filter((r) => r.status !== 200).length;
  const deadline = performance.now() + 10_000;
  while (received < updates * watchers && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const close of closers) close();
  latencies.sort((a, b) => a - b);
  console.log(`store watch: ${objects} objects, ${watchers} watchers, ${updates} updates at ${ratePerSecond}/s (${failed} failed): ${latencies.length}/${updates * watchers} events delivered`);
  console.log(
    `  delivery latency (update sent → event received) p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms, max ${percentile(latencies, 100).toFixed(2)} ms`,
  );
} finally {
  await s.stop();
}
