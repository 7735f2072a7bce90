import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSwagger } from '../helpers/harbor-swagger.js';
import { ADMIN_PASSWORD, startAuthFixture, type AuthFixture } from './auth-fixture.js';

let fixture: AuthFixture;
const admin: [string, string] = ['admin', ADMIN_PASSWORD];
const alice: [string, string] = ['alice', 'Alice-Passw0rd'];
const bob: [string, string] = ['bob', 'Bob-Passw0rd'];

beforeAll(async () => {
  fixture = await startAuthFixture();
  for (const [username, password] of [alice, bob]) {
    expect((await fixture.request('POST', '/api/v2.0/users', { user: admin, body: { username, password, email: `${username}@example.com` } })).status).toBe(201);
  }
});

afterAll(async () => {
  await fixture?.close();
});

describe('projects', () => {
  it('are created by any user, who becomes their project admin', async () => {
    const response = await fixture.request('POST', '/api/v2.0/projects', { user: alice, body: { project_name: 'alpha', metadata: { public: 'false' } } });
    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toMatch(/^\/api\/v2\.0\/projects\/\d+$/);
    const project = await fixture.request('GET', '/api/v2.0/projects/alpha', { user: alice });
    expect(project.status).toBe(200);
    expectSwagger('Project', project.json);
    expect(project.json).toMatchObject({
      name: 'alpha',
      owner_name: 'alice',
      current_user_role_id: 1,
      repo_count: 0,
      metadata: { public: 'false', auto_scan: 'true' },
      cve_allowlist: { items: [] },
    });
    expect(await fixture.auth.projectSettings('alpha')).toEqual({ name: 'alpha', public: false, autoScan: true });
  });

  it('are found by id as well as by name', async () => {
    const byName = (await fixture.request('GET', '/api/v2.0/projects/alpha', { user: alice })).json as { project_id: number };
    const byId = await fixture.request('GET', `/api/v2.0/projects/${byName.project_id}`, { user: alice });
    expect(byId.json).toMatchObject({ name: 'alpha' });
  });

  it.each([
    { what: 'a duplicate name', body: { project_name: 'alpha' }, status: 409, message: 'CONFLICT: project "alpha" already exists' },
    { what: 'an invalid name', body: { project_name: 'Bad Name' }, status: 400, message: expect.stringContaining('project_name: must be 1-255 lower-case letters') },
    { what: 'no name', body: { public: true }, status: 400, message: 'REQUEST_MALFORMED: body/project_name: required' },
    { what: 'a wrongly typed field', body: { project_name: 'typed', public: 'yes' }, status: 400, message: expect.stringContaining('body/public must be boolean') },
    { what: 'a proxy-cache registry', body: { project_name: 'proxy', registry_id: 3 }, status: 400, message: expect.stringContaining('registry_id: proxy-cache projects are not supported') },
  ])('are refused for $what with Harbor’s error envelope', async ({ body, status, message }) => {
    const response = await fixture.request('POST', '/api/v2.0/projects', { user: alice, body });
    expect(response.status).toBe(status);
    expectSwagger('Errors', response.json);
    expect(response.json).toEqual({ errors: [{ code: expect.any(String), message }] });
  });

  it('refuse malformed and oversized JSON with Harbor’s envelope', async () => {
    const malformed = await fixture.request('POST', '/api/v2.0/projects', { user: alice, raw: '{"project_name": "x",' });
    expect(malformed.status).toBe(400);
    expect(malformed.json).toEqual({ errors: [{ code: 'BAD_REQUEST', message: expect.stringContaining('REQUEST_MALFORMED') }] });
    const raw = JSON.stringify({ project_name: 'big', metadata: { retention_id: 'x'.repeat(70_000) } });
    const huge = await fixture.request('POST', '/api/v2.0/projects', { user: alice, raw });
    // Harbor has no 413: oversize JSON is a bad request like malformed JSON, and says what the limit is.
    expect(huge.status).toBe(400);
    expectSwagger('Errors', huge.json);
    expect(huge.json).toEqual({
      errors: [{ code: 'BAD_REQUEST', message: `REQUEST_TOO_LARGE: the request body of ${Buffer.byteLength(raw)} bytes exceeds the limit of 65536 bytes (64 KiB) for JSON bodies on /api/v2.0` }],
    });
  });

  it('answer 404 for an unknown project, 401 to anonymous and 403 to non-members of a private one', async () => {
    expect((await fixture.request('GET', '/api/v2.0/projects/nope', { user: alice })).status).toBe(404);
    const anonymous = await fixture.request('GET', '/api/v2.0/projects/alpha');
    expect(anonymous.status).toBe(401);
    expect(anonymous.json).toEqual({ errors: [{ code: 'UNAUTHORIZED', message: 'UNAUTHORIZED: project read in project "alpha" requires credentials' }] });
    const outsider = await fixture.request('GET', '/api/v2.0/projects/alpha', { user: bob });
    expect(outsider.status).toBe(403);
    expect(outsider.json).toEqual({ errors: [{ code: 'FORBIDDEN', message: 'FORBIDDEN: project read in project "alpha" is not permitted' }] });
  });

  it('refuse wrong credentials with 401 after the delay', async () => {
    fixture.delays.length = 0;
    const response = await fixture.request('GET', '/api/v2.0/projects', { user: ['alice', 'wrong-password'] });
    expect(response.status).toBe(401);
    expect(fixture.delays).toHaveLength(1);
    fixture.clock.advance(61_000);
  });

  it('refuse registry bearer tokens', async () => {
    const response = await fixture.request('GET', '/api/v2.0/projects', { headers: { authorization: 'Bearer abc' } });
    expect(response.status).toBe(401);
    expect(response.json).toMatchObject({ errors: [{ message: expect.stringContaining('bearer tokens are not accepted on /api/v2.0') }] });
  });

  it('are listed by visibility with Harbor’s pagination headers', async () => {
    for (const name of ['p1', 'p2', 'p3']) {
      await fixture.request('POST', '/api/v2.0/projects', { user: admin, body: { project_name: name, public: name !== 'p3' } });
    }
    const page = await fixture.request('GET', '/api/v2.0/projects?page=2&page_size=2', { user: admin });
    expectSwagger('Project', page.json, true);
    expect(page.headers.get('x-total-count')).toBe('4');
    expect(page.headers.get('link')).toBe('</api/v2.0/projects?page=1&page_size=2>; rel="prev"');
    expect((page.json as { name: string }[]).map((project) => project.name)).toEqual(['p2', 'p3']);
    const first = await fixture.request('GET', '/api/v2.0/projects?page_size=1', { user: admin });
    expect(first.headers.get('link')).toBe('</api/v2.0/projects?page_size=1&page=2>; rel="next"');
    const bobs = await fixture.request('GET', '/api/v2.0/projects', { user: bob });
    expect((bobs.json as { name: string }[]).map((project) => project.name)).toEqual(['p1', 'p2']);
    const anonymous = await fixture.request('GET', '/api/v2.0/projects?public=true');
    expect(anonymous.headers.get('x-total-count')).toBe('2');
    const tooBig = await fixture.request('GET', '/api/v2.0/projects?page_size=1000', { user: bob });
    expect(tooBig.status).toBe(400);
    expect(tooBig.json).toMatchObject({ errors: [{ message: expect.stringContaining('page_size must be <= 100') }] });
  });

  it('are created once when two requests race for the same name', async () => {
    const results = await Promise.all([1, 2, 3].map(() => fixture.request('POST', '/api/v2.0/projects', { user: alice, body: { project_name: 'racy' } })));
    expect(results.map((result) => result.status).sort()).toEqual([201, 409, 409]);
  });

  it('can be checked for existence with HEAD', async () => {
    expect((await fixture.request('HEAD', '/api/v2.0/projects?project_name=p1')).status).toBe(200);
    expect((await fixture.request('HEAD', '/api/v2.0/projects?project_name=zz')).status).toBe(404);
  });

  it('are updated by their admins only, and keep their name', async () => {
    await fixture.request('POST', '/api/v2.0/projects/alpha/members', { user: alice, body: { role_id: 4, member_user: { username: 'bob' } } });
    const denied = await fixture.request('PUT', '/api/v2.0/projects/alpha', { user: bob, body: { metadata: { auto_scan: 'false' } } });
    expect(denied.status).toBe(403);
    const updated = await fixture.request('PUT', '/api/v2.0/projects/alpha', { user: alice, body: { metadata: { auto_scan: 'false' } } });
    expect(updated.status).toBe(200);
    expect(await fixture.auth.projectSettings('alpha')).toMatchObject({ autoScan: false });
    const renamed = await fixture.request('PUT', '/api/v2.0/projects/alpha', { user: alice, body: { project_name: 'beta' } });
    expect(renamed.status).toBe(400);
  });

  it('are deleted only when empty (412 otherwise)', async () => {
    fixture.repositories.set('p1', 2);
    const full = await fixture.request('DELETE', '/api/v2.0/projects/p1', { user: admin });
    expect(full.status).toBe(412);
    expect(full.json).toEqual({ errors: [{ code: 'PRECONDITION', message: 'CONFLICT: project "p1" still holds 2 repositories; delete them first' }] });
    fixture.repositories.delete('p1');
    expect((await fixture.request('DELETE', '/api/v2.0/projects/p1', { user: admin })).status).toBe(200);
    expect((await fixture.request('GET', '/api/v2.0/projects/p1', { user: admin })).status).toBe(404);
  });
});

