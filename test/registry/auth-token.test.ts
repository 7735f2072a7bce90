import { createPublicKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPortcullisError } from '../../src/errors.js';
import { tokenKeyPath } from '../../src/registry/auth/token-key.js';
import { ADMIN_PASSWORD, basic, startAuthFixture, type AuthFixture } from './auth-fixture.js';

let fixture: AuthFixture;
const admin: [string, string] = ['admin', ADMIN_PASSWORD];
const dev: [string, string] = ['dev', 'Dev-Passw0rd'];
const guest: [string, string] = ['guest', 'Guest-Passw0rd'];

interface TokenBody {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  scope?: string;
}

async function token(query: string, user?: [string, string]): Promise<{ status: number; body: TokenBody; headers: Headers; json: unknown }> {
  const response = await fixture.request('GET', `/service/token?service=portcullis-registry&${query}`, user ? { user } : {});
  return { status: response.status, body: response.json as TokenBody, headers: response.headers, json: response.json };
}

/** Verifies like a registry would: the public half of the key on disk, issuer, audience. */
async function claims(jwt: string) {
  const publicKey = createPublicKey(readFileSync(tokenKeyPath(fixture.dataDir), 'utf8'));
  const { payload } = await jwtVerify(jwt, publicKey, { issuer: 'portcullis-token-service', audience: 'portcullis-registry', currentDate: new Date(fixture.clock.now()) });
  return payload;
}

beforeAll(async () => {
  fixture = await startAuthFixture();
  await fixture.request('POST', '/api/v2.0/projects', { user: admin, body: { project_name: 'team' } });
  await fixture.request('POST', '/api/v2.0/projects', { user: admin, body: { project_name: 'open', public: true } });
  for (const [[username, password], role] of [[dev, 2], [guest, 3]] as const) {
    await fixture.request('POST', '/api/v2.0/users', { user: admin, body: { username, password } });
    await fixture.request('POST', '/api/v2.0/projects/team/members', { user: admin, body: { role_id: role, member_user: { username } } });
  }
});

afterAll(async () => {
  await fixture?.close();
});

