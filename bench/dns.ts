// Mesh DNS (issue 13) on 8 lab hosts in one MeshNetwork, `dockmesh up` in the lab's controller
// namespace. Containers run with --dns <their host's resolver> (Machine.status.networks[].dns.address:
// lab hosts have no systemd-resolved). Measures, from outside the controller:
//   start     a container started on host A resolves (<name>.<A>.<zone>) from a container on host B;
//             A and B rotate over the hosts; timed from `docker run -d` returning, and from before it
//   removal   after `docker rm -f` on A, the name is NXDOMAIN from B (same timings)
//   burst     8 hosts × N containers started at once: until every name resolves from one host, and
//             the records-file writes it cost per host (inotify on the hosts' files: bench/dns-writes.ts)
//   idle CPU  CPU seconds of the processes in each host's network namespace over an idle window with
//             DNS off (spec.dns.enabled=false; the baseline), then the same window with DNS on
// Lookups run in a long-lived container on B: a bounded nslookup loop (bench/dns-poll.ts) every
// BENCH_POLL_MS (default 20 ms plus the lookup's own time), lines timestamped as they arrive.
// Targets: start → resolvable ≤ 2 s at p95; removal → gone ≤ 2 s at p95; idle host CPU near zero.
//   sudo node dist/bench/dns.js          (npm run bench:dns)
// Environment: BENCH_SAMPLES=24 BENCH_BURST=10 BENCH_SECONDS=60 BENCH_POLL_MS=20 BENCH_HOSTS=8
//   BENCH_LOG=<file> (the controller's log) BENCH_LOG_LEVEL=info
//   BENCH_PREFIX/BENCH_LABNET/BENCH_NAT_FIRST/BENCH_NAT_LAST/BENCH_API_PORT/BENCH_METRICS_PORT (bench/dns-lab.ts)
import { writeFileSync } from "node:fs";
import type { Machine } from "../api/types.generated.js";
import { startMeshEnv, eventually, sleep, type MeshEnv } from "../lab/mesh-env.js";
import { hostNames, requireRoot, table } from "./lab-setup.js";
import { sshLogins } from "../lab/lab-checks.js";
import { metricSum, scrape, storeRv } from "./lab-metrics.js";
import { DNS_BENCH, DNS_MESH, dnsMeshYaml, loadavg, percentile, spread } from "./dns-lab.js";
import { BURST_SCRIPT, ContainerPoll, POLL_SCRIPT } from "./dns-poll.js";
import { RecordsWatch, type WriteCounts } from "./dns-writes.js";
import { CPU_GROUPS, cpuBetween, machineCpuMs, sampleNetns, type CpuGroup, type NetnsSample } from "./dns-cpu.js";

