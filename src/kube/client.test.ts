import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import { PortcullisError } from '../errors.js';
import { startKubeApiServer, type KubeApiServer } from '../../test/helpers/kube-apiserver.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { createKubeClient, isAlreadyExists, isConflict, isNotFound, kubeErrorDetail, loadKubeConfig, type KubeClient, type WatchEventType } from './client.js';

let kube: KubeApiServer;
let client: KubeClient;
const dir = tempDir();

beforeAll(async () => {
  kube = await startKubeApiServer();
  client = createKubeClient(kube.kubeConfig());
});
afterAll(async () => {
  await kube.close();
  dir.remove();
});
beforeEach(() => {
  for (const secret of kube.objects.list('secrets')) kube.objects.delete('secrets', secret.metadata?.name ?? '', secret.metadata?.namespace);
});

function secret(name: string, value: string) {
  return { metadata: { name, namespace: 'portcullis' }, type: 'Opaque', data: { value: Buffer.from(value).toString('base64') } };
}

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('the kube client against the stand-in', () => {
  it('creates, reads, replaces and deletes a Secret, bumping resourceVersion on every write', async () => {
    const created = await client.secrets.create('portcullis', secret('a', 'one'));
    const first = Number(created.metadata?.resourceVersion);
    expect(first).toBeGreaterThan(0);
    const read = await client.secrets.get('portcullis', 'a');
    expect(read?.data?.value).toBe(Buffer.from('one').toString('base64'));
    const replaced = await client.secrets.replace('portcullis', 'a', { ...read, data: { value: Buffer.from('two').toString('base64') } });
    expect(Number(replaced.metadata?.resourceVersion)).toBeGreaterThan(first);
    const patched = await client.secrets.patch('portcullis', 'a', { metadata: { labels: { x: 'y' } } });
    expect(patched.metadata?.labels).toEqual({ x: 'y' });
    expect(patched.data?.value).toBe(Buffer.from('two').toString('base64'));
    expect(await client.secrets.delete('portcullis', 'a')).toBe(true);
    expect(await client.secrets.get('portcullis', 'a')).toBeUndefined();
    expect(await client.secrets.delete('portcullis', 'a')).toBe(false);
  });

  it('answers a replace with a stale resourceVersion with a Conflict error', async () => {
    const created = await client.secrets.create('portcullis', secret('b', 'one'));
    await client.secrets.replace('portcullis', 'b', { ...created, data: {} });
    const error = await thrown(client.secrets.replace('portcullis', 'b', { ...created, data: { value: 'eA==' } }));
    expect(error).toBeInstanceOf(PortcullisError);
    expect(isConflict(error)).toBe(true);
    expect(kubeErrorDetail(error)).toEqual({ operation: 'replace secrets portcullis/b', kubeStatus: 409, reason: 'Conflict' });
    expect((error as PortcullisError).message).toContain('the object has been modified');
  });

  it('answers a create of an existing name with AlreadyExists, not Conflict', async () => {
    await client.secrets.create('portcullis', secret('c', 'one'));
    const error = await thrown(client.secrets.create('portcullis', secret('c', 'two')));
    expect(isAlreadyExists(error)).toBe(true);
    expect(isConflict(error)).toBe(false);
  });

  it('reports a NotFound replace with isNotFound and the resource in the message', async () => {
    const error = await thrown(client.secrets.replace('portcullis', 'missing', secret('missing', 'x')));
    expect(isNotFound(error)).toBe(true);
    expect((error as PortcullisError).message).toBe('kubernetes replace secrets portcullis/missing: 404 NotFound: secrets "missing" not found');
  });

  it('turns an injected one-shot failure into KUBE_API_ERROR and then works again', async () => {
    await client.secrets.create('portcullis', secret('d', 'one'));
    kube.failNext({ verb: 'get', resource: 'secrets', name: 'd', status: 503, reason: 'ServiceUnavailable', message: 'etcd is sad' });
    const error = await thrown(client.secrets.get('portcullis', 'd'));
    expect(kubeErrorDetail(error)).toMatchObject({ kubeStatus: 503, reason: 'ServiceUnavailable' });
    expect(await client.secrets.get('portcullis', 'd')).toBeDefined();
  });

  it('rejects a wrong bearer token with 401', async () => {
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'c', server: kube.url, caData: Buffer.from(kube.caPem).toString('base64') }],
      users: [{ name: 'u', token: 'wrong' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const error = await thrown(createKubeClient(config).secrets.get('portcullis', 'd'));
    expect(kubeErrorDetail(error)).toMatchObject({ kubeStatus: 401, reason: 'Unauthorized' });
  });

  it('reports an unreachable server without a status', async () => {
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1', caData: Buffer.from(kube.caPem).toString('base64') }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const error = await thrown(createKubeClient(config).secrets.get('portcullis', 'd'));
    expect(kubeErrorDetail(error)).toEqual({ operation: 'get secrets portcullis/d' });
    expect((error as PortcullisError).message).toMatch(/^kubernetes get secrets portcullis\/d: unreachable: /);
  });

  it('gets, merge-patches and replaces both webhook configuration kinds', async () => {
    kube.objects.put({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'v' },
      webhooks: [{ name: 'validate.portcullis.io', clientConfig: { service: { name: 's', namespace: 'n' } }, admissionReviewVersions: ['v1'], sideEffects: 'None' }],
    });
    kube.objects.put({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'm' }, webhooks: [] });
    const validating = await client.validatingWebhooks.get('v');
    expect(validating?.webhooks?.[0]?.name).toBe('validate.portcullis.io');
    const webhooks = (validating?.webhooks ?? []).map((webhook) => ({ ...webhook, clientConfig: { ...webhook.clientConfig, caBundle: 'Q0E=' } }));
    const patched = await client.validatingWebhooks.patch('v', { metadata: { resourceVersion: validating?.metadata?.resourceVersion }, webhooks });
    expect(patched.webhooks?.[0]?.clientConfig.caBundle).toBe('Q0E=');
    const stale = await thrown(client.validatingWebhooks.patch('v', { metadata: { resourceVersion: validating?.metadata?.resourceVersion }, webhooks: [] }));
    expect(isConflict(stale)).toBe(true);
    const mutating = await client.mutatingWebhooks.get('m');
    const replaced = await client.mutatingWebhooks.replace('m', { ...mutating, metadata: { ...mutating?.metadata, labels: { a: 'b' } } });
    expect(replaced.metadata?.labels).toEqual({ a: 'b' });
    expect(await client.mutatingWebhooks.get('absent')).toBeUndefined();
  });

  it('creates, lists, replaces and deletes PolicyReports', async () => {
    const created = await client.policyReports.create('team', {
      metadata: { name: 'r1', labels: { 'app.kubernetes.io/managed-by': 'portcullis' } },
      summary: { pass: 1, fail: 0 },
      results: [{ policy: 'no-critical', result: 'pass', severity: 'high', timestamp: { seconds: 1, nanos: 0 } }],
    });
    expect(created.kind).toBe('PolicyReport');
    const list = await client.policyReports.list('team', { labelSelector: 'app.kubernetes.io/managed-by=portcullis' });
    expect(list.items.map((item) => item.metadata?.name)).toEqual(['r1']);
    const replaced = await client.policyReports.replace('team', 'r1', { ...created, summary: { pass: 0, fail: 1 } });
    expect(replaced.summary).toEqual({ pass: 0, fail: 1 });
    expect(await client.policyReports.delete('team', 'r1')).toBe(true);
    expect(await client.policyReports.get('team', 'r1')).toBeUndefined();
  });

  it('creates and renews a Lease with optimistic concurrency', async () => {
    const lease = await client.leases.create('portcullis', { metadata: { name: 'leader' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } });
    const renewed = await client.leases.replace('portcullis', 'leader', { ...lease, spec: { ...lease.spec, holderIdentity: 'b' } });
    expect(renewed.spec?.holderIdentity).toBe('b');
    expect(isConflict(await thrown(client.leases.replace('portcullis', 'leader', lease)))).toBe(true);
  });

  it('lists pods with label and field selectors, in one namespace or all', async () => {
    for (const [namespace, name, app, node] of [
      ['a', 'p1', 'web', 'n1'],
      ['a', 'p2', 'db', 'n1'],
      ['b', 'p3', 'web', 'n2'],
    ] as const) {
      kube.objects.put({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels: { app } }, spec: { nodeName: node, containers: [] } });
    }
    expect((await client.pods.list('a')).items.map((pod) => pod.metadata?.name)).toEqual(['p1', 'p2']);
    expect((await client.pods.list(undefined, { labelSelector: 'app=web' })).items.map((pod) => pod.metadata?.name)).toEqual(['p1', 'p3']);
    expect((await client.pods.list(undefined, { labelSelector: 'app in (db, cache)' })).items.map((pod) => pod.metadata?.name)).toEqual(['p2']);
    expect((await client.pods.list(undefined, { fieldSelector: 'spec.nodeName=n2' })).items.map((pod) => pod.metadata?.name)).toEqual(['p3']);
  });

  it('watches namespaces from a list resourceVersion and sees ADDED, MODIFIED and DELETED in order', async () => {
    kube.objects.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'before' } });
    const list = await client.namespaces.list();
    expect(list.items.map((namespace) => namespace.metadata?.name)).toContain('before');
    const events: [WatchEventType, string | undefined][] = [];
    let seen: () => void = () => undefined;
    const threeEvents = new Promise<void>((resolve) => (seen = resolve));
    const handle = await client.namespaces.watch({ resourceVersion: list.resourceVersion }, (type, namespace: V1Namespace) => {
      events.push([type, namespace.metadata?.name]);
      if (events.length === 3) seen();
    });
    kube.objects.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } });
    kube.objects.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team', labels: { x: 'y' } } });
    kube.objects.delete('namespaces', 'team');
    await threeEvents;
    handle.stop();
    await handle.done;
    expect(events).toEqual([
      ['ADDED', 'team'],
      ['MODIFIED', 'team'],
      ['DELETED', 'team'],
    ]);
  });

  it('ends a watch when the server closes it, and fails one from a compacted resourceVersion with 410', async () => {
    const handle = await client.namespaces.watch({}, () => undefined);
    kube.closeWatches();
    await handle.done;
    kube.compact();
    const events: [WatchEventType, unknown][] = [];
    const expired = await client.namespaces.watch({ resourceVersion: '1' }, (type, object) => events.push([type, object]));
    await expired.done;
    expect(events[0]?.[0]).toBe('ERROR');
    expect(events[0]?.[1]).toMatchObject({ code: 410, reason: 'Expired' });
  });

  it('records every request so a test can assert what was written', async () => {
    const before = kube.writes({ resource: 'secrets' }).length;
    await client.secrets.get('portcullis', 'nothing');
    expect(kube.writes({ resource: 'secrets' }).length).toBe(before);
    expect(kube.requests.at(-1)).toMatchObject({ method: 'GET', verb: 'get', resource: 'secrets', namespace: 'portcullis', name: 'nothing' });
  });
});

