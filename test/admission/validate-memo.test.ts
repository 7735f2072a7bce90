/**
 * The validating pipeline with its evaluation memo: a remembered evaluation is reused only while a
 * fresh evaluation would give the same answer (same inputs, same cached verdicts, and the clock
 * before the next instant at which an exception, allowlist entry or scan age changes the answer).
 */
import { describe, expect, it } from 'vitest';
import { EvaluationMemo } from '../../src/admission/evaluation-memo.js';
import { decodeAdmissionReview } from '../../src/admission/review.js';
import { noDeadline } from '../../src/admission/deadline.js';
import { validateReview, type Outcome, type PipelineDeps } from '../../src/admission/validate.js';
import { silentLogger } from '../../src/log/logger.js';
import { VerdictCache } from '../../src/verdicts/cache.js';
import { StaticVerdictSource } from '../../src/verdicts/static-source.js';
import { DIGEST_A, finding, policySet, scanned } from '../policy/builders.js';
import { admissionReview, workload } from '../helpers/admission.js';

const T0 = Date.parse('2026-06-01T12:00:00Z');
const IMAGE = `registry.example.com/team/app:1.0`;

const POLICIES = `
apiVersion: portcullis.io/v1alpha1
kind: ImagePolicy
metadata: { name: gate }
spec:
  action: deny
  rules:
    disallowedTags: [latest]
    vulnerabilities:
      maxSeverity: Medium
      maxScanAge: 1h
      verdictStates: { pending: deny, unscanned: deny, failed: deny, unsupported: allow, unavailable: deny, stale: deny }
---
apiVersion: portcullis.io/v1alpha1
kind: PolicyException
metadata: { name: latest-for-now }
spec:
  policies: [gate]
  namespaces: [team-a]
  images: ["registry.example.com/team/tool:latest"]
  reason: migration
  expires: "2026-06-01T12:00:00.500Z"
`;

function pipeline(clock: { now: number }, verdictScannedAt = '2026-06-01T11:30:00Z') {
  const source = new StaticVerdictSource([
    { image: `${IMAGE}@${DIGEST_A}`, verdict: scanned([finding('CVE-2026-1', 'Medium')], verdictScannedAt) },
    { image: `registry.example.com/team/tool:latest@${DIGEST_A}`, verdict: scanned([], verdictScannedAt) },
  ]);
  const verdicts = new VerdictCache({ source, max: 100, ttlMs: 24 * 3600_000, digestTtlMs: 24 * 3600_000, now: () => clock.now });
  const set = policySet(POLICIES, new Date(T0 - 60_000));
  const deps: PipelineDeps = {
    policies: { current: () => set },
    verdicts,
    kube: undefined,
    excluded: () => false,
    now: () => new Date(clock.now),
    logger: silentLogger(),
    memo: new EvaluationMemo({ ttlMs: 1000 }),
  };
  const run = async (image: string, name = 'web'): Promise<Outcome> => {
    const review = decodeAdmissionReview(admissionReview({ object: workload('Deployment', { name, namespace: 'team-a', containers: [image] }) }));
    return validateReview(deps, review, noDeadline(), new Date(clock.now));
  };
  return { run, verdicts, deps };
}

describe('validating pipeline with the evaluation memo', () => {
  it('reuses an evaluation synchronously, with the digests, for another Deployment of the same images', async () => {
    const clock = { now: T0 };
    const { run, deps } = pipeline(clock);
    const first = await run(IMAGE, 'web');
    expect(first.answer.allowed).toBe(true);
    expect(first.images[0]?.digest).toBe(DIGEST_A);
    const review = decodeAdmissionReview(admissionReview({ object: workload('Deployment', { name: 'other', namespace: 'team-a', containers: [IMAGE] }) }));
    const second = validateReview(deps, review, noDeadline(), new Date(clock.now + 10));
    // Answered without a promise, and the images carry the digests the evaluation used.
    expect(second).not.toBeInstanceOf(Promise);
    const outcome = second as Outcome;
    expect(outcome.results).toBe(first.results);
    expect(outcome.images[0]?.digest).toBe(DIGEST_A);
    expect(outcome.images[0]?.verdict).toBeUndefined();
  });

  it('stops applying an exception the moment it expires, even inside the memo lifetime', async () => {
    const clock = { now: T0 };
    const { run } = pipeline(clock);
    const tool = 'registry.example.com/team/tool:latest';
    expect((await run(tool)).answer.allowed).toBe(true);
    clock.now = T0 + 400;
    expect((await run(tool)).answer.allowed).toBe(true);
    clock.now = T0 + 500;
    const after = await run(tool);
    expect(after.answer.allowed).toBe(false);
    expect(after.answer.message).toMatch(/\[gate\/disallowedTags\] registry\.example\.com\/team\/tool:latest/);
  });

  it('stops reusing an evaluation when a verdict it used grows older than the maximum scan age', async () => {
    // Scanned at 11:00:00.300: one hour later is 12:00:00.300, stale one millisecond after.
    const clock = { now: T0 };
    const { run } = pipeline(clock, '2026-06-01T11:00:00.300Z');
    expect((await run(IMAGE)).answer.allowed).toBe(true);
    clock.now = T0 + 300;
    expect((await run(IMAGE)).answer.allowed).toBe(true);
    clock.now = T0 + 301;
    const stale = await run(IMAGE);
    expect(stale.answer.allowed).toBe(false);
    expect(stale.answer.message).toMatch(/older than the 1h allowed/);
  });

  it('evaluates afresh once the verdict cache forgot a verdict it used', async () => {
    const clock = { now: T0 };
    const { run, verdicts } = pipeline(clock);
    await run(IMAGE);
    const remembered = await run(IMAGE);
    expect(remembered.images[0]?.verdict).toBeUndefined();
    verdicts.forget(DIGEST_A);
    const fresh = await run(IMAGE);
    expect(fresh.images[0]?.verdict?.state).toBe('scanned');
  });
});
