// SimulatedHostFleet over real SSH (hosts/ssh.ts → ssh2 Server on loopback): the controller's own
// converge steps (hosts/converge.ts) configure simulated hosts, counts one round trip per command, sees peers handshake
// once both sides are configured, and a second converge is one observe with nothing to do.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { planAll, type HostFacts, type NetworkPlan } from "../../mesh/plan.js";
import { generateKeyPair } from "../../mesh/keys.js";
import { connect, type SshTarget } from "../../hosts/ssh.js";
import { applyAndCheck, namesOf, preflight, stepsFor, type ConvergeResult } from "../../hosts/converge.js";
import { applyThenObserve } from "../../hosts/apply.js";
import { freshApply } from "../../hosts/fresh.js";
import { hostFacts, observeHost, type HostObservation } from "../../hosts/observe.js";
import { HostError } from "../../hosts/errors.js";
import { peerReports } from "../../controllers/machine-conditions.js";
import { generateEd25519 } from "../../lab/keys.js";
import { SimulatedHostFleet, simulatedAddress } from "../../bench/sim/simulated-fleet.js";
import { EVENTS_SCRIPT, parseEventLine, type DockerEvent } from "../../hosts/docker-events.js";
import { inspectContainers } from "../../hosts/dns-inspect.js";
import { writeRecords } from "../../hosts/dns-write.js";
import { mesh, pub } from "../support/fixtures.js";

const names = ["m0", "m1", "m2"];
/** Hosts of the fresh-host tests, in a mesh of their own. */
const freshNames = ["f0", "f1"];
const clientKey = generateEd25519("bench");
const wgKeys = new Map([...names, ...freshNames].map((n, i) => [n, generateKeyPair((len) => new Uint8Array(len).fill(i + 11))]));
const pubs = new Map([...wgKeys].map(([k, v]) => [k, v.publicKey]));
const machines = names.map((n, i) => pub(n, i));
const freshMachines = freshNames.map((n, i) => pub(n, i + names.length));
let fleet: SimulatedHostFleet;

function target(name: string, privateKey = clientKey.privateKey): SshTarget {
  const h = fleet.get(name)!;
  return { host: h.sshHost, port: h.sshPort, user: "root", privateKey, keySource: "test key" };
}

function plan(name: string, facts = {}): NetworkPlan[] {
  const members = freshNames.includes(name) ? freshMachines : machines;
  return planAll([mesh("mesh", { interface: "dm0", dockerNetwork: "apps", cidr: "10.0.0.0/16" })], members, pubs, new Map([[`default/${name}`, facts]])).hosts.find((h) => h.machine === name)!
    .networks;
}

/**
 * What MachineReconciler does per reconcile (controllers/machine-converge.ts), with the steps of
 * hosts/converge.ts: one session; `fresh`: guessed facts, a first converge in one round trip;
 * else observe → plan from the host's facts → diff → apply and observe.
 */
async function reconcile(name: string, fresh?: HostFacts): Promise<{ result: ConvergeResult; roundTrips: number }> {
  const session = await connect(target(name));
  const keys = { ...wgKeys.get(name)!, previous: [] };
  const probes = (nets: readonly NetworkPlan[]) =>
    nets.flatMap((n) => n.wireguard.peers.map((p) => ({ iface: "dm0", source: "10.0.0.1", publicKey: p.publicKey!, address: p.allowedIPs[0]!.replace(/0\/\d+$/, "1") })));
  try {
    let names = namesOf(plan(name), []);
    let applied: ConvergeResult["applied"] = [];
    let obs: HostObservation | undefined;
    const guessed = fresh ? plan(name, fresh) : [];
    const first = fresh ? freshApply(guessed, keys.privateKey, keys.publicKey, fresh) : undefined;
    if (first) {
      names = namesOf(guessed, []);
      const r = await applyThenObserve(session, first.steps, { ...names, probes: probes(guessed) }, { guard: first.guard });
      applied = r.done;
      obs = r.observation;
    }
    obs ??= await observeHost(session, names, probes(plan(name)));
    const pre = preflight(obs);
    if (pre) throw pre;
    const networks = plan(name, hostFacts(obs));
    const d = stepsFor(networks, keys, obs);
    if (d.steps.length === 0) return { result: { networks, observation: obs, applied, blockers: d.blockers, remaining: [] }, roundTrips: session.roundTrips };
    const r = await applyAndCheck(session, d.steps, networks, keys, { names: namesOf(networks, []), probes: probes(networks), again: probes(networks) });
    return { result: { networks, ...r, applied: [...applied, ...r.applied] }, roundTrips: session.roundTrips };
  } finally {
    session.close();
  }
}

