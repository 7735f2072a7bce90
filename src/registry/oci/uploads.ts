import { PortcullisError } from '../../errors.js';
import { authenticate, requireAccess } from '../authorize.js';
import type { Principal } from '../access.js';
import { allow, bodyStream, contentLength, hasBody, uploadRange, type OciDeps, type OciRequest } from './context.js';
import { checkDigest } from './digest.js';
import { parseRepositoryName } from './names.js';
import type { UploadStatus } from '../storage/blob-store.js';

/** How many repositories holding a blob are tried for an automatic mount. */
const AUTO_MOUNT_CANDIDATES = 10;

function uploadLocation(repository: string, id: string): string {
  return `/v2/${repository}/blobs/uploads/${id}`;
}

async function sendUploadStatus(oci: OciRequest, upload: UploadStatus, status: number): Promise<void> {
  await oci.reply
    .status(status)
    .header('location', uploadLocation(upload.repository, upload.id))
    .header('range', uploadRange(upload.size))
    .header('docker-upload-uuid', upload.id)
    .header('oci-chunk-min-length', 0)
    .header('content-length', 0)
    .send();
}

async function sendCreated(oci: OciRequest, digest: string): Promise<void> {
  await oci.reply.status(201).header('location', `/v2/${oci.name.full}/blobs/${digest}`).header('docker-content-digest', digest).header('content-length', 0).send();
}

/** Parses `Content-Range: <start>-<end>` (the spec's form, also accepting a `bytes ` prefix). */
export function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const match = /^(?:bytes )?(\d+)-(\d+)(?:\/\d+|\/\*)?$/.exec(header.trim());
  if (!match) throw new PortcullisError('REGISTRY_RANGE_INVALID', `Content-Range "${header}": expected <start>-<end>`);
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start) throw new PortcullisError('REGISTRY_RANGE_INVALID', `Content-Range "${header}": end before start`);
  return { start, end };
}

/**
 * Tries a cross-repository mount of `digest` into the request's repository: from `from` when given
 * (and readable by the caller), otherwise from any repository holding the blob that the caller may
 * pull from. Returns whether the blob was mounted.
 */
async function tryMount(deps: OciDeps, oci: OciRequest, principal: Principal, digest: string, from: string | undefined): Promise<boolean> {
  if ((await deps.blobs.stat(oci.name.full, digest)) !== undefined) return true;
  const candidates = from !== undefined ? [parseRepositoryName(from).full] : await deps.metadata.repositoriesWithBlob(digest, AUTO_MOUNT_CANDIDATES);
  for (const candidate of candidates) {
    const decision = await deps.access.authorize(principal, candidate, ['pull']);
    if (!decision.allowed) continue;
    const size = await deps.blobs.stat(candidate, digest);
    if (size === undefined) continue;
    await deps.blobs.mount(oci.name.full, digest, size);
    return true;
  }
  return false;
}

/**
 * POST /v2/<name>/blobs/uploads/: a mount (`mount`, optional `from`), a monolithic upload in one
 * request (`digest` with the body), or the start of a session (202 with its Location).
 */
export async function startUpload(deps: OciDeps, oci: OciRequest): Promise<void> {
  const principal = await authenticate(deps.access, oci.request);
  await requireAccess(deps.access, principal, oci.name.full, ['push']);
  const { mount, from, digest } = oci.query;
  if (mount !== undefined) {
    const mountDigest = checkDigest(mount, 'mount');
    if (await tryMount(deps, oci, principal, mountDigest, from)) {
      await sendCreated(oci, mountDigest);
      return;
    }
    // Not mountable: the spec says to fall back to a new upload session.
  }
  const upload = await deps.blobs.startUpload(oci.name.full);
  if (digest !== undefined) {
    const expected = checkDigest(digest, 'digest');
    const length = contentLength(oci.request);
    const received = await deps.blobs.append(upload, bodyStream(oci.request), length === undefined ? {} : { length });
    await deps.blobs.commit(received, expected);
    await sendCreated(oci, expected);
    return;
  }
  if (hasBody(oci.request)) {
    const received = await deps.blobs.append(upload, bodyStream(oci.request));
    await sendUploadStatus(oci, received, 202);
    return;
  }
  await sendUploadStatus(oci, upload, 202);
}

/** PATCH /v2/<name>/blobs/uploads/<id>: one chunk; out of order → 416 with the current Range. */
export async function patchUpload(deps: OciDeps, oci: OciRequest, id: string): Promise<void> {
  await allow(deps, oci, ['push']);
  const upload = await deps.blobs.upload(oci.name.full, id);
  const range = parseContentRange(oci.request.headers['content-range']);
  const length = contentLength(oci.request);
  if (range && length !== undefined && range.end - range.start + 1 !== length) {
    throw new PortcullisError('REGISTRY_RANGE_INVALID', `Content-Range ${range.start}-${range.end} covers ${range.end - range.start + 1} bytes, Content-Length is ${length}`);
  }
  try {
    const received = await deps.blobs.append(upload, bodyStream(oci.request), {
      ...(range ? { start: range.start } : {}),
      ...(length !== undefined ? { length } : {}),
    });
    await sendUploadStatus(oci, received, 202);
  } catch (error) {
    // A 416 tells the client where to resume.
    if (error instanceof PortcullisError && error.code === 'REGISTRY_RANGE_INVALID') {
      void oci.reply.header('location', uploadLocation(upload.repository, upload.id)).header('range', uploadRange(upload.size)).header('docker-upload-uuid', upload.id);
    }
    throw error;
  }
}

/** PUT /v2/<name>/blobs/uploads/<id>?digest=: the optional last chunk, then verify and commit. */
export async function finishUpload(deps: OciDeps, oci: OciRequest, id: string): Promise<void> {
  await allow(deps, oci, ['push']);
  if (oci.query.digest === undefined) throw new PortcullisError('REGISTRY_DIGEST_INVALID', 'PUT of an upload: the digest query parameter is required');
  const digest = checkDigest(oci.query.digest, 'digest');
  let upload = await deps.blobs.upload(oci.name.full, id);
  if (hasBody(oci.request)) {
    const range = parseContentRange(oci.request.headers['content-range']);
    const length = contentLength(oci.request);
    upload = await deps.blobs.append(upload, bodyStream(oci.request), {
      ...(range ? { start: range.start } : {}),
      ...(length !== undefined ? { length } : {}),
    });
  }
  await deps.blobs.commit(upload, digest);
  await sendCreated(oci, digest);
}

/** GET /v2/<name>/blobs/uploads/<id>: where the upload stands (204 with Range). */
export async function uploadStatus(deps: OciDeps, oci: OciRequest, id: string): Promise<void> {
  await allow(deps, oci, ['push']);
  await sendUploadStatus(oci, await deps.blobs.upload(oci.name.full, id), 204);
}

/** DELETE /v2/<name>/blobs/uploads/<id>: cancels the upload. */
export async function cancelUpload(deps: OciDeps, oci: OciRequest, id: string): Promise<void> {
  await allow(deps, oci, ['push']);
  await deps.blobs.upload(oci.name.full, id);
  await deps.blobs.cancel(id);
  await oci.reply.status(204).send();
}
