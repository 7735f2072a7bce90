import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { createAccessControl, type AccessControl } from '../../src/registry/auth/access-control.js';
import { registryAuthMigrations } from '../../src/registry/auth/migrations.js';
import { buildOciLayout, type Layout } from '../helpers/oci-layout.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeo, skopeoOk } from '../helpers/skopeo.js';
import { tempDir } from '../helpers/tmp.js';
import { basic } from './auth-fixture.js';

const ADMIN = 'Admin-Passw0rd';
const DEV = 'Dev-Passw0rd-1';
const MAINTAINER = 'Maint-Passw0rd-1';

interface Stack {
  registry: TestRegistry;
  auth: AccessControl;
  robot: { name: string; secret: string };
}

/** The registry core with the real identity subsystem, challenging for `scheme`. */
async function startStack(scheme: 'bearer' | 'basic'): Promise<Stack> {
  let auth: AccessControl | undefined;
  const registry = await startTestRegistry({
    migrations: registryAuthMigrations,
    async prepare(database, dataDir) {
      auth = createAccessControl({
        config: { listen: '127.0.0.1:0', storageDir: join(dataDir, 'registry'), tls: { enabled: true }, tokenTtlSeconds: 300, adminPassword: ADMIN },
        logger: silentLogger(),
        db: database.db,
        dataDir,
        challengeScheme: scheme,
        sleep: async () => {},
      });
      await auth.bootstrap();
      return { access: auth.controller, authRoutes: auth.routes };
    },
  });
  if (!auth) throw new Error('prepare did not run');
  auth.setExternalUrl(registry.url);
  const api = async (method: string, path: string, body: unknown, user = `admin:${ADMIN}`) => {
    const [name = '', password = ''] = user.split(/:(.*)/);
    const response = await registry.call(`/api/v2.0${path}`, { method, headers: { authorization: basic(name, password), 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.status === 201 && path === '/robots' ? ((await response.json()) as { name: string; secret: string }) : undefined;
  };
  await api('POST', '/projects', { project_name: 'team' });
  await api('POST', '/users', { username: 'dev', password: DEV });
  await api('POST', '/projects/team/members', { role_id: 2, member_user: { username: 'dev' } });
  await api('POST', '/users', { username: 'maint', password: MAINTAINER });
  await api('POST', '/projects/team/members', { role_id: 4, member_user: { username: 'maint' } });
  const robot = await api('POST', '/robots', { name: 'puller', level: 'project', duration: -1, permissions: [{ kind: 'project', namespace: 'team', access: [{ resource: 'repository', action: 'pull' }] }] });
  if (!robot) throw new Error('no robot');
  return { registry, auth, robot };
}

let work: { path: string; remove(): void };
let layout: Layout;

beforeAll(() => {
  work = tempDir('portcullis-auth-skopeo-');
  layout = buildOciLayout(join(work.path, 'image'));
});

afterAll(() => {
  work.remove();
});

describe.each(['bearer', 'basic'] as const)('skopeo against the registry with %s challenges', (scheme) => {
  let stack: Stack;
  const host = () => stack.registry.host;
  const certs = () => stack.registry.certDir;

  beforeAll(async () => {
    stack = await startStack(scheme);
  });

  afterAll(async () => {
    await stack?.registry.close();
  });

  it('pushes with a developer’s credentials and inspects the same digest', async () => {
    await skopeoOk(['copy', '--dest-cert-dir', certs(), '--dest-creds', `dev:${DEV}`, layout.reference, `docker://${host()}/team/app:1.0`]);
    const inspected = JSON.parse(await skopeoOk(['inspect', '--cert-dir', certs(), '--creds', `dev:${DEV}`, `docker://${host()}/team/app:1.0`])) as { Digest: string };
    expect(inspected.Digest).toBe(layout.manifestDigest);
  });

  it(`challenges /v2/ for ${scheme === 'bearer' ? 'a token from the realm, which skopeo fetches' : 'Basic credentials, which skopeo sends directly'}`, async () => {
    const challenge = (await stack.registry.call('/v2/')).headers.get('www-authenticate');
    const result = await skopeo(['--debug', 'inspect', '--cert-dir', certs(), '--creds', `dev:${DEV}`, `docker://${host()}/team/app:1.0`]);
    expect(result.code).toBe(0);
    if (scheme === 'bearer') {
      expect(challenge).toBe(`Bearer realm="${stack.registry.url}/service/token",service="portcullis-registry"`);
      expect(result.stderr).toContain('/service/token');
    } else {
      expect(challenge).toBe('Basic realm="portcullis-registry"');
      expect(result.stderr).not.toContain('/service/token');
    }
  });

  it('lets a pull-only robot pull the image back with identical bytes', async () => {
    const back = join(work.path, `back-${scheme}`);
    await skopeoOk(['copy', '--src-cert-dir', certs(), '--src-creds', `${stack.robot.name}:${stack.robot.secret}`, `docker://${host()}/team/app:1.0`, `oci:${back}:pulled`]);
    const index = JSON.parse(readFileSync(join(back, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(layout.manifestDigest);
  });

  it('refuses a push by the pull-only robot', async () => {
    const result = await skopeo(['copy', '--dest-cert-dir', certs(), '--dest-creds', `${stack.robot.name}:${stack.robot.secret}`, layout.reference, `docker://${host()}/team/app:robot`]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/denied|unauthorized|authentication required/i);
    expect(result.stderr).toContain('robot$team+puller');
  });

  it('answers a push by the robot with 403 DENIED in the OCI envelope', async () => {
    let authorization = basic(stack.robot.name, stack.robot.secret);
    if (scheme === 'bearer') {
      const tokenResponse = await stack.registry.call('/service/token?service=portcullis-registry&scope=repository:team/app:pull,push', { headers: { authorization } });
      authorization = `Bearer ${((await tokenResponse.json()) as { token: string }).token}`;
    }
    const response = await stack.registry.call('/v2/team/app/blobs/uploads/', { method: 'POST', headers: { authorization } });
    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({ errors: [expect.objectContaining({ code: 'DENIED', message: expect.stringContaining('may not push team/app') })] });
  });

  it('lists tags for a member and for the pull-only robot', async () => {
    await skopeoOk(['copy', '--src-cert-dir', certs(), '--dest-cert-dir', certs(), '--src-creds', `dev:${DEV}`, '--dest-creds', `dev:${DEV}`, `docker://${host()}/team/app:1.0`, `docker://${host()}/team/app:doomed`]);
    for (const creds of [`dev:${DEV}`, `${stack.robot.name}:${stack.robot.secret}`]) {
      const listed = JSON.parse(await skopeoOk(['list-tags', '--cert-dir', certs(), '--creds', creds, `docker://${host()}/team/app`])) as { Tags: string[] };
      expect(listed.Tags).toEqual(['1.0', 'doomed']);
    }
  });

  it('refuses a delete by a developer and lets a maintainer delete (Harbor: delete is maintainer and above)', async () => {
    const refused = await skopeo(['delete', '--cert-dir', certs(), '--creds', `dev:${DEV}`, `docker://${host()}/team/app:doomed`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/denied|unauthorized|authentication required/i);
    const before = JSON.parse(await skopeoOk(['list-tags', '--cert-dir', certs(), '--creds', `dev:${DEV}`, `docker://${host()}/team/app`])) as { Tags: string[] };
    expect(before.Tags).toEqual(['1.0', 'doomed']);
    // skopeo deletes the manifest the tag names, and with it every tag on that manifest.
    await skopeoOk(['delete', '--cert-dir', certs(), '--creds', `maint:${MAINTAINER}`, `docker://${host()}/team/app:doomed`]);
    const gone = await skopeo(['inspect', '--cert-dir', certs(), '--creds', `dev:${DEV}`, `docker://${host()}/team/app:doomed`]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/manifest unknown|not found/i);
    await skopeoOk(['copy', '--dest-cert-dir', certs(), '--dest-creds', `dev:${DEV}`, layout.reference, `docker://${host()}/team/app:1.0`]);
  });

  it('lets anyone pull anonymously from a public project', async () => {
    const response = await stack.registry.call('/api/v2.0/projects', {
      method: 'POST',
      headers: { authorization: basic('admin', ADMIN), 'content-type': 'application/json' },
      body: JSON.stringify({ project_name: 'open', metadata: { public: 'true' } }),
    });
    expect(response.status).toBe(201);
    await skopeoOk(['copy', '--src-cert-dir', certs(), '--dest-cert-dir', certs(), '--src-creds', `dev:${DEV}`, '--dest-creds', `admin:${ADMIN}`, `docker://${host()}/team/app:1.0`, `docker://${host()}/open/app:1.0`]);
    const inspected = JSON.parse(await skopeoOk(['inspect', '--cert-dir', certs(), '--no-creds', `docker://${host()}/open/app:1.0`])) as { Digest: string };
    expect(inspected.Digest).toBe(layout.manifestDigest);
  });

  it('refuses wrong credentials and anonymous pulls from a private project', async () => {
    const wrong = await skopeo(['inspect', '--cert-dir', certs(), '--creds', 'dev:not-the-password', `docker://${host()}/team/app:1.0`]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/unauthorized|authentication required|invalid username\/password/i);
    const anonymous = await skopeo(['inspect', '--cert-dir', certs(), '--no-creds', `docker://${host()}/team/app:1.0`]);
    expect(anonymous.code).not.toBe(0);
  });
});
