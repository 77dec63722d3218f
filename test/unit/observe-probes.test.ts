// The observe script's probes, run by a real sh with the host's tools stubbed as shell functions:
// a peer without a recent handshake is pinged (so it handshakes), a peer idle for less than two
// minutes is not, and a peer the interface does not have (yet) is not either: a ping cannot make
// it handshake and would only wait out its timeout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { OBSERVE_SCRIPT } from "../../hosts/observe.js";

const NOW = 1_800_000_000;

/**
 * Stubs: `wg show all latest-handshakes` knows, on dm0, peers A (never) and B (10 s ago), and on
 * dm1 peer C (never: C is on dm1, not on dm0); a per-interface `wg show` fails the test (one call
 * for all peers, not one per peer); ping records its target.
 */
const STUBS = String.raw`
date() { echo ${NOW}; }
wg() {
  if [ "$1 $2 $3" = "show all latest-handshakes" ]; then printf 'dm0\tAAAA=\t0\ndm0\tBBBB=\t%s\ndm1\tCCCC=\t0\n' $((${NOW} - 10)); return 0; fi
  if [ "$1 $3" = "show latest-handshakes" ]; then echo "per-peer wg show" >> "$PROBED"; fi
  return 0
}
ping() { for a in "$@"; do last=$a; done; echo "$last" >> "$PROBED"; return 0; }
docker() { return 1; }
ip() { echo '[]'; }
iptables() { return 1; }
systemctl() { return 0; }
`;

