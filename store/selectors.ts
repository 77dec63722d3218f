// Label selectors (equality- and set-based, as k8s.io/apimachinery/pkg/labels parses them) and
// field selectors (a=b, a==b, a!=b joined by commas).
import { badRequest } from "./errors.js";
import type { LabelRequirement, LabelSelector } from "../api/labels.js";

export { matchLabels, type LabelOp, type LabelRequirement, type LabelSelector } from "../api/labels.js";

export function parseLabelSelector(s: string): LabelSelector {
  const reqs: LabelRequirement[] = [];
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i] ?? "")) i++;
  };
  const ident = (): string => {
    ws();
    const start = i;
    while (i < s.length && !/[\s,!=()<>]/.test(s[i] ?? "")) i++;
    return s.slice(start, i);
  };
  const fail = (why: string) => badRequest(`unable to parse requirement: ${why}`);
  while (true) {
    ws();
    if (i >= s.length) break;
    let neg = false;
    if (s[i] === "!") {
      neg = true;
      i++;
    }
    const key = ident();
    if (!key) throw fail(`found '${s[i] ?? ""}', expected: identifier`);
    ws();
    if (neg) {
      reqs.push({ key, op: "!", values: [] });
    } else if (i >= s.length || s[i] === ",") {
      reqs.push({ key, op: "exists", values: [] });
    } else if (s.startsWith("!=", i)) {
      i += 2;
      reqs.push({ key, op: "!=", values: [ident()] });
    } else if (s.startsWith("==", i)) {
      i += 2;
      reqs.push({ key, op: "=", values: [ident()] });
    } else if (s[i] === "=") {
      i += 1;
      reqs.push({ key, op: "=", values: [ident()] });
    } else if (s[i] === ">" || s[i] === "<") {
      const op = s[i] === ">" ? "gt" : "lt";
      i += 1;
      const v = ident();
      if (!/^-?\d+$/.test(v)) throw fail(`for 'Gt', 'Lt' operators, the value must be an integer`);
      reqs.push({ key, op, values: [v] });
    } else {
      const word = ident().toLowerCase();
      if (word !== "in" && word !== "notin") throw fail(`found '${word}', expected: in, notin, =, ==, !=, gt, lt`);
      ws();
      if (s[i] !== "(") throw fail(`found '${s[i] ?? ""}', expected: '('`);
      i++;
      const values: string[] = [];
      while (true) {
        ws();
        if (s[i] === ")") {
          i++;
          break;
        }
        values.push(ident());
        ws();
        if (s[i] === ",") i++;
        else if (s[i] === ")") {
          i++;
          break;
        } else throw fail(`found '${s[i] ?? ""}', expected: ',', ')'`);
      }
      reqs.push({ key, op: word, values });
    }
    ws();
    if (i < s.length) {
      if (s[i] !== ",") throw fail(`found '${s[i] ?? ""}', expected: ','`);
      i++;
    }
  }
  return reqs;
}

export interface FieldRequirement {
  field: string;
  op: "=" | "!=";
  value: string;
}

export function parseFieldSelector(s: string, supported: (field: string) => boolean, resourceDesc: string): FieldRequirement[] {
  const out: FieldRequirement[] = [];
  for (const part of splitTerms(s)) {
    if (part.trim() === "") continue;
    let m = /^([^=!]+)(==|!=|=)(.*)$/.exec(part.trim());
    if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${part}'`);
    const field = (m[1] ?? "").trim();
    const op = m[2] === "!=" ? "!=" : "=";
    const value = unescapeField(m[3] ?? "");
    if (!supported(field)) {
      throw badRequest(`field label not supported: ${field}`);
    }
    m = null;
    out.push({ field, op, value });
  }
  void resourceDesc;
  return out;
}

// Field selector values escape ',', '=' and '\' with a backslash.
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? "";
    if (c === "\\" && i + 1 < s.length) {
      cur += c + (s[i + 1] ?? "");
      i++;
    } else if (c === ",") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function unescapeField(v: string): string {
  return v.replace(/\\(.)/g, "$1");
}

export function matchFields(reqs: FieldRequirement[], get: (field: string) => string): boolean {
  for (const r of reqs) {
    const v = get(r.field);
    if (r.op === "=" ? v !== r.value : v === r.value) return false;
  }
  return true;
}
