/**
 * wgpolicyk8s.io/v1alpha2 PolicyReports from the background audit: one report per namespace,
 * named `portcullis-running`, listing the containers of running pods that break a policy now.
 * Reports are bounded (the most severe results are kept, the summary still counts all), replaced
 * in place when their content changes, and deleted when the namespace has no violation left.
 */
import { describeError } from '../errors.js';
import { isConflict, isAlreadyExists, type KubeClient, type PolicyReport, type PolicyReportResult } from '../kube/client.js';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import type { Severity } from '../policy/types.js';
import type { RunningViolation } from './api-schemas.js';

export const REPORT_NAME = 'portcullis-running';
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'portcullis' } as const;
export const OMITTED_ANNOTATION = 'portcullis.io/omitted-results';

/**
 * Harbor/Trivy severity → PolicyReport severity. The CRD knows critical, high, medium, low and
 * info. Negligible and Unknown both become `info`: Unknown means "not rated yet", and Portcullis's
 * own gates rank it lowest (below Negligible), so the report agrees with what the gate did; the
 * original is kept in the result's `properties.severity`.
 */
export const REPORT_SEVERITY: Readonly<Record<Severity, NonNullable<PolicyReportResult['severity']>>> = {
  Critical: 'critical',
  High: 'high',
  Medium: 'medium',
  Low: 'low',
  Negligible: 'info',
  Unknown: 'info',
};

const SEVERITY_ORDER: Record<string, number> = { critical: 5, high: 4, medium: 3, low: 2, info: 1 };
const STATUS_ORDER: Record<string, number> = { fail: 3, error: 2, warn: 1 };

export interface NamespaceResults {
  violations: RunningViolation[];
  /** Pass results of evaluated pods (counted in the summary, not listed). */
  passed: number;
  /** uid of each pod by name, for the resource references. */
  podUids: ReadonlyMap<string, string>;
}

/** Builds the report of one namespace; undefined when it has no violation (the report is removed). */
export function buildPolicyReport(namespace: string, results: NamespaceResults, nowMs: number, maxResults: number): PolicyReport | undefined {
  if (results.violations.length === 0) return undefined;
  const timestamp = { seconds: Math.floor(nowMs / 1000), nanos: (nowMs % 1000) * 1_000_000 };
  const all: PolicyReportResult[] = results.violations.map((violation) => {
    const properties: Record<string, string> = { container: violation.container, image: violation.image };
    if (violation.digest) properties.digest = violation.digest;
    if (violation.owner) properties.owner = violation.owner;
    if (violation.severity) properties.severity = violation.severity;
    properties.action = violation.action;
    const uid = results.podUids.get(violation.pod);
    const result: PolicyReportResult = {
      policy: violation.policy,
      rule: violation.rule,
      category: violation.rule === 'vulnerabilities' ? 'Vulnerability scan' : 'Image policy',
      result: violation.status,
      message: violation.message,
      source: 'portcullis',
      scored: true,
      timestamp,
      properties,
      resources: [{ apiVersion: 'v1', kind: 'Pod', name: violation.pod, namespace, ...(uid ? { uid } : {}) }],
    };
    if (violation.severity) result.severity = REPORT_SEVERITY[violation.severity];
    return result;
  });
  all.sort(
    (a, b) =>
      (SEVERITY_ORDER[b.severity ?? ''] ?? 0) - (SEVERITY_ORDER[a.severity ?? ''] ?? 0) ||
      (STATUS_ORDER[b.result ?? ''] ?? 0) - (STATUS_ORDER[a.result ?? ''] ?? 0) ||
      (a.resources?.[0]?.name ?? '').localeCompare(b.resources?.[0]?.name ?? '') ||
      a.policy.localeCompare(b.policy),
  );
  const kept = all.slice(0, maxResults);
  const count = (status: string) => results.violations.filter((violation) => violation.status === status).length;
  return {
    apiVersion: 'wgpolicyk8s.io/v1alpha2',
    kind: 'PolicyReport',
    metadata: {
      name: REPORT_NAME,
      namespace,
      labels: { ...MANAGED_BY },
      ...(all.length > kept.length ? { annotations: { [OMITTED_ANNOTATION]: String(all.length - kept.length) } } : {}),
    },
    scope: { apiVersion: 'v1', kind: 'Namespace', name: namespace },
    summary: { pass: results.passed, fail: count('fail'), warn: count('warn'), error: count('error'), skip: 0 },
    results: kept,
  };
}

/** What makes two reports different for a reader (timestamps aside). */
function contentKey(report: PolicyReport): string {
  const results = (report.results ?? []).map(({ timestamp: _timestamp, ...rest }) => rest);
  return JSON.stringify({ summary: report.summary, results, annotations: report.metadata?.annotations ?? {} });
}

export interface PolicyReportWriter {
  /**
   * Makes the cluster's reports match `reports` for every namespace in `namespaces`: creates or
   * replaces (in place) where a report is given, deletes where none is. Unchanged reports are not
   * written. Failures are logged per namespace and retried at the next sync; never rejects.
   */
  sync(namespaces: readonly string[], reports: ReadonlyMap<string, PolicyReport>): Promise<void>;
}

export function createPolicyReportWriter(deps: { kube: KubeClient; logger: Logger }): PolicyReportWriter {
  const log = deps.logger.child({ [F.component]: 'audit-policy-reports' });
  /** Namespace → content key of what is in the cluster (undefined: none of ours). */
  const written = new Map<string, string | undefined>();

  async function upsert(namespace: string, report: PolicyReport): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const existing = await deps.kube.policyReports.get(namespace, REPORT_NAME);
      try {
        if (existing) {
          const metadata = { ...report.metadata, resourceVersion: existing.metadata?.resourceVersion };
          await deps.kube.policyReports.replace(namespace, REPORT_NAME, { ...report, metadata });
        } else {
          await deps.kube.policyReports.create(namespace, report);
        }
        return;
      } catch (error) {
        // Someone else wrote in between (another replica, a human): read again and retry.
        if (!(isConflict(error) || isAlreadyExists(error)) || attempt === 2) throw error;
      }
    }
  }

  return {
    async sync(namespaces, reports) {
      for (const namespace of new Set([...namespaces, ...reports.keys()])) {
        const report = reports.get(namespace);
        const key = report ? contentKey(report) : undefined;
        if (written.has(namespace) && written.get(namespace) === key) continue;
        try {
          if (report) await upsert(namespace, report);
          else await deps.kube.policyReports.delete(namespace, REPORT_NAME);
          written.set(namespace, key);
        } catch (error) {
          written.delete(namespace);
          log.warn({ [F.namespace]: namespace, [F.err]: describeError(error) }, 'policy report not written; retrying at the next evaluation');
        }
      }
    },
  };
}
