import { createServer, type Server } from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { issueCa } from '../../src/certs/issue.js';
import { AdmissionChain, loadWebhookConfigurations, matchesSelector, pointAt, type WebhookConfiguration } from './admission-chain.js';
import { repoRoot } from './cli.js';
import { testTls } from './tls.js';

/**
 * The harness against a tiny fake webhook server on loopback TLS: each path answers with whatever
 * the test put in `handlers` (an AdmissionReview response, a raw body, or silence).
 */
type Review = { request: { uid: string; object: Record<string, unknown>; oldObject: unknown; operation: string; namespace?: string; dryRun: boolean } };
type Handler = (review: Review) => { response?: Record<string, unknown>; raw?: string; status?: number; hang?: boolean };

const handlers = new Map<string, Handler>();
const seen: { path: string; query: string; review: Review }[] = [];
let server: Server;
let baseUrl: string;
const { ca, serving } = testTls();

const allow: Handler = (review) => ({ response: { uid: review.request.uid, allowed: true } });
const patchWith = (operations: unknown[]): Handler => (review) => ({
  response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(operations)).toString('base64') },
});

beforeAll(async () => {
  server = createServer({ key: serving.key, cert: serving.cert }, (request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'https://x');
      const review = JSON.parse(body) as Review;
      seen.push({ path: url.pathname, query: url.search, review });
      const answer = (handlers.get(url.pathname) ?? allow)(review);
      if (answer.hang) return; // never answers: the caller's timeout must fire
      response.writeHead(answer.status ?? 200, { 'content-type': 'application/json' });
      response.end(answer.raw ?? JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: answer.response }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
afterEach(() => {
  handlers.clear();
  seen.length = 0;
});

function webhook(overrides: Partial<WebhookConfiguration['webhooks'][number]> & { name: string; path: string }) {
  const { path, ...rest } = overrides;
  return {
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    timeoutSeconds: 2,
    failurePolicy: 'Fail' as const,
    clientConfig: { url: `${baseUrl}${path}`, caBundle: Buffer.from(ca.cert).toString('base64') },
    rules: [{ apiGroups: ['', 'apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods', 'deployments'], scope: 'Namespaced' as const }],
    ...rest,
  };
}

function configuration(kind: WebhookConfiguration['kind'], name: string, webhooks: WebhookConfiguration['webhooks']): WebhookConfiguration {
  return { apiVersion: 'admissionregistration.k8s.io/v1', kind, metadata: { name }, webhooks };
}

const pod = (name = 'web', extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'team-a', labels: { app: name } },
  spec: { containers: [{ name: 'app', image: 'registry.example.com/team/app:1.0' }] },
  ...extra,
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function withChain<T>(configurations: WebhookConfiguration[], run: (chain: AdmissionChain) => Promise<T>, namespaces = {}): Promise<T> {
  const chain = new AdmissionChain({ configurations, namespaces });
  try {
    return await run(chain);
  } finally {
    await chain.close();
  }
}

describe('admission chain: answers in kube-apiserver words', () => {
  it('reports a denial as `admission webhook "NAME" denied the request: MESSAGE` with the webhook code', async () => {
    handlers.set('/validate', (review) => ({ response: { uid: review.request.uid, allowed: false, status: { code: 403, message: '[deny-critical] bad image' } } }));
    const result = await withChain([configuration('ValidatingWebhookConfiguration', 'v', [webhook({ name: 'validate.example.io', path: '/validate' })])], (chain) => chain.admit({ object: pod() }));
    expect(result).toMatchObject({ allowed: false, code: 403, message: 'admission webhook "validate.example.io" denied the request: [deny-critical] bad image' });
  });

  it('says "without explanation" when a denial carries no message, and raises codes below 400 to 400', async () => {
    handlers.set('/validate', (review) => ({ response: { uid: review.request.uid, allowed: false, status: { code: 200 } } }));
    const result = await withChain([configuration('ValidatingWebhookConfiguration', 'v', [webhook({ name: 'v.example.io', path: '/validate' })])], (chain) => chain.admit({ object: pod() }));
    expect(result).toMatchObject({ allowed: false, code: 400, message: 'admission webhook "v.example.io" denied the request without explanation' });
  });

  it('sends an AdmissionReview v1 with the apiserver fields and ?timeout= on the URL', async () => {
    await withChain([configuration('ValidatingWebhookConfiguration', 'v', [webhook({ name: 'v.example.io', path: '/validate', timeoutSeconds: 7 })])], (chain) =>
      chain.admit({ object: pod(), dryRun: true }),
    );
    expect(seen[0]?.query).toBe('?timeout=7s');
    expect(seen[0]?.review).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'team-a', name: 'web', operation: 'CREATE', dryRun: true, oldObject: null },
    });
  });

  it.each([
    ['a response whose uid differs', (review: Review) => ({ response: { uid: `${review.request.uid}x`, allowed: true } }), /expected response.uid=/],
    ['a body that is not JSON', () => ({ raw: 'oops' }), /received invalid webhook response/],
    ['an HTTP 500', () => ({ status: 500, raw: 'boom' }), /an error on the server \("boom"\)/],
    ['a patch from a validating webhook', patchWith([{ op: 'add', path: '/metadata/labels/x', value: 'y' }]), /validating webhook may not return response.patch/],
  ])('turns %s into a failed call subject to the failurePolicy', async (_name, handler, pattern) => {
    handlers.set('/validate', handler as Handler);
    const configs = (policy: 'Fail' | 'Ignore') => [configuration('ValidatingWebhookConfiguration', 'v', [webhook({ name: 'v.example.io', path: '/validate', failurePolicy: policy })])];
    const closed = await withChain(configs('Fail'), (chain) => chain.admit({ object: pod() }));
    expect(closed).toMatchObject({ allowed: false, code: 500 });
    if (!closed.allowed) expect(closed.message).toMatch(/^Internal error occurred: failed calling webhook "v.example.io": /);
    if (!closed.allowed) expect(closed.message).toMatch(pattern);
    const open = await withChain(configs('Ignore'), (chain) => chain.admit({ object: pod() }));
    expect(open.allowed).toBe(true);
    expect(open.calls[0]?.outcome).toBe('failed-open');
  });
});