describe('members', () => {
  it('are listed, read, changed and removed by the project admin', async () => {
    const list = await fixture.request('GET', '/api/v2.0/projects/alpha/members', { user: alice });
    expect(list.status).toBe(200);
    expectSwagger('ProjectMemberEntity', list.json, true);
    expect(list.headers.get('x-total-count')).toBe('2');
    const bobMember = (list.json as { id: number; entity_name: string; role_name: string }[]).find((member) => member.entity_name === 'bob');
    expect(bobMember).toMatchObject({ role_name: 'maintainer', role_id: 4, entity_type: 'u' });
    const one = await fixture.request('GET', `/api/v2.0/projects/alpha/members/${bobMember?.id}`, { user: bob });
    expectSwagger('ProjectMemberEntity', one.json);
    expect((await fixture.request('PUT', `/api/v2.0/projects/alpha/members/${bobMember?.id}`, { user: alice, body: { role_id: 5 } })).status).toBe(200);
    // A limited guest no longer sees the members.
    expect((await fixture.request('GET', '/api/v2.0/projects/alpha/members', { user: bob })).status).toBe(403);
    expect((await fixture.request('DELETE', `/api/v2.0/projects/alpha/members/${bobMember?.id}`, { user: alice })).status).toBe(200);
    expect((await fixture.request('GET', '/api/v2.0/projects/alpha', { user: bob })).status).toBe(403);
  });

  it.each([
    { what: 'an unknown role', body: { role_id: 9, member_user: { username: 'bob' } }, status: 400, message: expect.stringContaining('body/role_id: must be 1 (projectAdmin)') },
    { what: 'an unknown user', body: { role_id: 2, member_user: { username: 'ghost' } }, status: 404, message: expect.stringContaining('user "ghost" does not exist') },
    { what: 'a group', body: { role_id: 2, member_group: { group_name: 'devs' } }, status: 400, message: expect.stringContaining('group members are not supported') },
    { what: 'an existing member', body: { role_id: 2, member_user: { username: 'alice' } }, status: 409, message: expect.stringContaining('already a member') },
  ])('are refused for $what', async ({ body, status, message }) => {
    const response = await fixture.request('POST', '/api/v2.0/projects/alpha/members', { user: alice, body });
    expect(response.status).toBe(status);
    expect(response.json).toEqual({ errors: [{ code: expect.any(String), message }] });
  });
});

