import type { JSONSchemaType } from 'ajv';
import type { FastifyPluginAsync } from 'fastify';
import type { RepositoryAction } from '../access.js';
import { PortcullisError } from '../../errors.js';
import { PAGE_QUERY, apiPrincipal, pageOf, refuse, requirePermission, setPagination, type IdentityApiContext } from '../auth/api-support.js';
import { checkRobotSecret, type Robot, type RobotStore } from '../auth/robots.js';
import { REPOSITORY_ACTIONS, isRepositoryAction } from '../auth/scope.js';
import { F } from '../../log/fields.js';

/** Harbor's `RobotPermission` / `Access`. */
interface RobotPermissionReq {
  kind: string;
  namespace: string;
  access: { resource: string; action: string; effect?: string }[];
}

/** Harbor's `RobotCreate` (and the writable part of `Robot` for PUT). */
interface RobotReq {
  name?: string;
  description?: string;
  secret?: string;
  level?: string;
  disable?: boolean;
  duration?: number | null;
  permissions?: RobotPermissionReq[];
}

const permissionSchema: JSONSchemaType<RobotPermissionReq> = {
  type: 'object',
  required: ['kind', 'namespace', 'access'],
  properties: {
    kind: { type: 'string' },
    namespace: { type: 'string', maxLength: 255 },
    access: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        required: ['resource', 'action'],
        properties: { resource: { type: 'string' }, action: { type: 'string' }, effect: { type: 'string', nullable: true } },
      },
    },
  },
};

const robotReqSchema: JSONSchemaType<RobotReq> = {
  type: 'object',
  required: [],
  properties: {
    name: { type: 'string', nullable: true, maxLength: 255 },
    description: { type: 'string', nullable: true, maxLength: 1024 },
    secret: { type: 'string', nullable: true, maxLength: 128 },
    level: { type: 'string', nullable: true },
    disable: { type: 'boolean', nullable: true },
    duration: { type: 'integer', nullable: true },
    permissions: { type: 'array', nullable: true, maxItems: 100, items: permissionSchema },
  },
};

const robotSecSchema: JSONSchemaType<{ secret?: string }> = {
  type: 'object',
  required: [],
  properties: { secret: { type: 'string', nullable: true, maxLength: 128 } },
};

/** Checks `permissions` (one project, repository pull/push/delete) and returns the project and actions. */
function parsePermissions(permissions: RobotPermissionReq[] | undefined): { project: string; actions: RepositoryAction[] } {
  if (!permissions || permissions.length !== 1) {
    throw new PortcullisError('REQUEST_MALFORMED', `body/permissions: expected exactly one entry of kind "project", got ${permissions?.length ?? 0}`);
  }
  const [permission] = permissions as [RobotPermissionReq];
  if (permission.kind !== 'project') throw new PortcullisError('REQUEST_MALFORMED', `body/permissions/0/kind: expected "project", got ${JSON.stringify(permission.kind)}`);
  const actions = new Set<RepositoryAction>();
  permission.access.forEach((access, index) => {
    if (access.resource !== 'repository' || !isRepositoryAction(access.action) || (access.effect !== undefined && access.effect !== null && access.effect !== 'allow')) {
      throw new PortcullisError(
        'REQUEST_MALFORMED',
        `body/permissions/0/access/${index}: expected resource "repository" with action ${REPOSITORY_ACTIONS.join(', ')} (effect allow), got ${JSON.stringify(access)}`,
      );
    }
    actions.add(access.action);
  });
  if (actions.size === 0) throw new PortcullisError('REQUEST_MALFORMED', 'body/permissions/0/access: grant at least one action');
  return { project: permission.namespace, actions: REPOSITORY_ACTIONS.filter((action) => actions.has(action)) };
}

function checkDuration(duration: number): void {
  if (duration !== -1 && (duration < 1 || duration > 36_500)) {
    throw new PortcullisError('REQUEST_MALFORMED', `body/duration: expected -1 (never expires) or 1 to 36500 days, got ${duration}`);
  }
}

