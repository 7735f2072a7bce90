import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import type { Kysely } from 'kysely';
import { createAudit, type Audit } from '../../src/audit/audit.js';
import { auditMigrations } from '../../src/audit/migrations.js';
import { defaultConfig } from '../../src/config/schema.js';
import { migrate, openDatabase } from '../../src/db/database.js';
import { createMetricsRegistry } from '../../src/http/metrics.js';
import { buildServer, listen, type HttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { createAccessControl } from '../../src/registry/auth/access-control.js';
import { registryAuthMigrations } from '../../src/registry/auth/migrations.js';
import { main } from '../../src/cli/main.js';
import { runCli } from '../helpers/cli.js';
import { testTls, trustingAgent } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';
import { decision, DIGEST_A } from './decisions.js';
import { ManualClock } from './manual-clock.js';

const TOKEN = 'machine-token-0123456789';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const PASSWORDS = { admin: 'admin-password-1', auditor: 'auditor-password-1', dev: 'developer-password-1' };

/** The brute-force delays the identity subsystem asked for (recorded instead of waited). */
const loginDelays: number[] = [];
let dir: ReturnType<typeof tempDir>;
let close: () => Promise<void>;
let app: HttpServer;
let audit: Audit;
let url: string;
let caFile: string;
const clock = new ManualClock(Date.parse('2026-11-21T10:00:00Z'));
const minutesAgo = (minutes: number) => new Date(Date.parse('2026-11-21T10:00:00Z') - minutes * 60_000).toISOString();

beforeAll(async () => {
  dir = tempDir('portcullis-audit-api-');
  const opened = openDatabase<unknown>({ sqlitePath: `${dir.path}/portcullis.db` });
  const db: Kysely<unknown> = opened.db;
  await migrate(db, [...registryAuthMigrations, ...auditMigrations]);
  const config = defaultConfig(dir.path);
  const access = createAccessControl({
    config: { ...config.registry, adminPassword: PASSWORDS.admin },
    logger: silentLogger(),
    db,
    dataDir: dir.path,
    sleep: async (ms) => {
      loginDelays.push(ms);
    },
    // A cap far above what this file's few failures reach, so that each new failure waits longer.
    bruteForce: { baseDelayMs: 100, maxDelayMs: 3_600_000, windowMs: 60_000 },
  });
  await access.bootstrap();
  const metrics = createMetricsRegistry({ defaultMetrics: false });
  audit = createAudit({
    config: { ...config.audit, apiToken: TOKEN },
    logger: silentLogger(),
    db,
    metrics,
    authenticate: (header, context) => access.controller.authenticate(header, context),
    clock,
  });
  const tls = testTls();
  app = buildServer({ logger: silentLogger(), tls: tls.serving, metrics });
  // As on the registry's address: the identity API beside the audit API.
  await app.register(access.routes);
  await app.register(audit.routes);
  const { port } = await listen(app, '127.0.0.1', 0);
  url = `https://127.0.0.1:${port}`;
  caFile = `${dir.path}/ca.crt`;
  writeFileSync(caFile, tls.ca.cert);
  audit.start();
  // Users and roles made through the registry's Harbor-compatible API, as an operator would.
  const admin = basic('admin', PASSWORDS.admin);
  for (const [username, role] of [['root', 'sysadmin'], ['auditor', 'auditor'], ['dev', undefined]] as const) {
    const created = await app.inject({ method: 'POST', url: '/api/v2.0/users', headers: { authorization: admin }, payload: { username, password: PASSWORDS[username === 'root' ? 'admin' : username], email: `${username}@example.com`, realname: username } });
    expect(created.statusCode).toBe(201);
    const id = created.headers.location?.toString().split('/').pop();
    if (role) {
      const flag = await app.inject({ method: 'PUT', url: `/api/v2.0/users/${id}/${role}`, headers: { authorization: admin }, payload: { [`${role}_flag`]: true } });
      expect(flag.statusCode).toBe(200);
    }
  }
  close = async () => {
    await app.close();
    await audit.close();
    await opened.close();
    dir.remove();
  };

  for (const record of [
    decision({ time: minutesAgo(50), uid: 'shop-deny', namespace: 'shop', user: { username: 'alice', groups: ['devs'] } }),
    decision({ time: minutesAgo(40), uid: 'shop-dry', namespace: 'shop', dryRun: true }),
    decision({ time: minutesAgo(30), uid: 'blog-allow', namespace: 'blog', decision: 'allow', mode: 'none', results: [], name: 'blog, "quoted"' }),
    decision({ time: minutesAgo(60 * 30), uid: 'old', namespace: 'blog', decision: 'allow', mode: 'none', results: [] }),
  ]) {
    audit.sink.record(record);
  }
  clock.advance(1000);
  await audit.sink.flush();
});

afterAll(async () => {
  await close();
});

async function get(path: string, authorization?: string) {
  const response = await fetch(`${url}${path}`, { dispatcher: trustingAgent(testTls().ca.cert), headers: authorization ? { authorization } : {} });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

describe('audit API over HTTPS', () => {
  it('refuses a registry bearer token, even a system administrator’s', async () => {
    const issued = await fetch(`${url}/service/token?service=portcullis-registry&scope=repository:team/app:pull`, { dispatcher: trustingAgent(testTls().ca.cert), headers: { authorization: basic('root', PASSWORDS.admin) } });
    expect(issued.status).toBe(200);
    const { token } = (await issued.json()) as { token: string };
    const response = await get('/api/v1/audit/decisions', `Bearer ${token}`);
    expect(response.status).toBe(401);
    expect(response.body).toEqual({ error: { code: 'UNAUTHORIZED', message: 'the audit API takes Basic credentials or the audit API token, not registry bearer tokens' } });
  });

  it('slows down wrong logins from one address even when each names another user', async () => {
    loginDelays.length = 0;
    for (const guess of ['mallory', 'trent', 'victor']) expect((await get('/api/v1/audit/decisions', basic(guess, 'not-the-password'))).status).toBe(401);
    expect(loginDelays).toHaveLength(3);
    for (let attempt = 1; attempt < loginDelays.length; attempt += 1) expect(loginDelays[attempt], loginDelays.join(', ')).toBeGreaterThan(loginDelays[attempt - 1] as number);
  });

  it.each([
    ['a system administrator', basic('root', PASSWORDS.admin), 200],
    ['an auditor', basic('auditor', PASSWORDS.auditor), 200],
    ['the audit API token', `Bearer ${TOKEN}`, 200],
    ['the audit API token, the scheme in lower case', `bearer ${TOKEN}`, 200],
    ['a user without either role (403)', basic('dev', PASSWORDS.dev), 403],
    ['wrong credentials (401)', basic('auditor', 'not-the-password'), 401],
    ['a wrong token (401)', 'Bearer not-the-token-at-all', 401],
    ['no credentials (401 with a challenge)', undefined, 401],
  ])('answers %s', async (_name, authorization, status) => {
    const response = await get('/api/v1/audit/decisions', authorization);
    expect(response.status).toBe(status);
    if (status === 401) expect(response.headers.get('www-authenticate')).toContain('Basic realm=');
    if (status === 403) expect(response.body).toEqual({ error: { code: 'FORBIDDEN', message: expect.stringContaining('auditor role') } });
  });

  it('lists decisions with every field, newest first, dry runs flagged', async () => {
    const response = await get('/api/v1/audit/decisions?since=24h', `Bearer ${TOKEN}`);
    expect(response.status).toBe(200);
    const items = response.body.items as { uid: string; dryRun: boolean }[];
    expect(items.map((item) => item.uid)).toEqual(['blog-allow', 'shop-dry', 'shop-deny']);
    expect(items[1]?.dryRun).toBe(true);
    expect(items[2]).toEqual({ id: expect.any(Number), ...decision({ time: minutesAgo(50), uid: 'shop-deny', namespace: 'shop', user: { username: 'alice', groups: ['devs'] } }) });
    expect(response.body.nextCursor).toBeNull();
  });

  it('combines filters from query parameters and pages with a cursor', async () => {
    const filtered = await get(`/api/v1/audit/decisions?namespace=shop&decision=deny&dryRun=false&image=registry.example.com/*&digest=${DIGEST_A}&policy=no-critical&user=alice&operation=CREATE&kind=Deployment&name=web`, `Bearer ${TOKEN}`);
    expect((filtered.body.items as { uid: string }[]).map((item) => item.uid)).toEqual(['shop-deny']);
    const first = await get('/api/v1/audit/decisions?limit=2', `Bearer ${TOKEN}`);
    expect((first.body.items as unknown[]).length).toBe(2);
    const second = await get(`/api/v1/audit/decisions?limit=2&cursor=${String(first.body.nextCursor)}`, `Bearer ${TOKEN}`);
    expect((second.body.items as { uid: string }[]).map((item) => item.uid)).toEqual(['shop-deny', 'old']);
    expect(second.body.nextCursor).toBeNull();
  });

  it.each([
    ['a malformed time', '/api/v1/audit/decisions?since=yesterday', 'query parameter since: expected an ISO 8601 time or a duration such as 24h, 30m, 7d, got "yesterday"'],
    ['since after until', '/api/v1/audit/decisions?since=1h&until=2h', 'since (1h) is after until (2h)'],
    ['an unknown decision', '/api/v1/audit/decisions?decision=maybe', 'querystring/decision must be equal to one of the allowed values'],
    ['a limit above the maximum', '/api/v1/audit/decisions?limit=5000', 'querystring/limit must be <= 1000'],
    ['a forged cursor', '/api/v1/audit/decisions?cursor=bm90LWEtY3Vyc29y', 'expected a nextCursor value returned by this API, got "bm90LWEtY3Vyc29y"'],
    ['an unknown parameter', '/api/v1/audit/decisions?namespaces=shop', 'unknown query parameter namespaces; expected one of since, until, namespace,'],
  ])('rejects %s with 400 saying what was expected', async (_name, path, message) => {
    const response = await get(path, `Bearer ${TOKEN}`);
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: { code: 'REQUEST_MALFORMED', message: expect.stringContaining(message) } });
  });

  it('summarises the last 24 hours by default', async () => {
    const response = await get('/api/v1/audit/summary', basic('auditor', PASSWORDS.auditor));
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      total: 3,
      dryRun: 1,
      byDecision: { allow: 1, deny: 2 },
      byNamespace: [
        { namespace: 'shop', total: 2, denied: 2 },
        { namespace: 'blog', total: 1, denied: 0 },
      ],
      topDeniedImages: [{ image: 'registry.example.com/team/web:1.2', denied: 2, worstCves: ['CVE-2021-3711'] }],
    });
  });

  it('reports the background audit as disabled when it is not configured', async () => {
    const response = await get('/api/v1/audit/running', `Bearer ${TOKEN}`);
    expect(response.body).toEqual({ state: 'disabled', evaluatedAt: null, reason: null, pods: 0, violatingPods: 0, violations: [] });
  });
});

