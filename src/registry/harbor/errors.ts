import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { classifyError } from '../../http/server.js';

/**
 * Harbor's error envelope, `{"errors":[{"code","message"}]}` (swagger definition `Errors`), served
 * by every route under `/api/v2.0`. Harbor's codes are coarse (one per HTTP status); the project's
 * own code is kept in the message prefix so that logs and clients can still tell cases apart.
 */
export interface HarborErrors {
  errors: { code: string; message: string }[];
}

/** Harbor's code for each HTTP status it answers with (src/lib/errors/const.go upstream). */
const HARBOR_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  412: 'PRECONDITION',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'UNPROCESSABLE_ENTITY',
  503: 'SERVICE_UNAVAILABLE',
};

/** The Harbor code for `status`: 5xx without a specific code become INTERNAL_SERVER_ERROR. */
export function harborCode(status: number): string {
  return HARBOR_CODES[status] ?? (status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST');
}

export function harborErrors(status: number, message: string): HarborErrors {
  return { errors: [{ code: harborCode(status), message }] };
}

/** Sends a Harbor error envelope; returns the reply so handlers can `return sendHarborError(…)`. */
export function sendHarborError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.status(status).header('content-type', 'application/json; charset=utf-8').send(harborErrors(status, message));
}

/** `n` bytes as written in messages: `65536 bytes (64 KiB)`, `1048576 bytes (1 MiB)`. */
function bytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n} bytes (${n / (1024 * 1024)} MiB)`;
  if (n >= 1024 && n % 1024 === 0) return `${n} bytes (${n / 1024} KiB)`;
  return `${n} bytes`;
}

/**
 * The message for a body over the route's limit: the limit, and the announced size when the client
 * sent a Content-Length (a chunked body is cut off at the limit, so its size is not known).
 */
function tooLargeMessage(request: FastifyRequest): string {
  const length = request.headers['content-length'];
  const size = length !== undefined && /^[0-9]+$/.test(length) ? ` of ${bytes(Number(length))}` : '';
  return `the request body${size} exceeds the limit of ${bytes(request.routeOptions.bodyLimit)} for JSON bodies on /api/v2.0`;
}

/**
 * Installs the Harbor envelope as the error and not-found handler of `app` (call it inside the
 * plugin that owns `/api/v2.0`, so the encapsulated scope gets it and the rest of the server keeps
 * its own envelope). Schema failures and PortcullisErrors come out as `{"errors":[…]}` with the
 * classified status; malformed and oversize JSON both as 400 BAD_REQUEST (Harbor has no 413), the
 * oversize one saying what the limit is. Pass `notFound: false` when another plugin under the
 * same prefix already set the not-found handler.
 */
export function useHarborErrors(app: FastifyInstance, options: { notFound?: boolean } = {}): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    let classified = classifyError(error);
    if (classified.code === 'REQUEST_TOO_LARGE') classified = { status: 400, code: classified.code, message: tooLargeMessage(request) };
    if (classified.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: classified.code, statusCode: classified.status, reason: classified.message }, 'request rejected');
    void sendHarborError(reply, classified.status, classified.code === 'INTERNAL' ? 'internal error' : `${classified.code}: ${classified.message}`);
  });
  // Fastify allows one not-found handler per prefix: the second plugin under /api/v2.0 passes false.
  if (options.notFound === false) return;
  app.setNotFoundHandler((request, reply) => {
    void sendHarborError(reply, 404, `no route for ${request.method} ${request.url.split('?')[0]}`);
  });
}
