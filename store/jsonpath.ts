// The subset of Kubernetes JSONPath that printer columns use: fields, indices, slices, wildcards,
// recursive descent and filters such as .status.conditions[?(@.type=="Ready")].status.

type Segment =
  | { t: "field"; name: string }
  | { t: "index"; i: number }
  | { t: "slice"; start?: number; end?: number }
  | { t: "wild" }
  | { t: "recurse" }
  | { t: "filter"; path: Segment[]; op?: string; value?: unknown };

const cache = new Map<string, Segment[]>();

export function compileJsonPath(expr: string): Segment[] {
  let segs = cache.get(expr);
  if (!segs) {
    let e = expr.trim();
    if (e.startsWith("{") && e.endsWith("}")) e = e.slice(1, -1);
    if (e.startsWith("$")) e = e.slice(1);
    segs = parse(e);
    cache.set(expr, segs);
  }
  return segs;
}

function parse(e: string): Segment[] {
  const out: Segment[] = [];
  let i = 0;
  while (i < e.length) {
    const c = e[i];
    if (c === "." && e[i + 1] === ".") {
      out.push({ t: "recurse" });
      i += 2;
      continue;
    }
    if (c === ".") {
      i++;
      if (e[i] === "*") {
        out.push({ t: "wild" });
        i++;
        continue;
      }
      const start = i;
      while (i < e.length && e[i] !== "." && e[i] !== "[") {
        if (e[i] === "\\") i++;
        i++;
      }
      const name = e.slice(start, i).replace(/\\(.)/g, "$1");
      if (name) out.push({ t: "field", name });
      continue;
    }
    if (c === "[") {
      const end = matchBracket(e, i);
      const inner = e.slice(i + 1, end).trim();
      i = end + 1;
      if (inner === "*") out.push({ t: "wild" });
      else if (inner.startsWith("?(") && inner.endsWith(")")) out.push(parseFilter(inner.slice(2, -1)));
      else if (/^['"].*['"]$/.test(inner)) out.push({ t: "field", name: inner.slice(1, -1) });
      else if (inner.includes(":")) {
        const [a, b] = inner.split(":");
        out.push({ t: "slice", start: a ? Number(a) : undefined, end: b ? Number(b) : undefined });
      } else out.push({ t: "index", i: Number(inner) });
      continue;
    }
    // a bare leading name ("spec.x" without the dot)
    const start = i;
    while (i < e.length && e[i] !== "." && e[i] !== "[") i++;
    out.push({ t: "field", name: e.slice(start, i) });
  }
  return out;
}

function matchBracket(e: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < e.length; i++) {
    const c = e[i];
    if (quote) {
      if (c === quote) quote = undefined;
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (c === "[") depth++;
    else if (c === "]") {
      depth--;
      if (depth === 0) return i;
    }
  }
  throw new Error(`unclosed [ in JSONPath ${e}`);
}

function parseFilter(f: string): Segment {
  const m = /^@(\S*?)\s*(==|!=|<=|>=|<|>)\s*(.+)$/.exec(f.trim());
  if (!m) {
    const p = f.trim().replace(/^@/, "");
    return { t: "filter", path: parse(p) };
  }
  const raw = (m[3] ?? "").trim();
  let value: unknown = raw;
  if (/^(['"]).*\1$/.test(raw)) value = raw.slice(1, -1);
  else if (raw === "true" || raw === "false") value = raw === "true";
  else if (raw === "nil" || raw === "null") value = null;
  else if (!Number.isNaN(Number(raw))) value = Number(raw);
  return { t: "filter", path: parse(m[1] ?? ""), op: m[2], value };
}

/** Every value the expression selects in `data`, in order (missing keys give no result). */
export function evalJsonPath(expr: string, data: unknown): unknown[] {
  let cur: unknown[] = [data];
  for (const seg of compileJsonPath(expr)) {
    const next: unknown[] = [];
    for (const v of cur) step(seg, v, next);
    cur = next;
  }
  return cur;
}

function step(seg: Segment, v: unknown, out: unknown[]): void {
  switch (seg.t) {
    case "field":
      if (v && typeof v === "object" && !Array.isArray(v) && seg.name in v) out.push((v as Record<string, unknown>)[seg.name]);
      return;
    case "index":
      if (Array.isArray(v)) {
        const i = seg.i < 0 ? v.length + seg.i : seg.i;
        if (i >= 0 && i < v.length) out.push(v[i]);
      }
      return;
    case "slice":
      if (Array.isArray(v)) out.push(...(v as unknown[]).slice(seg.start, seg.end));
      return;
    case "wild":
      if (Array.isArray(v)) out.push(...(v as unknown[]));
      else if (v && typeof v === "object") out.push(...Object.values(v as Record<string, unknown>));
      return;
    case "recurse":
      collect(v, out);
      return;
    case "filter": {
      const items = Array.isArray(v) ? v : v && typeof v === "object" ? Object.values(v) : [];
      for (const item of items) {
        let vals: unknown[] = [item];
        for (const s of seg.path) {
          const n: unknown[] = [];
          for (const x of vals) step(s, x, n);
          vals = n;
        }
        if (seg.op === undefined) {
          if (vals.length > 0) out.push(item);
        } else if (vals.some((x) => compare(x, seg.op ?? "==", seg.value))) out.push(item);
      }
      return;
    }
  }
}

function collect(v: unknown, out: unknown[]): void {
  out.push(v);
  if (Array.isArray(v)) for (const x of v) collect(x, out);
  else if (v && typeof v === "object") for (const x of Object.values(v)) collect(x, out);
}

function compare(a: unknown, op: string, b: unknown): boolean {
  switch (op) {
    case "==":
      return a === b;
    case "!=":
      return a !== b;
    case "<":
      return typeof a === "number" && typeof b === "number" && a < b;
    case ">":
      return typeof a === "number" && typeof b === "number" && a > b;
    case "<=":
      return typeof a === "number" && typeof b === "number" && a <= b;
    case ">=":
      return typeof a === "number" && typeof b === "number" && a >= b;
    default:
      return false;
  }
}
