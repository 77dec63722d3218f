// Issue 14 (memory at 1,000 machines): what a reconcile keeps of a look while its status is
// written. The peers' dump and the route table are summed up before the write (status.peers,
// /metrics) and dropped; everything the conditions read stays.
import { test } from "node:test";
import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { emptyObservation, forStatus, parseObservation } from "../../hosts/observe.js";

const KEY = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28=";

test("forStatus: the peers' dump and the route table go; interfaces, links, Docker, resolver and files stay; the look itself is unchanged", () => {
  const obs = emptyObservation();
  obs.dockerVersion = "27.3.1";
  obs.links.set("dm0", { name: "dm0", up: true, mtu: 1420 });
  obs.routes.push({ dst: "10.0.1.0/24", dev: "dm0" });
  obs.wg.set("dm0", { publicKey: KEY, listenPort: 51820, peers: [{ publicKey: KEY, allowedIPs: ["10.0.1.0/24"], latestHandshake: 1, rxBytes: 2, txBytes: 3 }] });
  const kept = forStatus(obs);
  assert.deepEqual(kept.wg.get("dm0"), { publicKey: KEY, listenPort: 51820, peers: [] });
  assert.deepEqual(kept.routes, []);
  for (const k of ["dockerVersion", "links", "resolver", "ifaces", "networks", "iptables", "tools", "systemd"] as const) assert.deepEqual(kept[k], obs[k], k);
  assert.equal(obs.wg.get("dm0")!.peers.length, 1, "the look it was made from keeps its peers");
  assert.equal(obs.routes.length, 1);
});

// A host's output as the observe script prints it, with `peers` peers (~120 bytes a line) and a
// rule and file hash that name `tag`, so that no two outputs share a string.
function hostOutput(peers: number, tag: number): string {
  const key = (i: number) => Buffer.alloc(32, i % 251).toString("base64");
  const lines = ["@@dockmesh tools", "wg yes", "@@dockmesh wg", `dm0\t${key(255)}\t${key(tag)}\t51820\toff`];
  for (let i = 0; i < peers; i++) lines.push(`dm0\t${key(i)}\t(none)\t198.18.${i >> 8}.${i & 255}:51820\t10.${i >> 8}.${i & 255}.0/24\t${1_700_000_000 + tag}\t${i}\t${tag}\t25`);
  lines.push("@@dockmesh iptables filter:DOCKER-USER", `-A DOCKER-USER -i dm0 -m comment --comment "dockmesh ${tag} of many" -j ACCEPT`, "rc=0");
  lines.push("@@dockmesh iface dm0", `file ${tag.toString(16).padStart(64, "0")} /etc/wireguard/dm0.conf`, "@@dockmesh end");
  return lines.join("\n");
}

test("forStatus: what it keeps does not hold the host's output alive (~172 KB a look at 1,000 peers)", () => {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  const looks = 40;
  const sample = hostOutput(1000, 0);
  assert.ok(sample.length > 100_000, `an output of 1,000 peers is ${sample.length} characters`);
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept: ReturnType<typeof forStatus>[] = [];
  for (let i = 1; i <= looks; i++) {
    const obs = parseObservation(hostOutput(1000, i));
    kept.push(forStatus(obs));
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  // One byte a character (one-byte strings): 40 outputs held would be ~5 MB.
  assert.ok(grown < (looks * sample.length) / 4, `${looks} looks kept for their status hold ${(grown / 1e6).toFixed(2)} MB (their outputs: ${((looks * sample.length) / 1e6).toFixed(2)} MB)`);
  assert.equal(kept[looks - 1]!.wg.get("dm0")!.publicKey, Buffer.alloc(32, looks).toString("base64"));
  assert.equal(kept[0]!.iptables.get("filter/DOCKER-USER")!.length, 1);
});
