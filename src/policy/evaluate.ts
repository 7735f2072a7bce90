/**
 * The policy engine proper: pure functions from (PolicySet, admission context, reviewed images,
 * now) to results as data. No I/O, no clock of its own, no exceptions thrown for outcomes: a
 * violated rule is a `fail` result, a rule that cannot be decided is an `error` result.
 */
import type { CompiledException, CompiledImagePolicy, CompiledVulnerabilityRule, PolicySet } from './compile.js';
import type { ImageRuleName, StateAction } from './documents.js';
import { effectiveTag } from './image-reference.js';
import {
  MAX_WARNING_LENGTH,
  describeAge,
  describeState,
  exceptionHint,
  imageSubject,
  listFindings,
  renderViolation,
  renderWarning,
  truncate,
  type ViolationText,
} from './messages.js';
import {
  SEVERITIES,
  severityRank,
  type AdmissionContext,
  type Evaluation,
  type Finding,
  type PolicyResult,
  type PullSecretPlan,
  type ResultStatus,
  type ReviewedImage,
} from './types.js';

/** One rule's outcome before it becomes a PolicyResult. */
interface Outcome {
  status: ResultStatus;
  text?: ViolationText;
  /** Set when an exception turned a failure into a pass. */
  exception?: string;
}

function activeExceptions(set: PolicySet, policy: CompiledImagePolicy, rule: ImageRuleName, context: AdmissionContext, image: ReviewedImage, now: Date): CompiledException[] {
  const at = now.getTime();
  return set.exceptions.filter(
    (exception) =>
      at < exception.expiresAt &&
      exception.policies(policy.name) &&
      (exception.rules === undefined || exception.rules.has(rule)) &&
      exception.namespaces(context.namespace) &&
      exception.images(image),
  );
}

function stateStatus(action: StateAction): ResultStatus {
  return action === 'allow' ? 'pass' : action === 'warn' ? 'warn' : 'fail';
}

const STATUS_WEIGHT: Readonly<Record<ResultStatus, number>> = { skip: 0, pass: 1, warn: 2, error: 3, fail: 4 };

/**
 * Findings without repeats (Trivy lists a CVE once per path of the same package). A verdict's
 * findings are read by every policy and image that uses the verdict, and a cached verdict is the
 * same object for as long as it is cached: the answer is remembered by the list itself.
 */
const deduped = new WeakMap<readonly Finding[], readonly Finding[]>();

function dedupeFindings(findings: readonly Finding[]): readonly Finding[] {
  let unique = deduped.get(findings);
  if (unique === undefined) {
    const seen = new Map<string, Finding>();
    for (const finding of findings) {
      const key = `${finding.id}\u0000${finding.package}\u0000${finding.installedVersion}`;
      if (!seen.has(key)) seen.set(key, finding);
    }
    unique = [...seen.values()];
    deduped.set(findings, unique);
  }
  return unique;
}

/** The findings that break the gate and the words that say how. */
function gate(rule: CompiledVulnerabilityRule, findings: readonly Finding[]): { violating: Finding[]; summary: string } {
  const violating = new Set<Finding>();
  const parts: string[] = [];
  if (rule.maxSeverity !== undefined) {
    const limit = severityRank(rule.maxSeverity);
    const above = findings.filter((finding) => severityRank(finding.severity) > limit);
    above.forEach((finding) => violating.add(finding));
    const counts = [...SEVERITIES]
      .reverse()
      .map((severity) => ({ severity, count: above.filter((finding) => finding.severity === severity).length }))
      .filter((entry) => entry.count > 0);
    if (counts.length > 0) parts.push(`${counts.map((entry) => `${entry.count} ${entry.severity}`).join(', ')} above the limit ${rule.maxSeverity}`);
  }
  for (const severity of [...SEVERITIES].reverse()) {
    const limit = rule.maxCount[severity];
    if (limit === undefined) continue;
    const matching = findings.filter((finding) => finding.severity === severity);
    if (matching.length <= limit) continue;
    matching.forEach((finding) => violating.add(finding));
    parts.push(`${matching.length} ${severity}, more than the ${limit} allowed`);
  }
  return { violating: [...violating], summary: parts.join('; ') };
}