describe('admission chain: transport like the apiserver', () => {
  it('gives up after timeoutSeconds with "context deadline exceeded"', async () => {
    handlers.set('/slow', () => ({ hang: true }));
    const result = await withChain([configuration('ValidatingWebhookConfiguration', 'v', [webhook({ name: 'slow.example.io', path: '/slow', timeoutSeconds: 1 })])], (chain) => chain.admit({ object: pod() }));
    expect(result.allowed).toBe(false);
    if (!result.allowed) expect(result.message).toMatch(/failed calling webhook "slow.example.io": failed to call webhook: Post "https:\/\/127\.0\.0\.1:\d+\/slow\?timeout=1s": context deadline exceeded$/);
    expect(result.calls[0]?.durationMs).toBeGreaterThanOrEqual(900);
  });

  it('reports a refused connection in Go dial wording', async () => {
    const port = await closedPort();
    const down = configuration('ValidatingWebhookConfiguration', 'v', [{ ...webhook({ name: 'down.example.io', path: '/x' }), clientConfig: { url: `https://127.0.0.1:${port}/validate`, caBundle: Buffer.from(ca.cert).toString('base64') } }]);
    const result = await withChain([down], (chain) => chain.admit({ object: pod() }));
    expect(result.allowed).toBe(false);
    if (!result.allowed) expect(result.message).toContain(`dial tcp 127.0.0.1:${port}: connect: connection refused`);
  });

  it('verifies the server against the caBundle and nothing else', async () => {
    const stranger = issueCa({ commonName: 'Someone else', validityDays: 1, now: new Date() });
    const wrongCa = configuration('ValidatingWebhookConfiguration', 'v', [{ ...webhook({ name: 'v.example.io', path: '/validate' }), clientConfig: { url: `${baseUrl}/validate`, caBundle: Buffer.from(stranger.cert).toString('base64') } }]);
    const result = await withChain([wrongCa], (chain) => chain.admit({ object: pod() }));
    expect(result.allowed).toBe(false);
    if (!result.allowed) expect(result.message).toContain('x509: certificate signed by unknown authority');
  });
});

