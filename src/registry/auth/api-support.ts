import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AccessController, Principal } from '../access.js';
import { PortcullisError } from '../../errors.js';
import type { RegistryAccessController } from './access-controller.js';
import type { Project, ProjectStore } from './projects.js';
import type { ProjectPermission } from './roles.js';

/**
 * What the Harbor identity routes (src/registry/harbor/{projects,members,robots,users,systeminfo}-routes.ts)
 * share: who is calling, which project a path names, permission checks and Harbor's pagination.
 */
export interface IdentityApiContext {
  controller: RegistryAccessController;
  projects: ProjectStore;
}

/**
 * The caller of a /api/v2.0 request (the identity routes and the repository and artifact routes),
 * by Basic credentials or anonymous; failed logins count against the client address too. Registry
 * bearer tokens are refused before they are verified: they are scoped to repositories, the API has
 * no scope grammar, and Harbor does not accept them there either.
 */
export async function apiCaller(controller: Pick<AccessController, 'authenticate'>, request: FastifyRequest): Promise<Principal> {
  const header = request.headers.authorization;
  if (header !== undefined && /^bearer\s/i.test(header)) {
    throw new PortcullisError('UNAUTHORIZED', 'registry bearer tokens are not accepted on /api/v2.0; use Basic credentials');
  }
  return controller.authenticate(header, { ip: request.ip });
}

/** The caller of a Harbor identity API request (apiCaller with the identity controller). */
export async function apiPrincipal(context: IdentityApiContext, request: FastifyRequest): Promise<Principal> {
  return apiCaller(context.controller, request);
}

/** UNAUTHORIZED for anonymous callers, FORBIDDEN for others. */
export function refuse(principal: Principal, what: string): PortcullisError {
  if (principal.kind === 'anonymous') return new PortcullisError('UNAUTHORIZED', `${what} requires credentials`);
  return new PortcullisError('FORBIDDEN', `${what} is not permitted`);
}

export function requireSysadmin(principal: Principal, what: string): void {
  if (principal.kind !== 'user' || !principal.sysadmin) throw refuse(principal, what);
}

/**
 * Resolves `{project_name_or_id}` as Harbor does: a name when `X-Is-Resource-Name: true` or when
 * it is not all digits, an id otherwise. NOT_FOUND when there is no such project.
 */
export async function resolveProject(context: IdentityApiContext, request: FastifyRequest, nameOrId: string): Promise<Project> {
  const isName = String(request.headers['x-is-resource-name']).toLowerCase() === 'true' || !/^[0-9]+$/.test(nameOrId);
  const project = isName ? await context.projects.findByName(nameOrId) : await context.projects.findById(Number(nameOrId));
  if (!project) throw new PortcullisError('NOT_FOUND', `project ${JSON.stringify(nameOrId)} does not exist`);
  return project;
}

/** Throws UNAUTHORIZED/FORBIDDEN unless `principal` holds `permission` in `project`. */
export async function requirePermission(context: IdentityApiContext, principal: Principal, project: Project, permission: ProjectPermission): Promise<void> {
  if (!(await context.controller.can(principal, project, permission))) {
    throw refuse(principal, `${permission.replace(':', ' ')} in project ${JSON.stringify(project.name)}`);
  }
}

/**
 * The caller of a request on `{project_name_or_id}` and that project, once the caller is known to
 * hold `permission` there: UNAUTHORIZED for bad credentials, then NOT_FOUND for no such project,
 * then UNAUTHORIZED/FORBIDDEN without the permission.
 */
export async function projectAccess(
  context: IdentityApiContext,
  request: FastifyRequest,
  nameOrId: string,
  permission: ProjectPermission,
): Promise<{ principal: Principal; project: Project }> {
  const principal = await apiPrincipal(context, request);
  const project = await resolveProject(context, request, nameOrId);
  await requirePermission(context, principal, project, permission);
  return { principal, project };
}

export interface Page {
  page: number;
  pageSize: number;
  offset: number;
}

/** Harbor's `page` (from 1) and `page_size` (default 10, at most 100). */
export function pageOf(query: { page?: number; page_size?: number }): Page {
  const page = query.page ?? 1;
  const pageSize = query.page_size ?? 10;
  return { page, pageSize, offset: (page - 1) * pageSize };
}

/** Query-string schema for `page` and `page_size`, for route schemas. */
export const PAGE_QUERY = {
  page: { type: 'integer', minimum: 1, default: 1 },
  page_size: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
} as const;

/**
 * Sets `X-Total-Count` and a `Link` header with `prev`/`next` like Harbor
 * (`</api/v2.0/projects?page=1&page_size=10>; rel="prev" , <…>; rel="next"`).
 */
export function setPagination(request: FastifyRequest, reply: FastifyReply, page: Page, total: number): void {
  void reply.header('x-total-count', String(total));
  const [path, search = ''] = request.url.split('?');
  const link = (target: number) => {
    const params = new URLSearchParams(search);
    params.set('page', String(target));
    params.set('page_size', String(page.pageSize));
    return `<${path}?${params.toString()}>`;
  };
  const links: string[] = [];
  if (page.page > 1) links.push(`${link(page.page - 1)}; rel="prev"`);
  if (page.offset + page.pageSize < total) links.push(`${link(page.page + 1)}; rel="next"`);
  if (links.length > 0) void reply.header('link', links.join(' , '));
}

/** Harbor answers 201 with the new resource's address. */
export function created(reply: FastifyReply, location: string): FastifyReply {
  return reply.status(201).header('location', location).send();
}
