import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmission, type Admission } from '../../src/admission/admission.js';
import type { DecisionRecord, DecisionSink } from '../../src/admission/decision.js';
import { applyPatch, type PatchOperation } from '../../src/admission/json-patch.js';
import { createAdmissionKube } from '../../src/admission/kube-port.js';
import { ORIGINAL_IMAGES_ANNOTATION } from '../../src/admission/mutate.js';
import { defaultConfig } from '../../src/config/schema.js';
import { createMetricsRegistry } from '../../src/http/metrics.js';
import { Readiness } from '../../src/http/readiness.js';
import { listen, type HttpServer } from '../../src/http/server.js';
import { createKubeClient } from '../../src/kube/client.js';
import { silentLogger } from '../../src/log/logger.js';
import { createPolicyStore, type PolicyStore, type PolicyStoreStatus } from '../../src/policy/store.js';
import type { Finding } from '../../src/policy/types.js';
import { ScriptedSource, admissionReview, workload } from '../helpers/admission.js';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-apiserver.js';
import { testTls, trustingAgent } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';

const fixtures = new URL('../fixtures/admission/', import.meta.url);
const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

const critical: Finding = { id: 'CVE-2021-3711', package: 'openssl', installedVersion: '1.1.1k', fixedVersion: '1.1.1l', severity: 'Critical' };
const high: Finding = { id: 'CVE-2022-0001', package: 'zlib', installedVersion: '1.2.11', fixedVersion: '1.2.12', severity: 'High' };
const scanned = (findings: Finding[]) => ({ state: 'scanned' as const, scannedAt: new Date().toISOString(), findings });

const CLEAN = 'registry.example.com/team/clean:1';
const CRITICAL = 'registry.example.com/team/critical:1';
const HIGH = 'registry.example.com/team/high:1';
const OTHER = 'other.example.com/x/y:2';
const QUAY = 'quay.io/x/z:1';

class CollectingSink implements DecisionSink {
  readonly records: DecisionRecord[] = [];
  readonly #waiters = new Map<string, (record: DecisionRecord) => void>();
  record(decision: DecisionRecord): void {
    this.records.push(decision);
    this.#waiters.get(`${decision.webhook} ${decision.uid}`)?.(decision);
  }
  waitFor(webhook: string, uid: string): Promise<DecisionRecord> {
    const found = this.records.find((record) => record.webhook === webhook && record.uid === uid);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.#waiters.set(`${webhook} ${uid}`, resolve));
  }
}

interface ReviewResponse {
  apiVersion: string;
  kind: string;
  response: {
    uid: string;
    allowed: boolean;
    status?: { code: number; message: string };
    warnings?: string[];
    auditAnnotations?: Record<string, string>;
    patchType?: string;
    patch?: string;
  };
}

let policiesDir: { path: string; remove(): void };
let store: PolicyStore;
let kube: KubeApiServer;
let admission: Admission;
let server: HttpServer;
let base: string;
const source = new ScriptedSource();
const sink = new CollectingSink();
const metrics = createMetricsRegistry({ defaultMetrics: false });
const readiness = new Readiness();
const dispatcher = trustingAgent(testTls().ca.cert);

