import type { FastifyPluginAsync } from 'fastify';
import type { Principal } from '../access.js';
import { PortcullisError } from '../../errors.js';
import {
  PAGE_QUERY,
  apiPrincipal,
  created,
  pageOf,
  projectAccess,
  refuse,
  setPagination,
  type IdentityApiContext,
} from '../auth/api-support.js';
import type { Project } from '../auth/projects.js';
import { ROLES } from '../auth/roles.js';
import type { MemberStore } from '../auth/members.js';
import type { UserStore } from '../auth/users.js';
import { projectReqSchema, type ProjectReq } from './projects-schema.js';
import { F } from '../../log/fields.js';

/** How many repositories a project holds; the registry core answers (0 when not wired). */
export interface RepositoryCounter {
  count(project: string): Promise<number>;
}

export interface ProjectRoutesDeps extends IdentityApiContext {
  members: MemberStore;
  users: UserStore;
  repositories?: RepositoryCounter;
}

/** Harbor's `Project` model for `project`, as seen by `principal`. */
async function projectBody(deps: ProjectRoutesDeps, principal: Principal, project: Project) {
  const role = principal.kind === 'user' && principal.sysadmin ? ROLES.projectAdmin : await deps.controller.roleIn(principal, project).then((name) => (name ? ROLES[name] : 0));
  const owner = await deps.users.findById(project.ownerId);
  return {
    project_id: project.id,
    owner_id: project.ownerId,
    name: project.name,
    creation_time: project.createdAt,
    update_time: project.updatedAt,
    deleted: false,
    owner_name: owner?.username ?? '',
    togglable: true,
    current_user_role_id: role,
    current_user_role_ids: role === 0 ? [] : [role],
    repo_count: deps.repositories ? await deps.repositories.count(project.name) : 0,
    metadata: project.metadata,
    cve_allowlist: {
      id: project.id,
      project_id: project.id,
      items: project.cveAllowlist.items,
      ...(project.cveAllowlist.expires_at === null || project.cveAllowlist.expires_at === undefined ? {} : { expires_at: project.cveAllowlist.expires_at }),
      creation_time: project.createdAt,
      update_time: project.updatedAt,
    },
  };
}

/** Turns a ProjectReq into stored metadata; refuses what Portcullis does not implement. */
function metadataOf(body: ProjectReq): Record<string, string> {
  if (body.registry_id !== undefined && body.registry_id !== null && body.registry_id !== 0) {
    throw new PortcullisError('REQUEST_MALFORMED', `registry_id: proxy-cache projects are not supported, got ${body.registry_id}`);
  }
  if (body.storage_limit !== undefined && body.storage_limit !== null && body.storage_limit !== -1) {
    throw new PortcullisError('REQUEST_MALFORMED', `storage_limit: quotas are not supported, expected -1 or absent, got ${body.storage_limit}`);
  }
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(body.metadata ?? {})) {
    if (typeof value === 'string') metadata[key] = value;
  }
  if (body.public !== undefined && body.public !== null) metadata.public = String(body.public);
  return metadata;
}

const projectParams = {
  type: 'object',
  required: ['project_name_or_id'],
  properties: { project_name_or_id: { type: 'string', minLength: 1, maxLength: 255 } },
} as const;

