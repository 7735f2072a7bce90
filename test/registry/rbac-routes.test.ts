import { isDeepStrictEqual } from 'node:util';
import type { Response } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HarborScanOverview, HarborVulnerabilityReport } from '../../src/harbor/report.js';
import type { ScanPort } from '../../src/registry/scan-port.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushBlob, pushImage, sha256, type PushedImage } from './oci-client.js';

/**
 * Which permission each HTTP route asks for, over real HTTPS with the real access controller: /v2
 * through the Docker token flow, /api/v2.0 with Basic credentials. rbac-matrix.test.ts checks the
 * decision functions; this file checks that every route asks them the right question.
 *
 * Columns: A projectAdmin, M maintainer, D developer, G guest, L limitedGuest, S system admin (not a
 * member), N a user who is not a member, Z anonymous, P a robot of the project with pull only.
 */
type Column = 'A' | 'M' | 'D' | 'G' | 'L' | 'S' | 'N' | 'Z' | 'P';
type Project = 'team' | 'open';
interface Row {
  project: Project;
  column: Column;
}

/**
 * Who may, by Harbor's matrix (goharbor/harbor src/common/rbac/project/rbac_role.go, and the
 * permission each handler of src/server/v2.0/handler asks for), written out by hand. `team` is a
 * private project: the columns allowed there. `open` is a public project: which of N and Z are
 * allowed there (members answer as in `team`); absent for routes that are not about one project.
 */
const EXPECTED = {
  // OCI distribution API (repository:pull / push / delete; the catalog is for system admins).
  'pull a manifest': { team: 'A M D G L S P', open: 'N Z' },
  'pull a blob': { team: 'A M D G L S P', open: 'N Z' },
  'list the tags of a repository': { team: 'A M D G L S P', open: 'N Z' },
  'list the catalog': { team: 'S' },
  'start a blob upload': { team: 'A M D S', open: '' },
  'send a blob chunk': { team: 'A M D S', open: '' },
  'read the status of a blob upload': { team: 'A M D S', open: '' },
  'complete a blob upload': { team: 'A M D S', open: '' },
  'cancel a blob upload': { team: 'A M D S', open: '' },
  'push a manifest': { team: 'A M D S', open: '' },
  'delete a manifest': { team: 'A M S', open: '' },
  'delete a tag through /v2': { team: 'A M S', open: '' },
  'delete a blob': { team: 'A M S', open: '' },
  // Harbor repositories and artifacts API.
  'list repositories': { team: 'A M D G L S P', open: 'N Z' }, // repository:list
  'get a repository': { team: 'A M D G L S P', open: 'N Z' }, // repository:list (GetRepository)
  'delete a repository': { team: 'A M S', open: '' }, // repository:delete
  'list artifacts': { team: 'A M D G L S P', open: 'N Z' }, // artifact:list
  'get an artifact': { team: 'A M D G L S P', open: 'N Z' }, // artifact:read
  'list the tags of an artifact': { team: 'A M D G L S P', open: 'N Z' }, // tag:list
  'read the vulnerabilities of an artifact': { team: 'A M D G L S P', open: 'N Z' }, // artifact-addition:read
  'delete an artifact': { team: 'A M S', open: '' }, // artifact:delete
  'add a tag': { team: 'A M D S', open: '' }, // tag:create
  'delete a tag through the Harbor API': { team: 'A M S', open: '' }, // tag:delete
  'start a scan': { team: 'A M S', open: '' }, // scan:create
  // Harbor projects and members API.
  'read the project': { team: 'A M D G L S P', open: 'N Z' }, // project:read
  'update the project': { team: 'A S', open: '' }, // project:update
  'delete the project': { team: 'A S', open: '' }, // project:delete
  'list members': { team: 'A M D G S', open: '' }, // member:list
  'read a member': { team: 'A M D G S', open: '' }, // member:read
  'add a member': { team: 'A S', open: '' }, // member:create
  'change the role of a member': { team: 'A S', open: '' }, // member:update
  'remove a member': { team: 'A S', open: '' }, // member:delete
} as const satisfies Record<string, { team: string; open?: string }>;
type ActionName = keyof typeof EXPECTED;

