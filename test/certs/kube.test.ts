import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { createCertificateManager, type CertificateManagerDeps } from '../../src/certs/manager.js';
import { checkMaterial, type CertificateMaterial } from '../../src/certs/material.js';
import { applyStep } from '../../src/certs/rotation.js';
import { readWebhookConfigNames } from '../../src/certs/webhook-configs.js';
import { DAY_MS } from '../../src/certs/issue.js';
import { createKubeClient, type KubeClient } from '../../src/kube/client.js';
import { silentLogger } from '../../src/log/logger.js';
import { startKubeApiServer, type KubeApiServer, type KubeObject } from '../helpers/kube-apiserver.js';
import { repoRoot } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { capturingLogger, certsConfig, testClock } from './helpers.js';

const webhooksDir = join(repoRoot, 'webhooks');
const names = readWebhookConfigNames(webhooksDir);
const SECRET = 'portcullis-webhook-tls';
const NS = 'portcullis';

let kube: KubeApiServer;
let client: KubeClient;
let dir: { path: string; remove(): void };
const closers: (() => Promise<void>)[] = [];

beforeEach(async () => {
  kube = await startKubeApiServer();
  client = createKubeClient(kube.kubeConfig());
  dir = tempDir();
  // The two configurations as `kubectl apply -k manifests/` would have created them: no caBundle yet.
  for (const file of readdirSync(webhooksDir).filter((name) => name.endsWith('.yaml'))) {
    for (const document of parseAllDocuments(readFileSync(join(webhooksDir, file), 'utf8'))) {
      const object = document.toJS() as KubeObject;
      if (object.kind?.endsWith('WebhookConfiguration')) kube.objects.put(object);
    }
  }
});
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await kube.close();
  dir.remove();
});

function manager(overrides: Partial<CertificateManagerDeps> = {}, config: Parameters<typeof certsConfig>[1] = {}) {
  const created = createCertificateManager({
    config: certsConfig(dir.path, { secretName: SECRET, namespace: NS, ...config }),
    logger: silentLogger(),
    kube: client,
    webhookConfigNames: names,
    keyBits: 1024,
    watchStore: false,
    ...overrides,
  });
  closers.push(() => created.close());
  return created;
}

function secretData(): Record<string, string> {
  const secret = kube.objects.get('secrets', SECRET, NS);
  return Object.fromEntries(Object.entries((secret?.data ?? {}) as Record<string, string>).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
}

function caBundles(): string[] {
  return [kube.objects.get('validatingwebhookconfigurations', names.validating), kube.objects.get('mutatingwebhookconfigurations', names.mutating)].flatMap((configuration) =>
    ((configuration?.webhooks ?? []) as { clientConfig: { caBundle?: string } }[]).map((webhook) => Buffer.from(webhook.clientConfig.caBundle ?? '', 'base64').toString('utf8')),
  );
}

function putSecret(material: Partial<CertificateMaterial>): void {
  const data: Record<string, string> = {};
  for (const [key, value] of [
    ['ca.crt', material.caBundle],
    ['ca.key', material.caKey],
    ['tls.crt', material.cert],
    ['tls.key', material.key],
  ] as const) {
    if (value !== undefined) data[key] = Buffer.from(value).toString('base64');
  }
  kube.objects.put({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: SECRET, namespace: NS }, data });
}

