import type { HarborNativeReportSummary, HarborScanOverview } from '../harbor/report.js';
import { VULNERABILITY_REPORT_MIME } from '../harbor/report.js';
import { vulnerabilitySummary } from './normalize.js';
import type { JobStatus, ScanJob, StoredOutcome } from './store.js';

/** Harbor's job states for ours. */
const HARBOR_STATUS: Record<JobStatus, string> = { queued: 'Pending', running: 'Running', succeeded: 'Success', failed: 'Error' };

/**
 * An artifact's `scan_overview` (Harbor's NativeReportSummary under the v1.1 report MIME type),
 * from the stored outcome and the digest's latest job. Undefined when the digest was never asked
 * to be scanned, and for artifacts that are not images (Harbor shows nothing for those either).
 * While a rescan is queued or running, its state is shown with the previous report's summary.
 */
export function scanOverview(outcome: StoredOutcome | undefined, latest: ScanJob | undefined): HarborScanOverview | undefined {
  if (outcome?.kind === 'unsupported' || (!outcome && !latest)) return undefined;
  let summary: HarborNativeReportSummary;
  if (outcome?.kind === 'report') {
    const counts = vulnerabilitySummary(outcome.report);
    summary = {
      report_id: outcome.jobId,
      scan_status: 'Success',
      severity: counts.total === 0 ? 'None' : outcome.report.severity,
      summary: counts,
      start_time: outcome.startedAt,
      end_time: outcome.scannedAt,
      duration: Math.max(0, Math.round((Date.parse(outcome.scannedAt) - Date.parse(outcome.startedAt)) / 1000)),
      complete_percent: 100,
      scanner: outcome.report.scanner,
    };
  } else {
    summary = { report_id: latest?.id ?? '', scan_status: 'Pending' };
  }
  const active = latest?.status === 'queued' || latest?.status === 'running';
  // A failed rescan leaves the last good report in place; an active job or the only job shows its state.
  if (latest && (active || !outcome)) {
    summary.report_id = latest.id;
    summary.scan_status = HARBOR_STATUS[latest.status];
    if (latest.startedAt) summary.start_time = latest.startedAt;
    if (active) summary.complete_percent = 0;
  }
  return { [VULNERABILITY_REPORT_MIME]: summary };
}