function vulnerabilityOutcome(set: PolicySet, policy: CompiledImagePolicy, rule: CompiledVulnerabilityRule, context: AdmissionContext, image: ReviewedImage, now: Date): Outcome {
  const base = { policy: policy.name, rule: 'vulnerabilities', image: image.reference.original };
  const verdict = image.verdict ?? { state: 'unavailable' as const, reason: 'no verdict was looked up for this image' };
  const subject = imageSubject(image, verdict.digest);
  if (verdict.state !== 'scanned') {
    const status = stateStatus(rule.verdictStates[verdict.state]);
    return { status, text: { ...base, subject, summary: describeState(verdict.state, verdict.reason) } };
  }
  const at = now.getTime();
  const allowlisted = new Set(rule.allowlist.filter((entry) => at < entry.expiresAt).map((entry) => entry.id));
  let findings = dedupeFindings(verdict.findings).filter((finding) => !allowlisted.has(finding.id));
  if (rule.ignoreUnfixed) findings = findings.filter((finding) => finding.fixedVersion !== undefined && finding.fixedVersion !== '');

  // Exceptions scoped to CVE ids remove those findings; the others except the whole result below.
  const exceptions = activeExceptions(set, policy, 'vulnerabilities', context, image, now).filter((exception) => exception.cves !== undefined);
  const before = gate(rule, findings);
  const usedExceptions = exceptions.filter((exception) => before.violating.some((finding) => exception.cves?.has(finding.id)));
  const remaining = findings.filter((finding) => !exceptions.some((exception) => exception.cves?.has(finding.id)));
  const after = usedExceptions.length > 0 ? gate(rule, remaining) : before;

  let outcome: Outcome;
  if (after.violating.length > 0) {
    outcome = { status: 'fail', text: { ...base, subject, summary: after.summary, ...listFindings(after.violating) } };
  } else if (before.violating.length > 0) {
    outcome = { status: 'pass', exception: usedExceptions.map((exception) => exception.name).join(', ') };
  } else {
    outcome = { status: 'pass' };
  }

  if (rule.maxScanAgeMs !== undefined && rule.maxScanAge !== undefined) {
    const scannedAt = Date.parse(verdict.scannedAt);
    if (Number.isNaN(scannedAt)) {
      return { status: 'error', text: { ...base, subject, summary: `scan time "${verdict.scannedAt}" is not a timestamp` } };
    }
    const age = at - scannedAt;
    if (age > rule.maxScanAgeMs) {
      const stale = `scan is ${describeAge(age)} old, older than the ${rule.maxScanAge} allowed`;
      const staleStatus = stateStatus(rule.verdictStates.stale);
      if (outcome.status === 'fail' && outcome.text) return { ...outcome, text: { ...outcome.text, note: stale } };
      if (STATUS_WEIGHT[staleStatus] > STATUS_WEIGHT[outcome.status]) return { status: staleStatus, text: { ...base, subject, summary: stale } };
    }
  }
  return outcome;
}

function ruleOutcomes(set: PolicySet, policy: CompiledImagePolicy, context: AdmissionContext, image: ReviewedImage, now: Date): [ImageRuleName, Outcome][] {
  const outcomes: [ImageRuleName, Outcome][] = [];
  const subject = imageSubject(image);
  const base = (rule: ImageRuleName) => ({ policy: policy.name, rule, subject, image: image.reference.original });
  if (policy.vulnerabilities) outcomes.push(['vulnerabilities', vulnerabilityOutcome(set, policy, policy.vulnerabilities, context, image, now)]);
  if (policy.allowedRegistries) {
    const registry = image.reference.registry;
    const allowed = policy.allowedRegistries.matches(registry);
    outcomes.push([
      'allowedRegistries',
      allowed
        ? { status: 'pass' }
        : { status: 'fail', text: { ...base('allowedRegistries'), summary: `registry ${registry} is not allowed (allowed: ${policy.allowedRegistries.patterns.join(', ')})` } },
    ]);
  }
  if (policy.disallowedTags) {
    // A digest pins what runs, so a tag beside it is only a label.
    const tag = image.reference.digest === undefined ? effectiveTag(image.reference) : undefined;
    const disallowed = tag !== undefined && policy.disallowedTags.matches(tag);
    const implicit = image.reference.tag === undefined ? ' (no tag means "latest")' : '';
    outcomes.push([
      'disallowedTags',
      disallowed ? { status: 'fail', text: { ...base('disallowedTags'), summary: `tag "${tag}" is not allowed${implicit}; use a version tag or a digest` } } : { status: 'pass' },
    ]);
  }
  if (policy.requireDigest) {
    outcomes.push([
      'requireDigest',
      image.reference.digest !== undefined
        ? { status: 'pass' }
        : { status: 'fail', text: { ...base('requireDigest'), summary: 'must be pinned by digest (name@sha256:…)' } },
    ]);
  }
  return outcomes.map(([rule, outcome]) => {
    if (outcome.status !== 'fail' && outcome.status !== 'warn') return [rule, outcome];
    const whole = activeExceptions(set, policy, rule, context, image, now).find((exception) => exception.cves === undefined);
    return whole ? [rule, { status: 'pass', exception: whole.name }] : [rule, outcome];
  });
}

