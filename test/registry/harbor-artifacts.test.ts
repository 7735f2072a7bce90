import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSwagger } from '../helpers/harbor-swagger.js';
import { NATIVE_REPORT_MIME, VULNERABILITY_REPORT_MIME, type HarborScanOverview, type HarborVulnerabilityReport } from '../../src/harbor/report.js';
import type { RegistryEvent } from '../../src/registry/events.js';
import type { ScanPort } from '../../src/registry/scan-port.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushBlob, pushImage, sha256, type PushedImage } from './oci-client.js';

const ADMIN = 'Harbor-Test-Passw0rd';
const adminAuth = { authorization: `Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}` };

/** A scanner stand-in: one finished report for every digest in `reports`, recording scan requests. */
class FakeScans implements ScanPort {
  readonly requested: { repository: string; digest: string }[] = [];
  readonly reports = new Map<string, HarborVulnerabilityReport>();
  async overview(digest: string): Promise<HarborScanOverview | undefined> {
    const report = this.reports.get(digest);
    if (!report) return undefined;
    return {
      [VULNERABILITY_REPORT_MIME]: {
        report_id: `report-${digest.slice(7, 15)}`,
        scan_status: 'Success',
        severity: report.severity,
        duration: 3,
        summary: { total: report.vulnerabilities.length, fixable: 1, summary: { High: 1, Low: 1 } },
        start_time: '2026-01-01T00:00:00Z',
        end_time: '2026-01-01T00:00:03Z',
        complete_percent: 100,
        scanner: report.scanner,
      },
    };
  }
  async report(digest: string): Promise<HarborVulnerabilityReport | undefined> {
    return this.reports.get(digest);
  }
  async requestScan(artifact: { repository: string; digest: string }): Promise<void> {
    this.requested.push({ repository: artifact.repository, digest: artifact.digest });
  }
}

let registry: TestRegistry;
const scans = new FakeScans();
const events: RegistryEvent[] = [];
let image: PushedImage;
let nested: PushedImage;
let indexDigest: string;
let chartDigest: string;

