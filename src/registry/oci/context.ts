import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AccessController, Principal, RepositoryAction } from '../access.js';
import { authenticate, requireAccess } from '../authorize.js';
import type { RegistryMetadata } from '../metadata/store.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { ArtifactService } from './artifact-service.js';
import type { RepositoryName } from './names.js';

/** What every OCI handler is given. */
export interface OciDeps {
  access: AccessController;
  metadata: RegistryMetadata;
  blobs: BlobStore;
  artifacts: ArtifactService;
}

/** One parsed OCI request: the repository it is about and the rest of its path. */
export interface OciRequest {
  request: FastifyRequest;
  reply: FastifyReply;
  name: RepositoryName;
  query: Record<string, string | undefined>;
}

/** Authenticates the caller and checks `actions` on the request's repository; returns the principal. */
export async function allow(deps: OciDeps, oci: OciRequest, actions: readonly RepositoryAction[]): Promise<Principal> {
  const principal = await authenticate(deps.access, oci.request);
  await requireAccess(deps.access, principal, oci.name.full, actions);
  return principal;
}

/** The request body as a stream of Buffers (the OCI content-type parser leaves it unread). */
export function bodyStream(request: FastifyRequest): AsyncIterable<Buffer> {
  return request.raw as AsyncIterable<Buffer>;
}

/** Content-Length as a number, undefined when absent; throws on garbage. */
export function contentLength(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length'];
  if (header === undefined) return undefined;
  const value = Number(header);
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** Whether the request carries a body (a length above zero or chunked transfer). */
export function hasBody(request: FastifyRequest): boolean {
  const length = contentLength(request);
  return (length !== undefined && length > 0) || request.headers['transfer-encoding'] !== undefined;
}

/** `0-<last byte>` as the spec's upload Range header (distribution writes `0-0` for an empty upload). */
export function uploadRange(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}
