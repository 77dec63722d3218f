// `dockmesh graph`'s pure part: the graph built from Machines and MeshNetworks (mesh/graph.ts) and
// its dot and Mermaid renderings (mesh/graph-render.ts), with golden files; hostile status text
// stays text; SVG through a real Graphviz (installed here when missing, as root).
import { test } from "node:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import type { Machine, MachineStatusNetworkPeer, MeshNetwork } from "../../api/types.generated.js";
import { buildMeshGraph, GraphTooLargeError, MAX_GRAPH_MACHINES, type LinkHealth } from "../../mesh/graph.js";
import { cleanText, dotEscape, HEALTH_COLOR, mermaidEscape, renderDot, renderMermaid } from "../../mesh/graph-render.js";
import { dotToSvg, GraphvizError } from "../../cli/graphviz.js";
import { ensureSystemPackages } from "../../lab/requirements.js";
import { spawnSync } from "node:child_process";
import { assertGolden, projectRoot } from "../support/golden.js";
import { machine, mesh } from "../support/fixtures.js";

type PeerState = NonNullable<MachineStatusNetworkPeer["state"]>;

/** A Machine with a status: Ready, and its peers in one mesh with the given states. */
function member(name: string, opts: { endpoint?: string; subnet: string; mesh?: string; ready?: "True" | "False"; reason?: string; peers: Record<string, PeerState | [PeerState, string]> }): Machine {
  const m = machine(name, opts.endpoint ? { endpoint: opts.endpoint } : {});
  m.status = {
    networks: [
      {
        meshNetwork: opts.mesh ?? "mesh",
        subnet: opts.subnet,
        peers: Object.entries(opts.peers).map(([peer, s]) => (Array.isArray(s) ? { machine: peer, state: s[0], via: s[1] } : { machine: peer, state: s })),
      },
    ],
    conditions: [{ type: "Ready", status: opts.ready ?? "True", reason: opts.reason ?? "Ready", message: "", lastTransitionTime: "2026-01-01T00:00:00Z" }],
  };
  return m;
}

function meshWith(relays: MeshNetwork["status"] extends infer S ? (S extends { relays?: infer R } ? R : never) : never, allocations: Record<string, string>): MeshNetwork {
  const m = mesh("mesh", { cidr: "10.230.0.0/16" });
  m.status = { allocations: Object.entries(allocations).map(([machine, subnet]) => ({ machine, subnet })), ...(relays ? { relays } : {}) };
  return m;
}

/** Two public hosts and two behind NAT; n1 ↔ n2 talk through p1. p2 has not shaken hands with n2 yet, and its link to p1 is stale. */
function natMesh(): { meshes: MeshNetwork[]; machines: Machine[] } {
  const alloc = { n1: "10.230.2.0/24", n2: "10.230.3.0/24", p1: "10.230.0.0/24", p2: "10.230.1.0/24" };
  return {
    meshes: [meshWith([{ machines: ["n1", "n2"], via: "p1" }], alloc)],
    machines: [
      member("p1", { endpoint: "198.18.58.2:51820", subnet: alloc.p1, peers: { n1: "Connected", n2: "Connected", p2: "Stale" } }),
      member("p2", { endpoint: "198.18.58.3:51820", subnet: alloc.p2, ready: "False", reason: "PeersNotConnected", peers: { n1: "Connected", n2: "NoHandshake", p1: "Stale" } }),
      member("n1", { subnet: alloc.n1, peers: { n2: ["Relayed", "p1"], p1: "Connected", p2: "Connected" } }),
      member("n2", { subnet: alloc.n2, peers: { n1: ["Relayed", "p1"], p1: "Connected", p2: "NoHandshake" } }),
    ],
  };
}

const healthOf = (g: ReturnType<typeof buildMeshGraph>) => Object.fromEntries(g.edges.map((e) => [`${e.a}-${e.b}`, e.health + (e.via ? ` via ${e.via}` : "")]));

