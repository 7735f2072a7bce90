import type { HarborScanOverview, HarborVulnerabilityReport } from '../harbor/report.js';

/**
 * What the registry needs from a scanner, implemented by the scanner subsystem and wired in
 * src/main.ts (the registry never imports the scanner). Absent when no scanner is configured: the
 * registry then answers scan requests with a clear 503 and shows no scan overview.
 */
export interface ScanPort {
  /** The `scan_overview` map of an artifact; undefined when it was never scanned. */
  overview(digest: string): Promise<HarborScanOverview | undefined>;
  /** The full vulnerability report; undefined when there is no finished scan. */
  report(digest: string): Promise<HarborVulnerabilityReport | undefined>;
  /** Queues a scan of `repository@digest` (idempotent while one is queued or running). */
  requestScan(artifact: { repository: string; digest: string; mediaType: string }): Promise<void>;
}
