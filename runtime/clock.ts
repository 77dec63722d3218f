// Time as a dependency: the work queue, the informer's restart backoff and the event
// recorder take a Clock, so tests drive time by hand instead of sleeping.

/** Opaque handle of a scheduled callback. */
export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs fn once after ms milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

let nextId = 1;

interface RealTimerHandle extends TimerHandle {
  t: NodeJS.Timeout;
}

/**
 * The wall clock. Its timers are unref'd: a pending retry or resync never keeps the
 * process alive by itself (the API server connection or the HTTP listener does).
 */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    const handle: RealTimerHandle = { id: nextId++, t };
    return handle;
  },
  clearTimeout(handle) {
    const t = (handle as Partial<RealTimerHandle>).t;
    if (t) clearTimeout(t);
  },
};

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A clock that moves only when told to. Timers fire in order of due time, ties in the
 * order they were set; a timer set by a firing timer fires in the same advance() when due.
 */
export class FakeClock implements Clock {
  private current: number;
  private timers: FakeTimer[] = [];

  constructor(start = Date.UTC(2025, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: nextId++, at: this.current + Math.max(0, ms), fn };
    this.timers.push(timer);
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle.id);
  }

  /** Number of timers not yet fired. */
  pending(): number {
    return this.timers.length;
  }

  /** Due times (ms from now) of the pending timers, soonest first. */
  pendingDelays(): number[] {
    return this.timers.map((t) => t.at - this.current).sort((a, b) => a - b);
  }

  /** Moves time forward by ms, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.current + ms;
    // Bounded: each round removes one timer; a timer rescheduling itself at 0 ms would
    // otherwise spin forever.
    for (let guard = 0; guard < 100_000; guard++) {
      const due = this.timers.filter((t) => t.at <= end);
      if (due.length === 0) break;
      const next = due.reduce((a, b) => (b.at < a.at || (b.at === a.at && b.id < a.id) ? b : a));
      this.timers = this.timers.filter((t) => t !== next);
      this.current = Math.max(this.current, next.at);
      next.fn();
    }
    this.current = end;
  }
}
