import {
  severityOf,
  type HarborScanner,
  type HarborVulnerabilityItem,
  type HarborVulnerabilityReport,
  type HarborVulnerabilitySummary,
} from '../harbor/report.js';
import { SEVERITIES, severityRank, type Finding, type Severity } from '../policy/types.js';
import { trivyVulnerabilities, type TrivyReport, type TrivyVulnerability } from './trivy-report.js';

/**
 * Trivy report → Harbor vulnerability report v1.1, the way harbor-scanner-trivy does it: Trivy's
 * UPPERCASE severities map one-to-one to Harbor's capitalised ones (`severityOf`, anything Trivy
 * might add later counting as Unknown), the report severity is the highest one found, links are
 * `[PrimaryURL]` or else `References`, and Trivy's CVSS map travels in `vendor_attributes.CVSS`.
 * Pure: no I/O, no clock (the caller says when the scan happened).
 */

export interface NormalizeInput {
  trivy: TrivyReport;
  artifact: { repository: string; digest: string; tag?: string; mimeType?: string };
  scanner: HarborScanner;
  /** ISO 8601 time the scan finished. */
  generatedAt: string;
}

/** Counts by severity, with how many of each have a fixed version. */
export interface SeverityCounts {
  total: number;
  fixable: number;
  bySeverity: Record<Severity, { total: number; fixable: number }>;
}

function preferredCvss(vulnerability: TrivyVulnerability): HarborVulnerabilityItem['preferred_cvss'] | undefined {
  const cvss = vulnerability.CVSS;
  if (!cvss) return undefined;
  // Trivy's SeveritySource names the vendor whose rating it chose; NVD is the common fallback.
  const source = (vulnerability.SeveritySource && cvss[vulnerability.SeveritySource]) || cvss.nvd || Object.values(cvss)[0];
  if (!source) return undefined;
  const preferred: NonNullable<HarborVulnerabilityItem['preferred_cvss']> = {};
  if (source.V2Score !== undefined) preferred.score_v2 = source.V2Score;
  if (source.V3Score !== undefined) preferred.score_v3 = source.V3Score;
  if (source.V2Vector !== undefined) preferred.vector_v2 = source.V2Vector;
  if (source.V3Vector !== undefined) preferred.vector_v3 = source.V3Vector;
  return Object.keys(preferred).length > 0 ? preferred : undefined;
}

function toItem(vulnerability: TrivyVulnerability): HarborVulnerabilityItem {
  const item: HarborVulnerabilityItem = {
    id: vulnerability.VulnerabilityID,
    package: vulnerability.PkgName,
    version: vulnerability.InstalledVersion ?? '',
    severity: severityOf(vulnerability.Severity),
    links: vulnerability.PrimaryURL ? [vulnerability.PrimaryURL] : [...(vulnerability.References ?? [])],
  };
  if (vulnerability.FixedVersion) item.fix_version = vulnerability.FixedVersion;
  if (vulnerability.Description ?? vulnerability.Title) item.description = vulnerability.Description ?? vulnerability.Title;
  if (vulnerability.Status) item.status = vulnerability.Status;
  if (vulnerability.Layer && (vulnerability.Layer.Digest || vulnerability.Layer.DiffID)) {
    item.layer = {};
    if (vulnerability.Layer.Digest) item.layer.digest = vulnerability.Layer.Digest;
    if (vulnerability.Layer.DiffID) item.layer.diff_id = vulnerability.Layer.DiffID;
  }
  if (vulnerability.CweIDs && vulnerability.CweIDs.length > 0) item.cwe_ids = [...vulnerability.CweIDs];
  const cvss = preferredCvss(vulnerability);
  if (cvss) item.preferred_cvss = cvss;
  if (vulnerability.CVSS) item.vendor_attributes = { CVSS: vulnerability.CVSS };
  return item;
}

/** The highest severity of `items`; `Unknown` when there are none (as harbor-scanner-trivy does). */
export function highestSeverity(severities: readonly Severity[]): Severity {
  let highest: Severity = 'Unknown';
  for (const severity of severities) if (severityRank(severity) > severityRank(highest)) highest = severity;
  return highest;
}

export function normalizeTrivyReport(input: NormalizeInput): HarborVulnerabilityReport {
  const vulnerabilities = trivyVulnerabilities(input.trivy).map(toItem);
  const artifact: HarborVulnerabilityReport['artifact'] = { repository: input.artifact.repository, digest: input.artifact.digest };
  if (input.artifact.tag !== undefined) artifact.tag = input.artifact.tag;
  if (input.artifact.mimeType !== undefined) artifact.mime_type = input.artifact.mimeType;
  return {
    generated_at: input.generatedAt,
    artifact,
    scanner: input.scanner,
    severity: highestSeverity(vulnerabilities.map((item) => severityOf(item.severity))),
    vulnerabilities,
  };
}

export function countSeverities(report: HarborVulnerabilityReport): SeverityCounts {
  const bySeverity = Object.fromEntries(SEVERITIES.map((severity) => [severity, { total: 0, fixable: 0 }])) as Record<
    Severity,
    { total: number; fixable: number }
  >;
  let fixable = 0;
  for (const item of report.vulnerabilities) {
    const bucket = bySeverity[severityOf(item.severity)];
    bucket.total += 1;
    if (item.fix_version) {
      bucket.fixable += 1;
      fixable += 1;
    }
  }
  return { total: report.vulnerabilities.length, fixable, bySeverity };
}

/** Harbor's VulnerabilitySummary: only severities that occur are listed, as Harbor does. */
export function vulnerabilitySummary(report: HarborVulnerabilityReport): HarborVulnerabilitySummary {
  const counts = countSeverities(report);
  const summary: HarborVulnerabilitySummary['summary'] = {};
  for (const severity of SEVERITIES) if (counts.bySeverity[severity].total > 0) summary[severity] = counts.bySeverity[severity].total;
  return { total: counts.total, fixable: counts.fixable, summary };
}

/** The findings the policy engine reads. */
export function reportFindings(report: HarborVulnerabilityReport): Finding[] {
  return report.vulnerabilities.map((item) => {
    const finding: Finding = { id: item.id, package: item.package, installedVersion: item.version, severity: severityOf(item.severity) };
    if (item.fix_version) finding.fixedVersion = item.fix_version;
    if (item.status) finding.status = item.status;
    if (item.links && item.links.length > 0) finding.links = item.links;
    return finding;
  });
}