describe('robot accounts', () => {
  let robotId = 0;
  let secret = '';
  const create = (body: Record<string, unknown>, user: [string, string] = alice) => fixture.request('POST', '/api/v2.0/robots', { user, body });
  const ciRobot = { name: 'ci', level: 'project', duration: 30, permissions: [{ kind: 'project', namespace: 'alpha', access: [{ resource: 'repository', action: 'pull' }] }] };

  it('are created with Harbor’s name and a secret shown once', async () => {
    const response = await create(ciRobot);
    expect(response.status).toBe(201);
    expectSwagger('RobotCreated', response.json);
    const body = response.json as { id: number; name: string; secret: string; expires_at: number };
    expect(body.name).toBe('robot$alpha+ci');
    expect(body.expires_at).toBe(Math.floor(fixture.clock.now() / 1000) + 30 * 86_400);
    robotId = body.id;
    secret = body.secret;
    const read = await fixture.request('GET', `/api/v2.0/robots/${robotId}`, { user: alice });
    expectSwagger('Robot', read.json);
    expect(read.json).not.toHaveProperty('secret');
    expect(read.json).toMatchObject({ name: 'robot$alpha+ci', level: 'project', permissions: [{ kind: 'project', namespace: 'alpha', access: [{ resource: 'repository', action: 'pull' }] }] });
  });

  it('log in with their secret and may only what they were given', async () => {
    const principal = await fixture.auth.controller.authenticate(`Basic ${Buffer.from(`robot$alpha+ci:${secret}`).toString('base64')}`);
    expect(principal).toEqual({ kind: 'robot', id: robotId, name: 'robot$alpha+ci', project: 'alpha' });
    expect(await fixture.auth.controller.authorize(principal, 'alpha/app', ['pull'])).toEqual({ allowed: true });
    expect(await fixture.auth.controller.authorize(principal, 'alpha/app', ['push'])).toMatchObject({ reason: 'denied' });
  });

  it('are listed per project with Harbor’s q filter', async () => {
    const project = (await fixture.request('GET', '/api/v2.0/projects/alpha', { user: alice })).json as { project_id: number };
    const list = await fixture.request('GET', `/api/v2.0/robots?q=Level%3Dproject%2CProjectID%3D${project.project_id}`, { user: alice });
    expect(list.status).toBe(200);
    expectSwagger('Robot', list.json, true);
    expect(list.headers.get('x-total-count')).toBe('1');
    expect((await fixture.request('GET', '/api/v2.0/robots', { user: alice })).status).toBe(403);
    expect((await fixture.request('GET', '/api/v2.0/robots?q=Color%3Dred', { user: admin })).status).toBe(400);
  });

  it('get a new secret on refresh, and the old one stops working', async () => {
    const refreshed = await fixture.request('PATCH', `/api/v2.0/robots/${robotId}`, { user: alice, body: {} });
    expect(refreshed.status).toBe(200);
    expectSwagger('RobotSec', refreshed.json);
    const next = (refreshed.json as { secret: string }).secret;
    expect(next).not.toBe(secret);
    await expect(fixture.auth.controller.authenticate(`Basic ${Buffer.from(`robot$alpha+ci:${secret}`).toString('base64')}`)).rejects.toThrow('wrong user name or password');
    await expect(fixture.auth.controller.authenticate(`Basic ${Buffer.from(`robot$alpha+ci:${next}`).toString('base64')}`)).resolves.toMatchObject({ kind: 'robot' });
    const chosen = await fixture.request('PATCH', `/api/v2.0/robots/${robotId}`, { user: alice, body: { secret: 'weak' } });
    expect(chosen.status).toBe(400);
    secret = next;
    fixture.clock.advance(61_000);
  });

  /** A pull token for `robot` from the token endpoint, and a check of it as /v2 makes one. */
  const issueToken = async (name: string, robotSecret: string) => {
    const response = await fixture.request('GET', '/service/token?service=portcullis-registry&scope=repository:alpha/app:pull', { user: [name, robotSecret] });
    expect(response.status).toBe(200);
    return (response.json as { token: string }).token;
  };
  const useToken = (token: string) => fixture.auth.controller.authenticate(`Bearer ${token}`);

  it('stop working when disabled, expired or deleted, and a disabled one’s tokens with it', async () => {
    const login = () => fixture.auth.controller.authenticate(`Basic ${Buffer.from(`robot$alpha+ci:${secret}`).toString('base64')}`);
    const held = await issueToken('robot$alpha+ci', secret);
    await expect(useToken(held)).resolves.toMatchObject({ kind: 'robot', name: 'robot$alpha+ci' });
    expect((await fixture.request('PUT', `/api/v2.0/robots/${robotId}`, { user: alice, body: { disable: true } })).status).toBe(200);
    await expect(login()).rejects.toThrow('wrong user name or password');
    await expect(useToken(held)).rejects.toThrow('no longer exists, or is a disabled or expired robot');
    await fixture.request('PUT', `/api/v2.0/robots/${robotId}`, { user: alice, body: { disable: false } });
    await expect(login()).resolves.toMatchObject({ kind: 'robot' });
    fixture.clock.advance(31 * 86_400_000);
    await expect(login()).rejects.toThrow('wrong user name or password');
    expect((await fixture.request('DELETE', `/api/v2.0/robots/${robotId}`, { user: alice })).status).toBe(200);
    expect((await fixture.request('GET', `/api/v2.0/robots/${robotId}`, { user: alice })).status).toBe(404);
  });

  it('take the tokens a robot holds with it when it is deleted', async () => {
    const created = await create({ ...ciRobot, name: 'short-lived' });
    expect(created.status).toBe(201);
    const { id, name, secret: itsSecret } = created.json as { id: number; name: string; secret: string };
    const held = await issueToken(name, itsSecret);
    await expect(useToken(held)).resolves.toMatchObject({ kind: 'robot', name });
    expect((await fixture.request('DELETE', `/api/v2.0/robots/${id}`, { user: alice })).status).toBe(200);
    await expect(useToken(held)).rejects.toThrow('no longer exists, or is a disabled or expired robot');
  });

  it.each([
    { what: 'a system-level robot', body: { ...ciRobot, name: 'sys', level: 'system' }, status: 400, message: expect.stringContaining('only "project" robots') },
    { what: 'an unknown action', body: { ...ciRobot, name: 'x', permissions: [{ kind: 'project', namespace: 'alpha', access: [{ resource: 'repository', action: 'fly' }] }] }, status: 400, message: expect.stringContaining('body/permissions/0/access/0: expected resource "repository" with action pull, push, delete') },
    { what: 'an unknown project', body: { ...ciRobot, name: 'y', permissions: [{ kind: 'project', namespace: 'ghost', access: [{ resource: 'repository', action: 'pull' }] }] }, status: 404, message: expect.stringContaining('project "ghost" does not exist') },
    { what: 'a bad duration', body: { ...ciRobot, name: 'z', duration: 0 }, status: 400, message: expect.stringContaining('body/duration: expected -1') },
    { what: 'an invalid name', body: { ...ciRobot, name: 'Bad+Name' }, status: 400, message: expect.stringContaining('name: must be lower-case') },
  ])('are refused for $what', async ({ body, status, message }) => {
    const response = await create(body);
    expect(response.status).toBe(status);
    expect(response.json).toEqual({ errors: [{ code: expect.any(String), message }] });
  });

  it('are created by project admins only', async () => {
    const response = await create({ ...ciRobot, name: 'sneaky' }, bob);
    expect(response.status).toBe(403);
  });

  it('are issued short-lived to the scanner', async () => {
    const credential = await fixture.auth.issueRobotCredential('alpha', ['pull'], 600);
    expect(credential.username).toMatch(/^robot\$alpha\+scanner-[a-z0-9]{10}$/);
    expect(credential.expiresAt).toBe(new Date(fixture.clock.now() + 600_000).toISOString());
    const principal = await fixture.auth.controller.authenticate(`Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`);
    expect(await fixture.auth.controller.authorize(principal, 'alpha/app', ['pull'])).toEqual({ allowed: true });
    fixture.clock.advance(601_000);
    await expect(fixture.auth.controller.authenticate(`Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`)).rejects.toThrow();
    fixture.clock.advance(61_000);
  });
});

