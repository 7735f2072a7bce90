import { PortcullisError } from '../../errors.js';
import { authenticate, ChallengeError } from '../authorize.js';
import { allow, type OciDeps, type OciRequest } from './context.js';
import { checkDigest } from './digest.js';
import { MEDIA_TYPES } from './manifest.js';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Page size when the client gives none, and the most a client may ask for. */
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

function pageSize(raw: string | undefined, where: string): number {
  if (raw === undefined || raw === '') return DEFAULT_PAGE;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new PortcullisError('REGISTRY_PAGINATION_NUMBER_INVALID', `${where}: n must be a non-negative integer, got "${raw}"`);
  return Math.min(n, MAX_PAGE);
}

function nextLink(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}

/** GET /v2/<name>/tags/list?n=&last= */
export async function listTags(deps: OciDeps, oci: OciRequest): Promise<void> {
  await allow(deps, oci, ['pull']);
  const n = pageSize(oci.query.n, 'tags list');
  const last = oci.query.last;
  const repository = await deps.metadata.repository(oci.name.full);
  if (!repository) throw new PortcullisError('REGISTRY_NAME_UNKNOWN', `repository ${oci.name.full} is not known`);
  const page = n === 0 ? { names: [], more: false } : await deps.metadata.tagNames(oci.name.full, n, last);
  const lastName = page.names.at(-1);
  if (page.more && lastName !== undefined) void oci.reply.header('link', nextLink(`/v2/${oci.name.full}/tags/list`, n, lastName));
  await oci.reply.status(200).send({ name: oci.name.full, tags: page.names });
}

/** GET /v2/<name>/referrers/<digest>?artifactType= */
export async function listReferrers(deps: OciDeps, oci: OciRequest, reference: string): Promise<void> {
  await allow(deps, oci, ['pull']);
  const digest = checkDigest(reference, 'referrers subject');
  const artifactType = oci.query.artifactType;
  const rows = await deps.metadata.referrers(oci.name.full, digest, artifactType);
  if (artifactType !== undefined) void oci.reply.header('oci-filters-applied', 'artifactType');
  await oci.reply
    .status(200)
    .header('content-type', MEDIA_TYPES.ociIndex)
    .send(
      // A Buffer, so that fastify does not append a charset to the index media type.
      Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociIndex,
        manifests: rows.map((row) => ({
          mediaType: row.mediaType,
          digest: row.digest,
          size: row.size,
          ...(row.artifactType ? { artifactType: row.artifactType } : {}),
          ...(row.annotations ? { annotations: row.annotations } : {}),
        })),
      })),
    );
}

/** GET /v2/_catalog?n=&last= (system administrators only, like Harbor). */
export async function catalog(deps: OciDeps, request: FastifyRequest, reply: FastifyReply, query: Record<string, string | undefined>): Promise<void> {
  const principal = await authenticate(deps.access, request);
  if (!deps.access.canListCatalog(principal)) {
    if (principal.kind === 'anonymous') throw new ChallengeError('authentication required to list the catalog', deps.access.challenge('registry:catalog:*'));
    throw new PortcullisError('FORBIDDEN', 'only system administrators may list the catalog');
  }
  const n = pageSize(query.n, 'catalog');
  const page = n === 0 ? { names: [], more: false } : await deps.metadata.catalog(n, query.last);
  const lastName = page.names.at(-1);
  if (page.more && lastName !== undefined) void reply.header('link', nextLink('/v2/_catalog', n, lastName));
  await reply.status(200).send({ repositories: page.names });
}
