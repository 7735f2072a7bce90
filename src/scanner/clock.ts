/**
 * Time as the scanner sees it. Queue backoff, report age and readiness probes read it, so tests
 * drive them with `manualClock` instead of sleeping.
 */
export interface Clock {
  now(): Date;
  /** Calls `callback` after `ms` of this clock's time; returns a function that cancels it. */
  setTimer(callback: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => new Date(),
  setTimer(callback, ms) {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

export interface ManualClock extends Clock {
  /** Moves time forward and fires every timer that came due, in order. */
  advance(ms: number): void;
  set(date: Date): void;
}

export function manualClock(start = new Date('2026-01-01T00:00:00.000Z')): ManualClock {
  let now = start.getTime();
  let nextId = 0;
  const timers = new Map<number, { at: number; callback: () => void }>();
  const fireDue = () => {
    for (;;) {
      const due = [...timers.entries()].filter(([, timer]) => timer.at <= now).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) return;
      timers.delete(due[0]);
      due[1].callback();
    }
  };
  return {
    now: () => new Date(now),
    setTimer(callback, ms) {
      const id = nextId++;
      timers.set(id, { at: now + ms, callback });
      return () => timers.delete(id);
    },
    advance(ms) {
      now += ms;
      fireDue();
    },
    set(date) {
      now = date.getTime();
      fireDue();
    },
  };
}
