import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PortcullisError } from '../../errors.js';
import type { AccessController } from '../access.js';
import { actorName, requireAccess } from '../authorize.js';
import { PAGE_QUERY, apiCaller, pageOf, setPagination } from '../auth/api-support.js';
import type { RegistryMetadata } from '../metadata/store.js';
import type { ArtifactService } from '../oci/artifact-service.js';
import { parseRepositoryName, type RepositoryName } from '../oci/names.js';
import { repositoryBody } from './artifacts-model.js';

export interface HarborRoutesDeps {
  access: AccessController;
  metadata: RegistryMetadata;
  artifacts: ArtifactService;
  /** Harbor's numeric project id for a project name, when the identity subsystem can tell. */
  projectId?: (project: string) => Promise<number | undefined>;
}

const PROJECT_NAME = { type: 'string', minLength: 1, maxLength: 255 } as const;
export const REPOSITORY_PARAMS = {
  type: 'object',
  required: ['project_name', 'repository_name'],
  properties: { project_name: PROJECT_NAME, repository_name: { type: 'string', minLength: 1, maxLength: 255 } },
} as const;

/**
 * `project_name` + `repository_name` from the path as a checked full name. Clients encode `/` in the
 * repository name as `%2F`, and Harbor's own UI encodes it twice (`%252F`): both are accepted.
 */
export function repositoryFromParams(params: unknown): RepositoryName {
  if (params === null || typeof params !== 'object') throw new PortcullisError('REQUEST_MALFORMED', 'path parameters missing');
  const record = params as Record<string, unknown>;
  const project = record.project_name;
  const repository = record.repository_name;
  if (typeof project !== 'string' || typeof repository !== 'string') throw new PortcullisError('REQUEST_MALFORMED', 'project_name and repository_name are required');
  // parseRepositoryName decodes once more, which turns a twice-encoded `%252F` (now `%2F`) into `/`.
  return parseRepositoryName(`${project}/${repository}`);
}


async function found(deps: HarborRoutesDeps, name: string) {
  const repository = await deps.metadata.repository(name);
  if (!repository) throw new PortcullisError('NOT_FOUND', `repository ${name} not found`);
  return repository;
}

/** Harbor's repositories API: list per project, get, delete. */
export async function harborRepositoryRoutes(app: FastifyInstance, deps: HarborRoutesDeps): Promise<void> {
  app.get(
    '/projects/:project_name/repositories',
    {
      schema: {
        params: { type: 'object', required: ['project_name'], properties: { project_name: PROJECT_NAME } },
        querystring: { type: 'object', properties: { ...PAGE_QUERY, q: { type: 'string' } } },
      },
    },
    async (request, reply) => {
      const { project_name: project } = request.params as { project_name: string };
      const query = request.query as { page?: number; page_size?: number; q?: string };
      const principal = await apiCaller(deps.access, request);
      // Project-level read: whoever may pull from the project may list its repositories.
      await requireAccess(deps.access, principal, `${project}/`, ['pull']);
      const page = pageOf(query);
      const nameContains = /^name=~?(.+)$/.exec(query.q ?? '')?.[1];
      const result = await deps.metadata.projectRepositories(project, { offset: page.offset, limit: page.pageSize, ...(nameContains ? { nameContains } : {}) });
      const projectId = await deps.projectId?.(project);
      setPagination(request, reply, page, result.total);
      return result.rows.map((row) => repositoryBody(row, row.artifactCount, projectId));
    },
  );

  app.get('/projects/:project_name/repositories/:repository_name', { schema: { params: REPOSITORY_PARAMS } }, async (request) => {
    const name = repositoryFromParams(request.params);
    const principal = await apiCaller(deps.access, request);
    await requireAccess(deps.access, principal, name.full, ['pull']);
    const repository = await found(deps, name.full);
    return repositoryBody(repository, await deps.metadata.artifactCount(repository.id), await deps.projectId?.(name.project));
  });

  app.delete('/projects/:project_name/repositories/:repository_name', { schema: { params: REPOSITORY_PARAMS } }, async (request, reply) => {
    const name = repositoryFromParams(request.params);
    const principal = await apiCaller(deps.access, request);
    await requireAccess(deps.access, principal, name.full, ['delete']);
    await found(deps, name.full);
    await deps.artifacts.deleteRepository(name.full, actorName(principal));
    return reply.status(200).send();
  });
}
