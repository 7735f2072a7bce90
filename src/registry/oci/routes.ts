import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PortcullisError } from '../../errors.js';
import { ChallengeError, authenticate } from '../authorize.js';
import { deleteBlob, getBlob } from './blobs.js';
import type { OciDeps, OciRequest } from './context.js';
import { sendOciError } from './errors.js';
import { catalog, listReferrers, listTags } from './listing.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { parseRepositoryName } from './names.js';
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './uploads.js';

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type Handler = (deps: OciDeps, oci: OciRequest, reference: string, method: Method) => Promise<void>;

/**
 * The endpoints of the distribution spec after `/v2/<name>`, matched from the end of the path
 * because names contain slashes (and may contain words like `blobs`). Order matters: uploads before
 * blobs.
 */
const ENDPOINTS: { suffix: RegExp; methods: Partial<Record<Method, Handler>> }[] = [
  { suffix: /\/tags\/list$/, methods: { GET: (deps, oci) => listTags(deps, oci) } },
  {
    suffix: /\/manifests\/([^/]+)$/,
    methods: {
      GET: (deps, oci, ref) => getManifest(deps, oci, ref, false),
      HEAD: (deps, oci, ref) => getManifest(deps, oci, ref, true),
      PUT: (deps, oci, ref) => putManifest(deps, oci, ref),
      DELETE: (deps, oci, ref) => deleteManifest(deps, oci, ref),
    },
  },
  { suffix: /\/blobs\/uploads\/?$/, methods: { POST: (deps, oci) => startUpload(deps, oci) } },
  {
    suffix: /\/blobs\/uploads\/([^/]+)$/,
    methods: {
      GET: (deps, oci, id) => uploadStatus(deps, oci, id),
      PATCH: (deps, oci, id) => patchUpload(deps, oci, id),
      PUT: (deps, oci, id) => finishUpload(deps, oci, id),
      DELETE: (deps, oci, id) => cancelUpload(deps, oci, id),
    },
  },
  {
    suffix: /\/blobs\/([^/]+)$/,
    methods: {
      GET: (deps, oci, ref) => getBlob(deps, oci, ref, false),
      HEAD: (deps, oci, ref) => getBlob(deps, oci, ref, true),
      DELETE: (deps, oci, ref) => deleteBlob(deps, oci, ref),
    },
  },
  { suffix: /\/referrers\/([^/]+)$/, methods: { GET: (deps, oci, ref) => listReferrers(deps, oci, ref) } },
];

function queryOf(request: FastifyRequest): Record<string, string | undefined> {
  const query: Record<string, string | undefined> = {};
  const raw = request.query;
  if (raw !== null && typeof raw === 'object') {
    for (const [key, value] of Object.entries(raw)) {
      if (typeof value === 'string') query[key] = value;
      else if (Array.isArray(value) && typeof value[0] === 'string') query[key] = value[0];
    }
  }
  return query;
}

function decode(component: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    throw new PortcullisError('REGISTRY_NAME_INVALID', `"${component}": invalid percent-encoding`);
  }
}

async function dispatch(deps: OciDeps, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const method = request.method as Method;
  const path = (request.url.split('?')[0] ?? '').replace(/^\/v2/, '');
  if (path === '' || path === '/') {
    if (method !== 'GET' && method !== 'HEAD') throw new PortcullisError('REGISTRY_UNSUPPORTED', `${method} /v2/ is not supported`);
    const principal = await authenticate(deps.access, request);
    if (principal.kind === 'anonymous') {
      // Clients probe /v2/ to learn how to authenticate; anonymous pulls of public projects still work per repository.
      throw new ChallengeError('authentication required', deps.access.challenge());
    }
    await reply.status(200).header('content-type', 'application/json; charset=utf-8').send('{}');
    return;
  }
  if (path === '/_catalog') {
    if (method !== 'GET') throw new PortcullisError('REGISTRY_UNSUPPORTED', `${method} /v2/_catalog is not supported`);
    await catalog(deps, request, reply, queryOf(request));
    return;
  }
  for (const endpoint of ENDPOINTS) {
    const match = endpoint.suffix.exec(path);
    if (!match) continue;
    const name = parseRepositoryName(path.slice(1, match.index));
    const handler = endpoint.methods[method];
    if (!handler) {
      throw new PortcullisError('REGISTRY_UNSUPPORTED', `${method} is not supported on ${path.slice(match.index)}`, { status: 405 });
    }
    await handler(deps, { request, reply, name, query: queryOf(request) }, decode(match[1] ?? ''), method);
    return;
  }
  throw new PortcullisError('NOT_FOUND', `no OCI endpoint ${method} /v2${path}`);
}

/**
 * The OCI Distribution API under `/v2`. Request bodies are left unread by fastify (every content
 * type is passed through as the raw stream) so that uploads stream to storage and manifests are
 * read with their own size limit. Every answer carries `Docker-Distribution-API-Version`.
 */
export async function ociRoutes(app: FastifyInstance, deps: OciDeps): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
  app.addHook('onRequest', async (_request, reply) => {
    void reply.header('docker-distribution-api-version', 'registry/2.0');
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    // A body the handler never read would otherwise stall the connection.
    if (!request.raw.readableEnded) request.raw.resume();
    return sendOciError(request, reply, error);
  });
  app.setNotFoundHandler((request, reply) => sendOciError(request, reply, new PortcullisError('NOT_FOUND', `no OCI endpoint ${request.method} ${request.url.split('?')[0]}`)));
  const handler = (request: FastifyRequest, reply: FastifyReply) => dispatch(deps, request, reply);
  const methods: Method[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
  // Registered under the `/v2` prefix.
  app.route({ method: methods, url: '/', exposeHeadRoute: false, handler });
  app.route({ method: methods, url: '/*', exposeHeadRoute: false, handler });
}