describe('managed certificates in a Secret', () => {
  it('creates a kubernetes.io/tls Secret with ca.crt and injects the CA into every webhook of both configurations', async () => {
    const certificates = manager();
    await certificates.start();
    const secret = kube.objects.get('secrets', SECRET, NS);
    expect(secret?.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secretData()).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(secretData()['tls.crt']).toBe(certificates.current().tls.cert);
    const checked = checkMaterial(
      { caBundle: secretData()['ca.crt'] ?? '', caKey: secretData()['ca.key'] ?? '', cert: secretData()['tls.crt'] ?? '', key: secretData()['tls.key'] ?? '' },
      { caBundle: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' },
      { dnsNames: ['portcullis-webhook', 'portcullis-webhook.portcullis', 'portcullis-webhook.portcullis.svc', 'portcullis-webhook.portcullis.svc.cluster.local'], ipAddresses: [] },
    );
    expect(checked.missing).toEqual([]);
    // In a cluster the certificate is for the Service, not for localhost.
    expect(checked.serving.dnsNames).not.toContain('localhost');
    expect(caBundles()).toEqual([secretData()['ca.crt'], secretData()['ca.crt']]);
  });

  it('adopts what another replica already stored instead of issuing its own', async () => {
    const first = manager();
    await first.start();
    const writesBefore = kube.writes().length;
    const second = manager();
    await second.start();
    expect(second.current().fingerprint).toBe(first.current().fingerprint);
    expect(kube.writes().length).toBe(writesBefore);
  });

  it('adopts a newer certificate another replica wrote between its read and its write (409), without overwriting it', async () => {
    const realNow = Date.now();
    const clock = testClock(new Date(realNow - 300 * DAY_MS));
    const replica = manager({ now: clock.now });
    await replica.start();
    const stored = secretData();
    const material: CertificateMaterial = { caBundle: stored['ca.crt'] ?? '', caKey: stored['ca.key'] ?? '', cert: stored['tls.crt'] ?? '', key: stored['tls.key'] ?? '' };
    // Another replica renews first, a moment before this one tries to.
    const sources = { caBundle: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' };
    const checked = checkMaterial(material, sources, { dnsNames: [], ipAddresses: [] });
    const names = { dnsNames: checked.serving.dnsNames, ipAddresses: checked.serving.ipAddresses };
    const theirs = applyStep({ kind: 'renew-serving', reason: 'other replica' }, checked, new Date(realNow), { caValidityDays: 3650, servingValidityDays: 365, names, keyBits: 1024 });
    kube.beforeNext({ verb: 'update', resource: 'secrets', name: SECRET }, () => putSecret(theirs));

    clock.set(new Date(realNow));
    const outcome = await replica.check();
    expect(outcome.error).toBeUndefined();
    expect(outcome.steps).toEqual([]);
    expect(replica.current().tls.cert).toBe(theirs.cert);
    expect(secretData()['tls.crt']).toBe(theirs.cert);
    expect(kube.writes({ resource: 'secrets', verb: 'update' })).toHaveLength(1);
  });

  it('lets two replicas starting at once end up with one Secret and the same certificate', async () => {
    const [first, second] = [manager(), manager()];
    await Promise.all([first.start(), second.start()]);
    expect(second.current().fingerprint).toBe(first.current().fingerprint);
    // Both usually try to create it (one gets 409 AlreadyExists and adopts); nobody overwrites.
    expect(kube.writes({ resource: 'secrets', verb: 'create' }).length).toBeGreaterThanOrEqual(1);
    expect(kube.writes({ resource: 'secrets', verb: 'update' })).toEqual([]);
    expect(secretData()['tls.crt']).toBe(first.current().tls.cert);
  });

  it('still starts when the webhook configurations may not be written (RBAC), and says why', async () => {
    kube.failNext({ verb: 'get', resource: 'validatingwebhookconfigurations', status: 403, reason: 'Forbidden', message: 'cannot get resource' });
    const certificates = manager();
    await certificates.start();
    expect(certificates.current().tls.cert).toBe(secretData()['tls.crt']);
    // The next check publishes it.
    expect((await certificates.check()).error).toBeUndefined();
    expect(caBundles()).toEqual([certificates.current().caBundle, certificates.current().caBundle]);
  });

  it('puts the caBundle back after someone overwrote it, and retries a webhook update that conflicts', async () => {
    const certificates = manager();
    await certificates.start();
    const validating = kube.objects.get('validatingwebhookconfigurations', names.validating);
    const webhooks = (validating?.webhooks ?? []) as Record<string, unknown>[];
    kube.objects.put({ ...validating, webhooks: webhooks.map((webhook) => ({ ...webhook, clientConfig: { ...(webhook.clientConfig as object), caBundle: 'Z2FyYmFnZQ==' } })) });
    kube.conflictNext({ resource: 'validatingwebhookconfigurations', name: names.validating });

    expect((await certificates.check()).error).toBeUndefined();
    expect(caBundles()).toEqual([certificates.current().caBundle, certificates.current().caBundle]);
    // The injection at start, the update answered 409, its retry.
    expect(kube.writes({ resource: 'validatingwebhookconfigurations' }).map((request) => request.verb)).toEqual(['update', 'update', 'update']);
    // Nothing to repair: no write at all.
    await certificates.check();
    expect(kube.writes({ resource: 'validatingwebhookconfigurations' })).toHaveLength(3);
  });

  it('publishes old and new CA to the webhooks before serving a certificate signed by the new one', async () => {
    const realNow = Date.now();
    const clock = testClock(new Date(realNow - 2 * DAY_MS - 4 * 3_600_000));
    const certificates = manager({ now: clock.now }, { caValidityDays: 3, servingValidityDays: 3, overlapSeconds: 3600 });
    await certificates.start();
    const oldFingerprint = certificates.current().fingerprint;
    clock.set(new Date(realNow - 3 * 3_600_000));
    expect((await certificates.check()).steps).toEqual(['add-ca']);
    expect(caBundles()[0]?.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(certificates.current().tls.cert).toBe(secretData()['tls.crt']);
    expect(certificates.current().fingerprint.split('|')[0]).toBe(oldFingerprint.split('|')[0]);
  });
});

describe('bring-your-own certificates in a Secret (cert-manager)', () => {
  function externalMaterial(now: Date, validityDays: number): CertificateMaterial {
    const { caKey: _none, ...material } = applyStep({ kind: 'issue', reason: 'cert-manager' }, undefined, now, {
      caValidityDays: 30,
      servingValidityDays: validityDays,
      names: { dnsNames: ['portcullis-webhook.portcullis.svc'], ipAddresses: [] },
      keyBits: 1024,
    });
    return material;
  }

  it('serves, watches and reloads the Secret, warns near expiry, and never writes anything', async () => {
    const now = new Date();
    putSecret(externalMaterial(now, 3));
    const clock = testClock(now);
    const { logger, lines } = capturingLogger();
    const certificates = manager({ now: clock.now, logger, watchStore: true }, { mode: 'external' });
    await certificates.start();
    const first = certificates.current().fingerprint;

    // cert-manager renews: the watch reloads it.
    const reloaded = new Promise<void>((resolve) => certificates.onRotate(() => resolve()));
    const renewed = externalMaterial(now, 3);
    putSecret(renewed);
    await reloaded;
    expect(certificates.current().tls.cert).toBe(renewed.cert);
    expect(certificates.current().fingerprint).not.toBe(first);

    clock.set(new Date(now.getTime() + 2.5 * DAY_MS));
    await certificates.check();
    expect(lines().map((line) => line.msg)).toContain('certificate expires soon and is not managed by portcullis: renew it where it comes from');
    expect(lines().map((line) => line.msg)).toContain('webhook caBundle does not match the certificate authority in use (bring-your-own mode never writes it)');
    expect(kube.writes()).toEqual([]);
  });

  it.each([
    ['a Secret missing ca.crt', { caBundle: undefined }, `secret ${NS}/${SECRET}: key ca.crt missing (keys present: tls.crt, tls.key)`],
    ['a Secret whose key does not match', 'mismatch', `secret ${NS}/${SECRET} key tls.key: the private key does not match the certificate in secret ${NS}/${SECRET} key tls.crt`],
  ])('refuses %s with a precise error and writes nothing', async (_name, change, message) => {
    const now = new Date();
    const material = externalMaterial(now, 3);
    if (typeof change === 'string') putSecret({ ...material, key: externalMaterial(now, 3).key });
    else putSecret({ ...material, ...change });
    const certificates = manager({}, { mode: 'external' });
    await expect(certificates.start()).rejects.toThrow(message);
    expect(kube.writes()).toEqual([]);
  });

  it('keeps serving the last good certificate when the Secret turns bad', async () => {
    const now = new Date();
    const good = externalMaterial(now, 3);
    putSecret(good);
    const certificates = manager({}, { mode: 'external' });
    await certificates.start();
    putSecret({ ...good, caBundle: undefined });
    const outcome = await certificates.check();
    expect(outcome.error?.message).toBe(`secret ${NS}/${SECRET}: key ca.crt missing (keys present: tls.crt, tls.key)`);
    expect(certificates.current().tls.cert).toBe(good.cert);
    expect(kube.writes()).toEqual([]);
  });
});
