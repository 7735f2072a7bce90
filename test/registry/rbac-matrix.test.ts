import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal, RepositoryAction } from '../../src/registry/access.js';
import { PROJECT_PERMISSIONS, type ProjectPermission } from '../../src/registry/auth/roles.js';
import { ADMIN_PASSWORD, basic, startAuthFixture, type AuthFixture } from './auth-fixture.js';

/**
 * Harbor's permission matrix (goharbor/harbor src/common/rbac/project/rbac_role.go), written out
 * independently of src/registry/auth/roles.ts. Columns: A projectAdmin, M maintainer, D developer,
 * G guest, L limitedGuest, S system admin (not a member), N a user who is not a member,
 * Z anonymous, P robot with pull, Q robot with pull+push+delete.
 */
const PRIVATE: Record<ProjectPermission, string> = {
  'project:read': 'A M D G L S P Q',
  'project:update': 'A S',
  'project:delete': 'A S',
  'member:list': 'A M D G S',
  'member:read': 'A M D G S',
  'member:create': 'A S',
  'member:update': 'A S',
  'member:delete': 'A S',
  'repository:list': 'A M D G L S P Q',
  'repository:pull': 'A M D G L S P Q',
  'repository:push': 'A M D S Q',
  'repository:delete': 'A M S Q',
  'artifact:read': 'A M D G L S P Q',
  'artifact:delete': 'A M S Q',
  'tag:list': 'A M D G L S P Q',
  'tag:create': 'A M D S Q',
  'tag:delete': 'A M S Q',
  'scan:read': 'A M D G L S P Q',
  'scan:create': 'A M S Q',
  'robot:list': 'A M D G S',
  'robot:read': 'A M D G S',
  'robot:create': 'A S',
  'robot:update': 'A S',
  'robot:delete': 'A S',
};

/** In a public project, non-members and anonymous callers read and pull like a limited guest. */
const PUBLIC_READ = new Set<ProjectPermission>(['project:read', 'repository:list', 'repository:pull', 'artifact:read', 'tag:list', 'scan:read']);

const COLUMNS = { A: 'projectAdmin', M: 'maintainer', D: 'developer', G: 'guest', L: 'limitedGuest', S: 'system admin', N: 'non-member', Z: 'anonymous', P: 'pull robot', Q: 'push robot' } as const;
type Column = keyof typeof COLUMNS;
const ROLE_IDS: Partial<Record<Column, number>> = { A: 1, M: 4, D: 2, G: 3, L: 5 };

let fixture: AuthFixture;
const principals = new Map<Column, Principal>();
const admin: [string, string] = ['admin', ADMIN_PASSWORD];

async function principalFor(column: Column, project: string): Promise<Principal> {
  const key = `${project}:${column}`;
  const cached = principalsByProject.get(key);
  if (cached) return cached;
  let principal: Principal;
  if (column === 'Z') principal = { kind: 'anonymous' };
  else if (column === 'P' || column === 'Q') {
    const actions = column === 'P' ? ['pull'] : ['pull', 'push', 'delete'];
    const created = await fixture.request('POST', '/api/v2.0/robots', {
      user: admin,
      body: { name: `m-${column.toLowerCase()}`, level: 'project', duration: -1, permissions: [{ kind: 'project', namespace: project, access: actions.map((action) => ({ resource: 'repository', action })) }] },
    });
    const robot = created.json as { name: string; secret: string };
    principal = await fixture.auth.controller.authenticate(basic(robot.name, robot.secret));
  } else {
    principal = principals.get(column) as Principal;
  }
  principalsByProject.set(key, principal);
  return principal;
}
const principalsByProject = new Map<string, Principal>();

beforeAll(async () => {
  fixture = await startAuthFixture();
  for (const project of ['team', 'open']) {
    const response = await fixture.request('POST', '/api/v2.0/projects', { user: admin, body: { project_name: project, metadata: { public: String(project === 'open') } } });
    expect(response.status).toBe(201);
  }
  for (const column of ['A', 'M', 'D', 'G', 'L', 'S', 'N'] as Column[]) {
    const username = `user-${column.toLowerCase()}`;
    expect((await fixture.request('POST', '/api/v2.0/users', { user: admin, body: { username, password: 'Passw0rd-long' } })).status).toBe(201);
    const roleId = ROLE_IDS[column];
    if (roleId !== undefined) {
      for (const project of ['team', 'open']) {
        const added = await fixture.request('POST', `/api/v2.0/projects/${project}/members`, { user: admin, body: { role_id: roleId, member_user: { username } } });
        expect(added.status).toBe(201);
      }
    }
    if (column === 'S') {
      const id = ((await fixture.request('GET', `/api/v2.0/users?username=${username}`, { user: admin })).json as { user_id: number }[])[0]?.user_id;
      expect((await fixture.request('PUT', `/api/v2.0/users/${id}/sysadmin`, { user: admin, body: { sysadmin_flag: true } })).status).toBe(200);
    }
    principals.set(column, await fixture.auth.controller.authenticate(basic(username, 'Passw0rd-long')));
  }
});

