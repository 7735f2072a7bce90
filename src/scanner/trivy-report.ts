import { Ajv, type ErrorObject, type JSONSchemaType } from 'ajv';

/**
 * Trivy's JSON report (`trivy image --format json`, SchemaVersion 2): the one reader of it in
 * Portcullis. The scanner parses Trivy's stdout with it; `portcullis review --report` and
 * `policy test` (src/verdicts/trivy-report.ts) parse report files a person hands in with it.
 *
 * Only the fields Portcullis reads are named; every other field is accepted and ignored. Every field
 * named here except the vulnerability identity is optional because real reports omit them (see
 * ../shared/reference/MANIFEST.md): no `Results` key at all (nothing found), a Result without
 * `Vulnerabilities`, Results of mixed `Class` (os-pkgs, lang-pkgs, custom), repository reports
 * without `Metadata` or `ArtifactID`, vulnerabilities without `Layer` or `InstalledVersion`
 * (Trivy writes it `omitempty`).
 */
export interface TrivyVulnerability {
  VulnerabilityID: string;
  PkgName: string;
  InstalledVersion?: string;
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
  /** When the scan ran (RFC 3339 with nanoseconds). */
  CreatedAt?: string;
  ArtifactID?: string;
  ArtifactName?: string;
  ArtifactType?: string;
  Trivy?: { Version?: string };
  Metadata?: { OS?: { Family?: string; Name?: string; EOSL?: boolean }; ImageID?: string; RepoDigests?: string[] | null };
  Results?: TrivyResult[] | null;
}

/** `trivy --version --format json`: the vulnerability DB is absent until it was downloaded once. */
export interface TrivyVersionInfo {
  Version: string;
  VulnerabilityDB?: { Version?: number; UpdatedAt?: string; NextUpdate?: string; DownloadedAt?: string } | null;
}

/**
 * The severities Trivy writes, lowest first. They map one-to-one (case aside) onto Harbor's and
 * Portcullis's `Severity` (see `severityOf` in src/harbor/report.ts).
 */
export const TRIVY_SEVERITIES = ['UNKNOWN', 'NEGLIGIBLE', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;

export interface TrivyReportOptions {
  /** Names the input in error messages (a file name); `trivy report` by default. */
  source?: string;
  /**
   * `true`: a severity other than TRIVY_SEVERITIES is an error (report files a person hands in,
   * where a misspelt severity must not slip under a gate as `Unknown`). `false` (the default):
   * any string is accepted and later counts as `Unknown`, as harbor-scanner-trivy does with a
   * severity a newer Trivy might add.
   */
  strictSeverities?: boolean;
}

const stringList = { type: 'array', items: { type: 'string' }, nullable: true } as const;

function reportSchema(strictSeverities: boolean): JSONSchemaType<TrivyReport> {
  const vulnerability: JSONSchemaType<TrivyVulnerability> = {
    type: 'object',
    required: ['VulnerabilityID', 'PkgName', 'Severity'],
    properties: {
      VulnerabilityID: { type: 'string', minLength: 1 },
      PkgName: { type: 'string' },
      InstalledVersion: { type: 'string', nullable: true },
      FixedVersion: { type: 'string', nullable: true },
      Status: { type: 'string', nullable: true },
      Severity: strictSeverities ? { type: 'string', enum: [...TRIVY_SEVERITIES] } : { type: 'string' },
      SeveritySource: { type: 'string', nullable: true },
      Title: { type: 'string', nullable: true },
      Description: { type: 'string', nullable: true },
      PrimaryURL: { type: 'string', nullable: true },
      References: stringList,
      CweIDs: stringList,
      CVSS: {
        type: 'object',
        required: [],
        nullable: true,
        additionalProperties: {
          type: 'object',
          required: [],
          properties: {
            V2Vector: { type: 'string', nullable: true },
            V3Vector: { type: 'string', nullable: true },
            V2Score: { type: 'number', nullable: true },
            V3Score: { type: 'number', nullable: true },
          },
        },
      },
      Layer: {
        type: 'object',
        required: [],
        nullable: true,
        properties: { Digest: { type: 'string', nullable: true }, DiffID: { type: 'string', nullable: true } },
      },
    },
  };
  return {
    type: 'object',
    required: ['SchemaVersion'],
    properties: {
      SchemaVersion: { type: 'integer', const: 2 },
      CreatedAt: { type: 'string', nullable: true },
      ArtifactID: { type: 'string', nullable: true },
      ArtifactName: { type: 'string', nullable: true },
      ArtifactType: { type: 'string', nullable: true },
      Trivy: { type: 'object', required: [], nullable: true, properties: { Version: { type: 'string', nullable: true } } },
      Metadata: {
        type: 'object',
        required: [],
        nullable: true,
        properties: {
          OS: {
            type: 'object',
            required: [],
            nullable: true,
            properties: { Family: { type: 'string', nullable: true }, Name: { type: 'string', nullable: true }, EOSL: { type: 'boolean', nullable: true } },
          },
          ImageID: { type: 'string', nullable: true },
          RepoDigests: stringList,
        },
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
            Vulnerabilities: { type: 'array', nullable: true, items: vulnerability },
          },
        },
      },
    },
  };
}