const WHO: Record<Column, string> = { A: 'a project admin', M: 'a maintainer', D: 'a developer', G: 'a guest', L: 'a limited guest', S: 'a system admin', N: 'a non-member', Z: 'an anonymous caller', P: 'a pull-only robot' };
const ROLE_IDS: Partial<Record<Column, number>> = { A: 1, M: 4, D: 2, G: 3, L: 5 };
const ADMIN_PASSWORD = 'Rbac-Admin-Passw0rd';
const PASSWORD = 'Rbac-User-Passw0rd';
const ROWS: Row[] = [
  ...(['A', 'M', 'D', 'G', 'L', 'S', 'N', 'Z', 'P'] as const).map((column) => ({ project: 'team' as const, column })),
  ...(['N', 'Z'] as const).map((column) => ({ project: 'open' as const, column })),
];

/** A scanner stand-in that records the scans asked for. */
class RecordingScans implements ScanPort {
  readonly requested: string[] = [];
  async overview(): Promise<HarborScanOverview | undefined> {
    return undefined;
  }
  async report(): Promise<HarborVulnerabilityReport | undefined> {
    return undefined;
  }
  async requestScan(artifact: { repository: string; digest: string }): Promise<void> {
    this.requested.push(`${artifact.repository}@${artifact.digest}`);
  }
}

interface Answer {
  status: number;
  headers: Response['headers'];
  body: unknown;
}

/** What one row's destructive actions act on, so that no row depends on another. */
interface RowFixture {
  manifestToDelete: string;
  artifactToDelete: string;
  blobToDelete: string;
  uploads: Record<'patch' | 'status' | 'put' | 'cancel', string>;
  victimMember: number;
}

let registry: TestRegistry;
let admin: TestRegistry;
const scans = new RecordingScans();
const images = new Map<Project, PushedImage>();
const fixtures = new Map<string, RowFixture>();
/** The membership of user-a (the project admin) in each project, for reading a member. */
const projectAdminMember = new Map<Project, number>();
let robotLogin = '';
let tokenPath = '';
let tokenService = '';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const rowKey = (row: Row) => `${row.project}-${row.column.toLowerCase()}`;
const fixtureOf = (row: Row) => fixtures.get(rowKey(row)) as RowFixture;

function credentials(row: Row): Record<string, string> {
  switch (row.column) {
    case 'Z':
      return {};
    case 'S':
      return { authorization: basic('admin', ADMIN_PASSWORD) };
    case 'P':
      return { authorization: robotLogin };
    default:
      return { authorization: basic(`user-${row.column.toLowerCase()}`, PASSWORD) };
  }
}

async function answer(response: Response): Promise<Answer> {
  const json = (response.headers.get('content-type') ?? '').includes('json');
  const body: unknown = json ? await response.json() : await response.arrayBuffer();
  return { status: response.status, headers: response.headers, body };
}

/** A token from the token service for `scopes`, fetched with the row's credentials (none when anonymous). */
async function bearer(row: Row, scopes: string[]): Promise<string> {
  const query = new URLSearchParams([['service', tokenService], ...scopes.map((scope): [string, string] => ['scope', scope])]);
  const response = await registry.call(`${tokenPath}?${query}`, { headers: credentials(row) });
  expect(response.status).toBe(200);
  return `Bearer ${((await response.json()) as { token: string }).token}`;
}

