// The observe script reads Docker through its API on the local socket (curl) and falls back to
// the docker CLI whenever that may not be the daemon the CLI talks to, or the API answers
// anything but 200/404. Run by a real sh with curl and docker stubbed as shell functions that
// log their calls; the socket is a real one (the script checks `[ -S ]`).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createServer, type Server } from "node:net";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { OBSERVE_SCRIPT, parseObservation } from "../../hosts/observe.js";

const SOCK = `/tmp/dockmesh-observe-api-${process.pid}.sock`;
const CALLS = `/tmp/dockmesh-observe-api-${process.pid}.calls`;
let server: Server;

before(async () => {
  rmSync(SOCK, { force: true });
  server = createServer();
  await new Promise<void>((resolve) => server.listen(SOCK, resolve));
});
after(() => {
  server.close();
  rmSync(SOCK, { force: true });
  rmSync(CALLS, { force: true });
});

const NET = JSON.stringify({
  Name: "mesh",
  Id: "abc123",
  IPAM: { Config: [{ Subnet: "10.210.0.0/24" }] },
  Options: { "com.docker.network.driver.mtu": "1420" },
  Labels: { "dockmesh.io/interface": "dm0" },
  Containers: { c1: {} },
});

/**
 * curl answers every URL with $API_STATUS (the body only for 200), each followed by its -w text as
 * curl expands it; docker answers like the CLI.
 */
const STUBS = String.raw`
curl() {
  urls=; w=
  while [ $# -gt 0 ]; do case "$1" in -w) w=$2; shift 2 ;; http://*) urls="$urls $1"; shift ;; *) shift ;; esac; done
  echo "curl$urls" >> "$CALLS"
  [ "$API_STATUS" = fail ] && return 7
  for u in $urls; do
    code=$API_STATUS
    case "$API_STATUS:$u" in
      200:*/version) body='{"Version":"27.5.1","ApiVersion":"1.47"}' ;;
      200:*/networks/mesh) body=$NET ;;
      200:*/networks/a) body=$PREFIXED ;;
      404:*) body='{"message":"not found"}' ;;
      *) body='{"message":"boom"}' ;;
    esac
    printf '%s\n' "$body"
    printf '%b' "$(printf '%s' "$w" | sed -e "s|%{http_code}|$code|" -e "s|%{url_effective}|$u|")"
  done
}
docker() {
  echo "docker $1 $2" >> "$CALLS"
  case "$1 $2" in
    "version --format") echo 24.0.9 ;;
    "network inspect") if [ "$5" = a ]; then printf '%s\n' "$PREFIXED"; else printf '%s\n' "$NET"; fi ;;
  esac
}
wg() { return 0; }
ip() { echo '[]'; }
iptables() { return 1; }
systemctl() { return 0; }
`;

interface Case {
  name: string;
  env: Record<string, string>;
  /** Calls the stubs saw, in order. */
  calls: string[];
  version: string | undefined;
  network: "found" | "missing";
}

const api = (...paths: string[]) => `curl ${paths.map((p) => `http://docker${p}`).join(" ")}`;
const both = api("/version", "/networks/mesh");
const cases: Case[] = [
  { name: "the API on the default socket answers: no docker CLI at all, one curl for the version and the network", env: { API_STATUS: "200" }, calls: [both], version: "27.5.1", network: "found" },
  { name: "a missing network is a 404, not a reason to ask the CLI", env: { API_STATUS: "404" }, calls: [both, "docker version --format"], version: "24.0.9", network: "missing" },
  { name: "an API error falls back to the CLI", env: { API_STATUS: "500" }, calls: [both, "docker version --format", "docker network inspect"], version: "24.0.9", network: "found" },
  {
    name: "curl failing (daemon down) falls back to the CLI and its message",
    env: { API_STATUS: "fail" },
    calls: [both, "docker version --format", "docker network inspect"],
    version: "24.0.9",
    network: "found",
  },
  {
    name: "DOCKER_HOST on TCP: the CLI only",
    env: { API_STATUS: "200", DOCKER_HOST: "tcp://10.0.0.1:2376" },
    calls: ["docker version --format", "docker network inspect"],
    version: "24.0.9",
    network: "found",
  },
  { name: "a Docker context: the CLI only", env: { API_STATUS: "200", DOCKER_CONTEXT: "remote" }, calls: ["docker version --format", "docker network inspect"], version: "24.0.9", network: "found" },
];

/** Runs the observe script for one network; its stdout and the stub calls it made, in order. */
function observe(network: string, extraEnv: Record<string, string>): { stdout: string; calls: string[] } {
  rmSync(CALLS, { force: true });
  const env = { DOCKER_HOST: `unix://${SOCK}`, HOME: "/nonexistent", CALLS, NET, ...extraEnv };
  const r = spawnSync("sh", ["-c", `${STUBS}\n${OBSERVE_SCRIPT}`, "sh", "dm0", "--", network], { input: "", env, encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const calls = existsSync(CALLS) ? readFileSync(CALLS, "utf8").trim().split("\n").filter(Boolean) : [];
  return { stdout: r.stdout, calls };
}

for (const c of cases) {
  test(`observe, Docker: ${c.name}`, () => {
    const r = observe("mesh", c.env);
    assert.deepEqual(r.calls, c.calls);
    const obs = parseObservation(r.stdout);
    assert.equal(obs.dockerVersion, c.version);
    const net = obs.networks.get("mesh");
    if (c.network === "missing") assert.equal(net, undefined);
    else
      assert.deepEqual(net, { id: "abc123", name: "mesh", subnet: "10.210.0.0/24", options: { "com.docker.network.driver.mtu": "1420" }, labels: { "dockmesh.io/interface": "dm0" }, containers: 1 });
  });
}

test("observe, Docker: a network name that is not URL-safe never reaches the API", () => {
  assert.deepEqual(observe("a b?c", { API_STATUS: "200" }).calls, [api("/version"), "docker network inspect"]);
  assert.deepEqual(observe(".hidden", { API_STATUS: "200" }).calls, [api("/version"), "docker network inspect"], "a name curl would normalise as a path (./..) neither");
});

test('observe, Docker: asked for network "a", Docker\'s answer by id prefix (network "bridge", id a3…) is no network a', () => {
  // What Docker 20.10 answered on a lab host for GET /networks/a before a network "a" existed.
  const prefixed = JSON.stringify({ Name: "bridge", Id: "a3c1f2e4d5b6", IPAM: { Config: [{ Subnet: "172.17.0.0/16" }] }, Options: {}, Labels: {}, Containers: {} });
  for (const env of [{ API_STATUS: "200" }, { API_STATUS: "500" }]) {
    const obs = parseObservation(observe("a", { ...env, PREFIXED: prefixed }).stdout);
    assert.equal(obs.networks.get("a"), undefined, JSON.stringify(env));
  }
});
