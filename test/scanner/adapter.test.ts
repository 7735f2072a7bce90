import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import { NATIVE_REPORT_MIME, VULNERABILITY_REPORT_MIME } from '../../src/harbor/report.js';
import { buildServer, listen, type HttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { parseImageReference } from '../../src/policy/image-reference.js';
import { ADAPTER_ERROR_MIME, METADATA_MIME, SCAN_REQUEST_MIME, SCAN_RESPONSE_MIME } from '../../src/scanner/routes.js';
import { createBuiltinVerdictSource, httpDigestVerdicts } from '../../src/verdicts/builtin-source.js';
import { testTls, trustingAgent } from '../helpers/tls.js';
import { HTPASSWD_USER, startDistribution, type Distribution } from '../trivy-standin/distribution.js';
import { example, specErrors } from './adapter-spec.js';
import { scannerHarness, type Harness, type HarnessOptions } from './harness.js';

let registry: Distribution;
const images: Record<string, { digest: string }> = {};
const credentials = { issueRobotCredential: async () => HTPASSWD_USER };
const dispatcher = trustingAgent(testTls().ca.cert);

beforeAll(async () => {
  registry = await startDistribution({ auth: true });
  images.photon = await registry.push('team/photon', '3.0', { labels: { 'portcullis.test/trivy-report': 'photon-30' } });
  images.broken = await registry.push('team/broken', '1.0', { labels: { 'portcullis.test/trivy-mode': 'fail' } });
  images.chart = await registry.push('charts/app', '0.1.0', { configMediaType: 'application/vnd.cncf.helm.config.v1+json' });
});
afterAll(async () => registry?.close());

const cleanups: (() => Promise<void>)[] = [];
let lastCleanup: (() => Promise<void>) | undefined;
let sharedCleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(options: Partial<HarnessOptions> = {}) {
  const harness: Harness = await scannerHarness({ registryHost: registry.host, caPem: testTls().ca.cert, credentials, ...options });
  await harness.start();
  const app: HttpServer = buildServer({ logger: silentLogger(), tls: testTls().serving, readiness: harness.readiness });
  await app.register(harness.adapterRoutes);
  const { port } = await listen(app, '127.0.0.1', 0);
  const cleanup = async () => {
    await app.close();
    await harness.dispose();
  };
  cleanups.push(cleanup);
  lastCleanup = cleanup;
  const base = `https://127.0.0.1:${port}`;
  const call = (path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) =>
    fetch(`${base}${path}`, { ...init, dispatcher, redirect: 'manual' });
  return { harness, call, base };
}

const scanBody = (repository: string, digest: string, url = `https://${registry.host}`, authorization?: string) =>
  JSON.stringify({ registry: { url, ...(authorization ? { authorization } : {}) }, artifact: { repository, digest, mime_type: 'application/vnd.oci.image.manifest.v1+json' } });
const harborPost = { method: 'POST', headers: { 'content-type': SCAN_REQUEST_MIME } };

describe('the Harbor scanner-adapter API v1.1', () => {
  // One scanner for the tests that need no special configuration (each harness probes Trivy).
  let shared: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    shared = await serve();
    // Closed after this describe block, not after each test.
    cleanups.splice(cleanups.length - 1, 1);
    sharedCleanup = lastCleanup;
  });
  afterAll(async () => {
    await sharedCleanup?.();
  });
  it('serves metadata that matches the spec and the shape of harbor-scanner-trivy', async () => {
    const { call } = shared;
    const response = await call('/api/v1/metadata');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(METADATA_MIME);
    const body = (await response.json()) as Record<string, unknown>;
    expect(specErrors('ScannerAdapterMetadata', body)).toEqual([]);
    const reference = example('metadata-response-200.json') as { scanner: object; capabilities: { consumes_mime_types: string[] }[] };
    expect(Object.keys(body.scanner as object).sort()).toEqual(Object.keys(reference.scanner).sort());
    expect(body).toMatchObject({
      scanner: { name: 'Trivy', vendor: 'Aqua Security', version: '0.99.0-portcullis-standin' },
      capabilities: [{ consumes_mime_types: reference.capabilities[0]?.consumes_mime_types, produces_mime_types: [VULNERABILITY_REPORT_MIME, NATIVE_REPORT_MIME] }],
      properties: {
        'harbor.scanner-adapter/scanner-type': 'os-package-vulnerability',
        'harbor.scanner-adapter/vulnerability-database-updated-at': '2026-01-01T00:00:00Z',
        'portcullis.io/ready': 'true',
      },
    });
  });

  it('accepts a scan (202 {id}), answers 302 with Refresh-After while it runs, then 200 with a spec-valid report', async () => {
    const { harness, call } = await serve({ control: { mode: 'slow' } });
    const accepted = await call('/api/v1/scan', { ...harborPost, body: scanBody('team/photon', images.photon!.digest) });
    expect(accepted.status).toBe(202);
    expect(accepted.headers.get('content-type')).toBe(SCAN_RESPONSE_MIME);
    const { id } = (await accepted.json()) as { id: string };
    expect(specErrors('ScanResponse', { id })).toEqual([]);
    const again = await call('/api/v1/scan', { ...harborPost, body: scanBody('team/photon', images.photon!.digest) });
    expect(((await again.json()) as { id: string }).id).toBe(id);

    const pending = await call(`/api/v1/scan/${id}/report`, { headers: { accept: VULNERABILITY_REPORT_MIME } });
    expect(pending.status).toBe(302);
    expect(pending.headers.get('refresh-after')).toBe('5');
    expect(pending.headers.get('location')).toBe(`/api/v1/scan/${id}/report`);

    await harness.scanner.queue.settled(id);
    const done = await call(`/api/v1/scan/${id}/report`, { headers: { accept: VULNERABILITY_REPORT_MIME } });
    expect(done.status).toBe(200);
    expect(done.headers.get('content-type')).toBe(VULNERABILITY_REPORT_MIME);
    const report = await done.json();
    expect(specErrors('HarborVulnerabilityReport', report)).toEqual([]);
    expect(report).toMatchObject({ severity: 'Critical', artifact: { repository: 'team/photon', digest: images.photon!.digest } });
    const native = await call(`/api/v1/scan/${id}/report`, { headers: { accept: NATIVE_REPORT_MIME } });
    expect(native.headers.get('content-type')).toBe(NATIVE_REPORT_MIME);
  });

  it('answers 500 with the adapter error body for a failed scan and for a chart, 404 for an unknown id, 415 for an unknown Accept', async () => {
    const { harness, call } = shared;
    const failed = (await (await call('/api/v1/scan', { ...harborPost, body: scanBody('team/broken', images.broken!.digest) })).json()) as { id: string };
    const chart = (await (await call('/api/v1/scan', { ...harborPost, body: scanBody('charts/app', images.chart!.digest) })).json()) as { id: string };
    await harness.scanner.queue.settled(failed.id);
    await harness.scanner.queue.settled(chart.id);
    for (const [id, message] of [[failed.id, 'corrupt layer'], [chart.id, 'not a container image']] as const) {
      const response = await call(`/api/v1/scan/${id}/report`);
      expect(response.status).toBe(500);
      expect(response.headers.get('content-type')).toBe(ADAPTER_ERROR_MIME);
      const body = await response.json();
      expect(specErrors('ErrorResponse', body)).toEqual([]);
      expect((body as { error: { message: string } }).error.message).toContain(message);
    }
    const unknown = await call('/api/v1/scan/no-such-job/report');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: { message: 'scan job no-such-job not found' } });
    const unacceptable = await call(`/api/v1/scan/${failed.id}/report`, { headers: { accept: 'application/vnd.scanner.adapter.vuln.report.raw' } });
    expect(unacceptable.status).toBe(415);
  });

  it.each([
    ['unparseable JSON', 'This is not JSON', 400, 'unmarshalling scan request: Unexpected token'],
    ['a request without registry.url', JSON.stringify({ registry: {}, artifact: { repository: 'a/b', digest: `sha256:${'0'.repeat(64)}` } }), 422, 'missing registry.url'],
    ['a non-string digest', JSON.stringify({ registry: { url: 'https://r.example' }, artifact: { repository: 'a/b', digest: 7 } }), 400, 'unmarshalling scan request: artifact.digest must be a string, got 7'],
    ['a malformed digest', JSON.stringify({ registry: { url: 'https://r.example' }, artifact: { repository: 'a/b', digest: 'sha256:abc' } }), 422, 'invalid artifact.digest: expected sha256:<64 hex>, got "sha256:abc"'],
    ['a registry URL that is not http(s)', JSON.stringify({ registry: { url: 'ftp://r.example' }, artifact: { repository: 'a/b', digest: `sha256:${'0'.repeat(64)}` } }), 422, 'invalid registry.url: expected an http(s) URL, got "ftp://r.example"'],
  ])('rejects %s like harbor-scanner-trivy', async (_name, body, status, message) => {
    const { call } = shared;
    const response = await call('/api/v1/scan', { ...harborPost, body });
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toBe(ADAPTER_ERROR_MIME);
    const parsed = (await response.json()) as { error: { message: string } };
    expect(specErrors('ErrorResponse', parsed)).toEqual([]);
    expect(parsed.error.message.startsWith(message)).toBe(true);
  });

  it('answers the missing-URL case byte for byte like harbor-scanner-trivy', async () => {
    const { call } = shared;
    const request = example('scan-request.json') as { registry: Record<string, unknown> };
    delete request.registry.url;
    const response = await call('/api/v1/scan', { ...harborPost, body: JSON.stringify(request) });
    expect(await response.json()).toEqual(example('error-422-invalid-request-missing-registry-url.json'));
    expect(specErrors('ScanRequest', example('scan-request.json'))).toEqual([]);
  });

  it('scans an artifact of another registry with the Authorization Harbor sent, through Trivy environment variables', async () => {
    const { harness, call } = await serve({ registryHost: 'portcullis.invalid:5000' });
    const basic = `Basic ${Buffer.from(`${HTPASSWD_USER.username}:${HTPASSWD_USER.password}`).toString('base64')}`;
    const { id } = (await (await call('/api/v1/scan', { ...harborPost, body: scanBody('team/photon', images.photon!.digest, `https://${registry.host}`, basic) })).json()) as { id: string };
    expect((await harness.scanner.queue.settled(id)).status).toBe('succeeded');
    expect(harness.invocations().at(-1)).toMatchObject({ username: HTPASSWD_USER.username, passwordSet: true });
    const { id: bearerId } = (await (await call('/api/v1/scan', { ...harborPost, body: scanBody('team/broken', images.broken!.digest, `https://${registry.host}`, 'Bearer JWTTOKENGOESHERE') })).json()) as { id: string };
    const settled = await harness.scanner.queue.settled(bearerId);
    expect(settled.status).toBe('failed');
    expect(harness.invocations().at(-1)).toMatchObject({ username: null, tokenSet: true });
  });

  it('requires the bearer token when scanner.apiToken is set', async () => {
    const token = 'a-very-long-scanner-api-token';
    const { call } = await serve({ config: { apiToken: token } });
    const denied = await call('/api/v1/metadata');
    expect(denied.status).toBe(401);
    expect(denied.headers.get('content-type')).toBe(ADAPTER_ERROR_MIME);
    expect((await call('/api/v1/metadata', { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);
    expect((await call('/api/v1/metadata', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await call('/healthz')).status).toBe(200);
    // The router decodes percent-escapes to reach the route; the token check must not be fooled by them.
    for (const path of ['/%61pi/v1/metadata', '/api/v1/portcullis/systeminfo', '/%61pi/v1/portcullis/systeminfo']) {
      expect((await call(path)).status, path).toBe(401);
    }
    expect((await call('/%61pi/v1/scan', { ...harborPost, body: scanBody('team/photon', images.photon!.digest) })).status).toBe(401);
  });
});

describe('the built-in verdict source over HTTP', () => {
  it('reads verdicts from the scanner role, queues a scan for an unscanned digest, and validates what comes back', async () => {
    const { harness, base } = await serve();
    const source = createBuiltinVerdictSource({
      verdicts: httpDigestVerdicts({ scannerUrl: base, dispatcher }),
      resolver: { resolve: async (repository, tag) => (repository === 'team/photon' && tag === '3.0' ? images.photon!.digest : undefined) },
      registryHosts: [registry.host],
    });
    const reference = parseImageReference(`${registry.host}/team/photon:3.0`);
    const options = { signal: new AbortController().signal, triggerScan: true };
    const digest = await source.resolveDigest(reference, options);
    expect(digest).toBe(images.photon!.digest);
    expect(await source.resolveDigest(parseImageReference(`${registry.host}/team/photon:nope`), options)).toBeUndefined();
    expect(await source.verdict(reference, digest!, options)).toEqual({ state: 'unscanned', digest, reason: 'never scanned; a scan was queued' });
    const job = await harness.scanner.store.latestJob(digest!);
    await harness.scanner.queue.settled(job!.id);
    const verdict = await source.verdict(reference, digest!, options);
    expect(verdict).toMatchObject({ state: 'scanned', digest, findings: expect.arrayContaining([expect.objectContaining({ severity: 'Critical' })]) });
    expect(await source.verdict(parseImageReference('docker.io/library/nginx:1'), digest!, options)).toMatchObject({ state: 'unsupported' });
  });

  it('rejects when the deadline passes and when the scanner cannot be reached', async () => {
    const { base } = await serve();
    const never = { verdict: () => new Promise<never>(() => {}) };
    const source = createBuiltinVerdictSource({ verdicts: never, resolver: { resolve: async () => undefined }, registryHosts: [] });
    const controller = new AbortController();
    const pending = source.verdict(parseImageReference(`${registry.host}/team/photon@${images.photon!.digest}`), images.photon!.digest, { signal: controller.signal, triggerScan: false });
    controller.abort(new Error('deadline'));
    await expect(pending).rejects.toThrow('builtin verdict source: deadline passed (deadline)');
    const unreachable = httpDigestVerdicts({ scannerUrl: 'https://127.0.0.1:1', dispatcher });
    await expect(unreachable.verdict({ repository: 'team/photon', digest: images.photon!.digest, triggerScan: false }, new AbortController().signal)).rejects.toThrow(/scanner https:\/\/127.0.0.1:1 unreachable/);
    const wrongPath = httpDigestVerdicts({ scannerUrl: `${base}/nothing-here`, dispatcher });
    await expect(wrongPath.verdict({ repository: 'team/photon', digest: images.photon!.digest, triggerScan: false }, new AbortController().signal)).rejects.toThrow(/answered 404/);
  });
});
