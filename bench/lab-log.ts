// Reading the controller's JSON log lines (winston: message, timestamp, machine, …) for profiles.

export interface LogLine {
  /** Milliseconds since the epoch. */
  at: number;
  level: string;
  message: string;
  machine?: string;
  fields: Record<string, unknown>;
}

export function parseLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const l of text.split("\n")) {
    if (!l.startsWith("{")) continue;
    try {
      const o = JSON.parse(l) as Record<string, unknown>;
      const at = Date.parse(String(o.timestamp ?? ""));
      if (!Number.isFinite(at)) continue;
      out.push({ at, level: String(o.level ?? ""), message: String(o.message ?? ""), ...(typeof o.machine === "string" ? { machine: o.machine } : {}), fields: o });
    } catch {
      // not a log line
    }
  }
  return out;
}

/** Apply steps ("[#] …") per machine: first and last, in ms since t0. */
export function applyWindows(lines: readonly LogLine[], t0: number): Map<string, { first: number; last: number; steps: number }> {
  const out = new Map<string, { first: number; last: number; steps: number }>();
  for (const l of lines) {
    if (!l.message.startsWith("[#] ") || !l.machine) continue;
    const t = l.at - t0;
    const w = out.get(l.machine);
    if (!w) out.set(l.machine, { first: t, last: t, steps: 1 });
    else {
      w.last = Math.max(w.last, t);
      w.steps++;
    }
  }
  return out;
}

/**
 * Per machine, the round trips of each reconcile that reached the host before `until` (ms since
 * the epoch), from the "reconciled" debug lines: e.g. ["fresh 612", "observe 201"] per reconcile.
 */
export function reconcileTrips(lines: readonly LogLine[], until: number): Map<string, string[][]> {
  const out = new Map<string, string[][]>();
  for (const l of lines) {
    if (l.message !== "reconciled" || !l.machine || l.at > until) continue;
    const trips = String(l.fields.roundTrips ?? "")
      .split(", ")
      .filter(Boolean);
    out.set(l.machine, [...(out.get(l.machine) ?? []), trips]);
  }
  return out;
}