afterAll(async () => {
  await fixture?.close();
});

const cases = PROJECT_PERMISSIONS.flatMap((permission) =>
  (Object.keys(COLUMNS) as Column[]).flatMap((column) => [
    { permission, column, project: 'team', expected: PRIVATE[permission].split(' ').includes(column) },
    {
      permission,
      column,
      project: 'open',
      expected: PRIVATE[permission].split(' ').includes(column) || PUBLIC_READ.has(permission),
    },
  ]),
);

describe("Harbor's permission matrix", () => {
  it('covers every permission the registry knows', () => {
    expect(Object.keys(PRIVATE).sort()).toEqual([...PROJECT_PERMISSIONS].sort());
  });

  it.each(cases.map((c) => ({ ...c, who: COLUMNS[c.column], verdict: c.expected ? 'may' : 'may not' })))(
    'a $who $verdict $permission in the $project project',
    async ({ permission, column, project, expected }) => {
      const principal = await principalFor(column, project);
      expect(await fixture.auth.controller.canInProject(principal, project, permission)).toBe(expected);
    },
  );
});

describe('repository authorization on /v2', () => {
  const actions: RepositoryAction[] = ['pull', 'push', 'delete'];
  const repoCases = (Object.keys(COLUMNS) as Column[]).flatMap((column) =>
    actions.map((action) => ({ column, action, who: COLUMNS[column], expected: PRIVATE[`repository:${action}`].split(' ').includes(column) })),
  );

  it.each(repoCases)('answers a $who asking to $action team/app by Harbor’s matrix', async ({ column, action, expected }) => {
    const principal = await principalFor(column, 'team');
    const decision = await fixture.auth.controller.authorize(principal, 'team/app', [action]);
    if (expected) expect(decision).toEqual({ allowed: true });
    else if (column === 'Z') expect(decision).toMatchObject({ allowed: false, reason: 'unauthenticated', challenge: expect.stringContaining(`scope="repository:team/app:${action}"`) });
    else expect(decision).toMatchObject({ allowed: false, reason: 'denied', message: expect.stringContaining(`may not ${action} team/app`) });
  });

  it('lets anonymous callers pull from a public project and nothing more', async () => {
    expect(await fixture.auth.controller.authorize({ kind: 'anonymous' }, 'open/app', ['pull'])).toEqual({ allowed: true });
    expect(await fixture.auth.controller.authorize({ kind: 'anonymous' }, 'open/app', ['push'])).toMatchObject({ reason: 'unauthenticated' });
  });

  it('answers unknown-project for a project that does not exist, and challenges anonymous callers instead', async () => {
    const user = principals.get('N') as Principal;
    expect(await fixture.auth.controller.authorize(user, 'nope/app', ['pull'])).toMatchObject({ reason: 'unknown-project', message: 'project "nope" does not exist' });
    expect(await fixture.auth.controller.authorize({ kind: 'anonymous' }, 'nope/app', ['pull'])).toMatchObject({ reason: 'unauthenticated' });
  });

  it('keeps a robot to its own project', async () => {
    const robot = await principalFor('Q', 'team');
    expect(await fixture.auth.controller.authorize(robot, 'open/app', ['push'])).toMatchObject({ reason: 'denied' });
    expect(await fixture.auth.controller.authorize(robot, 'open/app', ['pull'])).toEqual({ allowed: true });
  });

  it('lets only system admins list the catalog', async () => {
    expect(fixture.auth.controller.canListCatalog(principals.get('S') as Principal)).toBe(true);
    expect(fixture.auth.controller.canListCatalog(principals.get('A') as Principal)).toBe(false);
    expect(fixture.auth.controller.canListCatalog({ kind: 'anonymous' })).toBe(false);
  });
});
