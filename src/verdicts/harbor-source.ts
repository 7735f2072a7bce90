import { Ajv, type JSONSchemaType } from 'ajv';
import { Agent, fetch, type Dispatcher } from 'undici';
import { PortcullisError, describeError } from '../errors.js';
import { NATIVE_REPORT_MIME, VULNERABILITY_REPORT_MIME, severityOf } from '../harbor/report.js';
import type { ImageReference } from '../policy/image-reference.js';
import type { Finding, Verdict } from '../policy/types.js';
import type { VerdictOptions, VerdictSource } from './source.js';

/**
 * Verdicts from any Harbor v2.0 API (a real Harbor, or the included registry, which serves the
 * same subset): `GET …/artifacts/{reference}?with_scan_overview=true` resolves tags and gives the
 * scan state, `GET …/artifacts/{digest}/additions/vulnerabilities` the findings, and
 * `POST …/artifacts/{digest}/scan` asks for a scan. Credentials are a Harbor user or robot
 * account (basic auth); a custom CA is trusted for the API's certificate.
 */
export interface HarborSourceOptions {
  /** Base URL of Harbor (`https://harbor.example.com`), without `/api/v2.0`. */
  url: string;
  username?: string;
  password?: string;
  /** PEM of the CA that signed Harbor's certificate (added to the system roots). */
  ca?: string;
  insecureSkipVerify?: boolean;
  /**
   * Registry hosts (as written in image references) that this Harbor serves; defaults to the
   * URL's host. Images from other registries are unknown to this source.
   */
  registries?: string[];
}

/** The report MIME types this source reads, in order of preference (also sent as X-Accept-Vulnerabilities). */
const REPORT_MIMES = [VULNERABILITY_REPORT_MIME, NATIVE_REPORT_MIME];

/** Manifest media types Harbor scans; other artifacts (Helm charts, CNAB, signatures) are `unsupported`. */
const SCANNABLE_TYPES = new Set(['IMAGE']);

interface ArtifactBody {
  digest: string;
  type?: string;
  media_type?: string;
  manifest_media_type?: string;
  scan_overview?: Record<string, SummaryBody> | null;
}

interface SummaryBody {
  report_id?: string;
  scan_status?: string;
  severity?: string;
  end_time?: string;
}

interface ItemBody {
  id: string;
  package: string;
  version: string;
  fix_version?: string;
  severity: string;
  description?: string;
  links?: string[];
  status?: string;
}

interface ReportBody {
  generated_at?: string;
  vulnerabilities?: ItemBody[] | null;
}

const summarySchema: JSONSchemaType<SummaryBody> = {
  type: 'object',
  required: [],
  properties: {
    report_id: { type: 'string', nullable: true },
    scan_status: { type: 'string', nullable: true },
    severity: { type: 'string', nullable: true },
    end_time: { type: 'string', nullable: true },
  },
};

const artifactSchema: JSONSchemaType<ArtifactBody> = {
  type: 'object',
  required: ['digest'],
  properties: {
    digest: { type: 'string', minLength: 1 },
    type: { type: 'string', nullable: true },
    media_type: { type: 'string', nullable: true },
    manifest_media_type: { type: 'string', nullable: true },
    scan_overview: { type: 'object', required: [], additionalProperties: summarySchema, nullable: true },
  },
};

const reportsSchema: JSONSchemaType<Record<string, ReportBody>> = {
  type: 'object',
  required: [],
  additionalProperties: {
    type: 'object',
    required: [],
    properties: {
      generated_at: { type: 'string', nullable: true },
      vulnerabilities: {
        type: 'array',
        nullable: true,
        items: {
          type: 'object',
          required: ['id', 'package', 'version', 'severity'],
          properties: {
            id: { type: 'string' },
            package: { type: 'string' },
            version: { type: 'string' },
            fix_version: { type: 'string', nullable: true },
            severity: { type: 'string' },
            description: { type: 'string', nullable: true },
            links: { type: 'array', items: { type: 'string' }, nullable: true },
            status: { type: 'string', nullable: true },
          },
        },
      },
    },
  },
};

