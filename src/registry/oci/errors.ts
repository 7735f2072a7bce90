import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { PortcullisError } from '../../errors.js';
import { classifyError } from '../../http/server.js';
import { ChallengeError } from '../authorize.js';

/** The distribution spec's error body. */
export interface OciErrors {
  errors: { code: string; message: string; detail?: unknown }[];
}

/** Project code → the spec's code, where the name differs from the code without `REGISTRY_`. */
const SPEC_CODES: Record<string, string> = {
  REGISTRY_MANIFEST_TOO_LARGE: 'SIZE_INVALID',
  REGISTRY_RANGE_INVALID: 'BLOB_UPLOAD_INVALID',
  REGISTRY_SCANNER_UNAVAILABLE: 'UNSUPPORTED',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'DENIED',
  REQUEST_TOO_LARGE: 'SIZE_INVALID',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED',
  NOT_FOUND: 'NOT_FOUND',
  INTERNAL: 'UNKNOWN',
};

export function ociCode(code: string): string {
  return SPEC_CODES[code] ?? (code.startsWith('REGISTRY_') ? code.slice('REGISTRY_'.length) : 'UNKNOWN');
}

/** Sends an error in the OCI envelope, with the challenge header when authentication is needed. */
export function sendOciError(request: FastifyRequest, reply: FastifyReply, error: FastifyError | Error): FastifyReply {
  const classified = classifyError(error);
  if (classified.status >= 500) request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: classified.code, statusCode: classified.status, reason: classified.message }, 'request rejected');
  if (error instanceof ChallengeError) void reply.header('www-authenticate', error.challenge);
  const body: OciErrors = {
    errors: [
      {
        code: ociCode(classified.code),
        message: classified.code === 'INTERNAL' ? 'internal error' : classified.message,
        ...(classified.detail !== undefined ? { detail: classified.detail } : {}),
      },
    ],
  };
  return reply.status(classified.status).header('content-type', 'application/json; charset=utf-8').send(body);
}

export function manifestUnknown(repository: string, reference: string): PortcullisError {
  return new PortcullisError('REGISTRY_MANIFEST_UNKNOWN', `manifest ${reference} is not known in repository ${repository}`);
}
