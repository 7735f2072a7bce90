import { describe, expect, it } from 'vitest';
import { emptyPolicySet, type PolicySet } from '../policy/compile.js';
import { parseImageReference } from '../policy/image-reference.js';
import type { AdmissionContext, Evaluation, ReviewedImage, Verdict } from '../policy/types.js';
import { EvaluationMemo } from './evaluation-memo.js';

const set = (revision: string): PolicySet => ({ ...emptyPolicySet(), revision });
const context: AdmissionContext = { namespace: 'team-a', namespaceLabels: { env: 'prod' }, kind: 'Pod', name: 'p', operation: 'CREATE' };
const image: ReviewedImage = { pointer: '/spec/containers/0/image', container: 'app', containerType: 'containers', reference: parseImageReference('r.example.com/a:1') };
const evaluation: Evaluation = { allowed: true, results: [], warnings: [], auditAnnotations: {} };
const verdict: Verdict = { state: 'scanned', digest: 'sha256:1', scannedAt: '2026-01-01T00:00:00.000Z', findings: [] };

describe('evaluation memo', () => {
  const at = new Date('2026-01-01T00:00:00Z');
  const later = (ms: number) => new Date(at.getTime() + ms);

  it('answers identical inputs with the same verdict object within the ttl, and forgets after it', () => {
    const memo = new EvaluationMemo({ ttlMs: 1000 });
    const key = memo.key(set('r1'), context, [image], [verdict]);
    memo.set(key, evaluation, at);
    expect(memo.get(memo.key(set('r1'), context, [image], [verdict]), later(999))).toBe(evaluation);
    expect(memo.get(key, later(1000))).toBeUndefined();
  });

  it.each([
    ['another policy revision', () => [set('r2'), context, [image], [verdict]] as const],
    ['an equal but different verdict object', () => [set('r1'), context, [image], [{ ...verdict }]] as const],
    ['no verdict', () => [set('r1'), context, [image], [undefined]] as const],
    ['other namespace labels', () => [set('r1'), { ...context, namespaceLabels: { env: 'dev' } }, [image], [verdict]] as const],
    ['another image', () => [set('r1'), context, [{ ...image, reference: parseImageReference('r.example.com/a:2') }], [verdict]] as const],
    ['an UPDATE instead of a CREATE', () => [set('r1'), { ...context, operation: 'UPDATE' as const }, [image], [verdict]] as const],
  ])('misses for %s', (_name, inputs) => {
    const memo = new EvaluationMemo();
    memo.set(memo.key(set('r1'), context, [image], [verdict]), evaluation, at);
    const [s, c, i, v] = inputs();
    expect(memo.get(memo.key(s, c, i, v), at)).toBeUndefined();
  });
});
