// A counting semaphore for async code: bounds how many SSH sessions (or any other
// expensive thing) run at once. Waiters are served first come, first served.

export class Semaphore {
  private free: number;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly permits: number) {
    if (!Number.isInteger(permits) || permits < 1) throw new Error(`semaphore: permits must be a positive integer, got ${permits}`);
    this.free = permits;
  }

  /** Permits free right now. */
  get available(): number {
    return this.free;
  }

  /** Callers waiting for a permit. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Resolves once a permit is held; call release() exactly once afterwards.
   * An aborted signal rejects a caller still waiting (it then holds nothing).
   */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.free > 0 && this.waiters.length === 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortError(signal));
      };
      const waiter = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      this.waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Takes a permit if one is free now, without waiting. */
  tryAcquire(): boolean {
    if (this.free > 0 && this.waiters.length === 0) {
      this.free--;
      return true;
    }
    return false;
  }

  /** Gives a permit back: to the longest waiter if there is one. */
  release(): void {
    const next = this.waiters.shift();
    if (next) {
      next(); // the permit passes straight to the waiter
      return;
    }
    if (this.free >= this.permits) throw new Error("semaphore: release() without a matching acquire()");
    this.free++;
  }

  /** Runs fn holding a permit; the permit is released however fn ends. */
  async use<T>(fn: () => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return new Error("semaphore: gave up waiting for a permit (aborted)", { cause: reason });
}
