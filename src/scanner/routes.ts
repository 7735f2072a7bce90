import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { describeError } from '../errors.js';
import { PRODUCED_REPORT_TYPES, VULNERABILITY_REPORT_MIME } from '../harbor/report.js';
import { F } from '../log/fields.js';
import type { Scanner } from './service.js';

/**
 * The Harbor pluggable scanner-adapter API v1.1 (goharbor/pluggable-scanner-spec), so that a real
 * Harbor can register Portcullis as its scanner, plus two small Portcullis endpoints that the
 * webhook (verdicts over HTTP) and `portcullis scan` use when the roles run apart.
 *
 *   GET  /api/v1/metadata                   scanner, capabilities, DB properties
 *   POST /api/v1/scan                       202 {id}; a scan of a digest already queued joins it
 *   GET  /api/v1/scan/{id}/report           302 + Refresh-After while queued/running, 200 report,
 *                                           404 unknown id, 500 failed
 *   GET  /api/v1/portcullis/verdicts/{digest}?repository=…&triggerScan=true|false
 *   GET  /api/v1/portcullis/systeminfo
 *
 * Errors use the adapter's envelope `{"error":{"message":…}}` with harbor-scanner-trivy's media type.
 */

export const ADAPTER_ERROR_MIME = 'application/vnd.scanner.adapter.error; version=1.0';
export const METADATA_MIME = 'application/vnd.scanner.adapter.metadata+json; version=1.0';
export const SCAN_REQUEST_MIME = 'application/vnd.scanner.adapter.scan.request+json; version=1.0';
export const SCAN_RESPONSE_MIME = 'application/vnd.scanner.adapter.scan.response+json; version=1.0';
/** Seconds Harbor should wait before polling a report again. */
export const REFRESH_AFTER_SECONDS = 5;

const CONSUMES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];
const DIGEST = /^sha256:[a-f0-9]{64}$/;

export interface AdapterRoutesOptions {
  scanner: Scanner;
  /** When set, every request needs `Authorization: Bearer <apiToken>`. */
  apiToken?: string;
}

/** Sends JSON under an exact media type (a Buffer, so that fastify neither quotes nor adds a charset). */
function sendJson(reply: FastifyReply, status: number, mime: string, body: unknown): FastifyReply {
  return reply.status(status).header('content-type', mime).send(Buffer.from(JSON.stringify(body)));
}