/** Whether a result stops the object, is shown as a warning, or is only recorded. */
function effect(result: PolicyResult): 'deny' | 'warn' | 'audit' | 'none' {
  if (result.status === 'fail') return result.action;
  if (result.status === 'warn' || result.status === 'error') return result.action === 'audit' ? 'audit' : 'warn';
  return 'none';
}

/**
 * Evaluates every ImagePolicy against every image. Results come in policy order, then image
 * order, then rule order; a policy whose match excludes the namespace gives one `skip`, one whose
 * match excludes an image gives one `skip` for that image. `now` decides exception, allowlist
 * and scan-age expiry.
 */
export function evaluate(set: PolicySet, context: AdmissionContext, images: readonly ReviewedImage[], now: Date): Evaluation {
  const results: PolicyResult[] = [];
  for (const policy of set.imagePolicies) {
    if (!policy.match.namespace(context)) {
      results.push({ policy: policy.name, action: policy.action, rule: 'match', status: 'skip', message: `namespace ${context.namespace} is not in scope` });
      continue;
    }
    for (const image of images) {
      if (!policy.match.image(image)) {
        results.push(imageResult(policy, image, 'match', 'skip', 'image is not in scope'));
        continue;
      }
      for (const [rule, outcome] of ruleOutcomes(set, policy, context, image, now)) {
        const result = imageResult(policy, image, rule, outcome.status, '');
        if (outcome.exception) result.exception = outcome.exception;
        if (outcome.text) {
          result.message = effect(result) === 'deny' ? renderViolation(outcome.text) : renderWarning(outcome.text);
        } else if (outcome.exception) {
          result.message = `excepted by ${outcome.exception}`;
        }
        results.push(result);
      }
    }
  }
  return summarize(results, context);
}

/**
 * One result about one image, built as a literal: spreading shared parts into every result (one
 * per policy, image and rule) was the costliest line of an evaluation. Key order is that of the
 * stored records: policy, action, image, pointer, digest, rule, status, message.
 */
function imageResult(policy: CompiledImagePolicy, image: ReviewedImage, rule: string, status: ResultStatus, message: string): PolicyResult {
  const original = image.reference.original;
  return image.digest
    ? { policy: policy.name, action: policy.action, image: original, pointer: image.pointer, digest: image.digest, rule, status, message }
    : { policy: policy.name, action: policy.action, image: original, pointer: image.pointer, rule, status, message };
}

function unique(lines: readonly string[]): string[] {
  return [...new Set(lines)];
}

function summarize(results: PolicyResult[], context: AdmissionContext): Evaluation {
  const denials = results.filter((result) => effect(result) === 'deny');
  const warnings = unique(results.filter((result) => effect(result) === 'warn').map((result) => truncate(result.message, MAX_WARNING_LENGTH)));
  const auditAnnotations: Record<string, string> = {};
  for (const result of results.filter((candidate) => effect(candidate) === 'audit')) {
    // kube-apiserver prefixes each key with the webhook's name, so keys carry no prefix of their own.
    const key = `audit-${result.policy}`.slice(0, 63).replace(/[-_.]+$/, '');
    auditAnnotations[key] = auditAnnotations[key] ? `${auditAnnotations[key]}; ${result.message}` : result.message;
  }
  const evaluation: Evaluation = { allowed: denials.length === 0, results, warnings, auditAnnotations };
  if (denials.length > 0) {
    const lines = unique(denials.map((result) => result.message));
    lines.push(exceptionHint(unique(denials.map((result) => result.policy)), context.namespace));
    evaluation.denyMessage = lines.join('\n');
  }
  return evaluation;
}

