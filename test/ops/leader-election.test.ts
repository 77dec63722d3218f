// Two `dockmesh controller --leader-elect` processes against one embedded store (no lab
// hosts): exactly one reconciles; SIGKILL it and the other takes over once the Lease has
// expired; a graceful stop (SIGTERM) releases the Lease and a standby takes over at once.
// The Lease's times are MicroTime with six fractional digits (the store refuses others).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startTestStore, type TestStore } from "../store/helpers.js";
import { ControllerProcess, metric, metricSum, sleep } from "./controller-process.js";

const LEASE_S = 6;
const RENEW_S = 4;
const RETRY_S = 1;

let store: TestStore;
const procs: ControllerProcess[] = [];

function controller(name: string): ControllerProcess {
  const p = new ControllerProcess(
    name,
    [
      "controller",
      "--leader-elect",
      "--leader-election-namespace",
      "kube-system",
      "--lease-duration",
      `${LEASE_S}s`,
      "--renew-deadline",
      `${RENEW_S}s`,
      "--retry-period",
      `${RETRY_S}s`,
      "--metrics-bind-address",
      "127.0.0.1:0",
      "--log-format",
      "json",
    ],
    { PATH: process.env.PATH, KUBECONFIG: store.kubeconfigPath, POD_NAME: name },
  );
  procs.push(p);
  return p;
}

async function isLeader(p: ControllerProcess): Promise<boolean> {
  return metric(await p.metrics(), "dockmesh_leader_election_is_leader", { lease: "kube-system/dockmesh-controller" }) === 1;
}

async function meshReconciles(p: ControllerProcess): Promise<number> {
  return metricSum(await p.metrics(), "dockmesh_reconcile_total", { kind: "MeshNetwork" });
}

interface Lease {
  spec: { holderIdentity?: string; acquireTime?: string; renewTime?: string; leaseTransitions?: number; leaseDurationSeconds?: number };
}

async function lease(): Promise<Lease> {
  const r = await store.kubectl(["-n", "kube-system", "get", "lease", "dockmesh-controller", "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Lease;
}

function meshYaml(name: string): string {
  return `apiVersion: dockmesh.io/v1alpha1
kind: MeshNetwork
metadata: { name: ${name}, namespace: default }
spec: { cidr: 10.220.0.0/16, subnetPrefixLength: 24, dockerNetwork: ${name}, interface: ${name} }
`;
}

async function reconciled(name: string): Promise<void> {
  const r = await store.kubectl(["wait", "--for=jsonpath={.status.observedGeneration}=1", "--timeout=30s", `meshnetwork/${name}`], { timeoutMs: 40_000 });
  assert.equal(r.code, 0, `meshnetwork/${name} got no status: ${r.stderr}`);
}

async function waitLeader(p: ControllerProcess, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await isLeader(p).catch(() => false)) return Date.now();
    await sleep(100);
  }
  throw new Error(`${p.name} did not lead within ${timeoutMs} ms:\n${p.output.slice(-2000)}`);
}

