import type { JSONSchemaType } from 'ajv';
import type { FastifyPluginAsync } from 'fastify';
import { PortcullisError } from '../../errors.js';
import { PAGE_QUERY, apiPrincipal, created, pageOf, refuse, requireSysadmin, setPagination, type IdentityApiContext } from '../auth/api-support.js';
import { verifyPassword } from '../auth/password.js';
import type { UserRow, UserStore } from '../auth/users.js';
import { F } from '../../log/fields.js';

interface UserCreationReq {
  username: string;
  password: string;
  email?: string;
  realname?: string;
  comment?: string;
}

const userCreationSchema: JSONSchemaType<UserCreationReq> = {
  type: 'object',
  required: ['username', 'password'],
  properties: {
    username: { type: 'string', maxLength: 255 },
    password: { type: 'string', maxLength: 1024 },
    email: { type: 'string', nullable: true, maxLength: 255 },
    realname: { type: 'string', nullable: true, maxLength: 255 },
    comment: { type: 'string', nullable: true, maxLength: 1024 },
  },
};

const passwordSchema: JSONSchemaType<{ old_password?: string; new_password: string }> = {
  type: 'object',
  required: ['new_password'],
  properties: { old_password: { type: 'string', nullable: true, maxLength: 1024 }, new_password: { type: 'string', maxLength: 1024 } },
};

const sysadminSchema: JSONSchemaType<{ sysadmin_flag: boolean }> = {
  type: 'object',
  required: ['sysadmin_flag'],
  properties: { sysadmin_flag: { type: 'boolean' } },
};

/** Portcullis extension: the `auditor` system role (may read the audit record). */
const auditorSchema: JSONSchemaType<{ auditor_flag: boolean }> = {
  type: 'object',
  required: ['auditor_flag'],
  properties: { auditor_flag: { type: 'boolean' } },
};

/** Harbor's `UserResp` (never the password). */
function userBody(user: UserRow) {
  return {
    user_id: user.id,
    username: user.username,
    email: user.email,
    realname: user.realname,
    comment: user.comment,
    sysadmin_flag: user.sysadmin === 1,
    admin_role_in_auth: false,
    creation_time: user.created_at,
    update_time: user.updated_at,
  };
}

export interface UserRoutesDeps extends IdentityApiContext {
  users: UserStore;
}

const idParams = { type: 'object', required: ['user_id'], properties: { user_id: { type: 'integer', minimum: 1 } } } as const;

