import { describe, expect, it } from 'vitest';
import { VULNERABILITY_REPORT_MIME } from '../harbor/report.js';
import { scanOverview } from './overview.js';
import type { JobStatus, ScanJob, StoredOutcome } from './store.js';

const digest = `sha256:${'d'.repeat(64)}`;
const job = (id: string, status: JobStatus, startedAt?: string): ScanJob => ({
  id,
  digest,
  repository: 'team/app',
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  status,
  trigger: 'push',
  attempts: status === 'queued' ? 0 : 1,
  notBefore: '2026-01-01T00:00:00.000Z',
  createdAt: '2026-01-01T00:00:00.000Z',
  ...(startedAt ? { startedAt } : {}),
});
const report: StoredOutcome = {
  kind: 'report',
  digest,
  repository: 'team/app',
  jobId: 'job-1',
  startedAt: '2026-01-01T00:00:00.000Z',
  scannedAt: '2026-01-01T00:00:42.000Z',
  report: {
    generated_at: '2026-01-01T00:00:42.000Z',
    artifact: { repository: 'team/app', digest },
    scanner: { name: 'Trivy', vendor: 'Aqua Security', version: '0.58.1' },
    severity: 'High',
    vulnerabilities: [
      { id: 'CVE-1', package: 'a', version: '1', fix_version: '2', severity: 'High' },
      { id: 'CVE-2', package: 'b', version: '1', severity: 'Low' },
    ],
  },
};
const success = {
  report_id: 'job-1',
  scan_status: 'Success',
  severity: 'High',
  summary: { total: 2, fixable: 1, summary: { High: 1, Low: 1 } },
  start_time: '2026-01-01T00:00:00.000Z',
  end_time: '2026-01-01T00:00:42.000Z',
  duration: 42,
  complete_percent: 100,
  scanner: { name: 'Trivy', vendor: 'Aqua Security', version: '0.58.1' },
};

describe('scanOverview', () => {
  it.each([
    ['a digest never asked to be scanned has none', undefined, undefined, undefined],
    ['a Helm chart has none', { kind: 'unsupported', digest, repository: 'charts/app', reason: 'chart', scannedAt: 'x', startedAt: 'x', jobId: 'job-1' } as const, job('job-1', 'succeeded'), undefined],
    ['a first scan waiting in the queue is Pending', undefined, job('job-1', 'queued'), { report_id: 'job-1', scan_status: 'Pending', complete_percent: 0 }],
    ['a first scan under way is Running since it started', undefined, job('job-1', 'running', '2026-01-01T00:00:01.000Z'), { report_id: 'job-1', scan_status: 'Running', start_time: '2026-01-01T00:00:01.000Z', complete_percent: 0 }],
    ['a first scan that failed is Error', undefined, job('job-1', 'failed', '2026-01-01T00:00:01.000Z'), { report_id: 'job-1', scan_status: 'Error', start_time: '2026-01-01T00:00:01.000Z' }],
    ['a report is Success with its summary, severity and duration', report, job('job-1', 'succeeded'), success],
    ['a rescan under way shows Running over the previous summary', report, job('job-2', 'running', '2026-01-02T00:00:00.000Z'), { ...success, report_id: 'job-2', scan_status: 'Running', start_time: '2026-01-02T00:00:00.000Z', complete_percent: 0 }],
    ['a failed rescan leaves the last good report', report, job('job-2', 'failed'), success],
  ])('%s', (_name, outcome, latest, expected) => {
    const overview = scanOverview(outcome, latest);
    expect(overview === undefined ? undefined : overview[VULNERABILITY_REPORT_MIME]).toEqual(expected);
  });

  it('says None, not Unknown, for a report without vulnerabilities', () => {
    const clean: StoredOutcome = { ...report, report: { ...(report as Extract<StoredOutcome, { kind: 'report' }>).report, severity: 'Unknown', vulnerabilities: [] } } as StoredOutcome;
    expect(scanOverview(clean, job('job-1', 'succeeded'))?.[VULNERABILITY_REPORT_MIME]?.severity).toBe('None');
  });
});
