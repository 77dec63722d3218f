// Issue 14 (memory at 1,000 machines): what a reconcile keeps of a look while its status is
// written. The peers' dump and the route table are summed up before the write (status.peers,
// /metrics) and dropped; everything the conditions read stays.
import { test } from "node:test";
import assert from "node:assert/strict";
import { emptyObservation, forStatus } from "../../hosts/observe.js";

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
  for (const k of ["dockerVersion", "links", "resolver", "ifaces", "networks", "iptables", "tools", "systemd"] as const) assert.equal(kept[k], obs[k], k);
  assert.equal(obs.wg.get("dm0")!.peers.length, 1, "the look it was made from keeps its peers");
  assert.equal(obs.routes.length, 1);
});
