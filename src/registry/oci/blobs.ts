import { PortcullisError } from '../../errors.js';
import { allow, type OciDeps, type OciRequest } from './context.js';
import { checkDigest } from './digest.js';

/** Parses `Range: bytes=a-b` (one range) against a blob of `size`; undefined when absent. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) {
    throw new PortcullisError('REGISTRY_RANGE_INVALID', `Range "${header}": expected bytes=<start>-<end> (one range)`);
  }
  let start: number;
  let end: number;
  if (match[1] === '') {
    // Suffix range: the last N bytes.
    const suffix = Number(match[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) {
    throw new PortcullisError('REGISTRY_RANGE_INVALID', `Range "${header}": not satisfiable for a blob of ${size} bytes`, { detail: { size } });
  }
  return { start, end };
}

/** GET and HEAD /v2/<name>/blobs/<digest>, with single Range support. */
export async function getBlob(deps: OciDeps, oci: OciRequest, reference: string, head: boolean): Promise<void> {
  await allow(deps, oci, ['pull']);
  const digest = checkDigest(reference, 'blob digest');
  const size = await deps.blobs.stat(oci.name.full, digest);
  if (size === undefined) throw new PortcullisError('REGISTRY_BLOB_UNKNOWN', `blob ${digest} is not known in repository ${oci.name.full}`);
  const { reply } = oci;
  void reply.header('docker-content-digest', digest).header('accept-ranges', 'bytes').header('etag', `"${digest}"`).header('content-type', 'application/octet-stream');
  let range: { start: number; end: number } | undefined;
  try {
    range = parseRange(oci.request.headers.range, size);
  } catch (error) {
    void reply.header('content-range', `bytes */${size}`);
    throw error;
  }
  if (range) {
    void reply.status(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`).header('content-length', range.end - range.start + 1);
  } else {
    void reply.status(200).header('content-length', size);
  }
  if (head || size === 0) {
    await reply.send();
    return;
  }
  await reply.send(await deps.blobs.open(digest, range));
}

/** DELETE /v2/<name>/blobs/<digest>: removes the blob's link to the repository. */
export async function deleteBlob(deps: OciDeps, oci: OciRequest, reference: string): Promise<void> {
  await allow(deps, oci, ['delete']);
  const digest = checkDigest(reference, 'blob digest');
  if (!(await deps.blobs.unlink(oci.name.full, digest))) {
    throw new PortcullisError('REGISTRY_BLOB_UNKNOWN', `blob ${digest} is not known in repository ${oci.name.full}`);
  }
  await oci.reply.status(202).header('content-length', 0).send();
}