beforeAll(async () => {
  policiesDir = tempDir('portcullis-admission-policies-');
  cpSync(new URL('policies/', fixtures), policiesDir.path, { recursive: true });
  store = createPolicyStore({ dir: policiesDir.path, logger: silentLogger(), metrics, debounceMs: 20 });
  await store.start();
  source
    .set(CLEAN, digest(1), scanned([]))
    .set(CRITICAL, digest(2), scanned([critical, high]))
    .set(HIGH, digest(3), scanned([high]))
    .set(OTHER, digest(4), scanned([]))
    .set(QUAY, digest(5), scanned([]));
  kube = await startKubeApiServer();
  for (const name of ['example-pull', 'other-pull']) {
    kube.objects.put({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: 'portcullis' },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from(`{"auths":{"${name}":{}}}`).toString('base64') },
    });
  }
  const config = { ...defaultConfig('/nonexistent').webhook, deadlineMarginMs: 1000 };
  admission = createAdmission({
    config,
    logger: silentLogger(),
    metrics,
    readiness,
    policies: store,
    verdicts: source,
    kube: createAdmissionKube(createKubeClient(kube.kubeConfig())),
    decisions: sink,
    webhooks: { validate: { path: '/validate', timeoutSeconds: 2, file: 'test' }, mutate: { path: '/mutate', timeoutSeconds: 2, file: 'test' } },
    tls: testTls().serving,
  });
  server = await admission.buildServer();
  const { port } = await listen(server, '127.0.0.1', 0);
  base = `https://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server?.close();
  await store?.close();
  await kube?.close();
  policiesDir?.remove();
});

async function call(path: string, body: string, contentType = 'application/json') {
  return fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': contentType }, dispatcher });
}

async function review(webhook: 'validate' | 'mutate', request: Record<string, unknown>): Promise<ReviewResponse> {
  const response = await call(`/${webhook}`, JSON.stringify(request));
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('application/json');
  return (await response.json()) as ReviewResponse;
}

function patchOf(answer: ReviewResponse): PatchOperation[] {
  if (answer.response.patch === undefined) return [];
  expect(answer.response.patchType).toBe('JSONPatch');
  return JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as PatchOperation[];
}

const pod = (images: string[], extra: Parameters<typeof workload>[1] extends infer T ? Partial<T> : never = {}) =>
  workload('Pod', { containers: images, ...extra });

describe('validating webhook over HTTPS', () => {
  it('allows a clean image: uid echoed, same apiVersion and kind, no status, no patch', async () => {
    const request = admissionReview({ object: pod([CLEAN]), uid: 'uid-allow' });
    const answer = await review('validate', request);
    expect(answer).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'uid-allow', allowed: true } });
    const record = await sink.waitFor('validate', 'uid-allow');
    expect(record).toMatchObject({ decision: 'allow', mode: 'none', namespace: 'team-a', kind: 'Pod', operation: 'CREATE', dryRun: false });
    expect(record.images).toEqual([{ image: CLEAN, pointer: '/spec/containers/0/image', digest: digest(1) }]);
    expect(record.user).toEqual({ username: 'alice@example.com', groups: ['system:authenticated', 'developers'] });
  });

  it('denies a Critical vulnerability with 403 and a message naming policy, image, CVE and fix', async () => {
    const answer = await review('validate', admissionReview({ object: workload('Deployment', { containers: [CRITICAL] }), uid: 'uid-deny' }));
    expect(answer.response.allowed).toBe(false);
    expect(answer.response.status?.code).toBe(403);
    const message = answer.response.status?.message ?? '';
    expect(message).toContain('[deny-critical/vulnerabilities]');
    expect(message).toContain(CRITICAL);
    expect(message).toContain('CVE-2021-3711 (openssl 1.1.1k → 1.1.1l)');
    expect(answer.response.patchType).toBeUndefined();
    const record = await sink.waitFor('validate', 'uid-deny');
    expect(record).toMatchObject({ decision: 'deny', mode: 'deny', kind: 'Deployment' });
    expect(record.results.some((result) => result.policy === 'deny-critical' && result.status === 'fail' && result.pointer === '/spec/template/spec/containers/0/image')).toBe(true);
  });

  it('admits a High vulnerability with warnings under 120 characters', async () => {
    const answer = await review('validate', admissionReview({ object: pod([HIGH]), uid: 'uid-warn' }));
    expect(answer.response.allowed).toBe(true);
    expect(answer.response.warnings?.length).toBeGreaterThan(0);
    expect(answer.response.warnings?.some((warning) => warning.includes('warn-high'))).toBe(true);
    for (const warning of answer.response.warnings ?? []) expect(warning.length).toBeLessThan(120);
    expect((await sink.waitFor('validate', 'uid-warn')).mode).toBe('warn');
  });

  it('admits an audit-mode violation silently, with audit annotations', async () => {
    const answer = await review('validate', admissionReview({ object: pod([QUAY], { namespace: 'audit-a' }), uid: 'uid-audit' }));
    expect(answer.response.allowed).toBe(true);
    expect(answer.response.warnings).toBeUndefined();
    expect(Object.keys(answer.response.auditAnnotations ?? {}).length).toBeGreaterThan(0);
    expect(JSON.stringify(answer.response.auditAnnotations)).toContain('audit-registries');
    expect((await sink.waitFor('validate', 'uid-audit')).mode).toBe('audit');
  });

  it('evaluates UPDATE against the new object', async () => {
    const answer = await review(
      'validate',
      admissionReview({ operation: 'UPDATE', object: workload('StatefulSet', { containers: [CRITICAL] }), oldObject: workload('StatefulSet', { containers: [CLEAN] }) }),
    );
    expect(answer.response.allowed).toBe(false);
    expect(answer.response.status?.message).toContain('[deny-critical/vulnerabilities]');
  });

  it.each(['Pod', 'Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'ReplicationController'])(
    'finds the pod spec of a %s and denies its Critical image',
    async (kind) => {
      const uid = `uid-kind-${kind}`;
      const answer = await review('validate', admissionReview({ object: workload(kind, { containers: [CLEAN], initContainers: [CRITICAL] }), uid }));
      expect(answer.response.allowed).toBe(false);
      const record = await sink.waitFor('validate', uid);
      const specPointer = kind === 'Pod' ? '/spec' : kind === 'CronJob' ? '/spec/jobTemplate/spec/template/spec' : '/spec/template/spec';
      expect(record.images.map((image) => image.pointer)).toEqual([`${specPointer}/initContainers/0/image`, `${specPointer}/containers/0/image`]);
    },
  );

  it('checks ephemeral containers added through the pods/ephemeralcontainers subresource', async () => {
    const object = pod([CLEAN], { ephemeralContainers: [CRITICAL] });
    const answer = await review('validate', admissionReview({ operation: 'UPDATE', object, oldObject: pod([CLEAN]), subResource: 'ephemeralcontainers', uid: 'uid-ephemeral' }));
    expect(answer.response.allowed).toBe(false);
    expect((await sink.waitFor('validate', 'uid-ephemeral')).images.map((image) => image.pointer)).toContain('/spec/ephemeralContainers/0/image');
  });

  it.each([
    ['DELETE', { operation: 'DELETE' as const, object: null, oldObject: pod([CRITICAL]) }],
    ['CONNECT', { operation: 'CONNECT' as const, object: null, subResource: 'exec' }],
    ['an excluded namespace', { object: pod([CRITICAL], { namespace: 'kube-system' }) }],
    ['a kind without a pod spec', { object: workload('ConfigMap', { containers: [CRITICAL] }) }],
    ['a status update', { operation: 'UPDATE' as const, object: pod([CRITICAL]), subResource: 'status' }],
  ])('allows %s untouched, without evaluating or recording', async (_name, input) => {
    const uid = `uid-untouched-${_name}`;
    for (const webhook of ['validate', 'mutate'] as const) {
      const answer = await review(webhook, admissionReview({ ...input, uid }));
      expect(answer.response).toEqual({ uid, allowed: true });
    }
    expect(sink.records.find((record) => record.uid === uid)).toBeUndefined();
  });

  it('denies an image reference that cannot be parsed, saying where it is', async () => {
    const answer = await review('validate', admissionReview({ object: pod([CLEAN, 'Registry.example.com/UPPER/case:1']) }));
    expect(answer.response.allowed).toBe(false);
    expect(answer.response.status?.message).toMatch(/\[portcullis\/imageReference\] container app-1 \(\/spec\/containers\/1\/image\): .*must be lower-case/);
  });
});

describe('mutating webhook: pull secrets and digest pinning', () => {
  it('adds the pull secret of a single registry and copies the Secret into the namespace', async () => {
    const object = pod([CLEAN], { namespace: 'team-copy' });
    const answer = await review('mutate', admissionReview({ object }));
    expect(answer.response.allowed).toBe(true);
    expect(patchOf(answer)).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'example-pull' }] }]);
    const copied = kube.objects.get('secrets', 'example-pull', 'team-copy');
    expect(copied?.data).toEqual(kube.objects.get('secrets', 'example-pull', 'portcullis')?.data);
    expect(copied?.type).toBe('kubernetes.io/dockerconfigjson');
  });

  it('adds one secret per registry, without duplicates, for images of several registries', async () => {
    const object = workload('Deployment', { containers: [CLEAN, OTHER, HIGH], initContainers: ['deep.other.example.com/a/b:1'], namespace: 'team-multi' });
    const patch = patchOf(await review('mutate', admissionReview({ object })));
    const golden = JSON.parse(readFileSync(new URL('golden/patch-several-registries.json', fixtures), 'utf8')) as unknown;
    expect(patch).toEqual(golden);
    expect(kube.objects.get('secrets', 'other-pull', 'team-multi')).toBeDefined();
  });

  it('keeps secrets already present and appends only the missing one', async () => {
    const object = pod([CLEAN, OTHER], { imagePullSecrets: ['mine', 'example-pull'] });
    expect(patchOf(await review('mutate', admissionReview({ object })))).toEqual([{ op: 'add', path: '/spec/imagePullSecrets/-', value: { name: 'other-pull' } }]);
  });

  it('sends no patch at all when every secret is already there', async () => {
    const answer = await review('mutate', admissionReview({ object: pod([CLEAN], { imagePullSecrets: ['example-pull'] }), uid: 'uid-nopatch' }));
    expect(answer.response).toEqual({ uid: 'uid-nopatch', allowed: true });
  });

  it('is idempotent when re-invoked on its own result', async () => {
    const object = workload('CronJob', { containers: [CLEAN, OTHER] });
    const first = patchOf(await review('mutate', admissionReview({ object })));
    expect(first).toEqual([{ op: 'add', path: '/spec/jobTemplate/spec/template/spec/imagePullSecrets', value: [{ name: 'example-pull' }, { name: 'other-pull' }] }]);
    const patched = applyPatch(object, first);
    const again = await review('mutate', admissionReview({ object: patched, operation: 'CREATE' }));
    expect(again.response.patch).toBeUndefined();
    expect(again.response.patchType).toBeUndefined();
  });

  it('still adds the reference, with a warning, when the source Secret cannot be copied', async () => {
    const saved = kube.objects.get('secrets', 'other-pull', 'portcullis');
    kube.objects.delete('secrets', 'other-pull', 'portcullis');
    try {
      const answer = await review('mutate', admissionReview({ object: pod([OTHER], { namespace: 'team-nosource' }) }));
      expect(patchOf(answer)).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'other-pull' }] }]);
      expect(answer.response.warnings).toEqual(['pull secret other-pull could not be copied into team-nosource; pulls may fail']);
    } finally {
      if (saved) kube.objects.put(saved);
    }
  });

  it('on dry run answers the same patch but copies no Secret and requests no scan', async () => {
    const writesBefore = kube.writes().length;
    const object = pod([CLEAN, 'registry.example.com/team/never-scanned:1'], { namespace: 'team-dry' });
    const answer = await review('mutate', admissionReview({ object, dryRun: true, uid: 'uid-dry' }));
    expect(patchOf(answer)).toEqual([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'example-pull' }] }]);
    expect(kube.objects.get('secrets', 'example-pull', 'team-dry')).toBeUndefined();
    const validated = await review('validate', admissionReview({ object, dryRun: true, uid: 'uid-dry' }));
    expect(validated.response.allowed).toBe(true);
    expect(source.scanRequests).toEqual([]);
    expect(kube.writes().length).toBe(writesBefore);
    expect((await sink.waitFor('validate', 'uid-dry')).dryRun).toBe(true);
    // The same request without dry run does trigger the scan.
    await review('validate', admissionReview({ object: pod(['registry.example.com/team/never-scanned:2']) }));
    expect(source.scanRequests).toHaveLength(1);
  });

  it('pins Pod images to the verified digest and keeps the original in an escaped annotation key', async () => {
    const object = pod([CLEAN, OTHER], { namespace: 'pinned-a', annotations: { team: 'a' } });
    const patch = patchOf(await review('mutate', admissionReview({ object })));
    expect(patch).toEqual([
      { op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'example-pull' }, { name: 'other-pull' }] },
      { op: 'replace', path: '/spec/containers/0/image', value: `registry.example.com/team/clean@${digest(1)}` },
      { op: 'replace', path: '/spec/containers/1/image', value: `other.example.com/x/y@${digest(4)}` },
      { op: 'add', path: '/metadata/annotations/portcullis.io~1original-images', value: JSON.stringify({ 'app-0': CLEAN, 'app-1': OTHER }) },
    ]);
    const patched = applyPatch(object, patch);
    expect((patched.metadata as { annotations: Record<string, string> }).annotations[ORIGINAL_IMAGES_ANNOTATION]).toContain(CLEAN);
    // Re-invoked on the pinned pod: nothing left to do, and validation checks the pinned digest.
    expect(patchOf(await review('mutate', admissionReview({ object: patched })))).toEqual([]);
    expect((await review('validate', admissionReview({ object: patched }))).response.allowed).toBe(true);
  });

  it('pins only Pods, never the templates GitOps tools manage', async () => {
    const patch = patchOf(await review('mutate', admissionReview({ object: workload('Deployment', { containers: [CLEAN], namespace: 'pinned-a' }) })));
    expect(patch.map((operation) => operation.op)).toEqual(['add']);
  });

  it('adds the annotations map when the pod has none', async () => {
    const patch = patchOf(await review('mutate', admissionReview({ object: pod([CLEAN], { namespace: 'pinned-b', imagePullSecrets: ['example-pull'] }) })));
    expect(patch).toEqual([
      { op: 'replace', path: '/spec/containers/0/image', value: `registry.example.com/team/clean@${digest(1)}` },
      { op: 'add', path: '/metadata/annotations', value: { [ORIGINAL_IMAGES_ANNOTATION]: JSON.stringify({ 'app-0': CLEAN }) } },
    ]);
  });
});

describe('bad requests get a JSON error, never a crash or a hang', () => {
  it.each([
    ['malformed JSON', '{"apiVersion":', 'application/json', 400, 'REQUEST_MALFORMED', /JSON/],
    ['a wrong content type', '<AdmissionReview/>', 'application/xml', 415, 'UNSUPPORTED_MEDIA_TYPE', /content-type/i],
    ['text/plain', '{}', 'text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE', /content-type/i],
    ['an empty body', '', 'application/json', 400, 'REQUEST_MALFORMED', /empty/i],
    ['a review without request', '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', 'application/json', 400, 'REQUEST_MALFORMED', /^AdmissionReview \/request: is required$/],
    [
      'a request without uid',
      JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE' } }),
      'application/json',
      400,
      'REQUEST_MALFORMED',
      /^AdmissionReview \/request\/uid: is required$/,
    ],
    [
      'an unknown operation',
      JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'x', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'PATCH' } }),
      'application/json',
      400,
      'REQUEST_MALFORMED',
      /\/request\/operation: must be equal to one of the allowed values \("CREATE", "UPDATE", "DELETE", "CONNECT"\), got "PATCH"/,
    ],
    ['a body over 3 MiB', JSON.stringify({ pad: 'x'.repeat(3 * 1024 * 1024) }), 'application/json', 413, 'REQUEST_TOO_LARGE', /body/i],
  ])('answers %s', async (_name, body, contentType, status, code, message) => {
    const response = await call('/validate', body, contentType);
    expect(response.status).toBe(status);
    const error = (await response.json()) as { error: { code: string; message: string } };
    expect(error.error.code).toBe(code);
    expect(error.error.message).toMatch(message);
    // Still serving.
    expect((await review('validate', admissionReview({ object: pod([CLEAN]) }))).response.allowed).toBe(true);
  });

  it('counts requests by webhook and decision, and policy results by policy and result', async () => {
    const text = await (await fetch(`${base}/metrics`, { dispatcher })).text();
    expect(text).toMatch(/portcullis_admission_requests_total\{webhook="validate",decision="deny"\} [1-9]/);
    expect(text).toMatch(/portcullis_admission_requests_total\{webhook="validate",decision="invalid"\} [1-9]/);
    expect(text).toMatch(/portcullis_admission_duration_seconds_bucket\{le="[0-9.]+",webhook="mutate",decision="allow"\}/);
    expect(text).toMatch(/portcullis_policy_results_total\{policy="deny-critical",result="fail"\} [1-9]/);
  });
});

describe('deadlines and policy changes while serving', () => {
  it('answers before the timeout when the verdict source hangs, as each policy says', async () => {
    source.hang = true;
    try {
      const started = Date.now();
      const [lenient, strict] = await Promise.all([
        review('validate', admissionReview({ object: pod(['registry.example.com/team/slow:1'], { namespace: 'team-a' }) })),
        review('validate', admissionReview({ object: pod(['registry.example.com/team/slow:2'], { namespace: 'strict-a' }) })),
      ]);
      const elapsed = Date.now() - started;
      // timeoutSeconds 2 minus a 1 s margin: answered at the 1 s deadline, well before 2 s.
      expect(elapsed).toBeGreaterThanOrEqual(950);
      expect(elapsed).toBeLessThan(2000);
      expect(lenient.response.allowed).toBe(true);
      expect(lenient.response.warnings?.join('\n')).toMatch(/\[deny-critical\/vulnerabilities\] .*did not answer/);
      expect(strict.response.allowed).toBe(false);
      expect(strict.response.status?.message).toMatch(/\[strict-gate\/vulnerabilities\] registry.example.com\/team\/slow:2: .*did not answer before the deadline/);
    } finally {
      source.hang = false;
    }
  });

  it('keeps enforcing the last good set when a broken policy file is dropped in, and says so', async () => {
    const reloaded = (predicate: (status: PolicyStoreStatus) => boolean) =>
      new Promise<PolicyStoreStatus>((resolve) => {
        const stop = store.onReload((status) => {
          if (predicate(status)) {
            stop();
            resolve(status);
          }
        });
      });
    const broken = join(policiesDir.path, 'zz-broken.yaml');
    const rejected = reloaded((status) => !status.ok);
    writeFileSync(broken, 'apiVersion: portcullis.io/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: broken\nspec:\n  action: deny\n  rules:\n    vulnerabilites: {}\n');
    const status = await rejected;
    expect(status.problems[0]?.file).toContain('zz-broken.yaml');

    const answer = await review('validate', admissionReview({ object: pod([CRITICAL]) }));
    expect(answer.response.allowed).toBe(false);
    const ready = await fetch(`${base}/readyz`, { dispatcher });
    const report = (await ready.json()) as { checks: Record<string, { ok: boolean; reason?: string }> };
    expect(report.checks.policies?.reason ?? '').toMatch(/zz-broken|rejected|last good/i);
    const text = await (await fetch(`${base}/metrics`, { dispatcher })).text();
    expect(text).toMatch(/portcullis_policy_set_valid 0/);

    const repaired = reloaded((next) => next.ok);
    rmSync(broken);
    await repaired;
    expect(await (await fetch(`${base}/metrics`, { dispatcher })).text()).toMatch(/portcullis_policy_set_valid 1/);
  });
});

describe('without a valid policy set', () => {
  it('is not ready, denies on validate and leaves objects alone on mutate', async () => {
    const empty = tempDir('portcullis-admission-broken-');
    writeFileSync(join(empty.path, 'bad.yaml'), 'kind: [');
    const brokenStore = createPolicyStore({ dir: empty.path, logger: silentLogger(), watch: false });
    await brokenStore.start();
    const other = createAdmission({
      config: defaultConfig('/nonexistent').webhook,
      logger: silentLogger(),
      metrics: createMetricsRegistry({ defaultMetrics: false }),
      readiness: new Readiness(),
      policies: brokenStore,
      verdicts: undefined,
      decisions: { record: () => undefined },
      webhooks: { validate: { path: '/v', timeoutSeconds: 1, file: 'test' }, mutate: { path: '/m', timeoutSeconds: 1, file: 'test' } },
      tls: testTls().serving,
    });
    const app = await other.buildServer();
    try {
      const { port } = await listen(app, '127.0.0.1', 0);
      const at = (path: string, body?: unknown) =>
        fetch(`https://127.0.0.1:${port}${path}`, body === undefined ? { dispatcher } : { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, dispatcher });
      expect((await at('/readyz')).status).toBe(503);
      const denied = (await (await at('/v', admissionReview({ object: pod([CLEAN]) }))).json()) as ReviewResponse;
      expect(denied.response.allowed).toBe(false);
      expect(denied.response.status?.message).toContain('no valid policy set is loaded');
      const untouched = (await (await at('/m', admissionReview({ object: pod([CLEAN]), uid: 'm' }))).json()) as ReviewResponse;
      expect(untouched.response).toEqual({ uid: 'm', allowed: true });
    } finally {
      await app.close();
      await brokenStore.close();
      empty.remove();
    }
  });
});