describe('admission chain: mutation', () => {
  it('applies a mutating webhook JSONPatch and hands the patched object to the validating webhook', async () => {
    handlers.set('/mutate', patchWith([{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'pull' }] }]));
    const result = await withChain(
      [configuration('MutatingWebhookConfiguration', 'm', [webhook({ name: 'm.example.io', path: '/mutate' })]), configuration('ValidatingWebhookConfiguration', 'v', [webhook({ name: 'v.example.io', path: '/validate' })])],
      (chain) => chain.admit({ object: pod() }),
    );
    expect(result.allowed).toBe(true);
    if (result.allowed) expect(result.object).toMatchObject({ spec: { imagePullSecrets: [{ name: 'pull' }] } });
    const validated = seen.find((call) => call.path === '/validate');
    expect(validated?.review.request.object).toMatchObject({ spec: { imagePullSecrets: [{ name: 'pull' }] } });
  });

  it('re-invokes an IfNeeded webhook once when a later webhook changed the object, and a Never one not at all', async () => {
    handlers.set('/first', allow);
    handlers.set('/never', allow);
    handlers.set('/sidecar', (review) =>
      review.request.object.spec && JSON.stringify(review.request.object.spec).includes('sidecar') ? allow(review) : patchWith([{ op: 'add', path: '/spec/containers/-', value: { name: 'sidecar', image: 'mesh:1' } }])(review),
    );
    const result = await withChain(
      [
        configuration('MutatingWebhookConfiguration', 'a-first', [webhook({ name: 'first.example.io', path: '/first', reinvocationPolicy: 'IfNeeded' }), webhook({ name: 'never.example.io', path: '/never' })]),
        configuration('MutatingWebhookConfiguration', 'b-sidecar', [webhook({ name: 'sidecar.example.io', path: '/sidecar', reinvocationPolicy: 'IfNeeded' })]),
      ],
      (chain) => chain.admit({ object: pod() }),
    );
    expect(result.calls.map((call) => `${call.round}:${call.webhook}:${call.outcome}`)).toEqual(['0:first.example.io:allowed', '0:never.example.io:allowed', '0:sidecar.example.io:patched', '1:first.example.io:allowed']);
    const reinvoked = seen.filter((call) => call.path === '/first');
    expect(reinvoked[1]?.review.request.object).toMatchObject({ spec: { containers: [{ name: 'app' }, { name: 'sidecar' }] } });
  });

  it('rejects with an internal error when a patch does not apply, whatever the failurePolicy', async () => {
    handlers.set('/mutate', patchWith([{ op: 'replace', path: '/spec/nothing', value: 1 }]));
    const result = await withChain([configuration('MutatingWebhookConfiguration', 'm', [webhook({ name: 'm.example.io', path: '/mutate', failurePolicy: 'Ignore' })])], (chain) => chain.admit({ object: pod() }));
    expect(result).toMatchObject({ allowed: false, code: 500 });
    if (!result.allowed) expect(result.message).toMatch(/^Internal error occurred: operation 0 \(replace \/spec\/nothing\)/);
  });
});