function sendError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return sendJson(reply, status, ADAPTER_ERROR_MIME, { error: { message } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates a ScanRequest the way harbor-scanner-trivy does: 400 for bad JSON types, 422 for missing fields. */
function readScanRequest(body: unknown): { status: 400 | 422; message: string } | { registryUrl: string; authorization?: string; repository: string; digest: string; tag?: string; mediaType?: string } {
  if (!isRecord(body)) return { status: 400, message: 'unmarshalling scan request: expected a JSON object' };
  const registry = body.registry ?? {};
  const artifact = body.artifact ?? {};
  if (!isRecord(registry)) return { status: 400, message: 'unmarshalling scan request: registry must be an object' };
  if (!isRecord(artifact)) return { status: 400, message: 'unmarshalling scan request: artifact must be an object' };
  for (const [where, value] of [['registry.url', registry.url], ['registry.authorization', registry.authorization], ['artifact.repository', artifact.repository], ['artifact.digest', artifact.digest], ['artifact.tag', artifact.tag], ['artifact.mime_type', artifact.mime_type]] as const) {
    if (value !== undefined && typeof value !== 'string') return { status: 400, message: `unmarshalling scan request: ${where} must be a string, got ${JSON.stringify(value)}` };
  }
  const url = registry.url as string | undefined;
  if (!url) return { status: 422, message: 'missing registry.url' };
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('not http(s)');
  } catch {
    return { status: 422, message: `invalid registry.url: expected an http(s) URL, got ${JSON.stringify(url)}` };
  }
  const repository = artifact.repository as string | undefined;
  if (!repository) return { status: 422, message: 'missing artifact.repository' };
  const digest = artifact.digest as string | undefined;
  if (!digest) return { status: 422, message: 'missing artifact.digest' };
  if (!DIGEST.test(digest)) return { status: 422, message: `invalid artifact.digest: expected sha256:<64 hex>, got ${JSON.stringify(digest)}` };
  const request: { registryUrl: string; authorization?: string; repository: string; digest: string; tag?: string; mediaType?: string } = { registryUrl: url, repository, digest };
  if (typeof registry.authorization === 'string' && registry.authorization !== '') request.authorization = registry.authorization;
  if (typeof artifact.tag === 'string') request.tag = artifact.tag;
  if (typeof artifact.mime_type === 'string') request.mediaType = artifact.mime_type;
  return request;
}

/** The report media type to answer with for an Accept header; undefined when none is acceptable. */
function negotiate(accept: string | undefined): string | undefined {
  if (!accept || accept.trim() === '' || accept.includes('*/*')) return VULNERABILITY_REPORT_MIME;
  const wanted = accept.split(',').map((part) => part.trim().toLowerCase().replace(/\s+/g, ''));
  return PRODUCED_REPORT_TYPES.find((mime) => wanted.some((item) => item.startsWith(mime.toLowerCase().replace(/\s+/g, ''))));
}

/** SHA-256 of a token: equal-length buffers for timingSafeEqual, so not even the length leaks. */
function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function tokenMatches(header: string | undefined, expected: Buffer): boolean {
  const presented = /^Bearer\s+(.+)$/i.exec(header ?? '')?.[1];
  // Always compare, even without a token, so that the answer takes the same time.
  const matches = timingSafeEqual(tokenDigest(presented ?? ''), expected);
  return presented !== undefined && matches;
}

export const adapterRoutes: FastifyPluginAsync<AdapterRoutesOptions> = async (app, options) => {
  const { scanner } = options;

  // Harbor sends the request under its own media type; parse it here so bad JSON gets the
  // adapter's error envelope rather than the server's generic one.
  app.addContentTypeParser(/^application\/vnd\.scanner\.adapter\.scan\.request\+json/, { parseAs: 'string' }, (_request, body, done) => done(null, body));

  if (options.apiToken) {
    const token = tokenDigest(options.apiToken);
    // Every route of this (encapsulated) plugin needs the token. Deciding by `request.url` would
    // let `/%61pi/v1/scan` through: the router decodes it to the route, the prefix test does not.
    app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      if (!tokenMatches(request.headers.authorization, token)) {
        await sendError(reply.header('www-authenticate', 'Bearer realm="portcullis-scanner"'), 401, 'unauthorized: a valid bearer token is required');
      }
    });
  }

  app.get('/api/v1/metadata', async (_request, reply) => {
    const info = await scanner.systemInfo();
    const properties: Record<string, string> = {
      'harbor.scanner-adapter/scanner-type': 'os-package-vulnerability',
      'portcullis.io/ready': String(info.ready),
      'portcullis.io/status': info.status,
    };
    if (info.dbUpdatedAt) properties['harbor.scanner-adapter/vulnerability-database-updated-at'] = info.dbUpdatedAt;
    if (info.dbNextUpdate) properties['harbor.scanner-adapter/vulnerability-database-next-update-at'] = info.dbNextUpdate;
    const body = {
      scanner: { name: info.name, vendor: info.vendor, version: info.version ?? 'Unknown' },
      capabilities: [{ type: 'vulnerability', consumes_mime_types: CONSUMES, produces_mime_types: [...PRODUCED_REPORT_TYPES] }],
      properties,
    };
    return sendJson(reply, 200, METADATA_MIME, body);
  });

  app.post('/api/v1/scan', async (request, reply) => {
    let body: unknown = request.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch (error) {
        return sendError(reply, 400, `unmarshalling scan request: ${describeError(error)}`);
      }
    }
    const scanRequest = readScanRequest(body);
    if ('status' in scanRequest) return sendError(reply, scanRequest.status, scanRequest.message);
    try {
      const { job, joined } = await scanner.enqueueExternal(scanRequest);
      request.log.info({ [F.jobId]: job.id, [F.digest]: job.digest, [F.repository]: job.repository, joined }, 'adapter scan request accepted');
      return sendJson(reply, 202, SCAN_RESPONSE_MIME, { id: job.id });
    } catch (error) {
      request.log.error({ [F.err]: error }, 'adapter scan request could not be queued');
      return sendError(reply, 500, `enqueuing scan job: ${describeError(error)}`);
    }
  });

  app.get<{ Params: { id: string } }>(
    '/api/v1/scan/:id/report',
    { schema: { params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 200 } } } } },
    async (request, reply) => {
      const mime = negotiate(request.headers.accept);
      if (!mime) return sendError(reply, 415, `unsupported Accept ${JSON.stringify(request.headers.accept)}: expected one of ${PRODUCED_REPORT_TYPES.join(', ')}`);
      const job = await scanner.store.job(request.params.id);
      if (!job) return sendError(reply, 404, `scan job ${request.params.id} not found`);
      if (job.status === 'queued' || job.status === 'running') {
        return reply
          .status(302)
          .header('refresh-after', String(REFRESH_AFTER_SECONDS))
          .header('location', request.url)
          .send();
      }
      if (job.status === 'failed') return sendError(reply, 500, job.error ?? 'scan failed');
      const outcome = await scanner.store.outcome(job.digest);
      if (!outcome) return sendError(reply, 500, `scan job ${job.id} succeeded but its report is missing`);
      if (outcome.kind === 'unsupported') return sendError(reply, 500, outcome.reason);
      return sendJson(reply, 200, mime, outcome.report);
    },
  );

  app.get<{ Params: { digest: string }; Querystring: { repository: string; triggerScan?: boolean; mediaType?: string } }>(
    '/api/v1/portcullis/verdicts/:digest',
    {
      schema: {
        params: { type: 'object', required: ['digest'], properties: { digest: { type: 'string', pattern: DIGEST.source } } },
        querystring: {
          type: 'object',
          required: ['repository'],
          properties: { repository: { type: 'string', minLength: 1 }, triggerScan: { type: 'boolean' }, mediaType: { type: 'string' } },
        },
      },
    },
    async (request) => {
      const verdictRequest = { repository: request.query.repository, digest: request.params.digest, triggerScan: request.query.triggerScan ?? false };
      return scanner.verdict(request.query.mediaType ? { ...verdictRequest, mediaType: request.query.mediaType } : verdictRequest);
    },
  );

  app.get('/api/v1/portcullis/systeminfo', async () => scanner.systemInfo());
};