describe('users', () => {
  it('are administered by system admins', async () => {
    const list = await fixture.request('GET', '/api/v2.0/users', { user: admin });
    expectSwagger('UserResp', list.json, true);
    expect((list.json as { username: string }[]).map((user) => user.username)).toEqual(['admin', 'alice', 'bob']);
    expect((await fixture.request('GET', '/api/v2.0/users', { user: alice })).status).toBe(403);
    expect((await fixture.request('POST', '/api/v2.0/users', { user: alice, body: { username: 'eve', password: 'Eve-Passw0rd' } })).status).toBe(403);
    const duplicate = await fixture.request('POST', '/api/v2.0/users', { user: admin, body: { username: 'alice', password: 'Alice-Passw0rd' } });
    expect(duplicate.status).toBe(409);
    const short = await fixture.request('POST', '/api/v2.0/users', { user: admin, body: { username: 'carol', password: 'short' } });
    expect(short.json).toEqual({ errors: [{ code: 'BAD_REQUEST', message: 'REQUEST_MALFORMED: password: must be 8 to 1024 characters, got 5' }] });
  });

  it('keep at least their own admin: a system admin cannot revoke their own rights', async () => {
    const me = (await fixture.request('GET', '/api/v2.0/users/current', { user: admin })).json as { user_id: number };
    const response = await fixture.request('PUT', `/api/v2.0/users/${me.user_id}/sysadmin`, { user: admin, body: { sysadmin_flag: false } });
    expect(response.status).toBe(403);
  });

  it('can be searched by name by any user', async () => {
    const found = await fixture.request('GET', '/api/v2.0/users/search?username=ali', { user: bob });
    expectSwagger('UserSearchRespItem', found.json, true);
    expect(found.json).toEqual([{ user_id: expect.any(Number), username: 'alice' }]);
    expect((await fixture.request('GET', '/api/v2.0/users/search?username=ali')).status).toBe(401);
  });

  it('see themselves, and an admin can make one an auditor', async () => {
    const me = await fixture.request('GET', '/api/v2.0/users/current', { user: bob });
    expectSwagger('UserResp', me.json);
    expect(me.json).toMatchObject({ username: 'bob', sysadmin_flag: false });
    const id = (me.json as { user_id: number }).user_id;
    expect((await fixture.request('PUT', `/api/v2.0/users/${id}/auditor`, { user: admin, body: { auditor_flag: true } })).status).toBe(200);
    await expect(fixture.auth.controller.authenticate(`Basic ${Buffer.from('bob:Bob-Passw0rd').toString('base64')}`)).resolves.toMatchObject({ auditor: true, sysadmin: false });
  });
});