describe('loadKubeConfig', () => {
  it('prefers an explicit path, then KUBECONFIG, then the in-cluster service account, else nothing', () => {
    const path = kube.kubeconfigPath(dir.path);
    expect(loadKubeConfig({ kubeconfigPath: path, env: {} })?.getCurrentCluster()?.server).toBe(kube.url);
    expect(loadKubeConfig({ env: { KUBECONFIG: `${path}:/nonexistent` } })?.getCurrentCluster()?.server).toBe(kube.url);
    const serviceAccount = join(dir.path, 'sa');
    mkdirSync(serviceAccount);
    writeFileSync(join(serviceAccount, 'token'), kube.token);
    writeFileSync(join(serviceAccount, 'ca.crt'), kube.caPem);
    writeFileSync(join(serviceAccount, 'namespace'), 'portcullis\n');
    const inCluster = loadKubeConfig({ env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: serviceAccount });
    expect(inCluster?.getCurrentCluster()?.server).toBe('https://10.0.0.1:443');
    expect(inCluster?.getContextObject(inCluster.getCurrentContext())?.namespace).toBe('portcullis');
    expect(loadKubeConfig({ env: {}, serviceAccountDir: join(dir.path, 'none') })).toBeUndefined();
  });

  it('names the file when a kubeconfig cannot be loaded', () => {
    const bad = join(dir.path, 'bad.yaml');
    writeFileSync(bad, 'clusters: [');
    expect(() => loadKubeConfig({ kubeconfigPath: bad, env: {} })).toThrow(`kube.kubeconfig ${bad}: cannot load kubeconfig`);
  });

  it('does not quote the kubeconfig (its tokens) when the YAML is broken', () => {
    const bad = join(dir.path, 'bad-token.yaml');
    writeFileSync(bad, 'apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: s3cr3t-bearer-token\n   bad: [\n');
    let message = '';
    try {
      loadKubeConfig({ kubeconfigPath: bad, env: {} });
    } catch (error) {
      message = JSON.stringify(error, Object.getOwnPropertyNames(error));
    }
    expect(message).toMatch(/cannot load kubeconfig: bad indentation of a mapping entry \(7:4\)/);
    expect(message).not.toContain('s3cr3t-bearer-token');
  });

  it('talks to the stand-in through a kubeconfig file, as a CLI would', async () => {
    const config = loadKubeConfig({ env: { KUBECONFIG: kube.kubeconfigPath(dir.path) } });
    if (!config) throw new Error('expected a config');
    await createKubeClient(config).secrets.create('portcullis', secret('via-file', 'x'));
    expect(kube.objects.get('Secret', 'via-file', 'portcullis')?.data).toEqual({ value: 'eA==' });
  });
});