/** Runs the CLI in this process (the real dispatcher and commands) with its own io. */
async function cli(args: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), env, cwd: dir.path });
  return { code, stdout, stderr };
}

describe('portcullis audit commands against the API', () => {
  const auth = () => ['--url', url, '--ca', caFile, '--username', 'auditor', '--password', PASSWORDS.auditor];

  it('prints a table, JSON and CSV of the filtered decisions', async () => {
    const table = await cli(['audit', 'query', ...auth(), '--namespace', 'shop', '--since', '2026-11-20T00:00:00Z']);
    expect(table.stderr).toBe('');
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^TIME\s+DECISION\s+MODE\s+DRY-RUN\s+OPERATION\s+NAMESPACE\s+OBJECT\s+USER\s+VIOLATED\s+IMAGES$/);
    expect(table.stdout).toContain('Deployment/web');
    expect(table.stdout).toContain('no-critical:fail');

    const json = await cli(['audit', 'query', ...auth(), '--dry-run', 'true', '--output', 'json']);
    const parsed = JSON.parse(json.stdout) as { items: { uid: string }[]; nextCursor: string | null };
    expect(parsed.items.map((item) => item.uid)).toEqual(['shop-dry']);
    expect(parsed.nextCursor).toBeNull();

    const csvOut = await cli(['audit', 'query', ...auth(), '--namespace', 'blog', '-o', 'csv', '--limit', '1']);
    const lines = csvOut.stdout.trimEnd().split('\r\n');
    expect(lines[0]).toBe('time,decision,mode,dryRun,webhook,operation,namespace,kind,name,user,images,policies,durationMs,uid');
    expect(lines[1]).toContain(',"blog, ""quoted""",');
    expect(lines).toHaveLength(2);
  });

  it('reads the connection from PORTCULLIS_AUDIT_CLIENT_* and prints a summary (as a real process)', async () => {
    const result = await runCli(['audit', 'summary', '--since', '24h'], {
      env: { PORTCULLIS_AUDIT_CLIENT_URL: url, PORTCULLIS_AUDIT_CLIENT_TOKEN: TOKEN, PORTCULLIS_AUDIT_CLIENT_CA_FILE: caFile },
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Decisions: 3 (allowed 1, denied 2, dry run 1)');
    expect(result.stdout).toMatch(/registry\.example\.com\/team\/web:1\.2\s+2\s+CVE-2021-3711/);
    // A child process compiling TypeScript on a loaded two-core machine: allow it time.
  }, 90_000);

  it.each([
    ['a user without the auditor role exits 2 naming the 403', ['audit', 'query', '--username', 'dev', '--password', PASSWORDS.dev], 'HTTP 403 FORBIDDEN'],
    ['a wrong password exits 2 naming the 401', ['audit', 'running', '--username', 'auditor', '--password', 'wrong-password'], 'HTTP 401 UNAUTHORIZED'],
    ['a bad --output exits 2', ['audit', 'query', '--output', 'yaml'], '--output: expected one of table, json, csv, got "yaml"'],
    ['a bad --decision exits 2', ['audit', 'query', '--decision', 'maybe'], '--decision: expected allow or deny, got "maybe"'],
    ['a missing CA file exits 2', ['audit', 'summary', '--ca', 'nowhere.pem'], '--ca nowhere.pem: cannot read'],
    ['an untrusted server exits 2', ['audit', 'summary', '--ca', ''], 'GET https://127.0.0.1'],
  ])('%s', async (_name, args, message) => {
    const result = await cli([...args, '--url', url, ...(args.includes('--ca') ? [] : ['--ca', caFile])]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('answers --help with the usage', async () => {
    const result = await cli(['audit', 'running', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: portcullis audit running/);
    expect(result.stdout).toContain('Exit codes: 0 no violations, 1 violations found');
  });
});