test("probes go to configured peers without a recent handshake only", () => {
  const probed = `/tmp/dockmesh-probes-${process.pid}`;
  const input = ["dm0 10.0.0.1 AAAA= 10.0.1.1", "dm0 10.0.0.1 BBBB= 10.0.2.1", "dm0 10.0.0.1 CCCC= 10.0.3.1", ""].join("\n");
  const r = spawnSync("sh", ["-c", `${STUBS}\n${OBSERVE_SCRIPT}`, "sh", "dm0", "--"], { input, env: { PROBED: probed }, encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const sent = spawnSync("sh", ["-c", `cat "${probed}" 2>/dev/null; rm -f "${probed}"`], { encoding: "utf8" })
    .stdout.trim()
    .split("\n")
    .filter(Boolean);
  assert.deepEqual(sent, ["10.0.1.1"], "A (never handshaked) is probed; B (10 s ago) and C (a peer of dm1, not of dm0) are not");
  assert.match(r.stdout, /^@@dockmesh end$/m);
});

/**
 * Stubs for the wait: `wg show all latest-handshakes` answers from a counter file, peer W (and V)
 * with no handshake until the HANDSHAKE_AT-th call; sleep is counted instead of slept.
 */
const WAIT_STUBS = String.raw`
date() { echo ${NOW}; }
wg() {
  if [ "$1 $2 $3" = "show all latest-handshakes" ]; then
    n=$(cat "$COUNT" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$COUNT"
    if [ "$n" -ge "$HANDSHAKE_AT" ]; then t=${NOW}; else t=0; fi
    printf 'dm0\tWWWW=\t%s\ndm0\tVVVV=\t%s\ndm0\tNNNN=\t0\n' "$t" "$t"
  fi
  return 0
}
ping() { return 1; }
sleep() { echo sleep >> "$SLEPT"; }
docker() { return 1; }
ip() { echo '[]'; }
iptables() { return 1; }
`;

interface WaitCase {
  name: string;
  input: string;
  handshakeAt: number;
  /** Sleeps the wait took (0.1 s each). */
  sleeps: number;
}

const W = "dm0 10.0.0.1 WWWW= 10.0.1.1 w";
const V = "dm0 10.0.0.1 VVVV= 10.0.2.1 w";
const N = "dm0 10.0.0.1 NNNN= 10.0.3.1";
const waitCases: WaitCase[] = [
  { name: "peers being configured are waited for until they handshake", input: `@wait 30\n${W}\n${V}\n${N}\n`, handshakeAt: 4, sleeps: 2 },
  { name: "no longer than the bound", input: `@wait 5\n${W}\n`, handshakeAt: 1000, sleeps: 5 },
  { name: "a peer not marked is not waited for (it may be down for good)", input: `@wait 30\n${N}\n`, handshakeAt: 1000, sleeps: 0 },
  { name: "without @wait, no wait", input: `${W}\n`, handshakeAt: 1000, sleeps: 0 },
  { name: "a bound that is not a number is none", input: `@wait 3;reboot\n${W}\n`, handshakeAt: 1000, sleeps: 0 },
];

for (const c of waitCases) {
  test(`probes: ${c.name}`, () => {
    const count = `/tmp/dockmesh-probe-count-${process.pid}`;
    const slept = `/tmp/dockmesh-probe-slept-${process.pid}`;
    spawnSync("rm", ["-f", count, slept]);
    const r = spawnSync("sh", ["-c", `${WAIT_STUBS}\n${OBSERVE_SCRIPT}`, "sh", "dm0", "--"], {
      input: c.input,
      env: { COUNT: count, SLEPT: slept, HANDSHAKE_AT: String(c.handshakeAt) },
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const sleeps = spawnSync("sh", ["-c", `cat "${slept}" 2>/dev/null; rm -f "${slept}" "${count}"`], { encoding: "utf8" })
      .stdout.trim()
      .split("\n")
      .filter(Boolean).length;
    assert.equal(sleeps, c.sleeps);
    assert.match(r.stdout, /^@@dockmesh end$/m);
  });
}

// The probes run while the rest of the host is read, and `wg show` comes after them: a handshake
// the probes make is in the observation, and the reads do not wait for the handshakes (before,
// every host of a mesh being created read iptables, files and Docker only once its peers had
// handshaken, all at once, on the way to Ready).
const ORDER_STUBS = String.raw`
date() { echo ${NOW}; }
wg() {
  if [ "$1 $2 $3" = "show all latest-handshakes" ]; then printf 'dm0\tAAAA=\t0\n'; return 0; fi
  if [ "$1 $2 $3" = "show all dump" ]; then echo dump >> "$TRACE"; fi
  return 0
}
ping() { echo ping-start >> "$TRACE"; command sleep 0.5; echo ping-end >> "$TRACE"; return 0; }
ip() { echo read >> "$TRACE"; echo '[]'; }
docker() { return 1; }
iptables() { return 1; }
systemctl() { return 0; }
`;

test("probes: the host is read while the probes run; the wg section comes after them, last before the end", () => {
  const trace = `/tmp/dockmesh-probe-trace-${process.pid}`;
  spawnSync("rm", ["-f", trace]);
  const r = spawnSync("sh", ["-c", `${ORDER_STUBS}\n${OBSERVE_SCRIPT}`, "sh", "dm0", "--"], { input: "dm0 10.0.0.1 AAAA= 10.0.1.1\n", env: { TRACE: trace }, encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const steps = spawnSync("sh", ["-c", `cat "${trace}" 2>/dev/null; rm -f "${trace}"`], { encoding: "utf8" })
    .stdout.trim()
    .split("\n");
  const at = (s: string) => steps.indexOf(s);
  assert.ok(at("read") >= 0 && at("read") < at("ping-end"), `links and routes are read while the probe runs: ${steps.join(" ")}`);
  assert.ok(at("ping-end") < at("dump"), `wg show after the probe: ${steps.join(" ")}`);
  const sections = [...r.stdout.matchAll(/^@@dockmesh (\S+)/gm)].map((m) => m[1]);
  assert.deepEqual(sections.slice(-2), ["wg", "end"]);
});

// Crossing first initiations (both ends configured at once, each probing the other) leave both
// without a session until WireGuard's 5 s retry (seen on lab hosts: two hosts' handshake came 5 s
// after the others', each end one 92-byte response short). The end marked r re-adds the peer with
// its settings from `wg show` (clearing that wait) and pings again, 0.2 s into the wait and every
// half second after;
// an end marked w does not (were both to, they would cross again).
const RETRY_STUBS = String.raw`
date() { echo ${NOW}; }
wg() {
  if [ "$1 $2 $3" = "show all latest-handshakes" ]; then printf 'dm0\tRRRR=\t0\ndm0\tWWWW=\t0\n'; return 0; fi
  if [ "$1 $3" = "show dump" ]; then
    printf 'priv\tpub\t51820\toff\n'
    printf 'RRRR=\t(none)\t198.18.0.9:51820\t10.0.1.0/24,10.0.9.0/24\t0\t0\t148\toff\n'
    printf 'WWWW=\t(none)\t198.18.0.8:51820\t10.0.2.0/24\t0\t0\t148\t25\n'
    return 0
  fi
  if [ "$1" = set ]; then shift; echo "set $*" >> "$TRACE"; fi
  return 0
}
ping() { for a in "$@"; do last=$a; done; echo "ping $last" >> "$TRACE"; return 1; }
sleep() { :; }
docker() { return 1; }
ip() { echo '[]'; }
iptables() { return 1; }
`;

test("probes: the end marked r initiates again while the first handshake has not come; an end marked w does not", () => {
  const trace = `/tmp/dockmesh-probe-retry-${process.pid}`;
  spawnSync("rm", ["-f", trace]);
  const input = "@wait 12\ndm0 10.0.0.1 RRRR= 10.0.1.1 r\ndm0 10.0.0.1 WWWW= 10.0.2.1 w\n";
  const r = spawnSync("sh", ["-c", `${RETRY_STUBS}\n${OBSERVE_SCRIPT}`, "sh", "dm0", "--"], { input, env: { TRACE: trace }, encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const steps = spawnSync("sh", ["-c", `sleep 0.3; cat "${trace}" 2>/dev/null; rm -f "${trace}"`], { encoding: "utf8" })
    .stdout.trim()
    .split("\n");
  const kick = ["set dm0 peer RRRR= remove", "set dm0 peer RRRR= endpoint 198.18.0.9:51820 allowed-ips 10.0.1.0/24,10.0.9.0/24 persistent-keepalive off"];
  // A 1.2 s wait: again 0.2 s and 0.7 s in; each time the peer re-added, then pinged.
  assert.deepEqual(
    steps.filter((s) => s.startsWith("set")),
    [...kick, ...kick],
  );
  assert.equal(steps.filter((s) => s === "ping 10.0.1.1").length, 3, `the first probe and two more: ${steps.join(" | ")}`);
  assert.equal(steps.filter((s) => s === "ping 10.0.2.1").length, 1, "the w peer: its first probe only");
  assert.ok(!steps.some((s) => s.includes("WWWW")), "the w peer is never re-added");
});

test("probes: a peer is initiated to again only on its own interface (the same key on another interface, without a handshake, does not count)", () => {
  const trace = `/tmp/dockmesh-probe-iface-${process.pid}`;
  const count = `/tmp/dockmesh-probe-iface-count-${process.pid}`;
  spawnSync("rm", ["-f", trace, count]);
  // RRRR= has no handshake when the probes start, and has one on dm0 from the wait's first look;
  // "xdm0" (its name ends like dm0's) has the same key without one. WWWW= keeps the wait going.
  const stubs = RETRY_STUBS.replace(
    String.raw`printf 'dm0\tRRRR=\t0\ndm0\tWWWW=\t0\n'`,
    String.raw`n=$(cat "$COUNT" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$COUNT"; if [ "$n" -gt 1 ]; then t=${NOW}; else t=0; fi; printf 'xdm0\tRRRR=\t0\ndm0\tRRRR=\t%s\ndm0\tWWWW=\t0\n' "$t"`,
  );
  assert.notEqual(stubs, RETRY_STUBS);
  const input = "@wait 12\ndm0 10.0.0.1 RRRR= 10.0.1.1 r\ndm0 10.0.0.1 WWWW= 10.0.2.1 w\n";
  const r = spawnSync("sh", ["-c", `${stubs}\n${OBSERVE_SCRIPT}`, "sh", "dm0", "--"], { input, env: { TRACE: trace, COUNT: count }, encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const steps = spawnSync("sh", ["-c", `sleep 0.3; cat "${trace}" 2>/dev/null; rm -f "${trace}" "${count}"`], { encoding: "utf8" })
    .stdout.trim()
    .split("\n");
  assert.equal(steps.filter((s) => s === "ping 10.0.1.1").length, 1, `RRRR= was probed: ${steps.join(" | ")}`);
  assert.deepEqual(
    steps.filter((s) => s.startsWith("set")),
    [],
    "RRRR='s session on dm0 is left alone",
  );
});