async function harbor(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await registry.call(`/api/v2.0${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

beforeAll(async () => {
  registry = await startTestRegistry({ withIdentity: { adminPassword: ADMIN }, headers: adminAuth, scans });
  registry.role.events.subscribe((event) => {
    events.push(event);
  });
  expect((await harbor('POST', '/projects', { project_name: 'library', metadata: { public: 'false' } })).status).toBe(201);
  image = await pushImage(registry, 'library/app', 'v1');
  nested = await pushImage(registry, 'library/team/app', 'v1');
  const amd = await pushImage(registry, 'library/multi', 'amd64', { seed: 'amd' });
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd.digest, size: amd.manifest.length, platform: { architecture: 'amd64', os: 'linux' } }],
  });
  indexDigest = sha256(index);
  expect((await registry.call('/v2/library/multi/manifests/latest', { method: 'PUT', body: index, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } })).status).toBe(201);
  chartDigest = (await pushImage(registry, 'library/chart', '0.1.0', { configMediaType: 'application/vnd.cncf.helm.config.v1+json' })).digest;
  await pushBlob(registry, 'library/app', 'unrelated');
  scans.reports.set(image.digest, {
    generated_at: '2026-01-01T00:00:03Z',
    artifact: { repository: 'library/app', digest: image.digest, mime_type: 'application/vnd.oci.image.manifest.v1+json' },
    scanner: { name: 'Trivy', vendor: 'Aqua Security', version: '0.58.0' },
    severity: 'High',
    vulnerabilities: [
      { id: 'CVE-2024-0001', package: 'openssl', version: '3.0.0', fix_version: '3.0.1', severity: 'High' },
      { id: 'CVE-2024-0002', package: 'zlib', version: '1.2.13', severity: 'Low' },
    ],
  });
});

afterAll(async () => {
  await registry.close();
});

describe('the Harbor repositories API', () => {
  it('lists the repositories of a project with counts, a total and swagger-valid bodies', async () => {
    const response = await harbor('GET', '/projects/library/repositories?page_size=2');
    expect(response.status).toBe(200);
    expectSwagger('Repository', response.json, true);
    expect(response.headers.get('x-total-count')).toBe('4');
    expect(response.headers.get('link')).toContain('rel="next"');
    const names = (response.json as { name: string; artifact_count: number }[]).map((r) => [r.name, r.artifact_count]);
    expect(names).toEqual([
      ['library/app', 1],
      ['library/chart', 1],
    ]);
  });

  it('gets a repository whose name contains a slash, encoded as %2F or %252F', async () => {
    for (const encoded of ['team%2Fapp', 'team%252Fapp']) {
      const response = await harbor('GET', `/projects/library/repositories/${encoded}`);
      expect(response.status).toBe(200);
      expectSwagger('Repository', response.json);
      expect(response.json).toMatchObject({ name: 'library/team/app', artifact_count: 1 });
    }
  });

  it('answers an unknown repository with 404 in the Harbor envelope', async () => {
    const response = await harbor('GET', '/projects/library/repositories/nothing');
    expect(response.status).toBe(404);
    expectSwagger('Errors', response.json);
    expect(response.json).toMatchObject({ errors: [{ code: 'NOT_FOUND' }] });
  });

  it('refuses anonymous access to a private project with 401', async () => {
    const response = await harbor('GET', '/projects/library/repositories', undefined, { authorization: '' });
    expect([401]).toContain(response.status);
    expect((response.json as { errors: { code: string }[] }).errors[0]?.code).toBe('UNAUTHORIZED');
  });
});

describe('the Harbor artifacts API', () => {
  it('lists artifacts with tags, leaving children of an index to their index', async () => {
    const response = await harbor('GET', '/projects/library/repositories/multi/artifacts');
    expect(response.status).toBe(200);
    expectSwagger('Artifact', response.json, true);
    const artifacts = response.json as { digest: string; type: string; references: { child_digest: string; platform?: { architecture: string } }[]; tags: { name: string }[] }[];
    expect(artifacts.map((a) => a.digest)).toEqual([indexDigest]);
    expect(artifacts[0]?.references[0]?.platform?.architecture).toBe('amd64');
    expect(artifacts[0]?.tags.map((t) => t.name)).toEqual(['latest']);
  });

  it.each([
    ['by tag', 'v1'],
    ['by digest', 'DIGEST'],
  ])('gets an artifact %s with its scan overview', async (_how, reference) => {
    const ref = reference === 'DIGEST' ? image.digest : reference;
    const response = await harbor('GET', `/projects/library/repositories/app/artifacts/${ref}?with_scan_overview=true`);
    expect(response.status).toBe(200);
    expectSwagger('Artifact', response.json);
    const artifact = response.json as { digest: string; type: string; scan_overview: Record<string, unknown>; tags: { name: string }[]; addition_links: Record<string, { href: string }> };
    expect(artifact).toMatchObject({ digest: image.digest, type: 'IMAGE', manifest_media_type: 'application/vnd.oci.image.manifest.v1+json' });
    expect(Object.keys(artifact.scan_overview)).toEqual([VULNERABILITY_REPORT_MIME]);
    expectSwagger('NativeReportSummary', artifact.scan_overview[VULNERABILITY_REPORT_MIME]);
    expect(artifact.addition_links.vulnerabilities?.href).toBe(`/api/v2.0/projects/library/repositories/app/artifacts/${image.digest}/additions/vulnerabilities`);
  });

  it('counts pulls of a manifest in the repository and the artifact', async () => {
    expect((await registry.call('/v2/library/app/manifests/v1')).status).toBe(200);
    expect((await registry.call('/v2/library/app/manifests/v1')).status).toBe(200);
    await registry.role.flushPulls();
    const repository = await harbor('GET', '/projects/library/repositories/app');
    expect((repository.json as { pull_count: number }).pull_count).toBe(2);
    const artifact = await harbor('GET', '/projects/library/repositories/app/artifacts/v1');
    expect((artifact.json as { pull_time: string }).pull_time).not.toBe('0001-01-01T00:00:00.000Z');
  });

  it('leaves the scan overview out unless asked for, and for artifacts never scanned', async () => {
    const plain = await harbor('GET', '/projects/library/repositories/app/artifacts/v1');
    expect(plain.json).not.toHaveProperty('scan_overview');
    const unscanned = await harbor('GET', '/projects/library/repositories/team%2Fapp/artifacts/v1?with_scan_overview=true');
    expect(unscanned.json).not.toHaveProperty('scan_overview');
    expect(unscanned.json).toMatchObject({ digest: nested.digest });
  });

  const SBOM_REPORT_MIME = 'application/vnd.security.sbom.report+json; version=1.0';
  it.each([
    { accept: undefined, keyed: VULNERABILITY_REPORT_MIME, why: 'no header: the swagger default, v1.1 first' },
    { accept: NATIVE_REPORT_MIME, keyed: NATIVE_REPORT_MIME, why: 'the native type alone' },
    { accept: VULNERABILITY_REPORT_MIME, keyed: VULNERABILITY_REPORT_MIME, why: 'the v1.1 type alone' },
    { accept: `${NATIVE_REPORT_MIME}, ${VULNERABILITY_REPORT_MIME}`, keyed: NATIVE_REPORT_MIME, why: 'native before v1.1: the first accepted wins' },
    { accept: `${SBOM_REPORT_MIME}, ${NATIVE_REPORT_MIME}`, keyed: NATIVE_REPORT_MIME, why: 'a type that is no vulnerability report is skipped' },
    { accept: SBOM_REPORT_MIME, keyed: NATIVE_REPORT_MIME, why: 'only types not produced: native, as Harbor falls back to' },
  ])('keys the scan overview and the vulnerabilities addition under $keyed for $why', async ({ accept, keyed }) => {
    const headers: Record<string, string> = accept === undefined ? {} : { 'x-accept-vulnerabilities': accept };
    const summary = (await scans.overview(image.digest))?.[VULNERABILITY_REPORT_MIME];

    const one = await harbor('GET', '/projects/library/repositories/app/artifacts/v1?with_scan_overview=true', undefined, headers);
    expect((one.json as { scan_overview: unknown }).scan_overview).toEqual({ [keyed]: summary });
    const list = await harbor('GET', '/projects/library/repositories/app/artifacts?with_scan_overview=true', undefined, headers);
    const listed = (list.json as { digest: string; scan_overview: unknown }[]).find((artifact) => artifact.digest === image.digest);
    expect(listed?.scan_overview).toEqual({ [keyed]: summary });

    const addition = await harbor('GET', '/projects/library/repositories/app/artifacts/v1/additions/vulnerabilities', undefined, headers);
    expect(addition.status).toBe(200);
    expect(addition.json).toEqual({ [keyed]: scans.reports.get(image.digest) });
  });

  it('answers the vulnerabilities addition of an artifact never scanned with {}', async () => {
    const addition = await harbor('GET', '/projects/library/repositories/team%2Fapp/artifacts/v1/additions/vulnerabilities', undefined, { 'x-accept-vulnerabilities': NATIVE_REPORT_MIME });
    expect(addition.status).toBe(200);
    expect(addition.json).toEqual({});
  });

  it.each([
    ['the repositories of a project', '/projects/library/repositories'],
    ['a repository', '/projects/library/repositories/app'],
    ['the artifacts of a repository', '/projects/library/repositories/app/artifacts'],
    ['an artifact', '/projects/library/repositories/app/artifacts/v1'],
    ['the vulnerabilities addition', '/projects/library/repositories/app/artifacts/v1/additions/vulnerabilities'],
  ])('refuses a registry bearer token on %s with 401, as the identity routes do', async (_what, path) => {
    const issued = await registry.call('/service/token?service=portcullis-registry&scope=repository:library/app:pull');
    const bearer = { authorization: `Bearer ${((await issued.json()) as { token: string }).token}` };
    // The token is good where tokens belong: /v2.
    expect((await registry.call('/v2/library/app/manifests/v1', { method: 'HEAD', headers: bearer })).status).toBe(200);
    const response = await harbor('GET', path, undefined, bearer);
    expect(response.status).toBe(401);
    expectSwagger('Errors', response.json);
    expect(response.json).toEqual({ errors: [{ code: 'UNAUTHORIZED', message: 'UNAUTHORIZED: registry bearer tokens are not accepted on /api/v2.0; use Basic credentials' }] });
  });

  it('tells a Helm chart from an image', async () => {
    const response = await harbor('GET', '/projects/library/repositories/chart/artifacts/0.1.0');
    expect(response.json).toMatchObject({ type: 'CHART', digest: chartDigest, media_type: 'application/vnd.cncf.helm.config.v1+json' });
  });

  it('accepts a scan request and hands it to the scanner; refuses charts with 422', async () => {
    const accepted = await harbor('POST', '/projects/library/repositories/app/artifacts/v1/scan');
    expect(accepted.status).toBe(202);
    expect(scans.requested).toContainEqual({ repository: 'library/app', digest: image.digest });
    const chart = await harbor('POST', '/projects/library/repositories/chart/artifacts/0.1.0/scan');
    expect(chart.status).toBe(422);
    expectSwagger('Errors', chart.json);
  });

  it("starts scans only for maintainers and above, as Harbor's role matrix says (scan:create)", async () => {
    const basic = (user: string) => ({ authorization: `Basic ${Buffer.from(`${user}:Scan-Test-Passw0rd`).toString('base64')}` });
    for (const [username, role_id] of [['scan-dev', 2], ['scan-maintainer', 4]] as const) {
      expect((await harbor('POST', '/users', { username, password: 'Scan-Test-Passw0rd', email: `${username}@example.com`, realname: username })).status).toBe(201);
      expect((await harbor('POST', '/projects/library/members', { role_id, member_user: { username } })).status).toBe(201);
    }
    const before = scans.requested.length;
    const developer = await harbor('POST', '/projects/library/repositories/app/artifacts/v1/scan', undefined, basic('scan-dev'));
    expect(developer.status).toBe(403);
    expectSwagger('Errors', developer.json);
    expect(scans.requested).toHaveLength(before);
    const maintainer = await harbor('POST', '/projects/library/repositories/app/artifacts/v1/scan', undefined, basic('scan-maintainer'));
    expect(maintainer.status).toBe(202);
    expect(scans.requested).toHaveLength(before + 1);
  });

  it('adds a tag, refuses a duplicate with 409, and deletes it again, emitting tag events', async () => {
    const added = await harbor('POST', '/projects/library/repositories/app/artifacts/v1/tags', { name: 'stable' });
    expect(added.status).toBe(201);
    const tags = await harbor('GET', `/projects/library/repositories/app/artifacts/${image.digest}/tags`);
    expectSwagger('Tag', tags.json, true);
    expect((tags.json as { name: string }[]).map((t) => t.name).sort()).toEqual(['stable', 'v1']);
    expect((await registry.call('/v2/library/app/manifests/stable', { method: 'HEAD' })).headers.get('docker-content-digest')).toBe(image.digest);
    const duplicate = await harbor('POST', '/projects/library/repositories/app/artifacts/v1/tags', { name: 'stable' });
    expect(duplicate.status).toBe(409);
    const removed = await harbor('DELETE', `/projects/library/repositories/app/artifacts/${image.digest}/tags/stable`);
    expect(removed.status).toBe(200);
    await registry.role.events.settle();
    expect(events.filter((e) => e.tag === 'stable').map((e) => e.type)).toEqual(['tag.changed', 'tag.deleted']);
  });

  it.each([
    ['malformed JSON', '{"name":', 400, 'BAD_REQUEST'],
    ['a body without name', { nome: 'x' }, 400, 'BAD_REQUEST'],
    ['an invalid tag', { name: '-nope' }, 400, 'BAD_REQUEST'],
  ])('answers a tag request with %s in the Harbor envelope', async (_name, body, status, code) => {
    const response = await harbor('POST', '/projects/library/repositories/app/artifacts/v1/tags', body);
    expect(response.status).toBe(status);
    expectSwagger('Errors', response.json);
    expect((response.json as { errors: { code: string; message: string }[] }).errors[0]).toMatchObject({ code });
  });

  it('refuses a JSON body over the 1 MiB limit with 400 in the Harbor envelope, saying what the limit is', async () => {
    const body = JSON.stringify({ name: 'x'.repeat(1024 * 1024) });
    const response = await harbor('POST', '/projects/library/repositories/app/artifacts/v1/tags', body);
    expect(response.status).toBe(400);
    expectSwagger('Errors', response.json);
    expect(response.json).toEqual({
      errors: [{ code: 'BAD_REQUEST', message: `REQUEST_TOO_LARGE: the request body of ${Buffer.byteLength(body)} bytes exceeds the limit of 1048576 bytes (1 MiB) for JSON bodies on /api/v2.0` }],
    });
  });

  it('answers an unknown artifact with 404', async () => {
    const response = await harbor('GET', `/projects/library/repositories/app/artifacts/${sha256('nope')}`);
    expect(response.status).toBe(404);
    expect(response.json).toMatchObject({ errors: [{ code: 'NOT_FOUND' }] });
  });

  it('deletes an artifact and then a whole repository', async () => {
    const deleted = await harbor('DELETE', `/projects/library/repositories/team%2Fapp/artifacts/${nested.digest}`);
    expect(deleted.status).toBe(200);
    expect((await registry.call(`/v2/library/team/app/manifests/${nested.digest}`)).status).toBe(404);
    const repository = await harbor('DELETE', '/projects/library/repositories/chart');
    expect(repository.status).toBe(200);
    expect((await harbor('GET', '/projects/library/repositories/chart')).status).toBe(404);
    expect((await registry.call('/v2/library/chart/tags/list')).status).toBe(404);
  });
});

describe('a registry without a scanner', () => {
  it('answers a scan request with a clear 503', async () => {
    const bare = await startTestRegistry();
    try {
      await pushImage(bare, 'library/app', 'v1');
      const response = await bare.call('/api/v2.0/projects/library/repositories/app/artifacts/v1/scan', { method: 'POST' });
      expect(response.status).toBe(503);
      const body = (await response.json()) as { errors: { code: string; message: string }[] };
      expect(body.errors[0]?.code).toBe('SERVICE_UNAVAILABLE');
      expect(body.errors[0]?.message).toMatch(/no scanner is configured/);
    } finally {
      await bare.close();
    }
  });
});