/** Harbor's `Robot` (never with the secret). */
function robotBody(robot: Robot) {
  return {
    id: robot.id,
    name: robot.fullName,
    description: robot.description,
    level: 'project',
    duration: robot.duration,
    editable: true,
    disable: robot.disabled,
    expires_at: robot.expiresAt,
    permissions: [{ kind: 'project', namespace: robot.projectName, access: robot.actions.map((action) => ({ resource: 'repository', action, effect: 'allow' })) }],
    creator_type: 'local',
    creator_ref: robot.creatorRef,
    creation_time: robot.createdAt,
    update_time: robot.updatedAt,
  };
}

/** Harbor's `q` filter: `Level=project,ProjectID=3,name=~ci`. */
function parseQuery(q: string | undefined): { projectId?: number; name?: string } {
  const out: { projectId?: number; name?: string } = {};
  for (const term of (q ?? '').split(',').filter(Boolean)) {
    const match = /^([A-Za-z_]+)=(~?)(.*)$/.exec(term);
    if (!match) throw new PortcullisError('REQUEST_MALFORMED', `query q: expected key=value or key=~value terms, got ${JSON.stringify(term)}`);
    const [, key, , value = ''] = match;
    if (key === 'Level' && value !== 'project') throw new PortcullisError('REQUEST_MALFORMED', `query q: only Level=project robots exist, got ${JSON.stringify(value)}`);
    else if (key === 'ProjectID') {
      if (!/^[0-9]+$/.test(value)) throw new PortcullisError('REQUEST_MALFORMED', `query q: ProjectID must be an integer, got ${JSON.stringify(value)}`);
      out.projectId = Number(value);
    } else if (key === 'name') out.name = value;
    else if (key !== 'Level') throw new PortcullisError('REQUEST_MALFORMED', `query q: unsupported key ${JSON.stringify(key)} (Level, ProjectID, name)`);
  }
  return out;
}

export interface RobotRoutesDeps extends IdentityApiContext {
  robots: RobotStore;
}

const idParams = { type: 'object', required: ['robot_id'], properties: { robot_id: { type: 'integer', minimum: 1 } } } as const;

