/**
 * Text renderings of audit API answers for `portcullis audit …`: aligned tables for people, CSV
 * (RFC 4180 quoting) for spreadsheets. JSON output is the API body itself.
 */
import type { RunningReport, StoredDecision, Summary } from './api-schemas.js';

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

function csvCell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function csv(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [header, ...rows].map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

const violated = (decision: StoredDecision) =>
  [...new Set(decision.results.filter((result) => result.status !== 'pass' && result.status !== 'skip').map((result) => `${result.policy}:${result.status}`))];

export const DECISION_COLUMNS = ['time', 'decision', 'mode', 'dryRun', 'webhook', 'operation', 'namespace', 'kind', 'name', 'user', 'images', 'policies', 'durationMs', 'uid'] as const;

export function decisionRow(decision: StoredDecision): string[] {
  return [
    decision.time,
    decision.decision,
    decision.mode,
    decision.dryRun ? 'true' : 'false',
    decision.webhook,
    decision.operation,
    decision.namespace,
    decision.kind,
    decision.name,
    decision.user.username,
    decision.images.map((image) => (image.digest ? `${image.image}@${image.digest}` : image.image)).join(' '),
    violated(decision).join(' '),
    String(decision.durationMs),
    decision.uid,
  ];
}

/** The table view keeps the columns a person scans; CSV and JSON carry everything. */
export function decisionsTable(decisions: readonly StoredDecision[]): string {
  return table(
    ['TIME', 'DECISION', 'MODE', 'DRY-RUN', 'OPERATION', 'NAMESPACE', 'OBJECT', 'USER', 'VIOLATED', 'IMAGES'],
    decisions.map((decision) => [
      decision.time,
      decision.decision,
      decision.mode,
      decision.dryRun ? 'yes' : '',
      decision.operation,
      decision.namespace,
      `${decision.kind}/${decision.name}`,
      decision.user.username,
      violated(decision).join(' '),
      decision.images.map((image) => image.image).join(' '),
    ]),
  );
}

export function summaryText(summary: Summary): string {
  const parts = [
    `Window: ${summary.window.since} .. ${summary.window.until}`,
    `Decisions: ${summary.total} (allowed ${summary.byDecision.allow}, denied ${summary.byDecision.deny}, dry run ${summary.dryRun})`,
    `Modes: deny ${summary.byMode.deny}, warn ${summary.byMode.warn}, audit ${summary.byMode.audit}, none ${summary.byMode.none}`,
    '',
    'Policies:',
    table(['POLICY', 'FAIL', 'WARN', 'ERROR', 'PASS', 'SKIP'], summary.byPolicy.map((row) => [row.policy, String(row.fail), String(row.warn), String(row.error), String(row.pass), String(row.skip)])),
    'Namespaces:',
    table(['NAMESPACE', 'TOTAL', 'DENIED'], summary.byNamespace.map((row) => [row.namespace, String(row.total), String(row.denied)])),
    'Images:',
    table(['IMAGE', 'TOTAL', 'DENIED'], summary.byImage.map((row) => [row.image, String(row.total), String(row.denied)])),
    'Top denied images:',
    table(['IMAGE', 'DENIED', 'WORST CVES'], summary.topDeniedImages.map((row) => [row.image, String(row.denied), row.worstCves.join(' ')])),
  ];
  return parts.join('\n');
}

export const RUNNING_COLUMNS = ['namespace', 'pod', 'owner', 'container', 'image', 'digest', 'policy', 'rule', 'status', 'action', 'severity', 'message'] as const;

export function runningRow(violation: RunningReport['violations'][number]): string[] {
  return [
    violation.namespace,
    violation.pod,
    violation.owner ?? '',
    violation.container,
    violation.image,
    violation.digest ?? '',
    violation.policy,
    violation.rule,
    violation.status,
    violation.action,
    violation.severity ?? '',
    violation.message,
  ];
}

export function runningText(report: RunningReport): string {
  const head =
    report.state === 'ready'
      ? `Evaluated ${report.evaluatedAt ?? ''} (${report.reason ?? ''}): ${report.pods} pods, ${report.violatingPods} violating.\n`
      : `Background audit is ${report.state}.\n`;
  if (report.violations.length === 0) return head;
  return `${head}\n${table(
    ['NAMESPACE', 'POD', 'CONTAINER', 'IMAGE', 'POLICY', 'STATUS', 'SEVERITY', 'MESSAGE'],
    report.violations.map((v) => [v.namespace, v.pod, v.container, v.image, v.policy, v.status, v.severity ?? '', v.message]),
  )}`;
}
