import { describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import type { PolicySet } from '../policy/compile.js';
import { evaluate, needsVerdict, nextClockChange } from '../policy/evaluate.js';
import type { AdmissionContext, Evaluation, PolicyResult, ReviewedImage } from '../policy/types.js';
import { RequestLookups, raceDeadline, type VerdictCache } from '../verdicts/cache.js';
import type { Deadline } from './deadline.js';
import type { EvaluationMemo } from './evaluation-memo.js';
import type { AdmissionKube } from './kube-port.js';
import type { Answer, AdmissionReviewRequest } from './review.js';
import { BUILTIN_POLICY, admissionContext, reviewImages, selectSubject, type Subject } from './subject.js';

/** What the pipelines need; the factory (admission.ts) builds it once. */
export interface PipelineDeps {
  /** The active policy set, undefined while none was ever loaded. */
  policies: { current(): PolicySet | undefined };
  /** Verdicts (cache over the configured source); undefined when no source is configured. */
  verdicts: VerdictCache | undefined;
  kube: AdmissionKube | undefined;
  excluded: (namespace: string) => boolean;
  now: () => Date;
  logger: Logger;
  /** Remembers identical evaluations for a moment (hot path); absent: always evaluate. */
  memo?: EvaluationMemo;
}

/** What one pipeline run produced: the answer and what the audit record needs. */
export interface Outcome {
  answer: Answer;
  /** Why the request was not evaluated (DELETE, excluded namespace, …); absent when it was. */
  skipped?: string;
  subject?: Subject;
  images: ReviewedImage[];
  results: readonly PolicyResult[];
  mode: 'deny' | 'warn' | 'audit' | 'none';
  /** For mutate: one line per patch operation. */
  patch: string[];
}

export function skippedOutcome(reason: string): Outcome {
  return { answer: { allowed: true }, skipped: reason, images: [], results: [], mode: 'none', patch: [] };
}

/** Namespace labels for matching, bounded by the deadline; unknown labels are logged and treated as none. */
export async function namespaceLabels(deps: PipelineDeps, namespace: string, deadline: Deadline): Promise<Record<string, string>> {
  if (!deps.kube || namespace === '') return {};
  try {
    return await raceDeadline(deps.kube.namespaceLabels(namespace), deadline.signal);
  } catch (error) {
    deps.logger.warn({ [F.namespace]: namespace, [F.err]: describeError(error) }, 'namespace labels unavailable; matching without them');
    return {};
  }
}

/**
 * Looks up a verdict for every image some policy needs one for, in parallel, each distinct image
 * once, all bounded by the deadline. Fills `digest` and `verdict` in place.
 */
export async function attachVerdicts(
  deps: PipelineDeps,
  set: PolicySet,
  context: AdmissionContext,
  images: ReviewedImage[],
  options: { deadline: Deadline; triggerScan: boolean },
): Promise<void> {
  const misses: ReviewedImage[] = [];
  for (const image of images) {
    if (image.reference.digest !== undefined) image.digest = image.reference.digest;
    if (!needsVerdict(set, context, image)) continue;
    if (!deps.verdicts) {
      image.verdict = { state: 'unavailable', reason: 'no verdict source is configured' };
      continue;
    }
    // Warm cache: answer without a promise per image (the common case on the hot path).
    const known = deps.verdicts.peek(image.reference);
    if (known === undefined) {
      misses.push(image);
      continue;
    }
    if (known.digest !== undefined) image.digest = known.digest;
    image.verdict = known.verdict;
  }
  if (misses.length === 0 || !deps.verdicts) return;
  const lookups = new RequestLookups(deps.verdicts, { signal: options.deadline.signal, triggerScan: options.triggerScan });
  await Promise.all(
    misses.map(async (image) => {
      const found = await lookups.lookup(image.reference);
      if (found.digest !== undefined) image.digest = found.digest;
      image.verdict = found.verdict;
    }),
  );
}

/**
 * Remembers an evaluation only when every verdict it used is the object the cache now holds, so
 * that a later hit (checked against the cache's version) stands for an evaluation of those very
 * verdicts. An `unavailable` verdict is never cached, so an evaluation that used one is not
 * remembered.
 */
function remember(memo: EvaluationMemo, cache: VerdictCache, set: PolicySet, key: string, images: readonly ReviewedImage[], evaluation: Evaluation, now: Date): void {
  const version = cache.version;
  let freshUntil = Number.POSITIVE_INFINITY;
  for (const image of images) {
    if (image.verdict === undefined) continue;
    const held = cache.peekEntry(image.reference);
    if (held === undefined || held.verdict !== image.verdict) return;
    freshUntil = Math.min(freshUntil, held.freshUntil);
  }
  memo.set(key, { evaluation, digests: images.map((image) => image.digest) }, now, { cacheVersion: version, freshUntil, until: nextClockChange(set, images, now) });
}

/** The strongest action among failing results (DecisionRecord.mode). */
function modeOf(allowed: boolean, results: readonly PolicyResult[]): Outcome['mode'] {
  if (!allowed) return 'deny';
  let mode: Outcome['mode'] = 'none';
  for (const result of results) {
    if (result.status !== 'fail' && result.status !== 'warn' && result.status !== 'error') continue;
    if (result.action === 'warn') return 'warn';
    if (result.action === 'audit') mode = 'audit';
  }
  return mode;
}

const NO_POLICIES = `[${BUILTIN_POLICY}/policies] no valid policy set is loaded; refusing until one is (see /readyz)`;

/**
 * The validating pipeline: filter → extract → verdicts (under the deadline) → evaluate → answer.
 * Never throws for a well-formed review; an engine failure denies (the webhook fails closed).
 * `now` is the request's arrival (the clock of exception expiry and scan age).
 *
 * Answers synchronously when nothing has to be waited for (namespace labels cached or not needed,
 * an identical evaluation remembered); a promise otherwise. The warm path then costs no promise
 * and no microtask turn.
 */
export function validateReview(deps: PipelineDeps, review: AdmissionReviewRequest, deadline: Deadline, now: Date = deps.now()): Outcome | Promise<Outcome> {
  const selection = selectSubject(review, deps.excluded);
  if ('skip' in selection) return skippedOutcome(selection.skip);
  const { subject } = selection;
  const set = deps.policies.current();
  if (!set) {
    return { answer: { allowed: false, message: NO_POLICIES }, subject, images: [], results: [], mode: 'deny', patch: [] };
  }
  const { images, invalid } = reviewImages(subject.containers);
  const labels = knownNamespaceLabels(deps, subject.namespace);
  if (labels === undefined) {
    return namespaceLabels(deps, subject.namespace, deadline).then((fetched) => decide(deps, review, subject, set, images, invalid, fetched, deadline, now));
  }
  return decide(deps, review, subject, set, images, invalid, labels, deadline, now);
}

/** Namespace labels available without waiting: none needed, or cached; undefined when they must be fetched. */
function knownNamespaceLabels(deps: PipelineDeps, namespace: string): Readonly<Record<string, string>> | undefined {
  if (!deps.kube || namespace === '') return {};
  return deps.kube.cachedNamespaceLabels?.(namespace);
}

function decide(
  deps: PipelineDeps,
  review: AdmissionReviewRequest,
  subject: Subject,
  set: PolicySet,
  images: ReviewedImage[],
  invalid: readonly PolicyResult[],
  labels: Readonly<Record<string, string>>,
  deadline: Deadline,
  now: Date,
): Outcome | Promise<Outcome> {
  const context = admissionContext(subject, labels);
  // Warm path: the same inputs were evaluated a moment ago and the verdict cache has not changed.
  const { memo, verdicts } = deps;
  const key = memo && verdicts ? memo.key(set, context, images) : undefined;
  const hit = memo && verdicts && key !== undefined ? memo.get(key, now, verdicts) : undefined;
  if (hit) {
    images.forEach((image, index) => {
      const digest = hit.digests[index];
      if (digest !== undefined) image.digest = digest;
    });
    return answerOf(subject, images, invalid, hit.evaluation);
  }
  return evaluateFresh(deps, review, subject, set, context, images, invalid, deadline, now, key);
}

async function evaluateFresh(
  deps: PipelineDeps,
  review: AdmissionReviewRequest,
  subject: Subject,
  set: PolicySet,
  context: AdmissionContext,
  images: ReviewedImage[],
  invalid: readonly PolicyResult[],
  deadline: Deadline,
  now: Date,
  key: string | undefined,
): Promise<Outcome> {
  await attachVerdicts(deps, set, context, images, { deadline, triggerScan: !subject.dryRun });
  let evaluation: Evaluation;
  try {
    evaluation = evaluate(set, context, images, now);
  } catch (error) {
    deps.logger.error({ [F.uid]: review.request.uid, [F.err]: error }, 'policy evaluation failed');
    const message = `[${BUILTIN_POLICY}/evaluation] the policy engine failed: ${describeError(error)}`;
    return { answer: { allowed: false, message }, subject, images, results: [], mode: 'deny', patch: [] };
  }
  if (deps.memo && deps.verdicts && key !== undefined) remember(deps.memo, deps.verdicts, set, key, images, evaluation, now);
  return answerOf(subject, images, invalid, evaluation);
}

/** The answer to kube-apiserver: the evaluation, plus a denial for every image reference that did not parse. */
function answerOf(subject: Subject, images: ReviewedImage[], invalid: readonly PolicyResult[], evaluation: Evaluation): Outcome {
  if (invalid.length === 0) {
    // The usual case: the evaluation's own results and messages, shared (nothing downstream changes them).
    const answer: Answer = { allowed: evaluation.allowed, warnings: evaluation.warnings, auditAnnotations: evaluation.auditAnnotations };
    if (!evaluation.allowed) answer.message = evaluation.denyMessage ?? '';
    return { answer, subject, images, results: evaluation.results, mode: modeOf(evaluation.allowed, evaluation.results), patch: [] };
  }
  const results = [...invalid, ...evaluation.results];
  const lines = [...invalid.map((result) => result.message), ...(evaluation.denyMessage ? [evaluation.denyMessage] : [])];
  const answer: Answer = { allowed: false, message: lines.join('\n'), warnings: evaluation.warnings, auditAnnotations: evaluation.auditAnnotations };
  return { answer, subject, images, results, mode: 'deny', patch: [] };
}