/** `/robots` and `/robots/{robot_id}`: project robot accounts. */
export function robotRoutes(deps: RobotRoutesDeps): FastifyPluginAsync {
  async function loadRobot(id: number) {
    const robot = await deps.robots.get(id);
    if (!robot) throw new PortcullisError('NOT_FOUND', `robot ${id} does not exist`);
    const project = await deps.projects.findById(robot.projectId);
    if (!project) throw new PortcullisError('NOT_FOUND', `robot ${id} does not exist`);
    return { robot, project };
  }

  return async (app) => {
    app.get<{ Querystring: { page?: number; page_size?: number; q?: string } }>(
      '/robots',
      { schema: { querystring: { type: 'object', properties: { ...PAGE_QUERY, q: { type: 'string', maxLength: 1024 }, sort: { type: 'string' } } } } },
      async (request, reply) => {
        const principal = await apiPrincipal(deps, request);
        const filter = parseQuery(request.query.q);
        if (filter.projectId === undefined) {
          if (principal.kind !== 'user' || !principal.sysadmin) throw refuse(principal, 'listing robots of every project (give q=ProjectID=<id>)');
        } else {
          const project = await deps.projects.findById(filter.projectId);
          if (!project) throw new PortcullisError('NOT_FOUND', `project ${filter.projectId} does not exist`);
          await requirePermission(deps, principal, project, 'robot:list');
        }
        const page = pageOf(request.query);
        const { items, total } = await deps.robots.list({ ...filter, offset: page.offset, limit: page.pageSize });
        setPagination(request, reply, page, total);
        return items.map(robotBody);
      },
    );

    app.post<{ Body: RobotReq }>('/robots', { schema: { body: robotReqSchema } }, async (request, reply) => {
      const principal = await apiPrincipal(deps, request);
      const body = request.body;
      if (body.level !== 'project') throw new PortcullisError('REQUEST_MALFORMED', `body/level: only "project" robots are supported, got ${JSON.stringify(body.level ?? null)}`);
      if (!body.name) throw new PortcullisError('REQUEST_MALFORMED', 'body/name: required');
      const { project: projectName, actions } = parsePermissions(body.permissions);
      const project = await deps.projects.findByName(projectName);
      if (!project) throw new PortcullisError('NOT_FOUND', `body/permissions/0/namespace: project ${JSON.stringify(projectName)} does not exist`);
      await requirePermission(deps, principal, project, 'robot:create');
      const duration = body.duration ?? 30;
      checkDuration(duration);
      if (body.secret !== undefined) checkRobotSecret(body.secret, 'body/secret');
      const { robot, secret } = await deps.robots.create({
        projectId: project.id,
        name: body.name,
        description: body.description ?? '',
        actions,
        duration,
        disabled: body.disable ?? false,
        creatorRef: principal.kind === 'anonymous' ? 0 : principal.id,
        ...(body.secret === undefined ? {} : { secret: body.secret }),
      });
      request.log.info({ [F.project]: project.name, [F.name]: robot.fullName }, 'robot created');
      return reply
        .status(201)
        .header('location', `/api/v2.0/robots/${robot.id}`)
        .send({ id: robot.id, name: robot.fullName, secret, creation_time: robot.createdAt, expires_at: robot.expiresAt });
    });

    app.get<{ Params: { robot_id: number } }>('/robots/:robot_id', { schema: { params: idParams } }, async (request) => {
      const principal = await apiPrincipal(deps, request);
      const { robot, project } = await loadRobot(request.params.robot_id);
      await requirePermission(deps, principal, project, 'robot:read');
      return robotBody(robot);
    });

    app.put<{ Params: { robot_id: number }; Body: RobotReq }>('/robots/:robot_id', { schema: { params: idParams, body: robotReqSchema } }, async (request, reply) => {
      const principal = await apiPrincipal(deps, request);
      const { robot, project } = await loadRobot(request.params.robot_id);
      await requirePermission(deps, principal, project, 'robot:update');
      const body = request.body;
      if (body.name !== undefined && body.name !== robot.fullName && body.name !== robot.name) {
        throw new PortcullisError('REQUEST_MALFORMED', `body/name: a robot cannot be renamed (is ${JSON.stringify(robot.fullName)}, got ${JSON.stringify(body.name)})`);
      }
      let actions: RepositoryAction[] | undefined;
      if (body.permissions !== undefined) {
        const parsed = parsePermissions(body.permissions);
        if (parsed.project !== project.name) {
          throw new PortcullisError('REQUEST_MALFORMED', `body/permissions/0/namespace: a robot stays in its project ${JSON.stringify(project.name)}, got ${JSON.stringify(parsed.project)}`);
        }
        actions = parsed.actions;
      }
      if (body.duration !== undefined && body.duration !== null) checkDuration(body.duration);
      await deps.robots.update(robot.id, {
        ...(body.description === undefined ? {} : { description: body.description }),
        ...(actions === undefined ? {} : { actions }),
        ...(body.duration === undefined || body.duration === null ? {} : { duration: body.duration }),
        ...(body.disable === undefined ? {} : { disabled: body.disable }),
      });
      return reply.status(200).send();
    });

    app.patch<{ Params: { robot_id: number }; Body: { secret?: string } }>(
      '/robots/:robot_id',
      { schema: { params: idParams, body: robotSecSchema } },
      async (request) => {
        const principal = await apiPrincipal(deps, request);
        const { robot, project } = await loadRobot(request.params.robot_id);
        await requirePermission(deps, principal, project, 'robot:update');
        if (request.body.secret !== undefined) checkRobotSecret(request.body.secret, 'body/secret');
        const secret = await deps.robots.refreshSecret(robot.id, request.body.secret);
        request.log.info({ [F.name]: robot.fullName }, 'robot secret refreshed');
        return { secret };
      },
    );

    app.delete<{ Params: { robot_id: number } }>('/robots/:robot_id', { schema: { params: idParams } }, async (request, reply) => {
      const principal = await apiPrincipal(deps, request);
      const { robot, project } = await loadRobot(request.params.robot_id);
      await requirePermission(deps, principal, project, 'robot:delete');
      await deps.robots.delete(robot.id);
      request.log.info({ [F.name]: robot.fullName }, 'robot deleted');
      return reply.status(200).send();
    });
  };
}
