/**
 * The shapes Harbor exchanges about vulnerability scans, shared by the scanner (which produces
 * them), the registry (which serves them in its Harbor-compatible API) and the Harbor verdict
 * source (which reads them from any Harbor). Field names follow the Harbor v2.0 swagger and the
 * pluggable scanner-adapter spec v1.1 exactly; like Harbor, readers must tolerate extra fields.
 */

import { SEVERITIES, type Severity } from '../policy/types.js';

/** The MIME type under which Harbor stores and returns vulnerability reports. */
export const VULNERABILITY_REPORT_MIME = 'application/vnd.security.vulnerability.report; version=1.1';
export const NATIVE_REPORT_MIME = 'application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0';

/**
 * The vulnerability report types Portcullis produces, in order of preference. The scanner makes one
 * report in the v1.1 format, which is a valid v1.0 native report as well, and serves it under both
 * (as harbor-scanner-trivy declares both); the registry's Harbor API files it under either.
 */
export const PRODUCED_REPORT_TYPES = [VULNERABILITY_REPORT_MIME, NATIVE_REPORT_MIME] as const;

/** Capitalised severities of Harbor (Trivy's UPPERCASE map one-to-one; `None` only in Harbor core). */
export type HarborSeverity = 'None' | 'Unknown' | 'Negligible' | 'Low' | 'Medium' | 'High' | 'Critical';

/**
 * The one severity mapping: the `Severity` that a Trivy severity (`CRITICAL`) or a Harbor one
 * (`Critical`) stands for, case aside. Harbor's `None` and any name neither knows (one a newer
 * Trivy might add) count as `Unknown`, as harbor-scanner-trivy and Harbor do.
 */
export function severityOf(name: string): Severity {
  const lower = name.toLowerCase();
  return SEVERITIES.find((severity) => severity.toLowerCase() === lower) ?? 'Unknown';
}

export interface HarborScanner {
  name: string;
  vendor: string;
  version: string;
}

/** VulnerabilityItem of the scanner-adapter spec, with the extensions real adapters emit. */
export interface HarborVulnerabilityItem {
  id: string;
  package: string;
  version: string;
  fix_version?: string;
  severity: HarborSeverity;
  description?: string;
  links?: string[];
  /** harbor-scanner-trivy extension: Trivy's status (fixed, affected, will_not_fix, …). */
  status?: string;
  layer?: { digest?: string; diff_id?: string };
  cwe_ids?: string[];
  preferred_cvss?: { score_v2?: number; score_v3?: number; vector_v2?: string; vector_v3?: string };
  vendor_attributes?: Record<string, unknown>;
}

/** HarborVulnerabilityReport (scanner-adapter spec v1.1), also the body of `…/additions/vulnerabilities`. */
export interface HarborVulnerabilityReport {
  generated_at: string;
  artifact: { repository: string; digest: string; tag?: string; mime_type?: string };
  scanner: HarborScanner;
  severity: HarborSeverity;
  vulnerabilities: HarborVulnerabilityItem[];
}

/** VulnerabilitySummary of the Harbor API. */
export interface HarborVulnerabilitySummary {
  total: number;
  fixable: number;
  summary: Partial<Record<HarborSeverity, number>>;
}

/** NativeReportSummary of the Harbor API: one value of an artifact's `scan_overview` map. */
export interface HarborNativeReportSummary {
  report_id: string;
  /** Harbor's job states: Pending, Running, Stopped, Error, Success, Scheduled, … */
  scan_status: string;
  severity?: HarborSeverity;
  duration?: number;
  summary?: HarborVulnerabilitySummary;
  start_time?: string;
  end_time?: string;
  complete_percent?: number;
  scanner?: HarborScanner;
}

/** `scan_overview` of an artifact: report MIME type → summary. */
export type HarborScanOverview = Record<string, HarborNativeReportSummary>;