describe('admission chain: selection', () => {
  const validating = (extra: Partial<WebhookConfiguration['webhooks'][number]> = {}) => [configuration('ValidatingWebhookConfiguration', 'v', [webhook({ name: 'v.example.io', path: '/validate', ...extra })])];

  it.each([
    ['a ConfigMap is not in the rules', { object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'team-a' } } }, {}, 'skipped'],
    ['a Deployment in apps/v1 is', { object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'team-a' }, spec: {} } }, {}, 'allowed'],
    ['kube-system is excluded by name', { object: pod(), namespace: 'kube-system' }, {}, 'skipped'],
    ['a namespace labelled portcullis.io/ignore is excluded', { object: pod(), namespace: 'legacy' }, {}, 'skipped'],
    ['a subresource is not matched by its parent resource', { object: pod(), operation: 'UPDATE' as const, oldObject: pod(), subResource: 'status' }, {}, 'skipped'],
    ['pods/* matches a subresource', { object: pod('web', { spec: { containers: [], ephemeralContainers: [{ name: 'debug', image: 'busybox' }] } }), operation: 'UPDATE' as const, oldObject: pod(), subResource: 'ephemeralcontainers' }, { rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods/*'] }] }, 'allowed'],
    ['an objectSelector that matches neither object nor oldObject skips', { object: pod() }, { objectSelector: { matchLabels: { tier: 'gold' } } }, 'skipped'],
    ['an unchanged spec on UPDATE fails the spec-changed matchCondition', { object: pod('web', { metadata: { name: 'web', namespace: 'team-a', labels: { v: '2' } } }), operation: 'UPDATE' as const, oldObject: pod() }, {}, 'skipped'],
    ['a changed spec on UPDATE passes it', { object: pod('web', { spec: { containers: [{ name: 'app', image: 'x:2' }] } }), operation: 'UPDATE' as const, oldObject: pod() }, {}, 'allowed'],
  ])('%s', async (_name, input, extra, outcome) => {
    const shipped = {
      namespaceSelector: {
        matchExpressions: [
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn' as const, values: ['kube-system', 'portcullis'] },
          { key: 'portcullis.io/ignore', operator: 'DoesNotExist' as const },
        ],
      },
      matchConditions: [{ name: 'spec-changed', expression: "request.operation != 'UPDATE' || object.spec != oldObject.spec" }],
    };
    const result = await withChain(validating({ ...shipped, ...extra }), (chain) => chain.admit(input), { legacy: { 'portcullis.io/ignore': 'true' } });
    expect(result.calls.map((call) => call.outcome)).toEqual([outcome]);
  });

  it('treats a matchCondition evaluation error by the failurePolicy', async () => {
    const broken = { matchConditions: [{ name: 'broken', expression: 'object.nothing.here' }] };
    const closed = await withChain(validating({ ...broken, failurePolicy: 'Fail' }), (chain) => chain.admit({ object: pod() }));
    expect(closed.allowed).toBe(false);
    if (!closed.allowed) expect(closed.message).toContain('failed to evaluate match condition "broken": no such key: nothing');
    const open = await withChain(validating({ ...broken, failurePolicy: 'Ignore' }), (chain) => chain.admit({ object: pod() }));
    expect(open.allowed).toBe(true);
  });

  it.each([
    ['an empty selector matches everything', {}, {}, true],
    ['matchLabels needs every label', { matchLabels: { a: '1', b: '2' } }, { a: '1' }, false],
    ['In needs the key with one of the values', { matchExpressions: [{ key: 'a', operator: 'In' as const, values: ['1'] }] }, { a: '1' }, true],
    ['NotIn accepts an absent key', { matchExpressions: [{ key: 'a', operator: 'NotIn' as const, values: ['1'] }] }, {}, true],
    ['Exists needs the key', { matchExpressions: [{ key: 'a', operator: 'Exists' as const }] }, {}, false],
  ])('label selector: %s', (_name, selector, labels, expected) => {
    expect(matchesSelector(selector, labels)).toBe(expected);
  });
});

describe('admission chain: the shipped webhooks/ directory', () => {
  it('loads both configurations and points them at a URL the way `webhooks render` does', () => {
    const configurations = pointAt(loadWebhookConfigurations(join(repoRoot, 'webhooks')), { url: 'https://127.0.0.1:9443', caPem: ca.cert });
    const byName = Object.fromEntries(configurations.flatMap((c) => c.webhooks.map((w) => [w.name, { kind: c.kind, url: w.clientConfig.url }])));
    expect(byName).toEqual({
      'mutate.portcullis.io': { kind: 'MutatingWebhookConfiguration', url: 'https://127.0.0.1:9443/mutate' },
      'validate.portcullis.io': { kind: 'ValidatingWebhookConfiguration', url: 'https://127.0.0.1:9443/validate' },
    });
    expect(configurations[0]?.webhooks[0]?.clientConfig.caBundle).toBe(Buffer.from(ca.cert).toString('base64'));
  });

  it('sends a Deployment in an ordinary namespace to both webhooks and skips kube-system', async () => {
    const configurations = pointAt(loadWebhookConfigurations(join(repoRoot, 'webhooks')), { url: baseUrl, caPem: ca.cert });
    const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'team-a' }, spec: { template: { spec: { containers: [{ name: 'a', image: 'a:1' }] } } } };
    await withChain(configurations, async (chain) => {
      const admitted = await chain.admit({ object: deployment });
      expect(admitted.calls.map((call) => `${call.webhook}:${call.outcome}`)).toEqual(['mutate.portcullis.io:allowed', 'validate.portcullis.io:allowed']);
      const system = await chain.admit({ object: deployment, namespace: 'kube-system' });
      expect(system.calls.map((call) => call.outcome)).toEqual(['skipped', 'skipped']);
    });
  });
});
