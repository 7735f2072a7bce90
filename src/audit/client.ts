import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { Agent, fetch } from 'undici';
import { PortcullisError, describeError } from '../errors.js';
import {
  decisionPageSchema,
  runningReportSchema,
  summarySchema,
  type DecisionPage,
  type DecisionQuery,
  type RunningQuery,
  type RunningReport,
  type Summary,
  type SummaryQuery,
} from './api-schemas.js';

export interface AuditClientOptions {
  /** Base URL of the server that mounts the audit API (the registry's address). */
  url: string;
  username?: string;
  password?: string;
  /** Bearer token (the audit API token); wins over username/password. */
  token?: string;
  /** PEM of the CA to trust for an HTTPS URL, in addition to nothing else. */
  caPem?: string;
}

/** Reads the audit API; used by `portcullis audit …`. Responses are validated before use. */
export interface AuditClient {
  decisions(query: DecisionQuery): Promise<DecisionPage>;
  summary(query: SummaryQuery): Promise<Summary>;
  running(query: RunningQuery): Promise<RunningReport>;
  close(): Promise<void>;
}

function isErrorBody(value: unknown): value is { error: { code: string; message: string } } {
  if (typeof value !== 'object' || value === null || !('error' in value)) return false;
  const error = value.error;
  return typeof error === 'object' && error !== null && 'code' in error && 'message' in error && typeof error.code === 'string' && typeof error.message === 'string';
}

export function createAuditClient(options: AuditClientOptions): AuditClient {
  const base = options.url.replace(/\/+$/, '');
  const dispatcher = options.caPem ? new Agent({ connect: { ca: options.caPem } }) : undefined;
  const ajv = new Ajv({ allErrors: false });
  addFormats.default(ajv);
  const validators = {
    decisions: ajv.compile(decisionPageSchema),
    summary: ajv.compile(summarySchema),
    running: ajv.compile(runningReportSchema),
  };
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  else if (options.username !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`, 'utf8').toString('base64')}`;
  }

  async function get<T>(path: string, query: object, validate: ValidateFunction<T>): Promise<T> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const url = `${base}${path}${params.size > 0 ? `?${params.toString()}` : ''}`;
    let response;
    try {
      response = await fetch(url, { headers, dispatcher });
    } catch (error) {
      const cause = error instanceof Error && error.cause !== undefined ? `: ${describeError(error.cause)}` : '';
      throw new PortcullisError('INTERNAL', `GET ${url}: ${describeError(error)}${cause}`, { cause: error });
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new PortcullisError('INTERNAL', `GET ${url}: HTTP ${response.status}, expected a JSON body, got ${JSON.stringify(text.slice(0, 200))}`);
    }
    if (!response.ok) {
      if (isErrorBody(body)) {
        const code = body.error.code === 'UNAUTHORIZED' || body.error.code === 'FORBIDDEN' || body.error.code === 'REQUEST_MALFORMED' ? body.error.code : 'INTERNAL';
        throw new PortcullisError(code, `GET ${path}: HTTP ${response.status} ${body.error.code}: ${body.error.message}`, { status: response.status });
      }
      throw new PortcullisError('INTERNAL', `GET ${path}: HTTP ${response.status}`, { status: response.status });
    }
    if (!validate(body)) {
      const first = validate.errors?.[0];
      throw new PortcullisError('INTERNAL', `GET ${path}: unexpected response: ${first?.instancePath || '/'} ${first?.message ?? 'is invalid'}`);
    }
    return body;
  }

  return {
    decisions: (query) => get('/api/v1/audit/decisions', query, validators.decisions),
    summary: (query) => get('/api/v1/audit/summary', query, validators.summary),
    running: (query) => get('/api/v1/audit/running', query, validators.running),
    close: async () => {
      await dispatcher?.close();
    },
  };
}
