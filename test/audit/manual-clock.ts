import type { Clock, Timer } from '../../src/audit/clock.js';

/** A clock that moves only when the test says so; timers fire during `advance`. */
export class ManualClock implements Clock {
  #now: number;
  #timers = new Set<{ intervalMs: number; next: number; callback: () => void }>();

  constructor(start = Date.parse('2026-11-21T10:00:00Z')) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  every(intervalMs: number, callback: () => void): Timer {
    const timer = { intervalMs, next: this.#now + intervalMs, callback };
    this.#timers.add(timer);
    return { cancel: () => this.#timers.delete(timer) };
  }

  /** Moves time forward, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const due = [...this.#timers].filter((timer) => timer.next <= target).sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      this.#now = due.next;
      due.next += due.intervalMs;
      due.callback();
    }
    this.#now = target;
  }

  get timers(): number {
    return this.#timers.size;
  }
}