/** `/users…`: local user administration (system admins) and `/users/current`. */
export function userRoutes(deps: UserRoutesDeps): FastifyPluginAsync {
  async function load(id: number): Promise<UserRow> {
    const user = await deps.users.findById(id);
    if (!user) throw new PortcullisError('NOT_FOUND', `user ${id} does not exist`);
    return user;
  }

  return async (app) => {
    app.get('/users/current', async (request) => {
      const principal = await apiPrincipal(deps, request);
      if (principal.kind !== 'user') throw refuse(principal, 'reading the current user (robots and anonymous callers have none)');
      return userBody(await load(principal.id));
    });

    // Any user may look others up by name, to add them as project members (as in Harbor).
    app.get<{ Querystring: { page?: number; page_size?: number; username: string } }>(
      '/users/search',
      { schema: { querystring: { type: 'object', required: ['username'], properties: { ...PAGE_QUERY, username: { type: 'string', minLength: 1, maxLength: 255 } } } } },
      async (request, reply) => {
        const principal = await apiPrincipal(deps, request);
        if (principal.kind !== 'user') throw refuse(principal, 'searching users');
        const page = pageOf(request.query);
        const { items, total } = await deps.users.list({ offset: page.offset, limit: page.pageSize, username: request.query.username });
        setPagination(request, reply, page, total);
        return items.map((user) => ({ user_id: user.id, username: user.username }));
      },
    );

    app.get<{ Querystring: { page?: number; page_size?: number; username?: string } }>(
      '/users',
      { schema: { querystring: { type: 'object', properties: { ...PAGE_QUERY, username: { type: 'string' }, q: { type: 'string' }, sort: { type: 'string' } } } } },
      async (request, reply) => {
        requireSysadmin(await apiPrincipal(deps, request), 'listing users');
        const page = pageOf(request.query);
        const { items, total } = await deps.users.list({ offset: page.offset, limit: page.pageSize, ...(request.query.username ? { username: request.query.username } : {}) });
        setPagination(request, reply, page, total);
        return items.map(userBody);
      },
    );

    app.post<{ Body: UserCreationReq }>('/users', { schema: { body: userCreationSchema } }, async (request, reply) => {
      requireSysadmin(await apiPrincipal(deps, request), 'creating users');
      const user = await deps.users.create({
        username: request.body.username,
        password: request.body.password,
        ...(request.body.email === undefined ? {} : { email: request.body.email }),
        ...(request.body.realname === undefined ? {} : { realname: request.body.realname }),
        ...(request.body.comment === undefined ? {} : { comment: request.body.comment }),
      });
      request.log.info({ [F.user]: user.username }, 'user created');
      return created(reply, `/api/v2.0/users/${user.id}`);
    });

    app.get<{ Params: { user_id: number } }>('/users/:user_id', { schema: { params: idParams } }, async (request) => {
      const principal = await apiPrincipal(deps, request);
      if (!(principal.kind === 'user' && (principal.sysadmin || principal.id === request.params.user_id))) throw refuse(principal, 'reading another user');
      return userBody(await load(request.params.user_id));
    });

    app.delete<{ Params: { user_id: number } }>('/users/:user_id', { schema: { params: idParams } }, async (request, reply) => {
      const principal = await apiPrincipal(deps, request);
      requireSysadmin(principal, 'deleting users');
      if (principal.kind === 'user' && principal.id === request.params.user_id) throw new PortcullisError('FORBIDDEN', 'a user cannot delete themselves');
      await deps.users.delete(request.params.user_id);
      return reply.status(200).send();
    });

    app.put<{ Params: { user_id: number }; Body: { old_password?: string; new_password: string } }>(
      '/users/:user_id/password',
      { schema: { params: idParams, body: passwordSchema } },
      async (request, reply) => {
        const principal = await apiPrincipal(deps, request);
        const self = principal.kind === 'user' && principal.id === request.params.user_id;
        if (!self && !(principal.kind === 'user' && principal.sysadmin)) throw refuse(principal, "changing another user's password");
        const user = await load(request.params.user_id);
        // Users changing their own password prove they know the old one; admins resetting need not.
        if (self && !(await verifyPassword(request.body.old_password ?? '', user.password_hash))) {
          throw new PortcullisError('REQUEST_MALFORMED', 'body/old_password: does not match the current password');
        }
        await deps.users.setPassword(user.id, request.body.new_password);
        return reply.status(200).send();
      },
    );

    app.put<{ Params: { user_id: number }; Body: { sysadmin_flag: boolean } }>(
      '/users/:user_id/sysadmin',
      { schema: { params: idParams, body: sysadminSchema } },
      async (request, reply) => {
        const principal = await apiPrincipal(deps, request);
        requireSysadmin(principal, 'changing system admin rights');
        // Revoking one's own rights could leave the registry without an administrator.
        if (principal.kind === 'user' && principal.id === request.params.user_id && !request.body.sysadmin_flag) {
          throw new PortcullisError('FORBIDDEN', 'a system admin cannot revoke their own system admin rights');
        }
        await deps.users.setFlags((await load(request.params.user_id)).id, { sysadmin: request.body.sysadmin_flag });
        return reply.status(200).send();
      },
    );

    app.put<{ Params: { user_id: number }; Body: { auditor_flag: boolean } }>(
      '/users/:user_id/auditor',
      { schema: { params: idParams, body: auditorSchema } },
      async (request, reply) => {
        requireSysadmin(await apiPrincipal(deps, request), 'changing auditor rights');
        await deps.users.setFlags((await load(request.params.user_id)).id, { auditor: request.body.auditor_flag });
        return reply.status(200).send();
      },
    );
  };
}