describe("leader election between two controller processes", { timeout: 180_000 }, () => {
  before(async () => {
    store = await startTestStore();
  });
  after(async () => {
    for (const p of procs) await p.kill("SIGKILL");
    await store.dispose();
  });

  test("exactly one reconciles; killed, the other takes over after the lease duration; stopped, at once", async () => {
    const a = controller("replica-a");
    await a.waitFor("replica-a to lead", () => a.lines().some((l) => l.message === "acquired the lease; leading"));
    const b = controller("replica-b");
    await b.waitFor("replica-b to stand by", () => b.lines().some((l) => l.message === "new leader observed" && l.leader === "replica-a"));
    assert.equal(await isLeader(a), true);
    assert.equal(await isLeader(b), false);

    const l = await lease();
    assert.equal(l.spec.holderIdentity, "replica-a");
    assert.equal(l.spec.leaseDurationSeconds, LEASE_S);
    assert.match(l.spec.acquireTime ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.match(l.spec.renewTime ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    // Both ready: the leader with synced caches, the standby standing by.
    for (const p of [a, b]) {
      const r = await fetch(`${await p.metricsUrl()}/readyz?verbose`);
      assert.equal(r.status, 200, `${p.name}: ${await r.text()}`);
    }

    const apply = await store.kubectl(["apply", "-f", "-"], { input: meshYaml("one") });
    assert.equal(apply.code, 0, apply.stderr);
    await reconciled("one");
    await sleep(500);
    assert.ok((await meshReconciles(a)) >= 1, "the leader reconciled");
    assert.equal(await meshReconciles(b), 0, "the standby reconciled nothing");
    assert.ok(!b.lines().some((l) => l.message === "controllers running"), "the standby never started its controllers");

    // Crash the leader: the Lease stays held until it expires.
    const lastRenew = Date.parse((await lease()).spec.renewTime ?? "");
    const killedAt = Date.now();
    await a.kill("SIGKILL");
    const tookOver = await waitLeader(b, (LEASE_S + 4 * RETRY_S) * 1000);
    const afterKill = tookOver - killedAt;
    const afterRenew = tookOver - lastRenew;
    console.log(`takeover after SIGKILL: ${afterKill} ms after the kill, ${afterRenew} ms after the last renewal (lease ${LEASE_S} s, retry ${RETRY_S} s)`);
    assert.ok(afterRenew >= LEASE_S * 1000, `not before the Lease expired (${afterRenew} ms after its last renewal)`);
    assert.ok(afterKill <= (LEASE_S + 2.2 * RETRY_S) * 1000 + 1000, `within the lease duration plus one jittered retry period of the kill (${afterKill} ms)`);
    const taken = await lease();
    assert.equal(taken.spec.holderIdentity, "replica-b");
    assert.equal(taken.spec.leaseTransitions, 1);

    const apply2 = await store.kubectl(["apply", "-f", "-"], { input: meshYaml("two") });
    assert.equal(apply2.code, 0, apply2.stderr);
    await reconciled("two");
    assert.ok((await meshReconciles(b)) >= 1, "the new leader reconciles");

    // A third replica stands by; the leader stops gracefully and releases the Lease.
    const c = controller("replica-c");
    await c.waitFor("replica-c to stand by", () => c.lines().some((l) => l.message === "new leader observed" && l.leader === "replica-b"));
    const stoppedAt = Date.now();
    assert.equal(await b.kill("SIGTERM"), 0, `replica-b exits cleanly:\n${b.output.slice(-1500)}`);
    assert.ok(b.lines().some((l) => l.message === "released the lease"));
    const cLeads = await waitLeader(c, (LEASE_S + 4 * RETRY_S) * 1000);
    console.log(`takeover after SIGTERM: ${cLeads - stoppedAt} ms`);
    assert.ok(cLeads - stoppedAt < LEASE_S * 1000, `a released Lease is taken at once, not after expiry (${cLeads - stoppedAt} ms)`);
    assert.equal((await meshReconciles(c)) >= 0, true);
    await c.waitFor("replica-c's controllers", () => c.lines().some((l) => l.message === "controllers running"));
  });

  test("a leader that cannot renew (API server gone) exits at once, within the renew deadline", async () => {
    const d = controller("replica-d");
    await d.waitFor("replica-d to stand by or lead", () => d.lines().some((l) => l.message === "new leader observed"));
    const leader = procs.find((p) => !p.exited && p !== d && p.lines().some((l) => l.message === "acquired the lease; leading"));
    assert.ok(leader, "a running leader");
    const lastRenew = Date.parse((await lease()).spec.renewTime ?? "");
    await store.close();
    const code = await leader.exitCode();
    const exitedAfter = Date.now() - lastRenew;
    console.log(`leader exited ${exitedAfter} ms after its last renewal, code ${code}`);
    assert.equal(code, 1);
    assert.match(leader.output, /leader election lost; exiting/);
    assert.ok(exitedAfter <= (RENEW_S + 2 * RETRY_S) * 1000, `stopped before the lease (${LEASE_S} s) could pass to another (${exitedAfter} ms)`);
  });
});
