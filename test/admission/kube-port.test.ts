import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPIED_FROM_ANNOTATION, createAdmissionKube, type AdmissionKube } from '../../src/admission/kube-port.js';
import { PortcullisError } from '../../src/errors.js';
import { createKubeClient } from '../../src/kube/client.js';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-apiserver.js';

let kube: KubeApiServer;
let port: AdmissionKube;
const source = { namespace: 'portcullis', name: 'pull' };

beforeAll(async () => {
  kube = await startKubeApiServer();
  kube.objects.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pull', namespace: 'portcullis' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': 'e30=' } });
  kube.objects.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a', labels: { env: 'prod' } } });
  port = createAdmissionKube(createKubeClient(kube.kubeConfig()));
});

afterAll(async () => {
  await kube.close();
});

describe('admission Kubernetes port over the kube-apiserver stand-in', () => {
  it('reads namespace labels once and remembers them', async () => {
    expect(port.cachedNamespaceLabels?.('team-a')).toBeUndefined();
    expect(await port.namespaceLabels('team-a')).toEqual({ env: 'prod', 'kubernetes.io/metadata.name': 'team-a' });
    const reads = kube.requests.length;
    expect(await port.namespaceLabels('team-a')).toMatchObject({ env: 'prod' });
    expect(port.cachedNamespaceLabels?.('team-a')).toMatchObject({ env: 'prod' });
    expect(kube.requests.length).toBe(reads);
    expect(await port.namespaceLabels('nowhere')).toEqual({});
  });

  it('copies the source Secret once, even when asked concurrently, and marks the copy', async () => {
    const results = await Promise.all([port.ensureSecret('team-b', 'pull', source), port.ensureSecret('team-b', 'pull', source)]);
    expect(results).toEqual(['copied', 'copied']);
    expect(kube.writes({ verb: 'create', resource: 'secrets', namespace: 'team-b' })).toHaveLength(1);
    const copy = kube.objects.get('secrets', 'pull', 'team-b');
    expect(copy?.type).toBe('kubernetes.io/dockerconfigjson');
    expect(copy?.data).toEqual({ '.dockerconfigjson': 'e30=' });
    expect(copy?.metadata).toMatchObject({ annotations: { [COPIED_FROM_ANNOTATION]: 'portcullis/pull' }, labels: { 'app.kubernetes.io/managed-by': 'portcullis' } });
    expect(await port.ensureSecret('team-b', 'pull', source)).toBe('existed');
  });

  it('leaves a Secret created by someone else in between alone', async () => {
    kube.beforeNext({ verb: 'create', resource: 'secrets', namespace: 'team-c' }, () => {
      kube.objects.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pull', namespace: 'team-c' }, data: { other: 'eA==' } });
    });
    expect(await port.ensureSecret('team-c', 'pull', source)).toBe('existed');
    expect(kube.objects.get('secrets', 'pull', 'team-c')?.data).toEqual({ other: 'eA==' });
  });

  it('fails with KUBE_API_ERROR naming the missing source', async () => {
    const error = await port.ensureSecret('team-d', 'pull', { namespace: 'portcullis', name: 'missing' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PortcullisError);
    expect((error as PortcullisError).code).toBe('KUBE_API_ERROR');
    expect((error as PortcullisError).message).toBe('source Secret portcullis/missing does not exist');
  });
});
