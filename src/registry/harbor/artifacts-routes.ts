import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PortcullisError } from '../../errors.js';
import type { Principal } from '../access.js';
import { actorName, requireAccess } from '../authorize.js';
import { PAGE_QUERY, apiCaller, pageOf, setPagination } from '../auth/api-support.js';
import type { ManifestRow, RepositoryRow } from '../metadata/store.js';
import { checkDigest, looksLikeDigest } from '../oci/digest.js';
import { checkTag, type RepositoryName } from '../oci/names.js';
import type { ScanPort } from '../scan-port.js';
import { acceptedReportTypes, artifactBody, artifactKind, filterOverview, tagBody } from './artifacts-model.js';
import { REPOSITORY_PARAMS, repositoryFromParams, type HarborRoutesDeps } from './repositories-routes.js';

export interface HarborArtifactRoutesDeps extends HarborRoutesDeps {
  scans?: ScanPort;
}

const REFERENCE_PARAMS = {
  type: 'object',
  required: ['project_name', 'repository_name', 'reference'],
  properties: { ...REPOSITORY_PARAMS.properties, reference: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

const WITH_FLAGS = {
  with_tag: { type: 'boolean', default: true },
  with_scan_overview: { type: 'boolean', default: false },
  with_label: { type: 'boolean', default: false },
  with_accessory: { type: 'boolean', default: false },
  with_signature: { type: 'boolean', default: false },
  with_immutable_status: { type: 'boolean', default: false },
  with_sbom_overview: { type: 'boolean', default: false },
} as const;

interface WithFlags {
  with_tag?: boolean;
  with_scan_overview?: boolean;
}

interface Located {
  name: RepositoryName;
  principal: Principal;
  repository: RepositoryRow;
}

/**
 * Harbor's artifacts API over the registry's manifests: list, get by tag or digest (with tags and
 * the scan overview from the ScanPort), delete, tags add/delete, the vulnerabilities addition and
 * scan requests.
 */
export async function harborArtifactRoutes(app: FastifyInstance, deps: HarborArtifactRoutesDeps): Promise<void> {
  async function locate(request: FastifyRequest, actions: ('pull' | 'push' | 'delete')[]): Promise<Located> {
    const name = repositoryFromParams(request.params);
    const principal = await apiCaller(deps.access, request);
    await requireAccess(deps.access, principal, name.full, actions);
    const repository = await deps.metadata.repository(name.full);
    if (!repository) throw new PortcullisError('NOT_FOUND', `repository ${name.full} not found`);
    return { name, principal, repository };
  }

  async function artifact(located: Located, reference: string): Promise<ManifestRow> {
    if (looksLikeDigest(reference)) checkDigest(reference, 'artifact reference');
    else checkTag(reference);
    try {
      return await deps.artifacts.resolve(located.name.full, reference);
    } catch (error) {
      if (error instanceof PortcullisError && error.code === 'REGISTRY_MANIFEST_UNKNOWN') {
        throw new PortcullisError('NOT_FOUND', `artifact ${located.name.full}:${reference} not found`, { cause: error });
      }
      throw error;
    }
  }

  /** The Artifact of `row`; `accepted` is acceptedReportTypes of the request, read once per request. */
  async function body(located: Located, row: ManifestRow, flags: WithFlags, accepted: ReturnType<typeof acceptedReportTypes>) {
    const allTags = flags.with_tag === false ? undefined : (await deps.metadata.tags(located.repository.id)).filter((tag) => tag.manifestId === row.id);
    const children = await deps.metadata.references(row.id, ['manifest']);
    const childIds = new Map<string, number>();
    for (const child of children) {
      const childRow = await deps.metadata.manifestByDigest(located.name.full, child.digest);
      if (childRow) childIds.set(child.digest, childRow.id);
    }
    const overview =
      flags.with_scan_overview && deps.scans ? filterOverview(await deps.scans.overview(row.digest), accepted) : undefined;
    return artifactBody({
      row,
      repository: located.repository,
      projectId: await deps.projectId?.(located.name.project),
      tags: allTags,
      children,
      childIds,
      scanOverview: overview,
    });
  }

  app.get(
    '/projects/:project_name/repositories/:repository_name/artifacts',
    { schema: { params: REPOSITORY_PARAMS, querystring: { type: 'object', properties: { ...PAGE_QUERY, ...WITH_FLAGS, q: { type: 'string' } } } } },
    async (request, reply) => {
      const located = await locate(request, ['pull']);
      const query = request.query as WithFlags & { page?: number; page_size?: number };
      const page = pageOf(query);
      // Like Harbor, children of an index are shown under their index, not as artifacts of their own.
      const exclude = await deps.metadata.childManifestDigests(located.repository.id);
      const result = await deps.metadata.manifests(located.repository.id, { offset: page.offset, limit: page.pageSize, exclude });
      setPagination(request, reply, page, result.total);
      const bodies = [];
      const accepted = acceptedReportTypes(request.headers['x-accept-vulnerabilities']);
      for (const row of result.rows) bodies.push(await body(located, row, query, accepted));
      return bodies;
    },
  );

  app.get(
    '/projects/:project_name/repositories/:repository_name/artifacts/:reference',
    { schema: { params: REFERENCE_PARAMS, querystring: { type: 'object', properties: { ...PAGE_QUERY, ...WITH_FLAGS } } } },
    async (request) => {
      const located = await locate(request, ['pull']);
      const { reference } = request.params as { reference: string };
      return body(located, await artifact(located, reference), request.query as WithFlags, acceptedReportTypes(request.headers['x-accept-vulnerabilities']));
    },
  );

  app.delete('/projects/:project_name/repositories/:repository_name/artifacts/:reference', { schema: { params: REFERENCE_PARAMS } }, async (request, reply) => {
    const located = await locate(request, ['delete']);
    const { reference } = request.params as { reference: string };
    const row = await artifact(located, reference);
    await deps.artifacts.deleteManifest(located.name.full, row.digest, actorName(located.principal));
    return reply.status(200).send();
  });

  app.get('/projects/:project_name/repositories/:repository_name/artifacts/:reference/tags', { schema: { params: REFERENCE_PARAMS } }, async (request) => {
    const located = await locate(request, ['pull']);
    const { reference } = request.params as { reference: string };
    const row = await artifact(located, reference);
    return (await deps.metadata.tags(located.repository.id)).filter((tag) => tag.manifestId === row.id).map((tag) => tagBody(tag, located.repository.id, row.pulledAt));
  });

  app.post(
    '/projects/:project_name/repositories/:repository_name/artifacts/:reference/tags',
    {
      schema: {
        params: REFERENCE_PARAMS,
        body: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 128 } } },
      },
    },
    async (request, reply) => {
      const located = await locate(request, ['push']);
      const { reference } = request.params as { reference: string };
      const { name: tag } = request.body as { name: string };
      checkTag(tag);
      const row = await artifact(located, reference);
      const existing = await deps.metadata.manifestByTag(located.name.full, tag);
      if (existing) throw new PortcullisError('CONFLICT', `tag ${tag} already exists in ${located.name.full} (on ${existing.digest})`);
      await deps.artifacts.addTag(located.name.full, tag, row, actorName(located.principal));
      return reply.status(201).header('location', `${request.url.split('?')[0]}/${tag}`).send();
    },
  );

  app.delete(
    '/projects/:project_name/repositories/:repository_name/artifacts/:reference/tags/:tag_name',
    { schema: { params: { ...REFERENCE_PARAMS, required: [...REFERENCE_PARAMS.required, 'tag_name'], properties: { ...REFERENCE_PARAMS.properties, tag_name: { type: 'string', minLength: 1 } } } } },
    async (request, reply) => {
      const located = await locate(request, ['delete']);
      const { reference, tag_name: tag } = request.params as { reference: string; tag_name: string };
      const row = await artifact(located, reference);
      const tagged = await deps.metadata.manifestByTag(located.name.full, tag);
      if (!tagged || tagged.id !== row.id) throw new PortcullisError('NOT_FOUND', `tag ${tag} not found on artifact ${located.name.full}@${row.digest}`);
      await deps.artifacts.deleteTag(located.name.full, tag, actorName(located.principal));
      return reply.status(200).send();
    },
  );

  app.get('/projects/:project_name/repositories/:repository_name/artifacts/:reference/additions/vulnerabilities', { schema: { params: REFERENCE_PARAMS } }, async (request, reply) => {
    const located = await locate(request, ['pull']);
    const { reference } = request.params as { reference: string };
    const row = await artifact(located, reference);
    const [type] = acceptedReportTypes(request.headers['x-accept-vulnerabilities']);
    const report = deps.scans ? await deps.scans.report(row.digest) : undefined;
    // Harbor answers a map from report type to report, empty when nothing was scanned. The one
    // report stands for every type produced, so it is filed under the first type accepted.
    return reply.header('content-type', 'application/json; charset=utf-8').send(report ? { [type]: report } : {});
  });

  app.post('/projects/:project_name/repositories/:repository_name/artifacts/:reference/scan', { schema: { params: REFERENCE_PARAMS } }, async (request, reply) => {
    // Starting a scan is `scan:create`, which Harbor's role matrix (src/registry/auth/roles.ts)
    // gives to maintainers and above: the principals that hold `delete`.
    const located = await locate(request, ['delete']);
    const { reference } = request.params as { reference: string };
    const row = await artifact(located, reference);
    if (!deps.scans) throw new PortcullisError('REGISTRY_SCANNER_UNAVAILABLE', 'no scanner is configured for this registry; scan requests cannot be accepted');
    if (artifactKind(row) !== 'IMAGE') throw new PortcullisError('REQUEST_MALFORMED', `artifact ${located.name.full}@${row.digest} is not an image (${row.configMediaType ?? row.mediaType}); it cannot be scanned`, { status: 422 });
    await deps.scans.requestScan({ repository: located.name.full, digest: row.digest, mediaType: row.mediaType });
    return reply.status(202).send();
  });
}