const versionSchema: JSONSchemaType<TrivyVersionInfo> = {
  type: 'object',
  required: ['Version'],
  properties: {
    Version: { type: 'string' },
    VulnerabilityDB: {
      type: 'object',
      required: [],
      nullable: true,
      properties: {
        Version: { type: 'integer', nullable: true },
        UpdatedAt: { type: 'string', nullable: true },
        NextUpdate: { type: 'string', nullable: true },
        DownloadedAt: { type: 'string', nullable: true },
      },
    },
  },
};

// verbose: each error carries the value it is about (`data`), so messages can say what came.
const ajv = new Ajv({ allErrors: false, strict: false, verbose: true });
const validateLenient = ajv.compile(reportSchema(false));
const validateStrict = ajv.compile(reportSchema(true));
const validateVersion = ajv.compile(versionSchema);

/**
 * Input that is not a Trivy report (or version): `source` names the input, `pointer` the field at
 * fault (a JSON pointer, `''` for the whole document, absent when the text is not JSON), `problem`
 * what was expected and what came. The message reads `source pointer: problem`.
 */
export class TrivyOutputError extends Error {
  constructor(
    readonly source: string,
    readonly pointer: string | undefined,
    readonly problem: string,
  ) {
    super(pointer === undefined ? `${source}: ${problem}` : `${source} ${pointer === '' ? '(top level)' : pointer}: ${problem}`);
    this.name = 'TrivyOutputError';
  }
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const head = text.trim().slice(0, 80);
    const reason = error instanceof Error ? error.message : String(error);
    throw new TrivyOutputError(source, undefined, `expected JSON, got ${head === '' ? 'nothing' : JSON.stringify(head)} (${reason})`);
  }
}

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

/** Ajv's first error as `TrivyOutputError`: the field, what was expected, what came. */
function invalid(source: string, error: ErrorObject | undefined): TrivyOutputError {
  if (error === undefined) return new TrivyOutputError(source, '', 'does not match the expected shape');
  let expected = error.message ?? 'is invalid';
  const params: Record<string, unknown> = error.params;
  if (Array.isArray(params.allowedValues)) expected += ` (${params.allowedValues.map(String).join(', ')})`;
  else if ('allowedValue' in params) expected += ` ${shown(params.allowedValue)}`;
  // A missing property has nothing to show; anything else says what came.
  const got = error.keyword === 'required' ? '' : `, got ${shown(error.data)}`;
  return new TrivyOutputError(source, error.instancePath, `${expected}${got}`);
}

/** Checks parsed JSON is a Trivy report; throws TrivyOutputError naming the field at fault. */
export function checkTrivyReport(data: unknown, options: TrivyReportOptions = {}): TrivyReport {
  const validate = options.strictSeverities ? validateStrict : validateLenient;
  if (validate(data)) return data;
  throw invalid(options.source ?? 'trivy report', validate.errors?.[0]);
}

/** Parses the stdout of `trivy image --format json` (or a report file); throws TrivyOutputError naming the bad field. */
export function parseTrivyReport(text: string, options: TrivyReportOptions = {}): TrivyReport {
  return checkTrivyReport(parseJson(text, options.source ?? 'trivy report'), options);
}

/** Parses the stdout of `trivy --version --format json`. */
export function parseTrivyVersion(text: string): TrivyVersionInfo {
  const data = parseJson(text, 'trivy --version');
  if (validateVersion(data)) return data;
  throw invalid('trivy --version', validateVersion.errors?.[0]);
}

/** Every vulnerability of every Result (OS and language packages alike), in report order. */
export function trivyVulnerabilities(report: TrivyReport): TrivyVulnerability[] {
  return (report.Results ?? []).flatMap((result) => result.Vulnerabilities ?? []);
}