describe("SimulatedHostFleet", () => {
  before(async () => {
    fleet = await SimulatedHostFleet.start({ names, authorizedKey: clientKey.publicKey });
  });
  after(() => fleet.close());

  test("hosts listen on their own loopback addresses", () => {
    assert.deepEqual(
      fleet.hosts.map((h) => h.sshHost),
      [simulatedAddress(0), simulatedAddress(1), simulatedAddress(2)],
    );
    assert.ok(fleet.hosts.every((h) => h.sshHost.startsWith("127.") && h.sshPort > 0));
  });

  test("a first converge configures the host in two round trips (observe; apply and observe); the next is one observe", async () => {
    const first = await reconcile("m0");
    assert.equal(first.roundTrips, 2, "observe, then apply with the observe after it in the same script");
    assert.equal(first.result.applyError, undefined);
    assert.ok(first.result.applied.length > 5);
    assert.deepEqual(first.result.remaining, []);
    const c = fleet.get("m0")!.counters;
    assert.deepEqual(
      { sessions: c.sessions, roundTrips: c.roundTrips, observes: c.observes, applies: c.applies, failures: c.failures },
      { sessions: 1, roundTrips: 2, observes: 2, applies: 1, failures: 0 },
    );
    assert.equal(c.steps, first.result.applied.length);
    const again = await reconcile("m0");
    assert.equal(again.roundTrips, 1);
    assert.deepEqual(again.result.applied, []);
    assert.equal(fleet.get("m1")!.counters.roundTrips, 0, "other hosts untouched");
  });

  test("peers connect once both sides are configured", async () => {
    const nowS = () => Math.floor(Date.now() / 1000);
    let r = (await reconcile("m0")).result;
    assert.ok(peerReports(r.networks, r.observation, nowS()).every((p) => p.state === "NoHandshake"));
    await reconcile("m1");
    r = (await reconcile("m0")).result;
    assert.deepEqual(
      peerReports(r.networks, r.observation, nowS()).map((p) => `${p.machine} ${p.state}`),
      ["m1 Connected", "m2 NoHandshake"],
    );
    await reconcile("m2");
    r = (await reconcile("m0")).result;
    assert.deepEqual(
      peerReports(r.networks, r.observation, nowS()).map((p) => `${p.machine} ${p.state}`),
      ["m1 Connected", "m2 Connected"],
    );
  });

  test("anything but dockmesh's scripts exits 127; a wrong key is refused", async () => {
    const session = await connect(target("m2"));
    try {
      const r = await session.exec("uname -a");
      assert.equal(r.code, 127);
      assert.match(r.stderr, /not a dockmesh script/);
    } finally {
      session.close();
    }
    assert.equal(fleet.get("m2")!.counters.unknown, 1);
    await assert.rejects(connect(target("m2", generateEd25519("other").privateKey)), (err: unknown) => err instanceof HostError && err.reason === "AuthFailed");
  });

  test("mesh DNS's commands: an open event stream, the look at the containers and the records writes, as hosts/ parses them", async () => {
    await reconcile("m1"); // the resolver configured: its dnsmasq.conf exists
    const entry = fleet.get("m1")!;
    const before = { ...entry.counters };
    const session = await connect(target("m1"));
    const events: DockerEvent[] = [];
    const stream = session.stream(EVENTS_SCRIPT, {}, (line) => {
      const e = parseEventLine(line);
      assert.ok(e, `an event line: ${line}`);
      events.push(e);
    });
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(ok(), what);
    };
    try {
      await until("the ready marker", () => events.length === 1);
      assert.deepEqual(events, [{ kind: "ready" }]);
      // No containers yet: the network is listed with none; a network that is not there is not listed.
      const empty = await inspectContainers(session, ["apps", "nothere"]);
      assert.deepEqual([...empty.networks], [["apps", []]]);
      assert.equal(empty.dropped, 0);
      // A container starts: its events come down the open stream, the next look shows it.
      const web = entry.host.runContainer("web", "apps", { service: "web" });
      await until("two events", () => events.length === 3);
      assert.deepEqual(events.slice(1), [
        { kind: "change", type: "network", action: "connect" },
        { kind: "change", type: "container", action: "start" },
      ]);
      const seen = await inspectContainers(session, ["apps"]);
      assert.equal(seen.dropped, 0);
      assert.deepEqual(seen.networks.get("apps"), [{ id: web.id, name: "/web", ip: "10.0.1.2", aliases: ["web", "web"], service: "web" }]);
      // Writes: written, then unchanged; a mesh whose resolver is not configured gets nothing.
      const text = "# Managed by dockmesh: zone mesh.internal\n10.0.1.1 m1.mesh.internal\n";
      assert.deepEqual(await writeRecords(session, [{ interface: "dm0", text }]), { done: ["dm0"], noResolver: [] });
      assert.equal(entry.host.files.get("/etc/dockmesh/dns/dm0/records/mesh")?.content, text);
      assert.deepEqual(
        await writeRecords(session, [
          { interface: "dm0", text },
          { interface: "dm9", text },
        ]),
        { done: ["dm0"], noResolver: ["dm9"] },
      );
      assert.ok(entry.host.removeContainer("web"));
      await until("three more events", () => events.length === 6);
    } finally {
      stream.close();
      session.close();
    }
    assert.deepEqual(await stream.done, { code: null, stderr: "" }, "ended by the client");
    const c = entry.counters;
    assert.deepEqual(
      { streams: c.dnsStreams - before.dnsStreams, inspects: c.dnsInspects - before.dnsInspects, writes: c.dnsWrites - before.dnsWrites, noResolver: c.dnsNoResolver - before.dnsNoResolver },
      { streams: 1, inspects: 2, writes: 2, noResolver: 1 },
    );
    assert.equal(c.failures, before.failures, 'a write\'s "not yet" and a stream the client ended are no failures');
    assert.equal(c.unknown, before.unknown);
  });

  test("a host going down drops its open connections (mesh DNS's event stream too)", async () => {
    const entry = fleet.get("m2")!;
    const session = await connect(target("m2"));
    const lines: string[] = [];
    const stream = session.stream(EVENTS_SCRIPT, {}, (l) => lines.push(l));
    for (let i = 0; i < 200 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    entry.down = true;
    try {
      await assert.rejects(stream.done, (err: unknown) => err instanceof HostError && err.reason === "Unreachable");
    } finally {
      entry.down = false;
      session.close();
    }
  });

  test("many sessions at once each reach their own host", async () => {
    const before = fleet.snapshot();
    await Promise.all(Array.from({ length: 30 }, (_, i) => reconcile(names[i % 3]!)));
    for (const n of names) assert.equal(fleet.get(n)!.counters.roundTrips - before.get(n)!.roundTrips, 10, n);
  });
});

