import { Ajv } from 'ajv';

/**
 * The parts of Trivy's JSON report (`--format json`, SchemaVersion 2) that Portcullis reads. Trivy
 * emits much more; every field not named here is ignored, and every field named here except the
 * vulnerability identity is optional because real reports omit them (see
 * ../shared/reference/MANIFEST.md: no `Results`, a Result without `Vulnerabilities`, repository
 * reports without `Metadata`, vulnerabilities without `Layer`).
 */
export interface TrivyVulnerability {
  VulnerabilityID: string;
  PkgName: string;
  InstalledVersion: string;
  FixedVersion?: string;
  Status?: string;
  Severity: string;
  SeveritySource?: string;
  Title?: string;
  Description?: string;
  PrimaryURL?: string;
  References?: string[] | null;
  CweIDs?: string[] | null;
  CVSS?: Record<string, TrivyCvss>;
  Layer?: { Digest?: string; DiffID?: string };
}

export interface TrivyCvss {
  V2Vector?: string;
  V3Vector?: string;
  V2Score?: number;
  V3Score?: number;
}

export interface TrivyResult {
  Target: string;
  Class?: string;
  Type?: string;
  Vulnerabilities?: TrivyVulnerability[] | null;
}

export interface TrivyReport {
  SchemaVersion: number;
  ArtifactName?: string;
  ArtifactType?: string;
  Metadata?: { OS?: { Family?: string; Name?: string; EOSL?: boolean }; ImageID?: string; RepoDigests?: string[] };
  Results?: TrivyResult[] | null;
}

/** `trivy --version --format json`: the vulnerability DB is absent until it was downloaded once. */
export interface TrivyVersionInfo {
  Version: string;
  VulnerabilityDB?: { Version?: number; UpdatedAt?: string; NextUpdate?: string; DownloadedAt?: string } | null;
}

const stringList = { type: ['array', 'null'], items: { type: 'string' } };

const vulnerabilitySchema = {
  type: 'object',
  required: ['VulnerabilityID', 'PkgName', 'InstalledVersion', 'Severity'],
  properties: {
    VulnerabilityID: { type: 'string' },
    PkgName: { type: 'string' },
    InstalledVersion: { type: 'string' },
    FixedVersion: { type: 'string' },
    Status: { type: 'string' },
    Severity: { type: 'string' },
    SeveritySource: { type: 'string' },
    Title: { type: 'string' },
    Description: { type: 'string' },
    PrimaryURL: { type: 'string' },
    References: stringList,
    CweIDs: stringList,
    CVSS: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: {
          V2Vector: { type: 'string' },
          V3Vector: { type: 'string' },
          V2Score: { type: 'number' },
          V3Score: { type: 'number' },
        },
      },
    },
    Layer: { type: 'object', properties: { Digest: { type: 'string' }, DiffID: { type: 'string' } } },
  },
};

const reportSchema = {
  type: 'object',
  required: ['SchemaVersion'],
  properties: {
    SchemaVersion: { type: 'integer', const: 2 },
    ArtifactName: { type: 'string' },
    ArtifactType: { type: 'string' },
    Metadata: {
      type: 'object',
      properties: {
        OS: { type: 'object', properties: { Family: { type: 'string' }, Name: { type: 'string' }, EOSL: { type: 'boolean' } } },
        ImageID: { type: 'string' },
        RepoDigests: stringList,
      },
    },
    Results: {
      type: ['array', 'null'],
      items: {
        type: 'object',
        required: ['Target'],
        properties: {
          Target: { type: 'string' },
          Class: { type: 'string' },
          Type: { type: 'string' },
          Vulnerabilities: { type: ['array', 'null'], items: vulnerabilitySchema },
        },
      },
    },
  },
};

const versionSchema = {
  type: 'object',
  required: ['Version'],
  properties: {
    Version: { type: 'string' },
    VulnerabilityDB: {
      type: ['object', 'null'],
      properties: {
        Version: { type: 'integer' },
        UpdatedAt: { type: 'string' },
        NextUpdate: { type: 'string' },
        DownloadedAt: { type: 'string' },
      },
    },
  },
};

const ajv = new Ajv({ allErrors: false, strict: false });
const validateReport = ajv.compile<TrivyReport>(reportSchema);
const validateVersion = ajv.compile<TrivyVersionInfo>(versionSchema);

export class TrivyOutputError extends Error {}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const head = text.trim().slice(0, 80);
    throw new TrivyOutputError(`${what}: expected JSON, got ${head === '' ? 'nothing' : JSON.stringify(head)} (${error instanceof Error ? error.message : String(error)})`);
  }
}

function firstError(errors: typeof validateReport.errors): string {
  const error = errors?.[0];
  if (!error) return 'does not match the expected shape';
  return `${error.instancePath || '/'} ${error.message ?? 'is invalid'}`;
}

/** Parses the stdout of `trivy image --format json`; throws TrivyOutputError naming the bad field. */
export function parseTrivyReport(text: string): TrivyReport {
  const value = parseJson(text, 'trivy report');
  if (!validateReport(value)) throw new TrivyOutputError(`trivy report: ${firstError(validateReport.errors)}`);
  return value;
}

/** Parses the stdout of `trivy --version --format json`. */
export function parseTrivyVersion(text: string): TrivyVersionInfo {
  const value = parseJson(text, 'trivy --version');
  if (!validateVersion(value)) throw new TrivyOutputError(`trivy --version: ${firstError(validateVersion.errors)}`);
  return value;
}