/** A /v2 request the way Docker clients make it: with a bearer token fetched for `scopes`. */
async function oci(row: Row, scopes: string[], method: string, path: string, init: { body?: Buffer | string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const authorization = await bearer(row, scopes);
  return answer(await registry.call(path, { method, body: init.body, headers: { ...init.headers, authorization } }));
}

/** A Harbor API request with the row's Basic credentials (none when anonymous). */
async function harbor(row: Row, method: string, path: string, body?: unknown): Promise<Answer> {
  const headers = { ...credentials(row), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) };
  return answer(await registry.call(`/api/v2.0${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) }));
}

const asAdmin: Row = { project: 'team', column: 'S' };
const status = async (path: string, method = 'HEAD') => (await admin.call(path, { method })).status;

interface Action {
  surface: 'oci' | 'harbor';
  /** The status of a permitted request. */
  ok: number;
  send(row: Row): Promise<Answer>;
  /** The state the request would change, read as the system admin: it must change exactly when permitted. */
  observe?(row: Row): Promise<unknown>;
}

const pull = (repository: string) => [`repository:${repository}:pull`];
const push = (repository: string) => [`repository:${repository}:pull,push`];
const remove = (repository: string) => [`repository:${repository}:delete`];
const chunk = (row: Row) => `chunk of ${rowKey(row)}`;
const app = (row: Row) => `${row.project}/app`;
const artifacts = (row: Row, repository = 'app') => `/projects/${row.project}/repositories/${repository}/artifacts`;

const ACTIONS: Record<ActionName, Action> = {
  'pull a manifest': {
    surface: 'oci',
    ok: 200,
    send: (row) => oci(row, pull(app(row)), 'GET', `/v2/${app(row)}/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } }),
  },
  'pull a blob': { surface: 'oci', ok: 200, send: (row) => oci(row, pull(app(row)), 'GET', `/v2/${app(row)}/blobs/${images.get(row.project)?.layerDigest}`) },
  'list the tags of a repository': { surface: 'oci', ok: 200, send: (row) => oci(row, pull(app(row)), 'GET', `/v2/${app(row)}/tags/list`) },
  'list the catalog': { surface: 'oci', ok: 200, send: (row) => oci(row, ['registry:catalog:*'], 'GET', '/v2/_catalog') },
  'start a blob upload': { surface: 'oci', ok: 202, send: (row) => oci(row, push(app(row)), 'POST', `/v2/${app(row)}/blobs/uploads/`) },
  'send a blob chunk': {
    surface: 'oci',
    ok: 202,
    send: (row) => oci(row, push(app(row)), 'PATCH', fixtureOf(row).uploads.patch, { body: chunk(row), headers: { 'content-type': 'application/octet-stream' } }),
    observe: async (row) => (await admin.call(fixtureOf(row).uploads.patch)).headers.get('range'),
  },
  'read the status of a blob upload': { surface: 'oci', ok: 204, send: (row) => oci(row, push(app(row)), 'GET', fixtureOf(row).uploads.status) },
  'complete a blob upload': {
    surface: 'oci',
    ok: 201,
    send: (row) => oci(row, push(app(row)), 'PUT', `${fixtureOf(row).uploads.put}?digest=${sha256(chunk(row))}`, { body: chunk(row), headers: { 'content-type': 'application/octet-stream' } }),
    observe: (row) => status(`/v2/${app(row)}/blobs/${sha256(chunk(row))}`),
  },
  'cancel a blob upload': {
    surface: 'oci',
    ok: 204,
    send: (row) => oci(row, push(app(row)), 'DELETE', fixtureOf(row).uploads.cancel),
    observe: (row) => status(fixtureOf(row).uploads.cancel, 'GET'),
  },
  'push a manifest': {
    surface: 'oci',
    ok: 201,
    send: (row) =>
      oci(row, push(app(row)), 'PUT', `/v2/${app(row)}/manifests/pushed-${rowKey(row)}`, {
        body: images.get(row.project)?.manifest,
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      }),
    observe: (row) => status(`/v2/${app(row)}/manifests/pushed-${rowKey(row)}`),
  },
  'delete a manifest': {
    surface: 'oci',
    ok: 202,
    send: (row) => oci(row, remove(`${row.project}/odel-${rowKey(row)}`), 'DELETE', `/v2/${row.project}/odel-${rowKey(row)}/manifests/${fixtureOf(row).manifestToDelete}`),
    observe: (row) => status(`/v2/${row.project}/odel-${rowKey(row)}/manifests/${fixtureOf(row).manifestToDelete}`),
  },
  'delete a tag through /v2': {
    surface: 'oci',
    ok: 202,
    send: (row) => oci(row, remove(app(row)), 'DELETE', `/v2/${app(row)}/manifests/otag-${rowKey(row)}`),
    observe: (row) => status(`/v2/${app(row)}/manifests/otag-${rowKey(row)}`),
  },
  'delete a blob': {
    surface: 'oci',
    ok: 202,
    send: (row) => oci(row, remove(app(row)), 'DELETE', `/v2/${app(row)}/blobs/${fixtureOf(row).blobToDelete}`),
    observe: (row) => status(`/v2/${app(row)}/blobs/${fixtureOf(row).blobToDelete}`),
  },
  'list repositories': { surface: 'harbor', ok: 200, send: (row) => harbor(row, 'GET', `/projects/${row.project}/repositories`) },
  'get a repository': { surface: 'harbor', ok: 200, send: (row) => harbor(row, 'GET', `/projects/${row.project}/repositories/app`) },
  'delete a repository': {
    surface: 'harbor',
    ok: 200,
    send: (row) => harbor(row, 'DELETE', `/projects/${row.project}/repositories/rdel-${rowKey(row)}`),
    observe: (row) => status(`/api/v2.0/projects/${row.project}/repositories/rdel-${rowKey(row)}`, 'GET'),
  },
  'list artifacts': { surface: 'harbor', ok: 200, send: (row) => harbor(row, 'GET', artifacts(row)) },
  'get an artifact': { surface: 'harbor', ok: 200, send: (row) => harbor(row, 'GET', `${artifacts(row)}/v1`) },
  'list the tags of an artifact': { surface: 'harbor', ok: 200, send: (row) => harbor(row, 'GET', `${artifacts(row)}/v1/tags`) },
  'read the vulnerabilities of an artifact': { surface: 'harbor', ok: 200, send: (row) => harbor(row, 'GET', `${artifacts(row)}/v1/additions/vulnerabilities`) },
  'delete an artifact': {
    surface: 'harbor',
    ok: 200,
    send: (row) => harbor(row, 'DELETE', `${artifacts(row, `adel-${rowKey(row)}`)}/${fixtureOf(row).artifactToDelete}`),
    observe: (row) => status(`/api/v2.0${artifacts(row, `adel-${rowKey(row)}`)}/${fixtureOf(row).artifactToDelete}`, 'GET'),
  },
  'add a tag': {
    surface: 'harbor',
    ok: 201,
    send: (row) => harbor(row, 'POST', `${artifacts(row)}/v1/tags`, { name: `hadd-${rowKey(row)}` }),
    observe: (row) => status(`/v2/${app(row)}/manifests/hadd-${rowKey(row)}`),
  },
  'delete a tag through the Harbor API': {
    surface: 'harbor',
    ok: 200,
    send: (row) => harbor(row, 'DELETE', `${artifacts(row)}/v1/tags/hdel-${rowKey(row)}`),
    observe: (row) => status(`/v2/${app(row)}/manifests/hdel-${rowKey(row)}`),
  },
  'start a scan': {
    surface: 'harbor',
    ok: 202,
    send: (row) => harbor(row, 'POST', `${artifacts(row)}/v1/scan`),
    observe: async () => scans.requested.length,
  },
  'read the project': { surface: 'harbor', ok: 200, send: (row) => harbor(row, 'GET', `/projects/${row.project}`) },
  'update the project': {
    surface: 'harbor',
    ok: 200,
    send: (row) => harbor(row, 'PUT', `/projects/${row.project}`, { metadata: { retention_id: `by-${rowKey(row)}` } }),
    observe: async (row) => ((await harbor(asAdmin, 'GET', `/projects/${row.project}`)).body as { metadata: Record<string, string> }).metadata.retention_id,
  },
  // The project still holds repositories, so a permitted caller gets 412 and nothing is deleted.
  'delete the project': { surface: 'harbor', ok: 412, send: (row) => harbor(row, 'DELETE', `/projects/${row.project}`) },
  'list members': { surface: 'harbor', ok: 200, send: (row) => harbor(row, 'GET', `/projects/${row.project}/members`) },
  'read a member': { surface: 'harbor', ok: 200, send: (row) => harbor(row, 'GET', `/projects/${row.project}/members/${projectAdminMember.get(row.project)}`) },
  'add a member': {
    surface: 'harbor',
    ok: 201,
    send: (row) => harbor(row, 'POST', `/projects/${row.project}/members`, { role_id: 3, member_user: { username: `joiner-${rowKey(row)}` } }),
    observe: async (row) => (await harbor(asAdmin, 'GET', `/projects/${row.project}/members?entityname=joiner-${rowKey(row)}`)).body,
  },
  'change the role of a member': {
    surface: 'harbor',
    ok: 200,
    send: (row) => harbor(row, 'PUT', `/projects/${row.project}/members/${fixtureOf(row).victimMember}`, { role_id: 5 }),
    observe: async (row) => (await harbor(asAdmin, 'GET', `/projects/${row.project}/members/${fixtureOf(row).victimMember}`)).body,
  },
  'remove a member': {
    surface: 'harbor',
    ok: 200,
    send: (row) => harbor(row, 'DELETE', `/projects/${row.project}/members/${fixtureOf(row).victimMember}`),
    observe: (row) => status(`/api/v2.0/projects/${row.project}/members/${fixtureOf(row).victimMember}`, 'GET'),
  },
};

