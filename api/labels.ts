// Label requirements and their evaluation, as k8s.io/apimachinery/pkg/labels does it: shared by
// the API server (labelSelector query parameters) and the planner (MeshNetwork machineSelector).

export type LabelOp = "=" | "!=" | "in" | "notin" | "exists" | "!" | "gt" | "lt";

export interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}

export type LabelSelector = LabelRequirement[];

export function matchLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const r of sel) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case "=":
        if (!has || v !== r.values[0]) return false;
        break;
      case "!=":
        if (has && v === r.values[0]) return false;
        break;
      case "in":
        if (!has || !r.values.includes(v ?? "")) return false;
        break;
      case "notin":
        if (has && r.values.includes(v ?? "")) return false;
        break;
      case "exists":
        if (!has) return false;
        break;
      case "!":
        if (has) return false;
        break;
      case "gt":
      case "lt": {
        if (!has || !/^-?\d+$/.test(v ?? "")) return false;
        const n = Number(v);
        const t = Number(r.values[0]);
        if (r.op === "gt" ? !(n > t) : !(n < t)) return false;
        break;
      }
    }
  }
  return true;
}
