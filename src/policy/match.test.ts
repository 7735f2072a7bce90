import { describe, expect, it } from 'vitest';
import { DIGEST_A, image } from '../../test/policy/builders.js';
import { compileGlobs, compileSelector, imageCandidates } from './match.js';
import { describeAge, describeState, truncateMiddle } from './messages.js';
import { expiryInstant, parseDuration } from './time.js';

describe('compileGlobs', () => {
  it.each([
    { name: 'an exact pattern matches only itself', patterns: ['prod'], yes: ['prod'], no: ['prod-1', 'Prod'] },
    { name: 'a star stays within one path segment', patterns: ['docker.io/*'], yes: ['docker.io/nginx'], no: ['docker.io/library/nginx'] },
    { name: 'a double star crosses segments', patterns: ['registry.example.com/**'], yes: ['registry.example.com/a/b/c:1'], no: ['registry.example.org/a'] },
    { name: 'braces and classes work', patterns: ['team-{a,b}', 'ns-[0-9]'], yes: ['team-a', 'ns-7'], no: ['team-c', 'ns-x'] },
    { name: 'a lone star matches everything', patterns: ['*'], yes: ['a/b', ''], no: [] },
    { name: 'an empty list matches nothing', patterns: [], yes: [], no: ['anything'] },
    { name: 'dots and ports are plain characters', patterns: ['*.example.com:5000'], yes: ['r.example.com:5000'], no: ['r.example.com', 'rexample.com:5000'] },
  ])('$name', ({ patterns, yes, no }) => {
    const matches = compileGlobs(patterns);
    for (const candidate of yes) expect(matches(candidate), candidate).toBe(true);
    for (const candidate of no) expect(matches(candidate), candidate).toBe(false);
  });
});

describe('compileSelector', () => {
  it('applies Kubernetes label-selector semantics', () => {
    const selector = compileSelector({
      matchLabels: { env: 'prod' },
      matchExpressions: [
        { key: 'tier', operator: 'NotIn', values: ['db'] },
        { key: 'team', operator: 'Exists' },
      ],
    });
    expect(selector({ env: 'prod', team: 'x' })).toBe(true);
    expect(selector({ env: 'prod', team: 'x', tier: 'web' })).toBe(true);
    expect(selector({ env: 'prod', team: 'x', tier: 'db' })).toBe(false);
    expect(selector({ env: 'dev', team: 'x' })).toBe(false);
    expect(selector({ env: 'prod' })).toBe(false);
    expect(compileSelector(undefined)({})).toBe(true);
  });
});

describe('imageCandidates', () => {
  it('lists the spellings an image glob is tried against', () => {
    expect(imageCandidates(image('nginx', { digest: DIGEST_A }))).toEqual([
      'nginx',
      'docker.io/library/nginx',
      'docker.io/library/nginx:latest',
      DIGEST_A,
      `docker.io/library/nginx@${DIGEST_A}`,
    ]);
  });
});

describe('durations and expiry', () => {
  it.each([
    ['30m', 1_800_000],
    ['12h', 43_200_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['1d12h', 129_600_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('reads a date as the end of that day, UTC, and a date-time as written', () => {
    expect(new Date(expiryInstant('2026-12-31')).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(new Date(expiryInstant('2026-12-31T10:00:00+02:00')).toISOString()).toBe('2026-12-31T08:00:00.000Z');
  });
});

describe('message helpers', () => {
  it('keep both ends of a long name', () => {
    expect(truncateMiddle('registry.example.com/team/app:1.0', 20)).toBe('registry.e…m/app:1.0');
    expect(truncateMiddle('short', 20)).toBe('short');
  });

  it('say an age in the largest sensible unit', () => {
    expect([describeAge(5 * 60_000), describeAge(5 * 3_600_000), describeAge(5 * 86_400_000)]).toEqual(['5m', '5h', '5d']);
  });

  it('say why there is no scan, without repeating a reason that already says it', () => {
    expect(describeState('pending', '')).toBe('scan pending');
    expect(describeState('failed', 'timeout after 300s')).toBe('scan failed: timeout after 300s');
    expect(describeState('unavailable', 'scanner not ready: trivy DB missing')).toBe('scanner not ready: trivy DB missing');
    expect(describeState('pending', 'scan pending (position 3)')).toBe('scan pending (position 3)');
  });
});