const num = (name: string, fallback: number, min: number, max: number): number => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name}=${process.env[name]}: give an integer from ${min} to ${max}`);
  return v;
};

const RECORDS = `/etc/dockmesh/dns/${DNS_MESH.iface}/records/mesh`;
/** Lookups per poll loop: at ~25–40 ms each, well past the 2 s targets. */
const POLL_MAX = 600;
const POLL_TIMEOUT_MS = 40_000;

interface Window {
  ms: number;
  /** host → CPU ms per group. */
  cpu: Map<string, Record<CpuGroup, number>>;
  machineCpuMs: number;
  sshLogins: number;
  sshCommands: number;
  machineReconciles: number;
  apiWrites: number;
}

async function idleWindow(env: MeshEnv, hosts: readonly string[], seconds: number, metricsUrl: string): Promise<Window> {
  const ns = (h: string) => env.lab.host(h).netns;
  const m0 = await scrape(metricsUrl);
  const rv0 = await storeRv(env);
  const logins0 = hosts.reduce((a, h) => a + sshLogins(env.lab, h), 0);
  const c0 = machineCpuMs();
  const t0 = performance.now();
  const before = new Map<string, NetnsSample>(hosts.map((h) => [h, sampleNetns(ns(h))]));
  await sleep(seconds * 1000);
  const after = new Map<string, NetnsSample>(hosts.map((h) => [h, sampleNetns(ns(h))]));
  const ms = performance.now() - t0;
  const c1 = machineCpuMs();
  const m1 = await scrape(metricsUrl);
  const rv1 = await storeRv(env);
  const d = (name: string, labels: Record<string, string> = {}) => metricSum(m1, name, labels) - metricSum(m0, name, labels);
  return {
    ms,
    cpu: new Map(hosts.map((h) => [h, cpuBetween(before.get(h)!, after.get(h)!)])),
    machineCpuMs: c1 - c0,
    sshLogins: hosts.reduce((a, h) => a + sshLogins(env.lab, h), 0) - logins0,
    sshCommands: d("dockmesh_ssh_roundtrip_seconds_count"),
    machineReconciles: d("dockmesh_reconcile_total", { kind: "Machine" }),
    apiWrites: rv1 - rv0,
  };
}

const total = (r: Record<CpuGroup, number>) => CPU_GROUPS.reduce((a, g) => a + r[g], 0);

interface Timed {
  /** From before the docker command to the answer. */
  fromStart: number;
  /** From the docker command returning to the answer. */
  fromReturn: number;
  /** Records-file replacements / write commands summed over all hosts, for this change. */
  replacements: number;
  commands: number;
}

const sumCounts = (m: Map<string, WriteCounts>) =>
  [...m.values()].reduce((a, c) => ({ replacements: a.replacements + c.replacements, commands: a.commands + c.commands }), { replacements: 0, commands: 0 });

async function main(): Promise<void> {
  requireRoot("bench/dns");
  const n = num("BENCH_HOSTS", 8, 2, 9);
  const samples = num("BENCH_SAMPLES", 24, 1, 200);
  const burst = num("BENCH_BURST", 10, 1, 50);
  const windowS = num("BENCH_SECONDS", 60, 10, 600);
  const pollMs = num("BENCH_POLL_MS", 20, 5, 1000);
  const every = (pollMs / 1000).toFixed(3);
  const hosts = hostNames(n);
  const load0 = await loadavg();
  console.error(`dns: loadavg at start ${load0}; lab ${DNS_BENCH.prefix} (${DNS_BENCH.labnet}), ${n} hosts…`);
  const env = await startMeshEnv({
    prefix: DNS_BENCH.prefix,
    labnet: DNS_BENCH.labnet,
    natLans: DNS_BENCH.natLans,
    hosts: hosts.map((name) => ({ name })),
    port: DNS_BENCH.apiPort,
    // dockmesh's defaults (resync 5 min, Ready check 30 s); log level info (debug lines cost CPU).
    resyncPeriod: "5m",
    extraArgs: ["--metrics-bind-address", `:${DNS_BENCH.metricsPort}`, "--log-level", process.env.BENCH_LOG_LEVEL ?? "info"],
  });
  const metricsUrl = `http://${env.lab.controllerAddress}:${DNS_BENCH.metricsPort}/metrics`;
  let watch: RecordsWatch | undefined;
  const polls: ContainerPoll[] = [];
  const poll = (host: string, script: string, args: readonly string[]) => {
    const p = new ContainerPoll(env.lab, host, "probe", script, args);
    polls.push(p);
    return p;
  };
  try {
    // 1. The mesh with DNS off: the baseline window.
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + dnsMeshYaml(false) + env.machineYaml(hosts));
    await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=300s", ...hosts.map((h) => `machine/${h}`)], undefined, 320_000);
    await sleep(10_000); // settle: handshakes recorded, status written
    console.error(`dns: mesh Ready, DNS off; idle window ${windowS} s…`);
    const off = await idleWindow(env, hosts, windowS, metricsUrl);

    // 2. DNS on: every resolver serving, every host's file naming every gateway.
    const tOn = performance.now();
    await env.kubectlOk(["patch", "meshnetwork", DNS_MESH.name, "--type", "merge", "-p", JSON.stringify({ spec: { dns: { enabled: true } } })]);
    await env.kubectlOk(["wait", "--for=condition=DNSReady", "--timeout=180s", ...hosts.map((h) => `machine/${h}`)], undefined, 200_000);
    const gw = new Map<string, string>();
    for (const h of hosts) {
      const m = await env.getJson<Machine>(["get", "machine", h]);
      const a = m.status?.networks?.find((x) => x.dns)?.dns?.address;
      if (!a) throw new Error(`${h}: no resolver address in status.networks[].dns`);
      gw.set(h, a);
    }
    const gwLines = hosts.map((h) => `${gw.get(h)} ${h}.${DNS_MESH.zone}\n`);
    for (const h of hosts) {
      await eventually(
        `${h}: every gateway in ${RECORDS}`,
        async () => {
          const text = (await env.lab.exec(h, ["cat", RECORDS])).stdout;
          return gwLines.every((l) => text.includes(l)) ? true : undefined;
        },
        60_000,
        250,
      );
    }
    const dnsServingMs = performance.now() - tOn;
    console.error(`dns: DNS serving on every host ${(dnsServingMs / 1000).toFixed(1)} s after the patch; starting probes…`);
    const runArgs = (h: string) => ["--network", DNS_MESH.dockerNetwork, "--dns", gw.get(h)!, env.lab.image];
    await Promise.all(hosts.map((h) => env.lab.runContainer(h, "probe", [...runArgs(h), "sleep", "2147483647"])));
    for (const h of hosts) {
      await eventually(
        `probes in ${h}'s file`,
        async () => {
          const text = (await env.lab.exec(h, ["cat", RECORDS])).stdout;
          return hosts.every((x) => text.includes(` probe.${x}.${DNS_MESH.zone}\n`)) ? true : undefined;
        },
        30_000,
        250,
      );
    }
    watch = new RecordsWatch(env.lab, hosts, DNS_MESH.iface);
    await sleep(10_000);
    console.error(`dns: idle window ${windowS} s with DNS on…`);
    const w0 = watch.counts();
    const on = await idleWindow(env, hosts, windowS, metricsUrl);
    const idleWrites = sumCounts(watch.since(w0));

    // 3. Start → resolvable, removal → gone, A and B rotating.
    const up: Timed[] = [];
    const down: Timed[] = [];
    const pairs: string[] = [];
    for (let k = 0; k < samples; k++) {
      const a = hosts[k % n]!;
      const b = hosts[(k + 1 + Math.floor(k / n)) % n] === a ? hosts[(k + 2) % n]! : hosts[(k + 1 + Math.floor(k / n)) % n]!;
      pairs.push(`${a}→${b}`);
      const name = `s${k}`;
      const fqdn = `${name}.${a}.${DNS_MESH.zone}`;
      const p1 = poll(b, POLL_SCRIPT, ["up", fqdn, String(POLL_MAX), every]);
      await p1.waitFor(/^first absent 1$/, 15_000, `${fqdn} from ${b}: first lookup (NXDOMAIN expected)`);
      const c0 = watch.counts();
      const t0 = performance.now();
      await env.lab.execOk(a, ["docker", "run", "-d", "--name", name, ...runArgs(a), "sleep", "2147483647"]);
      const t1 = performance.now();
      const got = await p1.waitFor(/^done /, POLL_TIMEOUT_MS, `${fqdn} resolving from ${b}`);
      const ip = await env.lab.containerIp(a, name, DNS_MESH.dockerNetwork);
      if (got.text.split(" ")[2] !== ip) throw new Error(`${fqdn} from ${b} answered ${got.text}, the container's address is ${ip}`);
      await sleep(700); // trailing writes of this change
      up.push({ fromStart: got.at - t0, fromReturn: got.at - t1, ...sumCounts(watch.since(c0)) });

      const p2 = poll(b, POLL_SCRIPT, ["down", fqdn, String(POLL_MAX), every]);
      await p2.waitFor(/^first present /, 15_000, `${fqdn} from ${b}: first lookup (an answer expected)`);
      const c1 = watch.counts();
      const t2 = performance.now();
      await env.lab.execOk(a, ["docker", "rm", "-f", name]);
      const t3 = performance.now();
      const gone = await p2.waitFor(/^done /, POLL_TIMEOUT_MS, `${fqdn} gone from ${b}`);
      await sleep(700);
      down.push({ fromStart: gone.at - t2, fromReturn: gone.at - t3, ...sumCounts(watch.since(c1)) });
      console.error(`  ${k + 1}/${samples} ${a}→${b}: up ${Math.round(up.at(-1)!.fromReturn)} ms, gone ${Math.round(down.at(-1)!.fromReturn)} ms`);
    }

    // 4. Burst: every host starts N containers at once; all names looked up from h1.
    const names = hosts.flatMap((h) => Array.from({ length: burst }, (_, i) => `b${i}.${h}.${DNS_MESH.zone}`));
    const pb = poll(hosts[0]!, BURST_SCRIPT, [String(POLL_MAX * 4), every, ...names]);
    await pb.waitFor(/^first$/, 15_000, "burst lookup loop");
    await sleep(500);
    const cb = watch.counts();
    const tg = performance.now();
    const runAll = `for i in $(seq 0 $(($1 - 1))); do docker run -d --name "b$i" --network "$2" --dns "$3" "$4" sleep 2147483647 >/dev/null & done; wait`;
    const started = await Promise.all(
      hosts.map(async (h) => {
        await env.lab.execOk(h, ["sh", "-c", runAll, "sh", String(burst), DNS_MESH.dockerNetwork, gw.get(h)!, env.lab.image], { timeoutMs: 300_000 });
        return performance.now() - tg;
      }),
    );
    const allRun = Math.max(...started);
    const doneLine = await pb.waitFor(/^done /, 300_000, `all ${names.length} burst names resolving from ${hosts[0]}`);
    const allResolved = doneLine.at - tg;
    const okLines = pb.lines.filter((l) => l.text.startsWith("ok "));
    const resolvedAt = okLines.map((l) => l.at - tg);
    await sleep(3000); // trailing writes
    const burstWrites = watch.since(cb);
    // Every answer is the container's address on its host.
    const answered = new Map(okLines.map((l) => [l.text.split(" ")[1]!, l.text.split(" ")[2]!]));
    for (const h of hosts) {
      const out = await env.lab.execOk(h, [
        "docker",
        "inspect",
        "--format",
        `{{.Name}} {{(index .NetworkSettings.Networks "${DNS_MESH.dockerNetwork}").IPAddress}}`,
        ...Array.from({ length: burst }, (_, i) => `b${i}`),
      ]);
      for (const line of out.trim().split("\n")) {
        const [cname, ip] = line.replace(/^\//, "").split(" ");
        const fq = `${cname}.${h}.${DNS_MESH.zone}`;
        if (answered.get(fq) !== ip) throw new Error(`burst: ${fq} answered ${answered.get(fq)}, the container's address is ${ip}`);
      }
    }
    for (const p of polls) await p.ended();
    const load1 = await loadavg();

    // --- report ---
    const s = (ms: number) => (ms / 1000).toFixed(2);
    console.log(
      `\nMesh DNS (issue 13): ${n} lab hosts, one MeshNetwork (zone ${DNS_MESH.zone}, DNS defaults), containers with --dns <host's resolver>; lookups every ~${pollMs} ms + lookup time from a container on B`,
    );
    console.log(`loadavg at start: ${load0}; at end: ${load1} (2 cores; other labs may run on this machine)`);
    console.log(`DNS serving on every host (DNSReady, every gateway in every file) ${s(dnsServingMs)} s after spec.dns.enabled=true\n`);
    console.log(`Start → resolvable, removal → gone, from another host (${samples} samples; A→B: ${pairs.join(" ")}), ms:\n`);
    const avg = (xs: number[]) => (xs.reduce((x, y) => x + y, 0) / xs.length).toFixed(1);
    console.log(
      table(
        ["measure", "p50", "p95", "max", "target"],
        [
          ["start: from `docker run -d` returning", ...spread(up.map((x) => x.fromReturn)), "p95 ≤ 2000"],
          ["start: from before `docker run -d`", ...spread(up.map((x) => x.fromStart)), "—"],
          ["removal: from `docker rm -f` returning", ...spread(down.map((x) => x.fromReturn)), "p95 ≤ 2000"],
          ["removal: from before `docker rm -f`", ...spread(down.map((x) => x.fromStart)), "—"],
        ],
      ),
    );
    console.log(
      `\nRecords writes per change, all ${n} hosts together (mean): start ${avg(up.map((x) => x.replacements))} file replacements / ${avg(up.map((x) => x.commands))} write commands; ` +
        `removal ${avg(down.map((x) => x.replacements))} / ${avg(down.map((x) => x.commands))}  (1 per host = ${n})`,
    );
    const meets = (xs: Timed[]) =>
      percentile(
        xs.map((x) => x.fromReturn),
        95,
      ) <= 2000
        ? "met"
        : "MISSED";
    console.log(`Targets: start p95 ≤ 2 s ${meets(up)}; removal p95 ≤ 2 s ${meets(down)}.`);

    console.log(`\nBurst: ${n} hosts × ${burst} containers started at once (docker run -d in parallel on every host), all ${names.length} names looked up from ${hosts[0]}:\n`);
    const bw = [...burstWrites.entries()];
    console.log(
      table(
        ["measure", "value"],
        [
          ["last `docker run -d` returned (s after go)", `${s(allRun)} (per host ${started.map(s).join(", ")})`],
          ["every name resolves (s after go)", s(allResolved)],
          ["every name resolves (s after the last docker run returned)", s(allResolved - allRun)],
          ["names resolved at p50 / p95 (s after go)", `${s(percentile(resolvedAt, 50))} / ${s(percentile(resolvedAt, 95))}`],
          ["lookup rounds of the poll loop", doneLine.text.split(" ")[1] ?? "?"],
          ["records-file replacements per host (seen by dnsmasq)", bw.map(([h, c]) => `${h} ${c.replacements}`).join(", ")],
          ["write commands per host (incl. unchanged)", bw.map(([h, c]) => `${h} ${c.commands}`).join(", ")],
        ],
      ),
    );

    console.log(
      `\nIdle host CPU (ms) over ${windowS} s windows, processes in each host's network namespace (ssh = sshd and what it runs: the controller's sessions and their commands; docker events = the records half's long-lived \`docker events\` client; docker = dockerd, containerd, shims):\n`,
    );
    const rows = hosts.map((h) => {
      const a = off.cpu.get(h)!;
      const b = on.cpu.get(h)!;
      return [h, ...[a.ssh + a.events, a.docker, total(a), b.ssh, b.events, b.dnsmasq, b.docker, total(b)].map((x) => String(Math.round(x)))];
    });
    const sum = (w: Window, f: (r: Record<CpuGroup, number>) => number) => [...w.cpu.values()].reduce((x, r) => x + f(r), 0);
    const offDm = sum(off, (r) => r.ssh + r.events + r.dnsmasq);
    const onDm = sum(on, (r) => r.ssh + r.events + r.dnsmasq);
    const offAll = sum(off, total);
    const onAll = sum(on, total);
    rows.push([
      "total",
      ...[sum(off, (r) => r.ssh + r.events), sum(off, (r) => r.docker), offAll, sum(on, (r) => r.ssh), sum(on, (r) => r.events), sum(on, (r) => r.dnsmasq), sum(on, (r) => r.docker), onAll].map((x) =>
        String(Math.round(x)),
      ),
    ]);
    console.log(table(["host", "DNS off: ssh", "off: docker", "off: all", "DNS on: ssh", "on: docker events", "on: dnsmasq", "on: docker", "on: all"], rows));
    const ratio = (x: number, y: number) => (y > 0 ? (x / y).toFixed(2) : "∞");
    const perHostMin = (x: number, w: Window) => ((x / n / w.ms) * 60_000).toFixed(0);
    console.log(
      `\nDNS on / DNS off: dockmesh-related (ssh + docker events + dnsmasq) ${ratio(onDm, offDm)} (${Math.round(onDm)} vs ${Math.round(offDm)} ms), whole namespaces ${ratio(onAll, offAll)} (${Math.round(onAll)} vs ${Math.round(offAll)} ms).` +
        `\nPer host and minute: DNS on ${perHostMin(onAll, on)} ms (${((onAll / n / on.ms) * 100).toFixed(2)} % of a core), DNS off ${perHostMin(offAll, off)} ms.` +
        `\nIn the windows (off / on): controller SSH commands ${off.sshCommands} / ${on.sshCommands}, SSH logins ${off.sshLogins} / ${on.sshLogins}, Machine reconciles ${off.machineReconciles} / ${on.machineReconciles}, API writes ${off.apiWrites} / ${on.apiWrites}, ` +
        `records writes (all hosts) - / ${idleWrites.replacements} replacements, ${idleWrites.commands} commands; whole machine busy ${s(off.machineCpuMs)} / ${s(on.machineCpuMs)} CPU-s (all labs).`,
    );
  } finally {
    if (process.env.BENCH_LOG) writeFileSync(process.env.BENCH_LOG, env.log);
    for (const p of polls) p.kill();
    watch?.close();
    await env.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
