// Issue 15 on real lab hosts: `dockmesh graph -o svg` against the live API of `dockmesh up`.
// One public host and two behind NAT (their pair relayed through the public one): the SVG shows
// every machine, every edge, the relayed one dashed through p1, all fresh. Then n1 is cut off:
// once its peers' status shows the stale handshake, its links (the relayed pair too) are drawn
// in the stale colour and the link that does not involve it stays fresh.
// UPDATE_DOCS=1 writes the healthy picture to docs/mesh-graph.svg (the README's image).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import type { Machine, MeshNetwork } from "../../api/types.generated.js";
import { HEALTH_COLOR } from "../../mesh/graph-render.js";
import { ensureSystemPackages } from "../../lab/requirements.js";
import { MeshEnv, startMeshEnv, eventually, yamlDoc } from "../../lab/mesh-env.js";
import { projectRoot } from "../support/golden.js";

// This file's own lab: prefix, address blocks and ports differ from every other test's.
const PREFIX = "dmgr";
const LABNET = "198.18.58.0/24";
const NAT_LANS = { first: 122, last: 125 };
const PORT = 16478;
const HOSTS = ["p1", "n1", "n2"] as const;

const MESH = yamlDoc({
  apiVersion: "dockmesh.io/v1alpha1",
  kind: "MeshNetwork",
  metadata: { name: "mesh", namespace: "default" },
  spec: { cidr: "10.232.0.0/16", dockerNetwork: "mesh", interface: "dm0", natTraversal: "Relay" },
}); // the relayed pair is drawn

let env: MeshEnv;

