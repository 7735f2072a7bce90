import { PortcullisError } from '../errors.js';
import { severityOf } from '../harbor/report.js';
import type { Finding, Verdict } from '../policy/types.js';
import { checkTrivyReport, parseTrivyReport, TrivyOutputError, trivyVulnerabilities, type TrivyReport } from '../scanner/trivy-report.js';

/**
 * A Trivy JSON report as a `scanned` verdict, for `portcullis review --report` and `policy test`.
 * The report itself (its types, its validation, its severities) is the scanner's reader,
 * src/scanner/trivy-report.ts; this module only adds the strictness a hand-supplied file needs
 * (a severity Trivy never writes is an error, not `Unknown`) and the conversion to a `Verdict`.
 */
export type { TrivyReport, TrivyResult, TrivyVulnerability } from '../scanner/trivy-report.js';

function malformed(error: unknown): never {
  if (!(error instanceof TrivyOutputError)) throw error;
  throw new PortcullisError('REQUEST_MALFORMED', error.message, {
    detail: { file: error.source, pointer: error.pointer ?? '' },
    cause: error,
  });
}

/** Validates parsed JSON as a Trivy report; throws REQUEST_MALFORMED naming the field at fault. */
export function readTrivyReport(data: unknown, source = 'report'): TrivyReport {
  try {
    return checkTrivyReport(data, { source, strictSeverities: true });
  } catch (error) {
    return malformed(error);
  }
}

/** Parses the text of a Trivy JSON report; throws REQUEST_MALFORMED for bad JSON or a wrong shape. */
export function parseTrivyReportText(text: string, source = 'report'): TrivyReport {
  try {
    return parseTrivyReport(text, { source, strictSeverities: true });
  } catch (error) {
    return malformed(error);
  }
}

/** Every finding of the report, in report order, de-duplicated by (id, package, installed version). */
export function trivyFindings(report: TrivyReport): Finding[] {
  const seen = new Set<string>();
  const findings: Finding[] = [];
  for (const vulnerability of trivyVulnerabilities(report)) {
    const installed = vulnerability.InstalledVersion ?? '';
    const key = `${vulnerability.VulnerabilityID}\u0000${vulnerability.PkgName}\u0000${installed}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const finding: Finding = {
      id: vulnerability.VulnerabilityID,
      package: vulnerability.PkgName,
      installedVersion: installed,
      severity: severityOf(vulnerability.Severity),
    };
    if (vulnerability.FixedVersion) finding.fixedVersion = vulnerability.FixedVersion;
    if (vulnerability.Status) finding.status = vulnerability.Status;
    if (vulnerability.Title) finding.title = vulnerability.Title;
    const links = vulnerability.PrimaryURL ? [vulnerability.PrimaryURL] : (vulnerability.References ?? []);
    if (links.length > 0) finding.links = links;
    findings.push(finding);
  }
  return findings;
}

/**
 * The `scanned` verdict a report amounts to. `digest` is the image digest the caller knows; when
 * absent, the report's own repo digest (or image id, or artifact id) stands in for it.
 */
export function trivyVerdict(report: TrivyReport, options: { digest?: string; now?: Date } = {}): Verdict {
  const repoDigest = report.Metadata?.RepoDigests?.map((entry) => entry.split('@')[1]).find((digest) => digest !== undefined);
  const digest = options.digest ?? repoDigest ?? report.Metadata?.ImageID ?? report.ArtifactID ?? 'unknown';
  const created = report.CreatedAt === undefined ? Number.NaN : Date.parse(report.CreatedAt);
  // Trivy writes nanoseconds; the verdict carries a plain millisecond ISO time.
  const scannedAt = new Date(Number.isNaN(created) ? (options.now ?? new Date()).getTime() : created).toISOString();
  return {
    state: 'scanned',
    digest,
    scannedAt,
    findings: trivyFindings(report),
    scanner: `Trivy ${report.Trivy?.Version ?? 'unknown'}`,
  };
}