async function createUser(username: string): Promise<void> {
  expect((await harbor(asAdmin, 'POST', '/users', { username, password: PASSWORD })).status).toBe(201);
}

/** Adds `username` to `project` with `roleId`; returns the member id from the Location header. */
async function addMember(project: string, username: string, roleId: number): Promise<number> {
  const response = await admin.call(`/api/v2.0/projects/${project}/members`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ role_id: roleId, member_user: { username } }),
  });
  expect(response.status).toBe(201);
  return Number(/\/members\/(\d+)$/.exec(response.headers.get('location') ?? '')?.[1]);
}

async function openUpload(repository: string): Promise<string> {
  const response = await admin.call(`/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  expect(response.status).toBe(202);
  return response.headers.get('location') ?? '';
}

async function prepareRow(row: Row): Promise<void> {
  const key = rowKey(row);
  const image = images.get(row.project) as PushedImage;
  for (const tag of [`otag-${key}`, `hdel-${key}`]) {
    const tagged = await admin.call(`/v2/${app(row)}/manifests/${tag}`, { method: 'PUT', body: image.manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    expect(tagged.status).toBe(201);
  }
  await pushImage(admin, `${row.project}/rdel-${key}`, 'v1', { seed: key });
  await Promise.all([createUser(`joiner-${key}`), createUser(`victim-${key}`)]);
  fixtures.set(key, {
    manifestToDelete: (await pushImage(admin, `${row.project}/odel-${key}`, 'v1', { seed: key })).digest,
    artifactToDelete: (await pushImage(admin, `${row.project}/adel-${key}`, 'v1', { seed: key })).digest,
    blobToDelete: await pushBlob(admin, app(row), `blob to delete of ${key}`),
    uploads: { patch: await openUpload(app(row)), status: await openUpload(app(row)), put: await openUpload(app(row)), cancel: await openUpload(app(row)) },
    victimMember: await addMember(row.project, `victim-${key}`, 3),
  });
}

beforeAll(async () => {
  registry = await startTestRegistry({ withIdentity: { adminPassword: ADMIN_PASSWORD }, scans });
  const adminHeaders = { authorization: basic('admin', ADMIN_PASSWORD) };
  admin = { ...registry, call: (path, init = {}) => registry.call(path, { ...init, headers: { ...adminHeaders, ...(init.headers as Record<string, string> | undefined) } }) };
  // Clients learn where to fetch tokens from the challenge of /v2/.
  const challenge = (await registry.call('/v2/')).headers.get('www-authenticate') ?? '';
  tokenPath = new URL(/realm="([^"]+)"/.exec(challenge)?.[1] ?? '').pathname;
  tokenService = /service="([^"]+)"/.exec(challenge)?.[1] ?? '';
  for (const project of ['team', 'open'] as const) {
    expect((await harbor(asAdmin, 'POST', '/projects', { project_name: project, metadata: { public: String(project === 'open') } })).status).toBe(201);
    images.set(project, await pushImage(admin, `${project}/app`, 'v1'));
  }
  const robot = await harbor(asAdmin, 'POST', '/robots', {
    name: 'puller',
    level: 'project',
    duration: -1,
    permissions: [{ kind: 'project', namespace: 'team', access: [{ resource: 'repository', action: 'pull' }] }],
  });
  const { name, secret } = robot.body as { name: string; secret: string };
  robotLogin = basic(name, secret);
  await Promise.all(['a', 'm', 'd', 'g', 'l', 'n'].map((letter) => createUser(`user-${letter}`)));
  for (const project of ['team', 'open'] as const) {
    for (const [column, roleId] of Object.entries(ROLE_IDS)) {
      const id = await addMember(project, `user-${column.toLowerCase()}`, roleId);
      if (column === 'A') projectAdminMember.set(project, id);
    }
  }
  await Promise.all(ROWS.map(prepareRow));
});

afterAll(async () => {
  await registry?.close();
});

function expectRefusal(surface: Action['surface'], column: Column, result: Answer): void {
  const code = (result.body as { errors?: { code: string }[] }).errors?.[0]?.code;
  if (column === 'Z') {
    expect({ status: result.status, code }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
    if (surface === 'oci') expect(result.headers.get('www-authenticate')).toMatch(/^Bearer realm="/);
  } else {
    expect({ status: result.status, code }).toEqual({ status: 403, code: surface === 'oci' ? 'DENIED' : 'FORBIDDEN' });
  }
}

const cases = (Object.keys(EXPECTED) as ActionName[]).flatMap((action) =>
  ROWS.flatMap((row) => {
    const expected: { team: string; open?: string } = EXPECTED[action];
    const allowedIn = row.project === 'team' ? expected.team : expected.open;
    if (allowedIn === undefined) return [];
    const allowed = allowedIn.split(' ').includes(row.column);
    const name = `${WHO[row.column]} ${allowed ? 'may' : 'may not'} ${action} in ${row.project === 'team' ? 'a private' : 'a public'} project`;
    return [{ name, action, row, allowed }];
  }),
);

describe('the permission each route asks for, by Harbor’s matrix', () => {
  it('covers every action with a route', () => {
    expect(Object.keys(ACTIONS).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const { name, action, row, allowed } of cases) {
    it(name, async () => {
      const route = ACTIONS[action];
      const before = await route.observe?.(row);
      const result = await route.send(row);
      if (allowed) expect(result.status, JSON.stringify(result.body)).toBe(route.ok);
      else expectRefusal(route.surface, row.column, result);
      if (route.observe) expect(!isDeepStrictEqual(await route.observe(row), before), 'whether the request took effect').toBe(allowed);
    });
  }
});

describe('cross-repository blob mounts', () => {
  beforeAll(async () => {
    for (const project of ['alpha', 'vault']) {
      expect((await harbor(asAdmin, 'POST', '/projects', { project_name: project, metadata: { public: 'false' } })).status).toBe(201);
    }
    await Promise.all([createUser('mover'), createUser('reader')]);
    await addMember('alpha', 'mover', 2);
    await addMember('alpha', 'reader', 2);
    await addMember('vault', 'reader', 3);
  });

  /** A is alpha/mount-<key>, B is vault/secret (private); each case mounts a blob of its own. */
  const mounts = [
    { key: 'named', user: 'mover', from: true, login: 'token', mounted: false, name: 'give a developer of A who may not pull from B, naming B in from, 202 and a fresh upload session, not the blob' },
    { key: 'auto', user: 'mover', from: false, login: 'token', mounted: false, name: 'give a developer of A who may not pull from B, mounting without from, 202 and a fresh upload session, not the blob' },
    { key: 'basic', user: 'mover', from: true, login: 'basic', mounted: false, name: 'give the same developer, with Basic credentials instead of a token, 202 and not the blob' },
    { key: 'reader-named', user: 'reader', from: true, login: 'token', mounted: true, name: 'give a developer of A who is a guest of B, naming B in from, 201 with the blob mounted' },
    { key: 'reader-auto', user: 'reader', from: false, login: 'token', mounted: true, name: 'give a developer of A who is a guest of B, mounting without from, 201 with the blob mounted' },
  ] as const;

  for (const { key, user, from, login, mounted, name } of mounts) {
    it(name, async () => {
      const content = `secret layer ${key}`;
      const digest = await pushBlob(admin, 'vault/secret', content);
      const target = `alpha/mount-${key}`;
      const caller = { authorization: basic(user, PASSWORD) };
      // Like Docker, the client asks for pull on the source as well; only a guest of B is granted it.
      const query = new URLSearchParams([['service', tokenService], ['scope', `repository:${target}:pull,push`], ['scope', 'repository:vault/secret:pull']]);
      const token = `Bearer ${((await (await registry.call(`${tokenPath}?${query}`, { headers: caller })).json()) as { token: string }).token}`;
      const asked = await answer(
        await registry.call(`/v2/${target}/blobs/uploads/?mount=${digest}${from ? '&from=vault/secret' : ''}`, { method: 'POST', headers: { authorization: login === 'token' ? token : caller.authorization } }),
      );
      const read = await registry.call(`/v2/${target}/blobs/${digest}`, { headers: caller });
      if (mounted) {
        expect({ status: asked.status, location: asked.headers.get('location') }).toEqual({ status: 201, location: `/v2/${target}/blobs/${digest}` });
        expect({ status: read.status, body: await read.text() }).toEqual({ status: 200, body: content });
      } else {
        expect({ status: asked.status, digest: asked.headers.get('docker-content-digest') }).toEqual({ status: 202, digest: null });
        expect(asked.headers.get('location')).toMatch(new RegExp(`^/v2/${target}/blobs/uploads/[^/]+$`));
        expect({ status: read.status, body: await read.json() }).toMatchObject({ status: 404, body: { errors: [{ code: 'BLOB_UNKNOWN' }] } });
      }
    });
  }
});
