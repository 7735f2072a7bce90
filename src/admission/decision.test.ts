import { describe, expect, it } from 'vitest';
import { isoTime } from './decision.js';

describe('isoTime', () => {
  it('formats exactly as toISOString, across seconds, milliseconds and the edges of the year range', () => {
    const instants = [
      0,
      1,
      999,
      1000,
      Date.UTC(2026, 11, 4, 18, 30, 5, 7),
      Date.UTC(2026, 11, 4, 18, 30, 5, 70),
      Date.UTC(2026, 11, 4, 18, 30, 5, 700),
      Date.UTC(2026, 11, 4, 18, 30, 6, 0),
      -1,
      -1001,
      Date.UTC(-1, 0, 1),
      Date.UTC(10_000, 0, 1, 0, 0, 0, 5),
      8.64e15,
    ];
    for (let step = 0; step < 2000; step += 1) instants.push(1_764_870_000_000 + step * 37);
    for (const ms of instants) expect(isoTime(new Date(ms)), String(ms)).toBe(new Date(ms).toISOString());
  });

  it('refuses an invalid date as toISOString does', () => {
    expect(() => isoTime(new Date(Number.NaN))).toThrow(RangeError);
  });
});
