// controllers/dns.ts timing and fan-out, with a fake clock and fake host links (no SSH here):
// many events on many hosts within a window give at most one write per host; unchanged content
// gives none; after a start nothing is written until every member reported or its grace passed;
// a machine leaving the mesh leaves the others' files at once; a resync writes only a file that
// differs from what the host holds (by the digest its look reports).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Subject } from "rxjs";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { FakeClock } from "../../runtime/clock.js";
import { silentLogger } from "../../runtime/log.js";
import type { WatchEvent } from "../../runtime/informer.js";
import { DnsController } from "../../controllers/dns.js";
import type { HostLink, LinkResult } from "../../controllers/dns-link.js";
import type { DockerEvent } from "../../hosts/docker-events.js";
import type { ReportedContainer } from "../../mesh/dns-records.js";
import type { RecordsFile } from "../../hosts/dns-write.js";
import { machine, mesh } from "../support/fixtures.js";
import { sha256 } from "../support/observations.js";

class FakeCache<T extends { metadata: { name?: string; namespace?: string } }> {
  readonly events$ = new Subject<WatchEvent<T>>();
  constructor(public items: T[]) {}
  list(ns?: string): T[] {
    return this.items.filter((x) => ns === undefined || (x.metadata.namespace ?? "default") === ns);
  }
  get(key: string): T | undefined {
    return this.items.find((x) => `${x.metadata.namespace ?? "default"}/${x.metadata.name}` === key);
  }
  set(items: T[]): void {
    this.items = items;
    this.events$.next({ type: "MODIFIED", object: items[0]! });
  }
}

/** A host as the fake links see it: its containers, and every write it got. */
interface FakeHost {
  containers: ReportedContainer[];
  writes: RecordsFile[][];
  inspects: number;
  emit?: (e: DockerEvent) => void;
  reachable: boolean;
  /** What the host's records files hold, by interface. */
  files: Map<string, string>;
  /** The host has no sha256sum: its looks report no digests. */
  noDigests?: boolean;
}

const SUBNETS: Record<string, string> = { h1: "10.210.1.0/24", h2: "10.210.2.0/24", h3: "10.210.3.0/24" };

function setup(opts: { names?: string[]; graceSeconds?: number; resyncMs?: number } = {}) {
  const names = opts.names ?? ["h1", "h2", "h3"];
  const clock = new FakeClock();
  const m: MeshNetwork = {
    ...mesh("m", { interface: "dm0", dockerNetwork: "m", dns: { enabled: true, unreachableGraceSeconds: opts.graceSeconds ?? 30 } }),
    status: { allocations: names.map((n) => ({ machine: n, subnet: SUBNETS[n]! })) },
  };
  const machines = new FakeCache<Machine>(names.map((n) => machine(n)));
  const meshes = new FakeCache<MeshNetwork>([m]);
  const hosts = new Map<string, FakeHost>(names.map((n) => [n, { containers: [], writes: [], inspects: 0, reachable: true, files: new Map() }]));
  const events: string[] = [];
  const connector = (mm: Machine): Promise<LinkResult> => {
    const h = hosts.get(mm.metadata.name ?? "")!;
    if (!h.reachable) return Promise.reject(new Error("unreachable (fake)"));
    const link: HostLink = {
      events(onEvent) {
        h.emit = onEvent;
        queueMicrotask(() => onEvent({ kind: "ready" }));
        return { done: new Promise(() => undefined), close: () => undefined };
      },
      inspect: (nets, ifaces) => {
        h.inspects++;
        const files = new Map(h.noDigests ? [] : ifaces.flatMap((i) => (h.files.has(i) ? [[i, sha256(h.files.get(i)!)] as const] : [])));
        return Promise.resolve({ networks: new Map(nets.map((n) => [n, h.containers.map((c) => ({ ...c }))])), files, dropped: 0 });
      },
      write: (files) => {
        h.writes.push(files.map((f) => ({ ...f })));
        for (const f of files) h.files.set(f.interface, f.text);
        return Promise.resolve({ done: files.map((f) => f.interface), noResolver: [] });
      },
      close: () => undefined,
    };
    return Promise.resolve(link);
  };
  const dns = new DnsController({
    machines,
    meshes,
    connector,
    events: { event: (_o, type, reason, message) => (events.push(`${type} ${reason} ${message}`), Promise.resolve()) },
    clock,
    log: silentLogger(),
    ...(opts.resyncMs !== undefined ? { timings: { resyncMs: opts.resyncMs } } : {}),
  });
  /** Moves the fake clock in small steps, letting promises settle in between. */
  const tick = async (ms: number, step = 5) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step);
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    }
  };
  return { dns, clock, hosts, machines, meshes, m, events, tick };
}

const ctr = (host: string, n: number, name = `c${n}`, aliases: string[] = []): ReportedContainer => ({
  id: `${host}${n}`.padEnd(64, "0").replace(/[^0-9a-f]/g, "f"),
  name: `/${name}`,
  ip: SUBNETS[host]!.replace(/0\/24$/, String(10 + n)),
  aliases,
});

const lastText = (h: FakeHost) => h.writes.at(-1)?.[0]?.text ?? "";