describe('the token endpoint', () => {
  it('issues an ES256 JWT with the access claim of auth-jwt.md, verifiable with the key on disk', async () => {
    const { status, body } = await token('scope=repository:team/app:pull,push', dev);
    expect(status).toBe(200);
    expect(body.token).toBe(body.access_token);
    expect(body.expires_in).toBe(300);
    expect(body.issued_at).toBe(new Date(fixture.clock.now()).toISOString());
    expect(decodeProtectedHeader(body.token)).toMatchObject({ alg: 'ES256', typ: 'JWT', kid: expect.any(String) });
    const payload = await claims(body.token);
    expect(payload).toMatchObject({ sub: 'dev', access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }] });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(300);
    expect(payload.jti).toEqual(expect.any(String));
  });

  it.each([
    { who: 'a developer', user: dev, asked: 'pull,push,delete', granted: ['pull', 'push'] },
    { who: 'a guest', user: guest, asked: 'pull,push', granted: ['pull'] },
    { who: 'a system admin', user: admin, asked: '*', granted: ['pull', 'push', 'delete'] },
    { who: 'an anonymous caller', user: undefined, asked: 'pull', granted: [] },
  ])('grants $who only the intersection of $asked with what the role permits', async ({ user, asked, granted }) => {
    const { body } = await token(`scope=repository:team/app:${asked}`, user);
    expect((await claims(body.token)).access).toEqual([{ type: 'repository', name: 'team/app', actions: granted }]);
  });

  it('gives anonymous callers pull on public projects, with an empty subject', async () => {
    const { body } = await token('scope=repository:open/app:pull,push');
    expect(await claims(body.token)).toMatchObject({ sub: '', access: [{ type: 'repository', name: 'open/app', actions: ['pull'] }] });
  });

  it('handles several scopes, the catalog scope and unknown projects', async () => {
    const { body } = await token('scope=repository:team/a:pull&scope=repository:nope/b:pull&scope=registry:catalog:*', admin);
    expect((await claims(body.token)).access).toEqual([
      { type: 'repository', name: 'team/a', actions: ['pull'] },
      { type: 'repository', name: 'nope/b', actions: [] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
  });

  it('answers wrong credentials with 401 after a growing delay, and unknown users the same way', async () => {
    fixture.delays.length = 0;
    const first = await token('scope=repository:team/app:pull', ['dev', 'wrong']);
    expect(first.status).toBe(401);
    expect(first.json).toEqual({ errors: [{ code: 'UNAUTHORIZED', message: expect.stringContaining('wrong user name or password') }] });
    expect(first.headers.get('www-authenticate')).toBe('Basic realm="portcullis-registry"');
    await token('scope=repository:team/app:pull', ['dev', 'wrong again']);
    const unknown = await token('scope=repository:team/app:pull', ['nobody', 'whatever1']);
    expect(unknown.status).toBe(401);
    expect(unknown.json).toEqual(first.json);
    // Per user name: 100, 200; then a new name from the same address continues the address's count.
    expect(fixture.delays).toEqual([100, 200, 400]);
    fixture.clock.advance(61_000);
  });

  it('caps the delay', async () => {
    fixture.delays.length = 0;
    for (let attempt = 0; attempt < 6; attempt += 1) await token('', ['capped', 'wrong-password']);
    expect(Math.max(...fixture.delays)).toBe(800);
    fixture.clock.advance(61_000);
  });

  it('refuses a token for another service', async () => {
    const response = await fixture.request('GET', '/service/token?service=elsewhere&scope=repository:team/app:pull');
    expect(response.status).toBe(400);
    expect(response.json).toEqual({ errors: [{ code: 'UNSUPPORTED', message: expect.stringContaining('got "elsewhere"') }] });
  });
});

describe('bearer tokens on the registry', () => {
  it('identify the subject and limit it to the granted scope', async () => {
    const { body } = await token('scope=repository:team/app:pull', dev);
    const principal = await fixture.auth.controller.authenticate(`Bearer ${body.token}`);
    expect(principal).toMatchObject({ kind: 'user', name: 'dev' });
    expect(await fixture.auth.controller.authorize(principal, 'team/app', ['pull'])).toEqual({ allowed: true });
    // The developer may push, so the client is told to fetch a token with that scope.
    expect(await fixture.auth.controller.authorize(principal, 'team/app', ['push'])).toEqual({
      allowed: false,
      reason: 'unauthenticated',
      challenge: `Bearer realm="${fixture.url}/service/token",service="portcullis-registry",scope="repository:team/app:push",error="insufficient_scope"`,
    });
    expect(await fixture.auth.controller.authorize(principal, 'team/other', ['pull'])).toMatchObject({ reason: 'unauthenticated' });
  });

  it('deny what the subject could never get', async () => {
    const { body } = await token('scope=repository:team/app:pull,push', guest);
    const principal = await fixture.auth.controller.authenticate(`Bearer ${body.token}`);
    expect(await fixture.auth.controller.authorize(principal, 'team/app', ['push'])).toEqual({ allowed: false, reason: 'denied', message: 'user "guest" may not push team/app' });
  });

  it('expire after the configured lifetime', async () => {
    const { body } = await token('scope=repository:team/app:pull', dev);
    fixture.clock.advance(299_000);
    await expect(fixture.auth.controller.authenticate(`Bearer ${body.token}`)).resolves.toMatchObject({ name: 'dev' });
    fixture.clock.advance(10_000);
    const error = await fixture.auth.controller.authenticate(`Bearer ${body.token}`).catch((caught: unknown) => caught);
    expect(isPortcullisError(error) && error.code).toBe('UNAUTHORIZED');
    expect(error).toHaveProperty('message', 'bearer token: expired');
  });

  it.each([
    { what: 'a tampered payload', header: async () => `Bearer ${(await token('scope=repository:team/app:pull', guest)).body.token.replace(/\.([^.]+)\./, (_m, p: string) => `.${p.slice(0, -2)}AA.`)}`, message: /^bearer token: / },
    { what: 'garbage', header: async () => 'Bearer not-a-jwt', message: /^bearer token: / },
    { what: 'an unknown scheme', header: async () => 'Digest abc', message: 'Authorization: expected Basic or Bearer, got "digest"' },
    { what: 'Basic without a colon', header: async () => `Basic ${Buffer.from('nocolon').toString('base64')}`, message: 'Authorization: Basic credentials must be base64 of "user:password"' },
  ])('are refused when they carry $what', async ({ header, message }) => {
    const error = await fixture.auth.controller.authenticate(await header()).catch((caught: unknown) => caught);
    expect(isPortcullisError(error) && error.code).toBe('UNAUTHORIZED');
    expect((error as Error).message).toMatch(message);
  });

  it('give system admins the catalog only with the catalog scope', async () => {
    const withScope = await fixture.auth.controller.authenticate(`Bearer ${(await token('scope=registry:catalog:*', admin)).body.token}`);
    const without = await fixture.auth.controller.authenticate(`Bearer ${(await token('scope=repository:team/app:pull', admin)).body.token}`);
    expect(fixture.auth.controller.canListCatalog(withScope)).toBe(true);
    expect(fixture.auth.controller.canListCatalog(without)).toBe(false);
  });
});

describe('the OAuth2 form (POST /service/token)', () => {
  async function post(form: Record<string, string>) {
    return fixture.request('POST', '/service/token', { raw: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }

  it('exchanges a password for an access and refresh token, and the refresh token for more', async () => {
    const first = await post({ grant_type: 'password', username: 'dev', password: 'Dev-Passw0rd', service: 'portcullis-registry', client_id: 'test', access_type: 'offline', scope: 'repository:team/app:pull,push' });
    expect(first.status).toBe(200);
    const body = first.json as TokenBody;
    expect(body.scope).toBe('repository:team/app:pull,push');
    expect(body.refresh_token).toEqual(expect.any(String));
    const second = await post({ grant_type: 'refresh_token', refresh_token: body.refresh_token ?? '', service: 'portcullis-registry', client_id: 'test', scope: 'repository:team/app:pull' });
    expect(second.status).toBe(200);
    expect(await claims((second.json as TokenBody).access_token)).toMatchObject({ sub: 'dev', access: [{ name: 'team/app', actions: ['pull'] }] });
    // A refresh token cannot stand in for an access token.
    await expect(fixture.auth.controller.authenticate(`Bearer ${body.refresh_token}`)).rejects.toThrow('refresh token cannot be used');
  });

  it('revokes refresh tokens when the password changes', async () => {
    await fixture.request('POST', '/api/v2.0/users', { user: admin, body: { username: 'mover', password: 'Mover-Passw0rd' } });
    const first = await post({ grant_type: 'password', username: 'mover', password: 'Mover-Passw0rd', service: 'portcullis-registry', client_id: 'test', access_type: 'offline' });
    const refresh = (first.json as TokenBody).refresh_token ?? '';
    const me = (await fixture.request('GET', '/api/v2.0/users/current', { user: ['mover', 'Mover-Passw0rd'] })).json as { user_id: number };
    const changed = await fixture.request('PUT', `/api/v2.0/users/${me.user_id}/password`, { user: ['mover', 'Mover-Passw0rd'], body: { old_password: 'Mover-Passw0rd', new_password: 'Moved-Passw0rd' } });
    expect(changed.status).toBe(200);
    const again = await post({ grant_type: 'refresh_token', refresh_token: refresh, service: 'portcullis-registry', client_id: 'test' });
    expect(again.status).toBe(401);
    expect(again.json).toEqual({ errors: [{ code: 'UNAUTHORIZED', message: 'refresh token: the credentials it was issued for have changed' }] });
  });

  it.each<{ what: string; form: Record<string, string>; status: number; message: unknown }>([
    { what: 'an unknown grant type', form: { grant_type: 'client_credentials' }, status: 400, message: 'grant_type: expected "password" or "refresh_token", got "client_credentials"' },
    { what: 'a password grant without a password', form: { grant_type: 'password', username: 'dev' }, status: 400, message: 'grant_type=password needs username and password' },
    { what: 'a wrong password', form: { grant_type: 'password', username: 'dev', password: 'nope-nope' }, status: 401, message: expect.stringContaining('wrong user name or password') },
  ])('refuses $what', async ({ form, status, message }) => {
    const response = await post(form);
    expect(response.status).toBe(status);
    expect(response.json).toEqual({ errors: [{ code: expect.any(String), message }] });
    fixture.clock.advance(61_000);
  });
});

describe('the signing key and the first admin', () => {
  it('is kept in the data directory with mode 0600 and reused after a restart', async () => {
    const path = tokenKeyPath(fixture.dataDir);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const before = readFileSync(path, 'utf8');
    const { body } = await token('scope=repository:team/app:pull', dev);
    const restarted = await startAuthFixture({ dataDir: fixture.dataDir });
    try {
      expect(readFileSync(path, 'utf8')).toBe(before);
      restarted.clock.ms = fixture.clock.ms;
      await expect(restarted.auth.controller.authenticate(`Bearer ${body.token}`)).resolves.toMatchObject({ name: 'dev' });
      // The admin already exists, so no password is generated again.
      expect(await restarted.auth.bootstrap()).toEqual({ created: false });
    } finally {
      await restarted.app.close();
      await restarted.agent.close();
    }
  });

  it('answers the challenge of /v2 with the token realm, the service and the scope', () => {
    expect(fixture.auth.controller.challenge('repository:team/app:pull')).toBe(`Bearer realm="${fixture.url}/service/token",service="portcullis-registry",scope="repository:team/app:pull"`);
    expect(fixture.auth.controller.challenge()).toBe(`Bearer realm="${fixture.url}/service/token",service="portcullis-registry"`);
  });

  it('treats empty Basic credentials (what clients send without a login) as anonymous', async () => {
    await expect(fixture.auth.controller.authenticate(`Basic ${Buffer.from(':').toString('base64')}`)).resolves.toEqual({ kind: 'anonymous' });
  });

  it('accepts Basic credentials directly', async () => {
    await expect(fixture.auth.controller.authenticate(basic('dev', 'Dev-Passw0rd'))).resolves.toMatchObject({ kind: 'user', name: 'dev', sysadmin: false, auditor: false });
  });
});
