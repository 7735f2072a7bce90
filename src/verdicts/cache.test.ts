import { describe, expect, it } from 'vitest';
import { parseImageReference } from '../policy/image-reference.js';
import type { Verdict } from '../policy/types.js';
import { VerdictCache } from './cache.js';
import { StaticVerdictSource } from './static-source.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const scanned = (digest: string): Verdict => ({ state: 'scanned', digest, scannedAt: '2026-01-01T00:00:00.000Z', findings: [] });
const options = { signal: new AbortController().signal, triggerScan: false };

function cacheWithClock(max = 10) {
  const source = new StaticVerdictSource([{ image: `r.example.com/app:1@${DIGEST}`, verdict: scanned(DIGEST) }]);
  const clock = { now: 1_000 };
  const cache = new VerdictCache({ source, max, ttlMs: 60_000, digestTtlMs: 5_000, now: () => clock.now });
  return { cache, clock };
}

describe('verdict cache version and freshness', () => {
  it('peekEntry gives the digest, the verdict and the earliest expiry of the two entries it read', async () => {
    const { cache } = cacheWithClock();
    const reference = parseImageReference('r.example.com/app:1');
    expect(cache.peekEntry(reference)).toBeUndefined();
    const looked = await cache.lookup(reference, options);
    expect(looked.digest).toBe(DIGEST);
    const entry = cache.peekEntry(reference);
    expect(entry).toMatchObject({ digest: DIGEST, freshUntil: 1_000 + 5_000 });
    expect(entry?.verdict).toBe(looked.verdict);
    expect(cache.peek(reference)).toEqual({ digest: DIGEST, verdict: looked.verdict });
    // A pinned reference needs no tag resolution: only the verdict's own expiry counts.
    expect(cache.peekEntry(parseImageReference(`r.example.com/app@${DIGEST}`))?.freshUntil).toBe(1_000 + 60_000);
  });

  it('changes its version on every addition, forget and clear, and not on reads', async () => {
    const { cache, clock } = cacheWithClock();
    const reference = parseImageReference('r.example.com/app:1');
    const start = cache.version;
    await cache.lookup(reference, options);
    const filled = cache.version;
    expect(filled).not.toBe(start);
    cache.peek(reference);
    await cache.lookup(reference, options);
    expect(cache.version).toBe(filled);
    expect(cache.unchangedSince(filled, 2_000)).toBe(true);
    clock.now = 2_000;
    expect(cache.unchangedSince(filled, 2_000)).toBe(false);
    cache.forget(DIGEST);
    expect(cache.version).not.toBe(filled);
    const forgotten = cache.version;
    await cache.lookup(reference, options);
    cache.clear();
    expect(cache.version).not.toBe(forgotten);
  });
});
