import { PortcullisError } from '../../errors.js';
import { actorName } from '../authorize.js';
import { allow, bodyStream, contentLength, type OciDeps, type OciRequest } from './context.js';
import { checkDigest, looksLikeDigest } from './digest.js';
import { MAX_MANIFEST_BYTES, acceptable } from './manifest.js';
import { checkTag } from './names.js';

function tooLarge(size: number | string): PortcullisError {
  return new PortcullisError('REGISTRY_MANIFEST_TOO_LARGE', `manifest of ${size} bytes exceeds the limit of ${MAX_MANIFEST_BYTES} bytes`);
}

/** Reads a manifest body, refusing (413) as soon as it passes the limit; never holds more than the limit. */
async function readManifestBody(oci: OciRequest): Promise<Buffer> {
  const declared = contentLength(oci.request);
  if (declared !== undefined && declared > MAX_MANIFEST_BYTES) {
    oci.request.raw.resume();
    throw tooLarge(declared);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of bodyStream(oci.request)) {
    total += chunk.length;
    if (total > MAX_MANIFEST_BYTES) {
      oci.request.raw.resume();
      throw tooLarge(`more than ${MAX_MANIFEST_BYTES}`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/** PUT /v2/<name>/manifests/<reference> */
export async function putManifest(deps: OciDeps, oci: OciRequest, reference: string): Promise<void> {
  const principal = await allow(deps, oci, ['push']);
  if (looksLikeDigest(reference)) checkDigest(reference, 'manifest reference');
  else checkTag(reference);
  const body = await readManifestBody(oci);
  const pushed = await deps.artifacts.push(oci.name, reference, body, oci.request.headers['content-type'], actorName(principal));
  const reply = oci.reply.status(201).header('location', `/v2/${oci.name.full}/manifests/${pushed.digest}`).header('docker-content-digest', pushed.digest).header('content-length', 0);
  if (pushed.parsed.subject) void reply.header('oci-subject', pushed.parsed.subject);
  await reply.send();
}

/** GET and HEAD /v2/<name>/manifests/<reference>, negotiated by Accept. */
export async function getManifest(deps: OciDeps, oci: OciRequest, reference: string, head: boolean): Promise<void> {
  await allow(deps, oci, ['pull']);
  if (looksLikeDigest(reference)) checkDigest(reference, 'manifest reference');
  else checkTag(reference);
  const row = await deps.artifacts.resolve(oci.name.full, reference);
  if (!acceptable(row.mediaType, oci.request.headers.accept)) {
    throw new PortcullisError('REGISTRY_MANIFEST_UNKNOWN', `manifest ${reference} is ${row.mediaType}, which the Accept header does not list`, {
      detail: { mediaType: row.mediaType },
    });
  }
  void oci.reply
    .status(200)
    .header('content-type', row.mediaType)
    .header('docker-content-digest', row.digest)
    .header('etag', `"${row.digest}"`)
    .header('content-length', row.size);
  if (head) {
    await oci.reply.send();
    return;
  }
  const body = await deps.artifacts.content(row.digest);
  deps.artifacts.recordPull(row);
  await oci.reply.send(body);
}

/** DELETE /v2/<name>/manifests/<reference>: by digest deletes the manifest, by tag only the tag. */
export async function deleteManifest(deps: OciDeps, oci: OciRequest, reference: string): Promise<void> {
  const principal = await allow(deps, oci, ['delete']);
  if (looksLikeDigest(reference)) {
    await deps.artifacts.deleteManifest(oci.name.full, checkDigest(reference, 'manifest reference'), actorName(principal));
  } else {
    await deps.artifacts.deleteTag(oci.name.full, checkTag(reference), actorName(principal));
  }
  await oci.reply.status(202).header('content-length', 0).send();
}
