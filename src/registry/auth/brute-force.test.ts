import { describe, expect, it } from 'vitest';
import { BruteForceGuard, addressKey } from './brute-force.js';

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

  it('counts an IPv6 client by its /64, and an IPv4-mapped one by its IPv4 address', async () => {
    const { waited, instance } = guard();
    await instance.fail('a', '2001:db8:1:2::1');
    await instance.fail('b', '2001:db8:1:2:ffff:ffff:ffff:fffe');
    await instance.fail('c', '2001:db8:1:3::1');
    await instance.fail('d', '::ffff:10.0.0.9');
    await instance.fail('e', '10.0.0.9');
    expect(waited).toEqual([100, 200, 100, 100, 200]);
  });

  it.each([
    ['10.1.2.3', '10.1.2.3'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:0DB8:0001:0002:0003:0004:0005:0006', '2001:db8:1:2::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['2001:db8:aaaa:bbbb::', '2001:db8:aaaa:bbbb::/64'],
    ['1:2::3:4:5:10.1.2.3', '1:2:0:3::/64'],
    ['::ffff:a01:203', '10.1.2.3'],
    ['64:ff9b::192.0.2.33', '192.0.2.33'],
    ['203.0.113.9:51234', '203.0.113.9'],
    ['[2001:db8::1]:443', '2001:db8:0:0::/64'],
    ['[2001:db8::1]', '2001:db8:0:0::/64'],
    ['not an address', 'unreadable'],
    ['10.0.0.0/33', 'unreadable'],
  ])('keys %s as %s', (ip, key) => {
    expect(addressKey(ip)).toBe(key);
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