// A first converge in one round trip (hosts/fresh.ts), on hosts of their own: the tests above
// count on theirs having nothing configured.
describe("SimulatedHostFleet: fresh hosts", () => {
  before(async () => {
    fleet = await SimulatedHostFleet.start({ names: freshNames, authorizedKey: clientKey.publicKey });
  });
  after(() => fleet.close());

  test("a fresh host whose facts were guessed right: one round trip, then one observe with nothing to do", async () => {
    // The simulated hosts' facts, as the controller would have learnt them from another host.
    const facts: HostFacts = { uplinkMtu: 1500, rawTable: true, inputDrops: false, systemd: true, resolver: { dnsmasq: true, resolvedStub: false } };
    const before = fleet.snapshot().get("f0")!;
    const first = await reconcile("f0", facts);
    assert.equal(first.roundTrips, 1, "guard, first apply and observe in one script");
    assert.equal(first.result.applyError, undefined);
    assert.deepEqual(first.result.remaining, []);
    assert.ok(first.result.applied.some((s) => s.op === "fresh_network") && first.result.applied.some((s) => s.op === "wg_up"));
    assert.equal(fleet.get("f0")!.counters.steps - before.steps, first.result.applied.length);
    const again = await reconcile("f0", facts);
    assert.equal(again.roundTrips, 1, "a host with our interface is not fresh: the guard applies nothing, the diff finds nothing");
    assert.deepEqual(again.result.applied, []);
    const after = fleet.get("f0")!.counters;
    assert.equal(after.failures - before.failures, 0);
  });

  test("a fresh host whose facts were guessed wrong: the guard applies nothing, an ordinary pass follows in the same converge", async () => {
    const wrong: HostFacts = { uplinkMtu: 9001, rawTable: true, inputDrops: false, systemd: true, resolver: { dnsmasq: true, resolvedStub: false } };
    const before = fleet.snapshot().get("f1")!;
    const first = await reconcile("f1", wrong);
    assert.equal(first.roundTrips, 2, "guard (nothing applied) and observe; apply and observe");
    assert.deepEqual(first.result.remaining, []);
    assert.equal(first.result.applied.filter((s) => s.op === "fresh_network").length, 0);
    assert.equal(first.result.networks[0]!.wireguard.mtu, 1420, "planned from the host's real uplink, not the guess");
    assert.equal(fleet.get("f1")!.counters.steps - before.steps, first.result.applied.length);
  });
});
