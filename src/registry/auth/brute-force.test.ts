import { describe, expect, it } from 'vitest';
import { BruteForceGuard } from './brute-force.js';

function guard() {
  const clock = { ms: 0, now: () => clock.ms };
  const waited: number[] = [];
  const instance = new BruteForceGuard({ baseDelayMs: 100, maxDelayMs: 1000, windowMs: 60_000 }, clock, async (ms) => {
    waited.push(ms);
  });
  return { clock, waited, instance };
}

describe('the brute-force delay', () => {
  it('doubles per failure of a user name up to the cap', async () => {
    const { waited, instance } = guard();
    for (let i = 0; i < 6; i += 1) await instance.fail('alice', undefined);
    expect(waited).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('counts per client address across user names', async () => {
    const { waited, instance } = guard();
    await instance.fail('a', '10.0.0.1');
    await instance.fail('b', '10.0.0.1');
    await instance.fail('c', '10.0.0.2');
    expect(waited).toEqual([100, 200, 100]);
  });

  it('forgets failures after the window and on success for the user', async () => {
    const { clock, waited, instance } = guard();
    await instance.fail('alice', undefined);
    await instance.fail('alice', undefined);
    clock.ms += 61_000;
    await instance.fail('alice', undefined);
    instance.succeed('alice');
    await instance.fail('alice', undefined);
    expect(waited).toEqual([100, 200, 100, 100]);
  });
});
