import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
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
  413: 'BAD_REQUEST',
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

/**
 * Installs the Harbor envelope as the error and not-found handler of `app` (call it inside the
 * plugin that owns `/api/v2.0`, so the encapsulated scope gets it and the rest of the server keeps
 * its own envelope). Malformed or oversize JSON, schema failures and PortcullisErrors all come out
 * as `{"errors":[…]}` with the classified status. Pass `notFound: false` when another plugin under the
 * same prefix already set the not-found handler.
 */
export function useHarborErrors(app: FastifyInstance, options: { notFound?: boolean } = {}): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const classified = classifyError(error);
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
