// A status write the API server refuses (a 422 naming a field, a 413, RBAC) must show on the
// object, not only in the controller's log: a Machine whose every write failed with 422 kept
// showing its old, healthy status (issue 12). On a failed write: a Warning Event naming the
// error (and the field, which the API server's message names), then one more write of the
// status as the server last accepted it with a condition saying that the write failed. Then
// the error goes on to the caller (the work queue retries with backoff).
import type { EventRecorder } from "./events.js";
import type { Logger } from "./log.js";
import { describeError } from "./log.js";
import { objectKey } from "./informer.js";
import { httpStatus } from "./client.js";
import { writeStatus, type DesiredStatus, type StatusClient, type StatusObject, type StatusOf, type StatusWriteResult } from "./status.js";

export const STATUS_WRITE_FAILED = "StatusWriteFailed";

/** The error of a failed write as a message: the API server's own words, cut to a bound. */
export const MAX_PROBLEM = 2000;

export interface VisibleStatusOptions<S> {
  events: Pick<EventRecorder, "event">;
  logger: Logger;
  /**
   * Statuses to write instead, tried in order until the server takes one: the current one (as
   * stored) with a condition saying `problem`; then less of it, in case the stored status itself
   * no longer passes the schema (a CRD upgrade, a forged write).
   */
  fallbacks: ReadonlyArray<(current: S | undefined, problem: string) => S>;
}

/**
 * The API server refused the write as such (its schema, its size limit, RBAC): worth an Event and
 * a fallback status. Anything else (the server unreachable, a 5xx, conflicts that went on) is
 * retried by the work queue as it is: a fallback would fail the same way.
 */
const REFUSED = new Set([400, 403, 413, 422]);
const refused = (err: unknown): boolean => REFUSED.has(httpStatus((err as { cause?: unknown }).cause) ?? 0);

export function statusWriteProblem(err: unknown): string {
  const text = describeError(err);
  return text.length > MAX_PROBLEM ? `${text.slice(0, MAX_PROBLEM)}…` : text;
}

export async function writeStatusVisibly<T extends StatusObject<unknown>>(
  client: StatusClient<T>,
  object: T,
  desired: DesiredStatus<T, StatusOf<T>>,
  opts: VisibleStatusOptions<StatusOf<T>>,
): Promise<StatusWriteResult<T>> {
  try {
    return await writeStatus(client, object, desired, { logger: opts.logger });
  } catch (err) {
    if (!refused(err)) throw err;
    const problem = statusWriteProblem(err);
    const what = `${object.kind ?? "object"} ${objectKey(object)}`;
    opts.logger.error("status write failed", { object: what, error: problem });
    await opts.events.event(object, "Warning", STATUS_WRITE_FAILED, `the controller could not write this object's status, which is therefore out of date: ${problem}`);
    for (const [i, fallback] of opts.fallbacks.entries()) {
      try {
        await writeStatus(client, object, (cur) => fallback(cur, problem), { logger: opts.logger });
        break;
      } catch (again) {
        // When every fallback is refused too, the Event above is what is left.
        opts.logger.error("status write failed; the fallback status too", { object: what, fallback: i + 1, error: statusWriteProblem(again) });
      }
    }
    throw err;
  }
}
