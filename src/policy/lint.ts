/**
 * Checks that span documents or that the schema cannot express: unique names, selector
 * expressions that make sense, and warnings about time (exceptions and allowlist entries that
 * have expired or expire within 14 days) and about exceptions that name no existing policy.
 */
import type { PolicyKind, SourcedDocument } from './documents.js';
import type { PolicyProblem } from './load.js';
import { compileGlobs } from './match.js';
import { DAY_MS, expiryInstant } from './time.js';

/** Exceptions and allowlist entries expiring within this window are reported by lint. */
export const EXPIRY_WARNING_DAYS = 14;

function problem(source: SourcedDocument, pointer: string, message: string, severity: PolicyProblem['severity']): PolicyProblem {
  const where = source.locate(pointer);
  return { file: where.file, line: where.line, column: where.column, pointer, message, severity };
}

function expiryProblem(source: SourcedDocument, pointer: string, what: string, expires: string, now: Date): PolicyProblem | undefined {
  const remaining = expiryInstant(expires) - now.getTime();
  if (remaining <= 0) return problem(source, pointer, `${what} expired on ${expires} and no longer applies`, 'warning');
  if (remaining <= EXPIRY_WARNING_DAYS * DAY_MS) {
    const days = Math.ceil(remaining / DAY_MS);
    return problem(source, pointer, `${what} expires in ${days} day${days === 1 ? '' : 's'} (${expires})`, 'warning');
  }
  return undefined;
}

export function lintDocuments(documents: readonly SourcedDocument[], now: Date): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const seen = new Map<string, SourcedDocument>();
  const imagePolicyNames: string[] = [];
  for (const source of documents) {
    const { document } = source;
    const key = `${document.kind}/${document.metadata.name}`;
    const first = seen.get(key);
    if (first) {
      problems.push(
        problem(source, '/metadata/name', `duplicate ${document.kind as PolicyKind} name "${document.metadata.name}" (first defined at ${first.file}:${first.line}:${first.column})`, 'error'),
      );
    } else {
      seen.set(key, source);
    }
    if (document.kind === 'ImagePolicy') imagePolicyNames.push(document.metadata.name);

    const expressions = document.kind === 'PolicyException' ? [] : (document.spec.match?.namespaceSelector?.matchExpressions ?? []);
    expressions.forEach((expression, index) => {
      const pointer = `/spec/match/namespaceSelector/matchExpressions/${index}`;
      const values = expression.values ?? [];
      if ((expression.operator === 'In' || expression.operator === 'NotIn') && values.length === 0) {
        problems.push(problem(source, pointer, `operator ${expression.operator} needs a non-empty "values" list`, 'error'));
      }
      if ((expression.operator === 'Exists' || expression.operator === 'DoesNotExist') && values.length > 0) {
        problems.push(problem(source, `${pointer}/values`, `operator ${expression.operator} takes no "values"`, 'error'));
      }
    });

    if (document.kind === 'ImagePolicy') {
      (document.spec.rules?.vulnerabilities?.allowlist ?? []).forEach((entry, index) => {
        const pointer = `/spec/rules/vulnerabilities/allowlist/${index}/expires`;
        const found = expiryProblem(source, pointer, `allowlist entry ${entry.id}`, entry.expires, now);
        if (found) problems.push(found);
      });
    }
    if (document.kind === 'PolicyException') {
      const found = expiryProblem(source, '/spec/expires', `exception "${document.metadata.name}"`, document.spec.expires, now);
      if (found) problems.push(found);
    }
  }

  for (const source of documents) {
    const { document } = source;
    if (document.kind !== 'PolicyException') continue;
    document.spec.policies.forEach((pattern, index) => {
      if (!imagePolicyNames.some(compileGlobs([pattern]))) {
        problems.push(problem(source, `/spec/policies/${index}`, `names no ImagePolicy of this set ("${pattern}")`, 'warning'));
      }
    });
  }
  return problems;
}
