/**
 * Time as the audit subsystem sees it. Production uses the system clock; tests pass a
 * ManualClock (test/audit/manual-clock.ts) and advance it, so that flushing and pruning are
 * tested without sleeping.
 */
export interface Timer {
  /** Stops the timer; idempotent. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `callback` every `intervalMs` until cancelled. The timer never keeps the process alive. */
  every(intervalMs: number, callback: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  every(intervalMs, callback) {
    const handle = setInterval(callback, intervalMs);
    handle.unref();
    return { cancel: () => clearInterval(handle) };
  },
};