/**
 * The first instant (ms) after `now` at which evaluating these images could answer otherwise with
 * no input changed: an exception or allowlist entry expires, or a verdict used grows older than a
 * maximum scan age. Infinity when nothing in the set depends on the clock. Whoever reuses an
 * evaluation must not reuse it from this instant on. Conservative: every exception, allowlist
 * entry and scan age of the set counts, in scope or not.
 */
export function nextClockChange(set: PolicySet, images: readonly ReviewedImage[], now: Date): number {
  const at = now.getTime();
  let next = Number.POSITIVE_INFINITY;
  const consider = (instant: number) => {
    if (instant > at && instant < next) next = instant;
  };
  for (const exception of set.exceptions) consider(exception.expiresAt);
  for (const policy of set.imagePolicies) {
    const rule = policy.vulnerabilities;
    if (!rule) continue;
    for (const entry of rule.allowlist) consider(entry.expiresAt);
    if (rule.maxScanAgeMs === undefined) continue;
    for (const image of images) {
      if (image.verdict?.state !== 'scanned') continue;
      // Stale once the age exceeds the maximum: from one millisecond after scannedAt + max.
      const scannedAt = Date.parse(image.verdict.scannedAt);
      if (!Number.isNaN(scannedAt)) consider(scannedAt + rule.maxScanAgeMs + 1);
    }
  }
  return next;
}

function matchingImagePolicies(set: PolicySet, context: AdmissionContext, image: ReviewedImage): CompiledImagePolicy[] {
  return set.imagePolicies.filter((policy) => policy.match.namespace(context) && policy.match.image(image));
}

/** True when some ImagePolicy in scope for this image has a vulnerability rule (so a verdict must be looked up). */
export function needsVerdict(set: PolicySet, context: AdmissionContext, image: ReviewedImage): boolean {
  return matchingImagePolicies(set, context, image).some((policy) => policy.vulnerabilities !== undefined);
}

/**
 * The strictest maximum scan age (ms) among the policies in scope for this image, or undefined
 * when none sets one. A verdict source may use it to ask for a rescan of an older report.
 */
export function maxScanAgeMs(set: PolicySet, context: AdmissionContext, image: ReviewedImage): number | undefined {
  const ages = matchingImagePolicies(set, context, image).flatMap((policy) => (policy.vulnerabilities?.maxScanAgeMs === undefined ? [] : [policy.vulnerabilities.maxScanAgeMs]));
  return ages.length === 0 ? undefined : Math.min(...ages);
}

/**
 * True when some ImagePolicy in scope asks for digest pinning and the reference does not pin a
 * digest already. The caller decides what to pin to (the verified digest) and only does it for Pods.
 */
export function shouldPinDigest(set: PolicySet, context: AdmissionContext, image: ReviewedImage): boolean {
  return image.reference.digest === undefined && matchingImagePolicies(set, context, image).some((policy) => policy.pinDigest);
}

/**
 * The pull secrets the pod needs: for every PullSecretPolicy in scope, the registries of the
 * images it covers. Policies naming the same Secret are merged (one plan per Secret name, the
 * first policy's source wins), registries are listed once each, in the order the images come.
 */
export function planPullSecrets(set: PolicySet, context: AdmissionContext, images: readonly ReviewedImage[]): PullSecretPlan[] {
  const plans = new Map<string, PullSecretPlan>();
  for (const policy of set.pullSecretPolicies) {
    if (!policy.match.namespace(context)) continue;
    const registries = unique(images.filter((image) => policy.match.image(image) && policy.registries.matches(image.reference.registry)).map((image) => image.reference.registry));
    if (registries.length === 0) continue;
    const existing = plans.get(policy.secretName);
    if (existing) {
      existing.registries = unique([...existing.registries, ...registries]);
      continue;
    }
    const plan: PullSecretPlan = { policy: policy.name, secretName: policy.secretName, registries };
    if (policy.source) plan.source = { ...policy.source };
    plans.set(policy.secretName, plan);
  }
  return [...plans.values()];
}
