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
