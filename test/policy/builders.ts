/**
 * Small builders for policy engine tests: a PolicySet from YAML text, a reviewed image from a
 * reference string, findings and verdicts with sensible defaults.
 */
import { formatProblem, parsePolicyDocuments } from '../../src/policy/load.js';
import type { PolicySet } from '../../src/policy/compile.js';
import { parseImageReference } from '../../src/policy/image-reference.js';
import type { AdmissionContext, Finding, ReviewedImage, Severity, Verdict } from '../../src/policy/types.js';

export const NOW = new Date('2026-06-01T12:00:00Z');

export const DIGEST_A = `sha256:${'a'.repeat(64)}`;
export const DIGEST_B = `sha256:${'b'.repeat(64)}`;

/** A PolicySet from YAML text; throws with the formatted problems when the text is invalid. */
export function policySet(yaml: string, now: Date = NOW): PolicySet {
  const result = parsePolicyDocuments(yaml, 'test.yaml', { now });
  if (!result.ok) throw new Error(`invalid test policies:\n${result.problems.map(formatProblem).join('\n')}`);
  return result.set;
}

export function context(overrides: Partial<AdmissionContext> = {}): AdmissionContext {
  return { namespace: 'team-a', namespaceLabels: {}, ...overrides };
}

export function image(reference: string, extra: Partial<ReviewedImage> = {}, index = 0): ReviewedImage {
  return {
    pointer: `/spec/containers/${index}/image`,
    container: `c${index}`,
    containerType: 'containers',
    reference: parseImageReference(reference),
    ...extra,
  };
}

export function finding(id: string, severity: Severity, extra: Partial<Finding> = {}): Finding {
  return { id, severity, package: 'openssl', installedVersion: '1.1.1k', fixedVersion: '1.1.1l', ...extra };
}

export function scanned(findings: Finding[], scannedAt = '2026-06-01T00:00:00Z', digest = DIGEST_A): Verdict {
  return { state: 'scanned', digest, scannedAt, findings };
}