/** `/projects` and `/projects/{project_name_or_id}` (create, list, head, get, update, delete). */
export function projectRoutes(deps: ProjectRoutesDeps): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Querystring: { page?: number; page_size?: number; name?: string; public?: boolean; owner?: string } }>(
      '/projects',
      {
        // HEAD /projects is Harbor's "does this name exist" check, declared below.
        exposeHeadRoute: false,
        schema: {
          querystring: {
            type: 'object',
            properties: { ...PAGE_QUERY, name: { type: 'string' }, public: { type: 'boolean' }, owner: { type: 'string' }, q: { type: 'string' }, sort: { type: 'string' }, with_detail: { type: 'boolean' } },
          },
        },
      },
      async (request, reply) => {
        const principal = await apiPrincipal(deps, request);
        const page = pageOf(request.query);
        let memberOf: number[] | undefined;
        if (principal.kind === 'anonymous') memberOf = [];
        else if (principal.kind === 'robot') memberOf = (await deps.projects.findByName(principal.project).then((p) => (p ? [p.id] : [])));
        else if (!principal.sysadmin) memberOf = [...(await deps.members.projectsOf(principal.id)).keys()];
        const { items, total } = await deps.projects.list({
          memberOf,
          includePublic: true,
          ...(request.query.name === undefined ? {} : { name: request.query.name }),
          ...(request.query.public === undefined ? {} : { public: request.query.public }),
          offset: page.offset,
          limit: page.pageSize,
        });
        setPagination(request, reply, page, total);
        return Promise.all(items.map((project) => projectBody(deps, principal, project)));
      },
    );

    app.head<{ Querystring: { project_name: string } }>(
      '/projects',
      { schema: { querystring: { type: 'object', required: ['project_name'], properties: { project_name: { type: 'string', minLength: 1 } } } } },
      async (request, reply) => {
        const exists = await deps.projects.findByName(request.query.project_name);
        return reply.status(exists ? 200 : 404).send();
      },
    );

    app.post<{ Body: ProjectReq }>('/projects', { schema: { body: projectReqSchema } }, async (request, reply) => {
      const principal = await apiPrincipal(deps, request);
      if (principal.kind !== 'user') throw refuse(principal, 'creating a project');
      const name = request.body.project_name;
      if (name === undefined || name === null) throw new PortcullisError('REQUEST_MALFORMED', 'body/project_name: required');
      const project = await deps.projects.create({
        name,
        ownerId: principal.id,
        metadata: metadataOf(request.body),
        cveAllowlist: { items: request.body.cve_allowlist?.items ?? [], expires_at: request.body.cve_allowlist?.expires_at ?? null },
      });
      // The creator administers the project, as in Harbor.
      await deps.members.add(project.id, principal.id, ROLES.projectAdmin);
      request.log.info({ [F.project]: project.name, [F.user]: principal.name }, 'project created');
      return created(reply, `/api/v2.0/projects/${project.id}`);
    });

    app.get<{ Params: { project_name_or_id: string } }>('/projects/:project_name_or_id', { schema: { params: projectParams } }, async (request) => {
      const { principal, project } = await projectAccess(deps, request, request.params.project_name_or_id, 'project:read');
      return projectBody(deps, principal, project);
    });

    app.put<{ Params: { project_name_or_id: string }; Body: ProjectReq }>(
      '/projects/:project_name_or_id',
      { schema: { params: projectParams, body: projectReqSchema } },
      async (request, reply) => {
        const { project } = await projectAccess(deps, request, request.params.project_name_or_id, 'project:update');
        const body = request.body;
        if (body.project_name !== undefined && body.project_name !== null && body.project_name !== project.name) {
          throw new PortcullisError('REQUEST_MALFORMED', `body/project_name: a project cannot be renamed (is ${JSON.stringify(project.name)}, got ${JSON.stringify(body.project_name)})`);
        }
        await deps.projects.update(project.id, {
          metadata: metadataOf(body),
          ...(body.cve_allowlist ? { cveAllowlist: { items: body.cve_allowlist.items ?? [], expires_at: body.cve_allowlist.expires_at ?? null } } : {}),
        });
        return reply.status(200).send();
      },
    );

    app.delete<{ Params: { project_name_or_id: string } }>('/projects/:project_name_or_id', { schema: { params: projectParams } }, async (request, reply) => {
      const { project } = await projectAccess(deps, request, request.params.project_name_or_id, 'project:delete');
      const repositories = deps.repositories ? await deps.repositories.count(project.name) : 0;
      if (repositories > 0) {
        throw new PortcullisError('CONFLICT', `project ${JSON.stringify(project.name)} still holds ${repositories} repositories; delete them first`, { status: 412 });
      }
      await deps.projects.delete(project.id);
      request.log.info({ [F.project]: project.name }, 'project deleted');
      return reply.status(200).send();
    });
  };
}
