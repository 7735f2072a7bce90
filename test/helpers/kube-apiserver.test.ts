import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import { CoreV1Api, makeInformer, type V1Namespace } from '@kubernetes/client-node';
import { startKubeApiServer, type KubeApiServer } from './kube-apiserver.js';
import { trustingAgent } from './tls.js';

let kube: KubeApiServer;
beforeAll(async () => {
  kube = await startKubeApiServer();
});
afterAll(async () => {
  await kube.close();
});

async function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${kube.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${kube.token}`, 'content-type': contentType },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    dispatcher: trustingAgent(kube.caPem),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const secrets = '/api/v1/namespaces/ns/secrets';

describe('the kube-apiserver stand-in', () => {
  it('applies a json-patch, a merge-patch and a strategic-merge-patch (as merge)', async () => {
    expect((await call('POST', secrets, { metadata: { name: 'p' }, data: { a: 'MQ==' } })).status).toBe(201);
    const json = await call('PATCH', `${secrets}/p`, [{ op: 'add', path: '/data/b', value: 'Mg==' }, { op: 'remove', path: '/data/a' }], 'application/json-patch+json');
    expect(json.body.data).toEqual({ b: 'Mg==' });
    const merge = await call('PATCH', `${secrets}/p`, { data: { b: null, c: 'Mw==' } }, 'application/merge-patch+json');
    expect(merge.body.data).toEqual({ c: 'Mw==' });
    const strategic = await call('PATCH', `${secrets}/p`, { metadata: { labels: { l: 'v' } } }, 'application/strategic-merge-patch+json');
    expect(strategic.body.metadata).toMatchObject({ labels: { l: 'v' } });
  });

  it.each([
    ['a json-patch test that fails', [{ op: 'test', path: '/data/c', value: 'nope' }], 'application/json-patch+json', 422, 'Invalid'],
    ['a json-patch removing a missing key', [{ op: 'remove', path: '/data/zzz' }], 'application/json-patch+json', 422, 'Invalid'],
    ['a merge-patch with a stale resourceVersion', { metadata: { resourceVersion: '1' } }, 'application/merge-patch+json', 409, 'Conflict'],
    ['an apply-patch', {}, 'application/apply-patch+yaml', 415, 'UnsupportedMediaType'],
  ])('answers %s with a Status', async (_name, patch, contentType, code, reason) => {
    const answer = await call('PATCH', `${secrets}/p`, patch, contentType);
    expect(answer.status).toBe(code);
    expect(answer.body).toMatchObject({ kind: 'Status', status: 'Failure', code, reason });
  });

  it('names generated objects, rejects a namespace mismatch and unknown paths', async () => {
    const generated = await call('POST', secrets, { metadata: { generateName: 'gen-' } });
    expect(generated.body.metadata).toMatchObject({ name: expect.stringMatching(/^gen-.{5}$/), namespace: 'ns' });
    expect((await call('POST', secrets, { metadata: { name: 'x', namespace: 'other' } })).status).toBe(400);
    expect((await call('GET', '/api/v1/nonsense')).status).toBe(404);
  });

  it('runs a beforeNext hook just before the matching request, simulating a concurrent writer', async () => {
    const read = await call('GET', `${secrets}/p`);
    kube.beforeNext({ verb: 'update', name: 'p' }, () => {
      kube.objects.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'p', namespace: 'ns' }, data: { other: 'eA==' } });
    });
    const update = await call('PUT', `${secrets}/p`, read.body);
    expect(update.status).toBe(409);
    expect(kube.objects.get('secrets', 'p', 'ns')?.data).toEqual({ other: 'eA==' });
  });

  it('checks but stores nothing for ?dryRun=All', async () => {
    const revision = kube.objects.get('secrets', 'p', 'ns')?.metadata?.resourceVersion;
    const dry = await call('PATCH', `${secrets}/p?dryRun=All`, { data: { dry: 'eA==' } }, 'application/merge-patch+json');
    expect(dry.status).toBe(200);
    expect(dry.body.data).toMatchObject({ dry: 'eA==' });
    expect((await call('POST', `${secrets}?dryRun=All`, { metadata: { name: 'p' } })).status).toBe(409);
    expect((await call('POST', `${secrets}?dryRun=All`, { metadata: { name: 'never' } })).status).toBe(201);
    expect((await call('DELETE', `${secrets}/p?dryRun=All`)).status).toBe(200);
    expect(kube.objects.get('secrets', 'never', 'ns')).toBeUndefined();
    expect(kube.objects.get('secrets', 'p', 'ns')?.metadata?.resourceVersion).toBe(revision);
  });

  it('stamps Namespaces with the kubernetes.io/metadata.name label the webhooks select on', async () => {
    const created = await call('POST', '/api/v1/namespaces', { metadata: { name: 'team-a' } });
    expect(created.body.metadata).toMatchObject({ labels: { 'kubernetes.io/metadata.name': 'team-a' } });
  });

  it('serves a client-node informer: list, then watch from the list resourceVersion', async () => {
    const config = kube.kubeConfig();
    const core = config.makeApiClient(CoreV1Api);
    const informer = makeInformer(config, '/api/v1/namespaces', () => core.listNamespace());
    const seen: string[] = [];
    let onDelete: () => void = () => undefined;
    const deleted = new Promise<void>((resolve) => (onDelete = resolve));
    informer.on('add', (namespace: V1Namespace) => seen.push(`add ${namespace.metadata?.name ?? ''}`));
    informer.on('update', (namespace: V1Namespace) => seen.push(`update ${namespace.metadata?.name ?? ''} ${namespace.metadata?.labels?.tier ?? ''}`));
    informer.on('delete', (namespace: V1Namespace) => {
      seen.push(`delete ${namespace.metadata?.name ?? ''}`);
      onDelete();
    });
    kube.objects.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'listed' } });
    await informer.start();
    kube.objects.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'watched' } });
    kube.objects.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'watched', labels: { tier: 'gold' } } });
    kube.objects.delete('namespaces', 'watched');
    await deleted;
    await informer.stop();
    expect(seen).toEqual(expect.arrayContaining(['add listed', 'add watched', 'update watched gold', 'delete watched']));
    expect(kube.objects.get('namespaces', 'listed')?.metadata?.labels).toEqual({ 'kubernetes.io/metadata.name': 'listed' });
  });
});
