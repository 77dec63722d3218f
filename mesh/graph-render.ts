// Renders a MeshGraph (mesh/graph.ts) as Graphviz dot or Mermaid text. Pure and deterministic.
// Every label is untrusted text (status, and spec written by others): control and bidi characters
// become U+FFFD, each line is cut to MAX_LABEL_CHARS, and the result is escaped for the target
// language, so a name cannot end a string, add an attribute or a statement, or inject HTML.
import { MAX_LABEL_CHARS, type GraphEdge, type GraphNode, type LinkHealth, type MeshGraph } from "./graph.js";

export type GraphFormat = "dot" | "mermaid";

/** Edge colours by health, shared by both formats (and looked for in the lab test's SVG). */
export const HEALTH_COLOR: Readonly<Record<LinkHealth, string>> = {
  fresh: "#2e7d32",
  stale: "#ef6c00",
  never: "#c62828",
  unknown: "#9e9e9e",
};

const NODE_FILL: Readonly<Record<"ready" | "notReady" | "unknown", string>> = {
  ready: "#e8f5e9",
  notReady: "#ffebee",
  unknown: "#eeeeee",
};

/** What the colours mean, printed under the picture (and as a comment in Mermaid). */
export const LEGEND = [
  "edges: green = handshake within 3 min, orange = stale (older), red = never (or no relay), grey = not reported",
  "dashed = through the relay named on it; boxes: green = Ready, red = not Ready",
];

/** Printable, bounded text: control characters (C0, DEL, C1) and bidi controls become U+FFFD. */
export function cleanText(text: string, max = MAX_LABEL_CHARS): string {
  // eslint-disable-next-line no-control-regex -- replacing control characters is the point
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "\ufffd");
  const chars = [...clean];
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : clean;
}

/** One line of a dot label, inside "…": backslash and quote escaped, & < > as entities (Graphviz reads entities in labels). */
export function dotEscape(text: string, max = MAX_LABEL_CHARS): string {
  return cleanText(text, max).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

/** One line of a Mermaid label, inside "…": everything but plain letters, digits and . : / _ - , space as an entity code (#NNN;). */
export function mermaidEscape(text: string): string {
  return [...cleanText(text)].map((c) => (/^[A-Za-z0-9.:/_ ,-]$/.test(c) ? c : `#${c.codePointAt(0)};`)).join("");
}

function readyText(n: GraphNode): string {
  if (n.ready === "True") return "Ready";
  if (n.ready === undefined) return "Ready: not reported";
  return `not Ready${n.readyReason ? `: ${n.readyReason}` : ""}`;
}

function nodeLines(n: GraphNode, meshes: number): string[] {
  return [n.name, ...n.subnets.map((s) => (meshes > 1 ? `${s.mesh}: ${s.subnet}` : s.subnet)), n.endpoint ?? "behind NAT", readyText(n)];
}

function nodeFill(n: GraphNode): string {
  return n.ready === "True" ? NODE_FILL.ready : n.ready === undefined || n.ready === "Unknown" ? NODE_FILL.unknown : NODE_FILL.notReady;
}

function edgeLabel(e: GraphEdge, meshes: number): string | undefined {
  const parts = [meshes > 1 ? e.mesh : "", e.via ? `via ${e.via}` : e.noRelay ? "no relay" : ""].filter(Boolean);
  return parts.length ? parts.join(" ") : undefined;
}

export function renderDot(g: MeshGraph): string {
  const q = (t: string) => `"${dotEscape(t)}"`;
  const out = [
    "graph dockmesh {",
    '  graph [fontname="Helvetica", fontsize=10, labelloc=b, overlap=false, splines=true, label="' + LEGEND.map((l) => dotEscape(l, Infinity)).join("\\n") + '"];',
    '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
    '  edge [fontname="Helvetica", fontsize=9, penwidth=2];',
  ];
  for (const n of g.nodes) {
    const label = nodeLines(n, g.meshes.length)
      .map((l) => dotEscape(l))
      .join("\\n");
    out.push(`  ${q(n.name)} [label="${label}", fillcolor="${nodeFill(n)}", class="machine"];`);
  }
  for (const e of g.edges) {
    const label = edgeLabel(e, g.meshes.length);
    const attrs = [
      `color="${HEALTH_COLOR[e.health]}"`,
      ...(label ? [`label=${q(label)}`] : []),
      ...(e.via ? ["style=dashed"] : []),
      `class="${e.health}"`,
      `tooltip=${q(`${e.a} -- ${e.b}: ${e.health}`)}`,
    ];
    out.push(`  ${q(e.a)} -- ${q(e.b)} [${attrs.join(", ")}];`);
  }
  out.push("}");
  return out.join("\n") + "\n";
}

export function renderMermaid(g: MeshGraph): string {
  const id = new Map(g.nodes.map((n, i) => [n.name, `m${i}`]));
  const out = ["graph LR"];
  for (const n of g.nodes) out.push(`  ${id.get(n.name)}["${nodeLines(n, g.meshes.length).map(mermaidEscape).join("<br>")}"]`);
  g.edges.forEach((e) => {
    const label = edgeLabel(e, g.meshes.length);
    const link = e.via ? "-.-" : "---";
    out.push(`  ${id.get(e.a)} ${link}${label ? `|"${mermaidEscape(label)}"|` : ""} ${id.get(e.b)}`);
  });
  out.push(`  classDef ready fill:${NODE_FILL.ready}`, `  classDef notReady fill:${NODE_FILL.notReady}`, `  classDef unknown fill:${NODE_FILL.unknown}`);
  for (const [cls, fill] of Object.entries(NODE_FILL)) {
    const ids = g.nodes.filter((n) => nodeFill(n) === fill).map((n) => id.get(n.name)!);
    if (ids.length) out.push(`  class ${ids.join(",")} ${cls}`);
  }
  g.edges.forEach((e, i) => out.push(`  linkStyle ${i} stroke:${HEALTH_COLOR[e.health]},stroke-width:2px`));
  for (const l of LEGEND) out.push(`  %% ${l}`);
  return out.join("\n") + "\n";
}

export function renderGraph(g: MeshGraph, format: GraphFormat): string {
  return format === "dot" ? renderDot(g) : renderMermaid(g);
}