/** Runs `dockmesh graph ARGS` as a user would, against the lab's kubeconfig. */
function graph(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [`${projectRoot}bin/dockmesh.js`, "graph", ...args], { env: { ...process.env, KUBECONFIG: env.kubeconfig }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

async function svg(): Promise<string> {
  const r = await graph(["-o", "svg"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /<svg /);
  return r.stdout;
}

interface SvgEdge {
  cls: string;
  stroke: string;
  dashed: boolean;
  label: string;
}

/** The edges of Graphviz's SVG by title ("a--b"): class, stroke colour, dashes and label text (each element runs to the next comment Graphviz writes before every node and edge). */
function svgEdges(text: string): Map<string, SvgEdge> {
  const out = new Map<string, SvgEdge>();
  for (const m of text.matchAll(/<g id="edge\d+" class="edge (\w+)">\s*<title>([^<]*)<\/title>([\s\S]*?)(?=<!--|<\/svg>)/g)) {
    const body = m[3]!;
    out.set(m[2]!.replace(/&#45;/g, "-"), {
      cls: m[1]!,
      stroke: /<path [^>]*stroke="([^"]+)"/.exec(body)?.[1] ?? "",
      dashed: /<path [^>]*stroke-dasharray/.test(body),
      label: [...body.matchAll(/<text [^>]*>([^<]*)<\/text>/g)].map((t) => t[1]).join(" "),
    });
  }
  return out;
}

const peerState = (m: Machine, peer: string) => m.status?.networks?.[0]?.peers?.find((p) => p.machine === peer)?.state;

describe("dockmesh graph on lab hosts", { timeout: 900_000 }, () => {
  before(async () => {
    await ensureSystemPackages({ requirements: [{ binary: "dot", paths: ["/usr/bin/dot", "/usr/local/bin/dot"], pkg: "graphviz" }] });
    env = await startMeshEnv({
      prefix: PREFIX,
      labnet: LABNET,
      natLans: NAT_LANS,
      hosts: [{ name: "p1" }, { name: "n1", nat: true }, { name: "n2", nat: true }],
      port: PORT,
      resyncPeriod: "5s",
      extraArgs: ["--ready-check-period", "5s"],
    });
    await env.kubectlOk(["apply", "-f", "-"], env.sshSecretYaml() + MESH + env.machineYaml([...HOSTS]));
    await env.kubectlOk(["wait", "--for=condition=Ready", "--timeout=180s", ...HOSTS.map((h) => `machine/${h}`)], undefined, 200_000);
  });

  after(async () => {
    if (process.env.DOCKMESH_TEST_KEEP) return;
    await env?.close();
  });

  test("every machine, every edge, the NAT pair through its relay, all fresh", async () => {
    const mesh = await env.getJson<MeshNetwork>(["get", "meshnetwork", "mesh"]);
    assert.deepEqual(mesh.status?.relays, [{ machines: ["n1", "n2"], via: "p1" }]);
    // Status catches up with the handshakes within a resync or two.
    const text = await eventually(
      "every edge fresh in the SVG",
      async () => {
        const s = await svg();
        const edges = svgEdges(s);
        return edges.size === 3 && [...edges.values()].every((e) => e.cls === "fresh") ? s : undefined;
      },
      60_000,
      2000,
    );
    for (const h of HOSTS) assert.match(text, new RegExp(`<title>${h}</title>`), h);
    assert.match(text, />behind NAT</);
    assert.match(text, new RegExp(`>${env.lab.host("p1").publicEndpoint!.replace(/\./g, "\\.")}:51820<`));
    assert.match(text, />10\.232\.\d+\.0\/24</);
    const edges = svgEdges(text);
    assert.deepEqual([...edges.keys()].sort(), ["n1--n2", "n1--p1", "n2--p1"]);
    const relayed = edges.get("n1--n2")!;
    assert.deepEqual(relayed, { cls: "fresh", stroke: HEALTH_COLOR.fresh, dashed: true, label: "via p1" });
    for (const k of ["n1--p1", "n2--p1"]) assert.deepEqual(edges.get(k), { cls: "fresh", stroke: HEALTH_COLOR.fresh, dashed: false, label: "" }, k);
    const timed = await graph(["-o", "svg"]);
    console.log(`# dockmesh graph -o svg: ${timed.stdout.length} bytes in ${timed.ms} ms (3 machines, 3 edges)`);
    if (process.env.UPDATE_DOCS === "1") writeFileSync(`${projectRoot}docs/mesh-graph.svg`, text);

    // The same graph as dot and as Mermaid, from the same API.
    const dot = await graph(["-o", "dot", "--mesh", "mesh", "-n", "default"]);
    assert.equal(dot.code, 0, dot.stderr);
    assert.match(dot.stdout, /"n1" -- "n2" \[color="#2e7d32", label="via p1", style=dashed/);
    const mmd = await graph(["-o", "mermaid"]);
    assert.equal(mmd.code, 0, mmd.stderr);
    assert.match(mmd.stdout, /^graph LR\n/);
    assert.match(mmd.stdout, /m0 -\.-\|"via p1"\| m1/);
    const missing = await graph(["--mesh", "nope"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /--mesh: MeshNetwork default\/nope not found/);
  });

  test("n1 cut off: its links, the relayed pair included, in the stale colour; p1--n2 stays fresh", async () => {
    const cutAt = Date.now();
    await env.lab.cut("n1");
    // The handshake goes stale 3 minutes after the last one (WireGuard re-keys every 2), as p1's status shows.
    await eventually(
      "p1's status shows n1's handshake stale",
      async () => {
        const s = peerState(await env.getJson<Machine>(["get", "machine", "p1"]), "n1");
        return s === "Stale" || s === "NoHandshake" ? s : undefined;
      },
      300_000,
      2000,
    );
    console.log(`# p1's status shows n1 stale ${((Date.now() - cutAt) / 1000).toFixed(0)} s after the cut`);
    const text = await eventually(
      "the SVG shows n1's links stale",
      async () => {
        const s = await svg();
        return svgEdges(s).get("n1--p1")?.cls === "stale" ? s : undefined;
      },
      30_000,
      2000,
    );
    const edges = svgEdges(text);
    assert.deepEqual(edges.get("n1--p1"), { cls: "stale", stroke: HEALTH_COLOR.stale, dashed: false, label: "" });
    assert.deepEqual(edges.get("n1--n2"), { cls: "stale", stroke: HEALTH_COLOR.stale, dashed: true, label: "via p1" });
    assert.deepEqual(edges.get("n2--p1"), { cls: "fresh", stroke: HEALTH_COLOR.fresh, dashed: false, label: "" });
    assert.notEqual(HEALTH_COLOR.stale, HEALTH_COLOR.fresh);
    // n1's box says it is not Ready (the controller cannot reach it).
    assert.match(text, /<title>n1<\/title>[\s\S]*?>not Ready: [A-Za-z]+</);
  });
});
