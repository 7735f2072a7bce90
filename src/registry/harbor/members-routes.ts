import type { JSONSchemaType } from 'ajv';
import type { FastifyPluginAsync } from 'fastify';
import { PortcullisError } from '../../errors.js';
import { PAGE_QUERY, created, pageOf, projectAccess, setPagination, type IdentityApiContext } from '../auth/api-support.js';
import type { Member, MemberStore } from '../auth/members.js';
import { isRoleId } from '../auth/roles.js';
import type { UserStore } from '../auth/users.js';
import { F } from '../../log/fields.js';

/** Harbor's `ProjectMember` request (user members only; groups need LDAP/OIDC, which Portcullis has not). */
interface ProjectMemberReq {
  role_id: number;
  member_user?: { user_id?: number; username?: string };
  member_group?: Record<string, unknown>;
}

const projectMemberSchema: JSONSchemaType<ProjectMemberReq> = {
  type: 'object',
  required: ['role_id'],
  properties: {
    role_id: { type: 'integer' },
    member_user: {
      type: 'object',
      nullable: true,
      required: [],
      properties: { user_id: { type: 'integer', nullable: true }, username: { type: 'string', nullable: true, maxLength: 255 } },
    },
    member_group: { type: 'object', nullable: true, required: [] },
  },
};

const roleRequestSchema: JSONSchemaType<{ role_id: number }> = {
  type: 'object',
  required: ['role_id'],
  properties: { role_id: { type: 'integer' } },
};

function checkRole(roleId: number): asserts roleId is 1 | 2 | 3 | 4 | 5 {
  if (!isRoleId(roleId)) {
    throw new PortcullisError('REQUEST_MALFORMED', `body/role_id: must be 1 (projectAdmin), 2 (developer), 3 (guest), 4 (maintainer) or 5 (limitedGuest), got ${roleId}`);
  }
}

/** Harbor's `ProjectMemberEntity`. */
function memberBody(member: Member) {
  return {
    id: member.id,
    project_id: member.projectId,
    entity_name: member.username,
    role_name: member.roleName,
    role_id: member.roleId,
    entity_id: member.userId,
    entity_type: 'u',
  };
}

const params = {
  type: 'object',
  required: ['project_name_or_id'],
  properties: { project_name_or_id: { type: 'string', minLength: 1, maxLength: 255 }, mid: { type: 'integer', minimum: 1 } },
} as const;

export interface MemberRoutesDeps extends IdentityApiContext {
  members: MemberStore;
  users: UserStore;
}

/** `/projects/{project_name_or_id}/members[/{mid}]`. */
export function memberRoutes(deps: MemberRoutesDeps): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Params: { project_name_or_id: string }; Querystring: { page?: number; page_size?: number; entityname?: string } }>(
      '/projects/:project_name_or_id/members',
      { schema: { params, querystring: { type: 'object', properties: { ...PAGE_QUERY, entityname: { type: 'string' } } } } },
      async (request, reply) => {
        const { project } = await projectAccess(deps, request, request.params.project_name_or_id, 'member:list');
        const page = pageOf(request.query);
        const { items, total } = await deps.members.list(project.id, {
          offset: page.offset,
          limit: page.pageSize,
          ...(request.query.entityname ? { entityName: request.query.entityname } : {}),
        });
        setPagination(request, reply, page, total);
        return items.map(memberBody);
      },
    );

    app.post<{ Params: { project_name_or_id: string }; Body: ProjectMemberReq }>(
      '/projects/:project_name_or_id/members',
      { schema: { params, body: projectMemberSchema } },
      async (request, reply) => {
        const { project } = await projectAccess(deps, request, request.params.project_name_or_id, 'member:create');
        const body = request.body;
        if (body.member_group) throw new PortcullisError('REQUEST_MALFORMED', 'body/member_group: group members are not supported; add users');
        checkRole(body.role_id);
        const ref = body.member_user;
        if (!ref || (ref.user_id === undefined && ref.username === undefined)) {
          throw new PortcullisError('REQUEST_MALFORMED', 'body/member_user: expected {user_id} or {username}');
        }
        const user = ref.user_id !== undefined && ref.user_id !== null ? await deps.users.findById(ref.user_id) : await deps.users.findByName(ref.username ?? '');
        if (!user) throw new PortcullisError('NOT_FOUND', `body/member_user: user ${JSON.stringify(ref.user_id ?? ref.username)} does not exist`);
        const id = await deps.members.add(project.id, user.id, body.role_id);
        request.log.info({ [F.project]: project.name, [F.user]: user.username, [F.role]: body.role_id }, 'project member added');
        return created(reply, `/api/v2.0/projects/${project.id}/members/${id}`);
      },
    );

    app.get<{ Params: { project_name_or_id: string; mid: number } }>('/projects/:project_name_or_id/members/:mid', { schema: { params } }, async (request) => {
      const { project } = await projectAccess(deps, request, request.params.project_name_or_id, 'member:read');
      const member = await deps.members.get(project.id, request.params.mid);
      if (!member) throw new PortcullisError('NOT_FOUND', `project ${JSON.stringify(project.name)} has no member ${request.params.mid}`);
      return memberBody(member);
    });

    app.put<{ Params: { project_name_or_id: string; mid: number }; Body: { role_id: number } }>(
      '/projects/:project_name_or_id/members/:mid',
      { schema: { params, body: roleRequestSchema } },
      async (request, reply) => {
        const { project } = await projectAccess(deps, request, request.params.project_name_or_id, 'member:update');
        checkRole(request.body.role_id);
        await deps.members.update(project.id, request.params.mid, request.body.role_id);
        return reply.status(200).send();
      },
    );

    app.delete<{ Params: { project_name_or_id: string; mid: number } }>('/projects/:project_name_or_id/members/:mid', { schema: { params } }, async (request, reply) => {
      const { project } = await projectAccess(deps, request, request.params.project_name_or_id, 'member:delete');
      await deps.members.remove(project.id, request.params.mid);
      return reply.status(200).send();
    });
  };
}
