import { Ajv, type JSONSchemaType } from 'ajv';
import { PortcullisError } from '../errors.js';
import type { Finding, Severity, Verdict } from '../policy/types.js';

/**
 * Trivy's JSON report (`trivy image --format json`, SchemaVersion 2), reduced to the fields a
 * verdict needs. Everything else in a report is accepted and ignored. Shapes seen in real reports:
 * no `Results` key at all (nothing found), a Result without `Vulnerabilities`, several Results of
 * mixed `Class` (os-pkgs, lang-pkgs, custom), repository scans without `Metadata`/`ArtifactID`.
 */
export interface TrivyVulnerability {
  VulnerabilityID: string;
  PkgName: string;
  InstalledVersion?: string;
  FixedVersion?: string;
  Status?: string;
  Severity: string;
  Title?: string;
  PrimaryURL?: string;
  References?: string[];
}

export interface TrivyResult {
  Target: string;
  Class?: string;
  Type?: string;
  Vulnerabilities?: TrivyVulnerability[] | null;
}

export interface TrivyReport {
  SchemaVersion: number;
  CreatedAt?: string;
  ArtifactID?: string;
  ArtifactName?: string;
  ArtifactType?: string;
  Trivy?: { Version?: string };
  Metadata?: { ImageID?: string; RepoDigests?: string[] };
  Results?: TrivyResult[] | null;
}

const vulnerabilitySchema: JSONSchemaType<TrivyVulnerability> = {
  type: 'object',
  required: ['VulnerabilityID', 'PkgName', 'Severity'],
  properties: {
    VulnerabilityID: { type: 'string', minLength: 1 },
    PkgName: { type: 'string' },
    InstalledVersion: { type: 'string', nullable: true },
    FixedVersion: { type: 'string', nullable: true },
    Status: { type: 'string', nullable: true },
    Severity: { type: 'string', enum: ['UNKNOWN', 'NEGLIGIBLE', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] },
    Title: { type: 'string', nullable: true },
    PrimaryURL: { type: 'string', nullable: true },
    References: { type: 'array', items: { type: 'string' }, nullable: true },
  },
};

const reportSchema: JSONSchemaType<TrivyReport> = {
  type: 'object',
  required: ['SchemaVersion'],
  properties: {
    SchemaVersion: { type: 'integer', const: 2 },
    CreatedAt: { type: 'string', nullable: true },
    ArtifactID: { type: 'string', nullable: true },
    ArtifactName: { type: 'string', nullable: true },
    ArtifactType: { type: 'string', nullable: true },
    Trivy: { type: 'object', required: [], properties: { Version: { type: 'string', nullable: true } }, nullable: true },
    Metadata: {
      type: 'object',
      required: [],
      properties: {
        ImageID: { type: 'string', nullable: true },
        RepoDigests: { type: 'array', items: { type: 'string' }, nullable: true },
      },
      nullable: true,
    },
    Results: {
      type: 'array',
      nullable: true,
      items: {
        type: 'object',
        required: ['Target'],
        properties: {
          Target: { type: 'string' },
          Class: { type: 'string', nullable: true },
          Type: { type: 'string', nullable: true },
          Vulnerabilities: { type: 'array', items: vulnerabilitySchema, nullable: true },
        },
      },
    },
  },
};

const validateReport = new Ajv({ allErrors: false, strict: false }).compile(reportSchema);

const SEVERITY: Record<string, Severity> = {
  UNKNOWN: 'Unknown',
  NEGLIGIBLE: 'Negligible',
  LOW: 'Low',
  MEDIUM: 'Medium',
  HIGH: 'High',
  CRITICAL: 'Critical',
};

/** Validates parsed JSON as a Trivy report; throws REQUEST_MALFORMED naming the field at fault. */
export function readTrivyReport(data: unknown, source = 'report'): TrivyReport {
  if (validateReport(data)) return data;
  const error = validateReport.errors?.[0];
  const where = error?.instancePath === '' || error === undefined ? '(top level)' : error.instancePath;
  const extra = error?.params && 'allowedValues' in error.params ? ` (${(error.params.allowedValues as unknown[]).join(', ')})` : '';
  throw new PortcullisError('REQUEST_MALFORMED', `${source} ${where}: ${error?.message ?? 'is not a Trivy JSON report'}${extra}`, {
    detail: { file: source, pointer: error?.instancePath ?? '' },
  });
}

/** Parses the text of a Trivy JSON report; throws REQUEST_MALFORMED for bad JSON or a wrong shape. */
export function parseTrivyReportText(text: string, source = 'report'): TrivyReport {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new PortcullisError('REQUEST_MALFORMED', `${source}: not valid JSON: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return readTrivyReport(data, source);
}

/** Every finding of the report, in report order, de-duplicated by (id, package, installed version). */
export function trivyFindings(report: TrivyReport): Finding[] {
  const seen = new Set<string>();
  const findings: Finding[] = [];
  for (const result of report.Results ?? []) {
    for (const vulnerability of result.Vulnerabilities ?? []) {
      const installed = vulnerability.InstalledVersion ?? '';
      const key = `${vulnerability.VulnerabilityID}\u0000${vulnerability.PkgName}\u0000${installed}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const finding: Finding = {
        id: vulnerability.VulnerabilityID,
        package: vulnerability.PkgName,
        installedVersion: installed,
        severity: SEVERITY[vulnerability.Severity] ?? 'Unknown',
      };
      if (vulnerability.FixedVersion) finding.fixedVersion = vulnerability.FixedVersion;
      if (vulnerability.Status) finding.status = vulnerability.Status;
      if (vulnerability.Title) finding.title = vulnerability.Title;
      const links = vulnerability.PrimaryURL ? [vulnerability.PrimaryURL] : (vulnerability.References ?? []);
      if (links.length > 0) finding.links = links;
      findings.push(finding);
    }
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