describe('system information', () => {
  it('tells anonymous callers little and users more', async () => {
    const anonymous = await fixture.request('GET', '/api/v2.0/systeminfo');
    expectSwagger('GeneralInfo', anonymous.json);
    expect(anonymous.json).not.toHaveProperty('external_url');
    const user = await fixture.request('GET', '/api/v2.0/systeminfo', { user: bob });
    expectSwagger('GeneralInfo', user.json);
    expect(user.json).toMatchObject({ auth_mode: 'db_auth', external_url: fixture.url, project_creation_restriction: 'everyone' });
  });

  it('reports health and answers ping', async () => {
    const health = await fixture.request('GET', '/api/v2.0/health');
    expectSwagger('OverallHealthStatus', health.json);
    expect(health.json).toEqual({ status: 'healthy', components: [{ name: 'core', status: 'healthy' }, { name: 'database', status: 'healthy' }] });
    const ping = await fixture.request('GET', '/api/v2.0/ping');
    expect(ping.text).toBe('Pong');
    expect(ping.headers.get('content-type')).toMatch(/^text\/plain/);
  });

  it('answers unknown routes under /api/v2.0 with Harbor’s envelope', async () => {
    const response = await fixture.request('GET', '/api/v2.0/nothing-here');
    expect(response.status).toBe(404);
    expectSwagger('Errors', response.json);
  });
});