test("N events on M hosts within a window: at most one write per host; unchanged content: none", async () => {
  const { dns, hosts, tick } = setup();
  dns.start();
  await tick(1000);
  for (const [n, h] of hosts) {
    assert.equal(h.writes.length, 1, `${n}: the first write`);
    assert.equal(dns.hostState("default", n)?.stream, "Connected");
  }
  // 20 events on each of 3 hosts within 60 ms, each host gaining a container.
  for (let i = 0; i < 20; i++) {
    for (const [n, h] of hosts) {
      if (i === 0) h.containers.push(ctr(n, 1));
      h.emit!({ kind: "change", type: "container", action: "start" });
    }
    await tick(3, 3);
  }
  await tick(2000);
  for (const [n, h] of hosts) {
    assert.equal(h.writes.length, 2, `${n}: one write for the whole burst`);
    assert.ok(h.inspects <= 3, `${n}: ${h.inspects} looks`);
    for (const x of ["h1", "h2", "h3"]) assert.match(lastText(h), new RegExp(`c1\\.${x}\\.m\\.internal`));
  }
  // Events that change nothing: looks, no writes.
  for (const h of hosts.values()) h.emit!({ kind: "change", type: "network", action: "connect" });
  await tick(2000);
  for (const [n, h] of hosts) assert.equal(h.writes.length, 2, `${n}: unchanged content is not written`);
  assert.equal(dns.hostState("default", "h1")?.records, 2);
  await dns.stop();
});

test("after a start: no write before every member reported, or its grace period passed; then its records are withdrawn", async () => {
  const { dns, hosts, tick } = setup({ graceSeconds: 30 });
  hosts.get("h3")!.reachable = false;
  hosts.get("h1")!.containers.push(ctr("h1", 1));
  dns.start();
  await tick(10_000, 50);
  assert.equal(hosts.get("h1")!.writes.length, 0, "no partial file while h3 has not reported");
  assert.equal(dns.hostState("default", "h3")?.stream, "Unreachable");
  assert.equal(dns.hostState("default", "h3")?.withdrawn, false);
  await tick(21_000, 50);
  assert.equal(hosts.get("h1")!.writes.length, 1, "written once h3 was out for the grace period");
  assert.match(lastText(hosts.get("h1")!), /c1\.h1\.m\.internal/);
  assert.equal(dns.hostState("default", "h3")?.withdrawn, true);
  // h3 comes back: its records join.
  hosts.get("h3")!.reachable = true;
  hosts.get("h3")!.containers.push(ctr("h3", 2));
  await tick(31_000, 50);
  assert.match(lastText(hosts.get("h1")!), /c2\.h3\.m\.internal/);
  assert.equal(dns.hostState("default", "h3")?.stream, "Connected");
  assert.equal(dns.hostState("default", "h3")?.withdrawn, false);
  await dns.stop();
});

test("a machine out of the mesh: its records leave the others' files at once; invalid names: one Event each", async () => {
  const { dns, hosts, meshes, m, events, tick } = setup();
  hosts.get("h2")!.containers.push(ctr("h2", 1), ctr("h2", 2, "bad_", ["evil\nserver=/x/1.1.1.1"]));
  dns.start();
  await tick(1000);
  assert.match(lastText(hosts.get("h1")!), /c1\.h2\.m\.internal/);
  assert.doesNotMatch(lastText(hosts.get("h1")!), /bad|evil|server/);
  assert.equal(events.filter((e) => e.startsWith("Warning InvalidDNSName")).length, 2, events.join("\n"));
  // Looks again: no new Event.
  hosts.get("h2")!.emit!({ kind: "change", type: "container", action: "start" });
  await tick(1000);
  assert.equal(events.length, 2);
  meshes.set([
    {
      ...m,
      status: {
        allocations: [
          { machine: "h1", subnet: SUBNETS.h1! },
          { machine: "h3", subnet: SUBNETS.h3! },
        ],
      },
    },
  ]);
  await tick(100);
  assert.doesNotMatch(lastText(hosts.get("h1")!), /h2/);
  assert.doesNotMatch(lastText(hosts.get("h3")!), /h2/);
  assert.equal(dns.hostState("default", "h2"), undefined);
  await dns.stop();
});

test("a resync writes only a file that differs from the host's (by its digest); a host without digests gets its file again", async () => {
  const { dns, hosts, tick } = setup({ resyncMs: 5_000 });
  hosts.get("h3")!.noDigests = true;
  dns.start();
  await tick(1000);
  for (const [n, h] of hosts) assert.equal(h.writes.length, 1, `${n}: the first write`);
  const first = hosts.get("h1")!.files.get("dm0")!;
  // Someone edits h2's file by hand; h1's stays right.
  hosts.get("h2")!.files.set("dm0", "# edited\n");
  await tick(5_500, 50);
  assert.ok(hosts.get("h1")!.inspects >= 2, "h1 was looked at again");
  assert.equal(hosts.get("h1")!.writes.length, 1, "h1: its file is right: not sent again");
  assert.equal(hosts.get("h2")!.writes.length, 2, "h2: its edited file is written again");
  assert.equal(hosts.get("h2")!.files.get("dm0"), first, "h2 holds the mesh's records again");
  assert.equal(hosts.get("h3")!.writes.length, 2, "h3 reports no digest: written at every resync, as before");
  // A reconnect: a host that still holds the right file gets nothing.
  hosts.get("h1")!.emit!({ kind: "ready" });
  await tick(1000, 50);
  assert.equal(hosts.get("h1")!.writes.length, 1, "h1: right after a reconnect too");
  await dns.stop();
});
