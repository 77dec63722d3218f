// helm/dockmesh/dashboards/dockmesh.json: loads, has the sections issue 15 asks for (mesh
// health, handshake ages, reconcile latency, SSH round trips, work queue), well-formed panels,
// and every query names only metrics the controller exports (read from a real registry).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../support/golden.js";
import { ControllerMetrics } from "../../controllers/metrics.js";

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ refId: string; expr: string }>;
}

const dashboard = JSON.parse(readFileSync(join(projectRoot, "helm/dockmesh/dashboards/dockmesh.json"), "utf8")) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string }> };
};

/** Metric names a registry exports, with a histogram's _bucket, _count and _sum. */
async function exportedNames(): Promise<Set<string>> {
  const m = new ControllerMetrics();
  const text = await m.render();
  m.stop();
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === "histogram") for (const s of ["_bucket", "_count", "_sum"]) names.add(name + s);
  }
  return names;
}

/** Metric names in a PromQL expression: identifiers followed by a selector, a range or used bare, minus functions and keywords. */
function metricsIn(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutLabels = withoutStrings.replace(/\{[^}]*\}/g, "{}").replace(/\b(by|without)\s*\([^)]*\)/g, "");
  const words = [...withoutLabels.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]);
  const notMetrics = new Set([
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "increase",
    "topk",
    "bottomk",
    "histogram_quantile",
    "and",
    "or",
    "unless",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "s",
    "m",
    "h",
    "d",
  ]);
  return words.filter((w) => !notMetrics.has(w) && !/^\d/.test(w));
}

describe("Grafana dashboard", () => {
  test("loads, with unique panel ids, grid positions inside 24 columns, and a Prometheus data source on every query", () => {
    assert.equal(dashboard.uid, "dockmesh");
    assert.ok(dashboard.schemaVersion >= 36);
    assert.ok(dashboard.templating.list.some((v) => v.name === "datasource"));
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, "unique ids");
    for (const p of dashboard.panels) {
      const g = p.gridPos;
      assert.ok(Number.isInteger(g.x) && Number.isInteger(g.w) && g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `${p.title}: gridPos ${JSON.stringify(g)}`);
      if (p.type === "row") continue;
      assert.ok(["stat", "timeseries", "table"].includes(p.type), `${p.title}: type ${p.type}`);
      assert.deepEqual(p.datasource, { type: "prometheus", uid: "${datasource}" }, p.title);
      assert.ok((p.targets ?? []).length > 0, `${p.title} has queries`);
    }
  });

  test("covers mesh health, handshake ages, traffic, reconcile latency, SSH round trips and the work queue", () => {
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join("\n");
    for (const m of [
      "dockmesh_machines",
      "dockmesh_peer_handshake_stale",
      "dockmesh_peer_last_handshake_age_seconds",
      "dockmesh_peer_relayed",
      "dockmesh_machine_peer_receive_bytes_total",
      "dockmesh_reconcile_duration_seconds_bucket",
      "dockmesh_ssh_roundtrip_seconds_bucket",
      "dockmesh_workqueue_depth",
      "dockmesh_peer_pairs_dropped",
    ])
      assert.ok(exprs.includes(m), m);
  });

  test("every query names only metrics the controller exports", async () => {
    const names = await exportedNames();
    assert.ok(names.has("dockmesh_peer_last_handshake_age_seconds") && names.has("dockmesh_reconcile_duration_seconds_bucket"), "the registry lists the families");
    const unknown: string[] = [];
    for (const p of dashboard.panels) for (const t of p.targets ?? []) for (const m of metricsIn(t.expr)) if (!names.has(m)) unknown.push(`${p.title}: ${m}`);
    assert.deepEqual(unknown, []);
    // The check can fail: a misspelt metric is caught.
    assert.deepEqual(
      metricsIn('sum(rate(dockmesh_reconcile_totl{kind="Machine"}[5m]))').filter((m) => !names.has(m)),
      ["dockmesh_reconcile_totl"],
    );
  });
});