const ajv = new Ajv({ allErrors: false, strict: false });
const validateArtifact = ajv.compile(artifactSchema);
const validateReports = ajv.compile(reportsSchema);

export class HarborVerdictSource implements VerdictSource {
  readonly name = 'harbor';
  readonly #base: string;
  readonly #authorization: string | undefined;
  readonly #dispatcher: Dispatcher;
  readonly #registries: Set<string>;

  constructor(options: HarborSourceOptions) {
    const url = new URL(options.url);
    this.#base = `${url.origin}${url.pathname.replace(/\/+$/, '')}/api/v2.0`;
    this.#authorization =
      options.username !== undefined ? `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}` : undefined;
    this.#dispatcher = new Agent({
      connect: { ...(options.ca ? { ca: options.ca } : {}), rejectUnauthorized: !options.insecureSkipVerify },
      keepAliveTimeout: 10_000,
    });
    this.#registries = new Set((options.registries ?? [url.host]).map((host) => host.toLowerCase()));
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  async resolveDigest(reference: ImageReference, options: VerdictOptions): Promise<string | undefined> {
    if (reference.digest !== undefined) return reference.digest;
    const path = this.#artifactPath(reference, reference.tag ?? 'latest');
    if (path === undefined) return undefined;
    const artifact = await this.#getArtifact(path, options.signal);
    return artifact?.digest;
  }

  async verdict(reference: ImageReference, digest: string, options: VerdictOptions): Promise<Verdict> {
    const path = this.#artifactPath(reference, digest);
    if (path === undefined) return { state: 'unscanned', digest, reason: `registry ${reference.registry} is not served by Harbor` };
    const artifact = await this.#getArtifact(path, options.signal);
    if (artifact === undefined) return { state: 'unscanned', digest, reason: `${digest} is not in Harbor` };
    if (artifact.type !== undefined && !SCANNABLE_TYPES.has(artifact.type.toUpperCase())) {
      return { state: 'unsupported', digest, reason: `Harbor does not scan ${artifact.type.toLowerCase()} artifacts` };
    }
    const overview = artifact.scan_overview ?? {};
    const mime = REPORT_MIMES.find((candidate) => overview[candidate] !== undefined);
    if (mime === undefined) {
      const others = Object.keys(overview);
      if (others.length > 0) return { state: 'unsupported', digest, reason: `no vulnerability report among ${others.join(', ')}` };
      if (options.triggerScan) await this.#requestScan(path, options.signal);
      return { state: 'unscanned', digest, reason: options.triggerScan ? 'never scanned; a scan was requested' : 'never scanned' };
    }
    const summary = overview[mime] as SummaryBody;
    switch (summary.scan_status) {
      case 'Pending':
      case 'Running':
      case 'Scheduled':
        return { state: 'pending', digest, reason: `scan ${summary.scan_status.toLowerCase()} in Harbor` };
      case 'Error':
        return { state: 'failed', digest, reason: 'the scan failed in Harbor' };
      case 'Stopped':
        return { state: 'failed', digest, reason: 'the scan was stopped in Harbor' };
      case 'Success':
        break;
      default:
        if (options.triggerScan) await this.#requestScan(path, options.signal);
        return { state: 'unscanned', digest, reason: `Harbor scan status ${summary.scan_status ?? '(none)'}` };
    }
    const report = await this.#getReport(path, options.signal);
    const findings = (report?.vulnerabilities ?? []).map((item): Finding => {
      const finding: Finding = { id: item.id, package: item.package, installedVersion: item.version, severity: severityOf(item.severity) };
      if (item.fix_version) finding.fixedVersion = item.fix_version;
      if (item.status) finding.status = item.status;
      if (item.links && item.links.length > 0) finding.links = item.links;
      return finding;
    });
    const scannedAt = summary.end_time ?? report?.generated_at ?? new Date(0).toISOString();
    return { state: 'scanned', digest, scannedAt: new Date(scannedAt).toISOString(), findings, scanner: 'harbor' };
  }

  /** `/projects/{p}/repositories/{r}/artifacts/{ref}`, or undefined for images this Harbor does not serve. */
  #artifactPath(reference: ImageReference, ref: string): string | undefined {
    if (!this.#registries.has(reference.registry)) return undefined;
    const [project, ...rest] = reference.repository.split('/');
    if (project === undefined || rest.length === 0) return undefined;
    // Harbor wants a repository name with slashes encoded twice (a/b → a%252Fb).
    const repository = encodeURIComponent(encodeURIComponent(rest.join('/')));
    return `/projects/${encodeURIComponent(project)}/repositories/${repository}/artifacts/${encodeURIComponent(ref)}`;
  }

  async #getArtifact(path: string, signal: AbortSignal): Promise<ArtifactBody | undefined> {
    const body = await this.#request('GET', `${path}?with_scan_overview=true&with_tag=false`, signal);
    if (body === undefined) return undefined;
    if (!validateArtifact(body)) {
      throw new PortcullisError('VERDICT_UNAVAILABLE', `Harbor GET ${path}: unexpected artifact ${validateArtifact.errors?.[0]?.instancePath ?? ''} ${validateArtifact.errors?.[0]?.message ?? ''}`);
    }
    return body;
  }

  async #getReport(path: string, signal: AbortSignal): Promise<ReportBody | undefined> {
    const body = await this.#request('GET', `${path}/additions/vulnerabilities`, signal);
    if (body === undefined) return undefined;
    if (!validateReports(body)) {
      throw new PortcullisError('VERDICT_UNAVAILABLE', `Harbor GET ${path}/additions/vulnerabilities: unexpected report ${validateReports.errors?.[0]?.instancePath ?? ''} ${validateReports.errors?.[0]?.message ?? ''}`);
    }
    const mime = REPORT_MIMES.find((candidate) => body[candidate] !== undefined);
    return mime === undefined ? undefined : body[mime];
  }

  async #requestScan(path: string, signal: AbortSignal): Promise<void> {
    await this.#request('POST', `${path}/scan`, signal, { scan_type: 'vulnerability' });
  }

  /** One API call; resolves undefined on 404, the parsed body on 2xx, throws otherwise. */
  async #request(method: 'GET' | 'POST', path: string, signal: AbortSignal, json?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json', 'x-accept-vulnerabilities': REPORT_MIMES.join(', ') };
    if (this.#authorization) headers.authorization = this.#authorization;
    if (json !== undefined) headers['content-type'] = 'application/json';
    let response;
    try {
      response = await fetch(`${this.#base}${path}`, {
        method,
        headers,
        signal,
        dispatcher: this.#dispatcher,
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      });
    } catch (error) {
      throw new PortcullisError('VERDICT_UNAVAILABLE', `Harbor ${method} ${path}: ${describeError(error)}`, { cause: error });
    }
    const text = await response.text();
    if (response.status === 404) return undefined;
    if (response.status < 200 || response.status > 299) {
      throw new PortcullisError('VERDICT_UNAVAILABLE', `Harbor ${method} ${path}: HTTP ${response.status} ${harborErrorMessage(text)}`);
    }
    if (text === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new PortcullisError('VERDICT_UNAVAILABLE', `Harbor ${method} ${path}: the body is not JSON`, { cause: error });
    }
  }
}

/** The first message of Harbor's `{errors:[{code,message}]}` envelope, or the start of the body. */
function harborErrorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as unknown;
    if (body !== null && typeof body === 'object' && 'errors' in body && Array.isArray(body.errors)) {
      const first: unknown = body.errors[0];
      if (first !== null && typeof first === 'object' && 'message' in first && typeof first.message === 'string') {
        const code = 'code' in first && typeof first.code === 'string' ? `${first.code}: ` : '';
        return `${code}${first.message}`;
      }
    }
  } catch {
    // Not JSON: show the raw start of the body below.
  }
  return text.slice(0, 200);
}