test("graph: a NAT↔NAT pair whose ends say Direct (issue 19) is drawn direct, though the mesh still names a relay for it", () => {
  const { meshes, machines } = natMesh();
  for (const [self, peer] of [
    ["n1", "n2"],
    ["n2", "n1"],
  ] as const) {
    const p = machines.find((m) => m.metadata.name === self)!.status!.networks![0]!.peers!.find((x) => x.machine === peer)!;
    Object.assign(p, { state: "Connected", path: "Direct", endpoint: "198.18.58.200:51820" });
    delete p.via;
  }
  const g = buildMeshGraph(meshes, machines);
  assert.equal(healthOf(g)["n1-n2"], "fresh");
  assert.match(renderDot(g), /"n1" -- "n2" \[color="#2e7d32", class="fresh"/);
});

test("graph: a NAT↔NAT pair is drawn through its relay; each edge coloured by its last handshake", () => {
  const { meshes, machines } = natMesh();
  const g = buildMeshGraph(meshes, machines);
  assert.deepEqual(
    g.nodes.map((n) => n.name),
    ["n1", "n2", "p1", "p2"],
  );
  assert.deepEqual(healthOf(g), {
    "n1-n2": "fresh via p1",
    "n1-p1": "fresh",
    "n1-p2": "fresh",
    "n2-p1": "fresh",
    "n2-p2": "never",
    "p1-p2": "stale",
  });
  // Input order does not matter: the output is sorted.
  const shuffled = buildMeshGraph(meshes, [...machines].reverse());
  assert.equal(renderDot(shuffled), renderDot(g));
  assertGolden("graph-nat-relay.dot", renderDot(g));
  assertGolden("graph-nat-relay.mmd", renderMermaid(g));
  const dot = renderDot(g);
  assert.match(dot, /"n1" -- "n2" \[color="#2e7d32", label="via p1", style=dashed/);
  assert.match(dot, /"n2" -- "p2" \[color="#c62828"/);
  assert.match(dot, /"p1" -- "p2" \[color="#ef6c00"/);
  assert.match(renderMermaid(g), /m0 -\.-\|"via p1"\| m1/);
});

const cases: Array<{ name: string; change: (ms: Machine[]) => void; want: Record<string, string> }> = [
  {
    // A cut-off host: the controller cannot update its own status (still "Connected"), its peers see the handshake go stale.
    name: "n1 cut off: its links and the relayed pair through p1 go stale, the rest stays fresh",
    change: (ms) => {
      for (const m of ms) for (const p of m.status!.networks![0]!.peers!) if (p.machine === "n1" && !p.via) p.state = "Stale";
      for (const m of ms) for (const p of m.status!.networks![0]!.peers!) if (p.machine === "n1" && p.via) p.state = "Relayed";
    },
    want: { "n1-n2": "stale via p1", "n1-p1": "stale", "n1-p2": "stale", "n2-p1": "fresh", "n2-p2": "never", "p1-p2": "stale" },
  },
  {
    name: "the relay's leg to n2 never shook hands: the relayed pair is never, whatever n1 says",
    change: (ms) => {
      ms.find((m) => m.metadata.name === "p1")!.status!.networks![0]!.peers!.find((p) => p.machine === "n2")!.state = "NoHandshake";
    },
    want: { "n1-n2": "never via p1", "n1-p1": "fresh", "n1-p2": "fresh", "n2-p1": "never", "n2-p2": "never", "p1-p2": "stale" },
  },
  {
    name: "no reports at all (not observed yet): unknown, still through the relay the mesh names",
    change: (ms) => {
      for (const m of ms) delete m.status!.networks![0]!.peers;
    },
    want: { "n1-n2": "unknown via p1", "n1-p1": "unknown", "n1-p2": "unknown", "n2-p1": "unknown", "n2-p2": "unknown", "p1-p2": "unknown" },
  },
  {
    name: "a state this version does not know, and peers that are no members, are not trusted",
    change: (ms) => {
      const peers = ms.find((m) => m.metadata.name === "p1")!.status!.networks![0]!.peers!;
      (peers[0] as { state: string }).state = "Great";
      peers.push({ machine: "ghost", state: "Connected" }, { machine: "p1", state: "NoHandshake" });
    },
    want: { "n1-n2": "fresh via p1", "n1-p1": "fresh", "n1-p2": "fresh", "n2-p1": "fresh", "n2-p2": "never", "p1-p2": "stale" },
  },
];

for (const c of cases) {
  test(`graph health: ${c.name}`, () => {
    const { meshes, machines } = natMesh();
    c.change(machines);
    const g = buildMeshGraph(meshes, machines);
    assert.deepEqual(healthOf(g), c.want);
    assert.ok(!g.nodes.some((n) => n.name === "ghost"));
  });
}

test("graph: a NAT pair with no relay is drawn as never, labelled no relay", () => {
  const m = mesh("mesh");
  m.status = {
    allocations: [
      { machine: "a", subnet: "10.210.0.0/24" },
      { machine: "b", subnet: "10.210.1.0/24" },
    ],
    unreachablePairs: ["a<->b"],
  };
  const g = buildMeshGraph([m], [machine("a"), machine("b")]);
  assert.deepEqual(g.edges, [{ mesh: "mesh", a: "a", b: "b", noRelay: true, health: "never" }]);
  assert.match(renderDot(g), /"a" -- "b" \[color="#c62828", label="no relay"/);
});

test("graph: two meshes name the mesh on every edge and subnet", () => {
  const a = member("a", { endpoint: "198.18.58.2:51820", subnet: "10.1.0.0/24", mesh: "one", peers: { b: "Connected" } });
  a.status!.networks!.push({ meshNetwork: "two", subnet: "10.2.0.0/24", peers: [{ machine: "b", state: "Stale" }] });
  const b = member("b", { subnet: "10.1.1.0/24", mesh: "one", peers: { a: "Connected" } });
  b.status!.networks!.push({ meshNetwork: "two", subnet: "10.2.1.0/24", peers: [{ machine: "a", state: "Stale" }] });
  const g = buildMeshGraph([mesh("two"), mesh("one")], [b, a]);
  assertGolden("graph-two-meshes.dot", renderDot(g));
  assert.deepEqual(
    g.edges.map((e) => `${e.mesh}:${e.health}`),
    ["one:fresh", "two:stale"],
  );
});

test("graph: too many machines is a clear error, not a dot run of minutes", () => {
  const m = mesh("mesh");
  const ms = Array.from({ length: MAX_GRAPH_MACHINES + 1 }, (_, i) => machine(`m${i}`));
  m.status = { allocations: ms.map((x, i) => ({ machine: x.metadata.name!, subnet: `10.${i >> 8}.${i & 255}.0/24` })) };
  assert.throws(
    () => buildMeshGraph([m], ms),
    (e: Error) => e instanceof GraphTooLargeError && /201 machines .*at most 200.*--mesh/.test(e.message),
  );
});

/** Status and spec text written by someone hostile: quotes, newlines, control characters, HTML, dot and Mermaid syntax. */
function hostileMesh(): { meshes: MeshNetwork[]; machines: Machine[] } {
  const evilVia = 'p1"]; "x" -- "y" [label="owned';
  const alloc = { a: '10.0.0.0/24"\n}\ndigraph x {', b: "<script>alert(1)</script>", p1: "10.0.2.0/24\\N\\G" };
  const a = member("a", { subnet: alloc.a, reason: 'Bad"\r\n]; x -> y;\u001b[31m\u202eRED', ready: "False", peers: { b: ["Relayed", evilVia], p1: "Connected" } });
  const b = member("b", { subnet: alloc.b, peers: { a: ["Relayed", evilVia], p1: "Connected" } });
  const p1 = member("p1", { endpoint: 'x" onload="alert(1)&amp;#35;--%%{init}%%:1', subnet: alloc.p1, peers: { a: "Connected", b: "Connected" } });
  return { meshes: [meshWith([{ machines: ["a", "b"], via: evilVia }], alloc)], machines: [a, b, p1] };
}

test("graph: hostile status text is escaped in dot and Mermaid (no string ends, no statement or HTML added)", () => {
  const { meshes, machines } = hostileMesh();
  const g = buildMeshGraph(meshes, machines);
  const dot = renderDot(g);
  const mmd = renderMermaid(g);
  assertGolden("graph-hostile.dot", dot);
  assertGolden("graph-hostile.mmd", mmd);
  // dot: one statement per line, every quote inside a label escaped, no raw control characters or HTML.
  // eslint-disable-next-line no-control-regex -- looking for control characters is the point
  assert.doesNotMatch(dot, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
  assert.doesNotMatch(dot, /<script>/);
  for (const line of dot.split("\n").slice(4, -2)) {
    assert.match(line, /^ {2}"[a-z0-9]+"( -- "[a-z0-9]+")? \[.*\];$/, line);
    const unescaped = line.replace(/\\\\/g, "").replace(/\\"/g, "");
    // Quotes balance: names, label and tooltip values, colours and class — nothing else.
    assert.ok(unescaped.split('"').length % 2 === 1, `unbalanced quotes: ${line}`);
  }
  // Mermaid: a label is plain characters, entity codes (#NNN;) and our own <br> only.
  const labels = mmd.split("\n").flatMap((l) => l.match(/"[^"]*"/g) ?? []);
  assert.ok(labels.length >= 4);
  for (const label of labels) assert.match(label.slice(1, -1).replace(/<br>/g, "").replace(/#\d+;/g, ""), /^[A-Za-z0-9.:/_ ,-]*$/, label);
  assert.doesNotMatch(mmd, /<script>|onload="|\u202e/);
  assert.match(mmd, /#34;/);
});

test("graph: escaping, table-driven", () => {
  const rows: Array<[string, string, string]> = [
    // input, dot, mermaid
    ['say "hi"', 'say \\"hi\\"', "say #34;hi#34;"],
    ["a\\nb", "a\\\\nb", "a#92;nb"],
    ["line\nbreak", "line\ufffdbreak", "line#65533;break"],
    ["<b>&</b>", "&lt;b&gt;&amp;&lt;/b&gt;", "#60;b#62;#38;#60;/b#62;"],
    ["10.0.0.0/24", "10.0.0.0/24", "10.0.0.0/24"],
    ["\u202eevil", "\ufffdevil", "#65533;evil"],
  ];
  for (const [input, dot, mmd] of rows) {
    assert.equal(dotEscape(input), dot, input);
    assert.equal(mermaidEscape(input), mmd, input);
  }
  assert.equal([...cleanText("x".repeat(500))].length, 80);
});

test("graph: SVG through Graphviz shows every machine, the relayed edge and the colours", { timeout: 900_000 }, async () => {
  // dot comes from the Debian package graphviz: installed here when root, else the error names the command.
  await ensureSystemPackages({ requirements: [{ binary: "dot", paths: ["/usr/bin/dot", "/usr/local/bin/dot"], pkg: "graphviz" }] });
  const { meshes, machines } = natMesh();
  const svg = await dotToSvg(renderDot(buildMeshGraph(meshes, machines)));
  assert.match(svg, /^<\?xml/);
  for (const n of ["n1", "n2", "p1", "p2"]) assert.match(svg, new RegExp(`<title>${n}</title>`));
  assert.match(svg, /<title>n1&#45;&#45;n2<\/title>/);
  assert.match(svg, />via p1</);
  for (const h of ["fresh", "stale", "never"] as LinkHealth[]) assert.match(svg, new RegExp(`<g id="edge\\d+" class="edge ${h}">[\\s\\S]*?stroke="${HEALTH_COLOR[h]}"`), h);
  // Hostile text stays text in the SVG too.
  const hostile = await dotToSvg(renderDot(buildMeshGraph(hostileMesh().meshes, hostileMesh().machines)));
  assert.doesNotMatch(hostile, /<script>|onload="/);
});

test("graph: -o svg without Graphviz says what to install; a dot that hangs or floods is cut off", async (t) => {
  // Stand-ins for a misbehaving dot (fakes: a real dot does neither on a small graph).
  const dir = mkdtempSync(join(tmpdir(), "dockmesh-graph-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const script = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return join(dir, name);
  };
  await assert.rejects(dotToSvg("graph {}", { command: "dockmesh-no-such-dot" }), (e: Error) => e instanceof GraphvizError && /not installed.*apt-get install graphviz/.test(e.message));
  const t0 = Date.now();
  await assert.rejects(dotToSvg("graph {}", { command: script("fake-dot-hangs", "exec sleep 30"), timeoutMs: 300 }), /did not finish within 0.3 s/);
  assert.ok(Date.now() - t0 < 5000);
  await assert.rejects(dotToSvg("x".repeat(100), { command: script("fake-dot-floods", "exec cat"), maxBytes: 10 }), /more than 10 bytes/);
});

test("graph: bad flags and a missing kubeconfig are clear errors naming the flag (exit 1, nothing on stdout)", () => {
  const rows: Array<[string[], RegExp]> = [
    [["-o", "png"], /-o\/--output: "png" must be one of dot, svg, mermaid/],
    [["--mesh", "Bad_Name"], /--mesh: "Bad_Name" is not a MeshNetwork name/],
    [["-n", "no/such"], /-n\/--namespace: "no\/such" is not a namespace name/],
    [["--kubeconfig", "/nonexistent/kubeconfig"], /cannot read the kubeconfig \/nonexistent\/kubeconfig: ENOENT/],
  ];
  for (const [args, want] of rows) {
    const r = spawnSync(process.execPath, [`${projectRoot}bin/dockmesh.js`, "graph", ...args], { encoding: "utf8", env: { ...process.env, KUBECONFIG: "/nonexistent/kubeconfig" } });
    assert.equal(r.status, 1, args.join(" "));
    assert.equal(r.stdout, "");
    assert.match(r.stderr, want, args.join(" "));
  }
});
