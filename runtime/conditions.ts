// metav1.Condition helpers. Pure: the caller passes the time and gets new arrays.
//
// Rule for callers: a message describes the state ("ssh root@h: connection refused"),
// never when it was seen. No timestamps, durations or counters in reason or message —
// they would change on every resync and make every resync write status.
import type { Condition, ConditionStatus } from "../api/meta.js";

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  /** CamelCase, e.g. "AuthFailed". */
  reason: string;
  message: string;
}

/**
 * Longest condition message written. The API refuses more than 32,768 characters (the whole
 * status write fails); a message is advice to read, so it is cut well before.
 */
export const MAX_CONDITION_MESSAGE = 4096;

const clip = (message: string) => (message.length > MAX_CONDITION_MESSAGE ? `${message.slice(0, MAX_CONDITION_MESSAGE - 14)} … (truncated)` : message);

/** RFC 3339 with whole seconds, as the API server stores metav1.Time. */
export function formatTime(now: Date | string | number): string {
  const d = now instanceof Date ? now : new Date(now);
  if (Number.isNaN(d.getTime())) throw new Error(`conditions: not a time: ${String(now)}`);
  return d.toISOString().replace(/\.\d+Z$/, "Z");
}

/**
 * A new list with `input` set: lastTransitionTime moves to `now` only when the status
 * changes (or the condition is new); a changed reason or message keeps it.
 * observedGeneration is always set. The result is sorted by sortConditions(order).
 */
export function setCondition(list: readonly Condition[] | undefined, input: ConditionInput, observedGeneration: number, now: Date | string | number, order: readonly string[] = []): Condition[] {
  const existing = list?.find((c) => c.type === input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    observedGeneration,
    lastTransitionTime: existing && existing.status === input.status ? existing.lastTransitionTime : formatTime(now),
    reason: input.reason,
    message: clip(input.message),
  };
  const rest = (list ?? []).filter((c) => c.type !== input.type);
  return sortConditions([...rest, next], order);
}

/** setCondition for several conditions at once. */
export function setConditions(
  list: readonly Condition[] | undefined,
  inputs: readonly ConditionInput[],
  observedGeneration: number,
  now: Date | string | number,
  order: readonly string[] = [],
): Condition[] {
  let out: Condition[] = sortConditions(list ?? [], order);
  for (const input of inputs) out = setCondition(out, input, observedGeneration, now, order);
  return out;
}

/** A new list without the condition of that type. */
export function removeCondition(list: readonly Condition[] | undefined, type: string): Condition[] {
  return (list ?? []).filter((c) => c.type !== type);
}

/** Types listed in `order` first, in that order; the rest after, by type name. */
export function sortConditions(list: readonly Condition[], order: readonly string[] = []): Condition[] {
  const rank = (t: string) => {
    const i = order.indexOf(t);
    return i < 0 ? order.length : i;
  };
  return [...list].sort((a, b) => rank(a.type) - rank(b.type) || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
}

export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

export function isTrue(list: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(list, type)?.status === "True";
}

export function isFalse(list: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(list, type)?.status === "False";
}

/**
 * Same conditions, compared type by type on every field (order of the lists ignored).
 * With ignoreTransitionTime, lastTransitionTime is left out of the comparison.
 */
export function conditionsEqual(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined, opts: { ignoreTransitionTime?: boolean } = {}): boolean {
  const la = a ?? [];
  const lb = b ?? [];
  if (la.length !== lb.length) return false;
  return la.every((ca) => {
    const cb = lb.find((c) => c.type === ca.type);
    return (
      cb !== undefined &&
      ca.status === cb.status &&
      ca.reason === cb.reason &&
      ca.message === cb.message &&
      ca.observedGeneration === cb.observedGeneration &&
      (opts.ignoreTransitionTime === true || ca.lastTransitionTime === cb.lastTransitionTime)
    );
  });
}
