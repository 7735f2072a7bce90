import { describe, expect, it } from 'vitest';
import { emptyPolicySet, type PolicySet } from '../policy/compile.js';
import { parseImageReference } from '../policy/image-reference.js';
import type { AdmissionContext, Evaluation, ReviewedImage } from '../policy/types.js';
import { EvaluationMemo, type CacheVersion } from './evaluation-memo.js';

const set = (revision: string): PolicySet => ({ ...emptyPolicySet(), revision });
const context: AdmissionContext = { namespace: 'team-a', namespaceLabels: { env: 'prod', tier: 'web' } };
const image: ReviewedImage = { pointer: '/spec/containers/0/image', container: 'app', containerType: 'containers', reference: parseImageReference('r.example.com/a:1') };
const evaluation: Evaluation = { allowed: true, results: [], warnings: [], auditAnnotations: {} };

/** A verdict cache stand-in: a version and a clock the test moves. */
class FakeCache implements CacheVersion {
  version = 7;
  clock = 1_000;
  unchangedSince(version: number, freshUntil: number): boolean {
    return version === this.version && this.clock < freshUntil;
  }
}

describe('evaluation memo', () => {
  const at = new Date('2026-01-01T00:00:00Z');
  const later = (ms: number) => new Date(at.getTime() + ms);

  it('answers identical inputs within the ttl with the evaluation and the digests, and forgets after it', () => {
    const memo = new EvaluationMemo({ ttlMs: 1000 });
    const cache = new FakeCache();
    memo.set(memo.key(set('r1'), context, [image]), { evaluation, digests: ['sha256:1'] }, at, { cacheVersion: cache.version, freshUntil: Number.POSITIVE_INFINITY, until: Number.POSITIVE_INFINITY });
    const hit = memo.get(memo.key(set('r1'), { ...context, namespaceLabels: { tier: 'web', env: 'prod' } }, [image]), later(999), cache);
    expect(hit?.evaluation).toBe(evaluation);
    expect(hit?.digests).toEqual(['sha256:1']);
    expect(memo.get(memo.key(set('r1'), context, [image]), later(1000), cache)).toBeUndefined();
  });

  it('serves only before the instant the engine said its answer could change, and never a request older than itself', () => {
    const memo = new EvaluationMemo({ ttlMs: 1000 });
    const cache = new FakeCache();
    const key = memo.key(set('r1'), context, [image]);
    memo.set(key, { evaluation, digests: [undefined] }, at, { cacheVersion: cache.version, freshUntil: Number.POSITIVE_INFINITY, until: at.getTime() + 300 });
    expect(memo.get(key, later(299), cache)).toBeDefined();
    expect(memo.get(key, later(300), cache)).toBeUndefined();
    expect(memo.get(key, later(-1), cache)).toBeUndefined();
    // An answer that changes right now is not remembered at all.
    const other = memo.key(set('r2'), context, [image]);
    memo.set(other, { evaluation, digests: [undefined] }, at, { cacheVersion: cache.version, freshUntil: Number.POSITIVE_INFINITY, until: at.getTime() });
    expect(memo.get(other, at, cache)).toBeUndefined();
  });

  it('misses once the verdict cache changed, or a verdict it used went stale', () => {
    const memo = new EvaluationMemo();
    const cache = new FakeCache();
    const key = memo.key(set('r1'), context, [image]);
    memo.set(key, { evaluation, digests: [undefined] }, at, { cacheVersion: cache.version, freshUntil: 2_000, until: Number.POSITIVE_INFINITY });
    expect(memo.get(key, at, cache)).toBeDefined();
    cache.clock = 2_000;
    expect(memo.get(key, at, cache)).toBeUndefined();
    cache.clock = 1_000;
    cache.version += 1;
    expect(memo.get(key, at, cache)).toBeUndefined();
  });

  it('hits for the same images in containers named otherwise (the engine does not read names)', () => {
    const memo = new EvaluationMemo();
    const cache = new FakeCache();
    memo.set(memo.key(set('r1'), context, [image]), { evaluation, digests: [undefined] }, at, { cacheVersion: cache.version, freshUntil: Number.POSITIVE_INFINITY, until: Number.POSITIVE_INFINITY });
    expect(memo.get(memo.key(set('r1'), context, [{ ...image, container: 'renamed' }]), at, cache)?.evaluation).toBe(evaluation);
  });

  it.each([
    ['another policy revision', () => [set('r2'), context, [image]] as const],
    ['other namespace labels', () => [set('r1'), { ...context, namespaceLabels: { env: 'dev' } }, [image]] as const],
    ['another namespace', () => [set('r1'), { ...context, namespace: 'team-b' }, [image]] as const],
    ['a label more', () => [set('r1'), { ...context, namespaceLabels: { ...context.namespaceLabels, extra: '' } }, [image]] as const],
    ['another image', () => [set('r1'), context, [{ ...image, reference: parseImageReference('r.example.com/a:2') }]] as const],
    ['the image in another place', () => [set('r1'), context, [{ ...image, pointer: '/spec/containers/1/image' }]] as const],
    ['the image in a pod template instead of a Pod', () => [set('r1'), context, [{ ...image, pointer: '/spec/template/spec/containers/0/image' }]] as const],
  ])('misses for %s', (_name, inputs) => {
    const memo = new EvaluationMemo();
    const cache = new FakeCache();
    memo.set(memo.key(set('r1'), context, [image]), { evaluation, digests: [undefined] }, at, { cacheVersion: cache.version, freshUntil: Number.POSITIVE_INFINITY, until: Number.POSITIVE_INFINITY });
    const [s, c, i] = inputs();
    expect(memo.get(memo.key(s, c, i), at, cache)).toBeUndefined();
  });

  it('holds at most `max` entries: when full, the oldest goes first', () => {
    const memo = new EvaluationMemo({ max: 2 });
    const cache = new FakeCache();
    const keys = ['r1', 'r2', 'r3'].map((revision) => memo.key(set(revision), context, [image]));
    const validity = { cacheVersion: cache.version, freshUntil: Number.POSITIVE_INFINITY, until: Number.POSITIVE_INFINITY };
    for (const key of keys) memo.set(key, { evaluation, digests: [undefined] }, at, validity);
    expect(keys.map((key) => memo.get(key, at, cache) !== undefined)).toEqual([false, true, true]);
    // Setting a key again makes it the newest: after r2 is set again, r3 is the oldest and goes next.
    memo.set(keys[1] as string, { evaluation, digests: [undefined] }, at, validity);
    memo.set(keys[0] as string, { evaluation, digests: [undefined] }, at, validity);
    expect(keys.map((key) => memo.get(key, at, cache) !== undefined)).toEqual([true, true, false]);
    // Setting a key that is already there evicts nothing.
    const small = new EvaluationMemo({ max: 2 });
    small.set(keys[0] as string, { evaluation, digests: [undefined] }, at, validity);
    small.set(keys[1] as string, { evaluation, digests: [undefined] }, at, validity);
    small.set(keys[1] as string, { evaluation, digests: [undefined] }, at, validity);
    expect(keys.slice(0, 2).map((key) => small.get(key, at, cache) !== undefined)).toEqual([true, true]);
  });
});
