/**
 * Where the registry keeps things in its storage driver. Only content lives here; everything that
 * names content (repositories, tags, manifests, links, uploads) is metadata in the database.
 *
 * ```
 * /blobs/sha256/<first two hex>/<hex>/data      committed blob or manifest bytes, content-addressed
 * /uploads/<upload id>/data                      bytes of an upload session in progress
 * ```
 *
 * A blob file appears only by rename of a complete, verified upload, so a blob path either does
 * not exist or holds exactly the bytes of its digest.
 */
export function blobDataPath(digest: string): string {
  const [algorithm, hex] = splitDigest(digest);
  return `/blobs/${algorithm}/${hex.slice(0, 2)}/${hex}/data`;
}

export function uploadDataPath(uploadId: string): string {
  return `/uploads/${uploadId}/data`;
}

export function uploadDirPath(uploadId: string): string {
  return `/uploads/${uploadId}`;
}

export const UPLOADS_ROOT = '/uploads';

function splitDigest(digest: string): [string, string] {
  const colon = digest.indexOf(':');
  return [digest.slice(0, colon), digest.slice(colon + 1)];
}
