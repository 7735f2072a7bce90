import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fetch, Agent } from 'undici';
import { createCertificateManager, type CertificateManager } from '../../src/certs/manager.js';
import { DAY_MS } from '../../src/certs/issue.js';
import { parseCertificates, pemBlocks } from '../../src/certs/inspect.js';
import { applyStep } from '../../src/certs/rotation.js';
import { writeFileAtomic } from '../../src/certs/file-store.js';
import { buildServer, listen, type HttpServer } from '../../src/http/server.js';
import { createMetricsRegistry } from '../../src/http/metrics.js';
import { Readiness } from '../../src/http/readiness.js';
import { silentLogger } from '../../src/log/logger.js';
import { main } from '../../src/cli/main.js';
import { tempDir } from '../helpers/tmp.js';
import { capturingLogger, certsConfig, handshake, testClock } from './helpers.js';

const HOUR_MS = 3_600_000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function temp(): string {
  const dir = tempDir();
  cleanups.push(() => dir.remove());
  return dir.path;
}

async function serve(manager: CertificateManager, readiness?: Readiness, metrics = createMetricsRegistry({ defaultMetrics: false })): Promise<{ app: HttpServer; port: number }> {
  const tls = await manager.start();
  const app = buildServer({ logger: silentLogger(), tls, ...(readiness ? { readiness } : {}), metrics });
  app.get('/ping', async () => ({ pong: true }));
  manager.attach(app);
  const { port } = await listen(app, '127.0.0.1', 0);
  cleanups.push(async () => {
    await manager.close();
    await app.close();
  });
  return { app, port };
}

/** Material as cert-manager would leave it: no CA key. */
function externalMaterial(now: Date, validityDays: number) {
  const names = { dnsNames: ['portcullis-webhook.portcullis.svc', 'localhost'], ipAddresses: ['127.0.0.1'] };
  const { caKey: _none, ...material } = applyStep({ kind: 'issue', reason: 'test' }, undefined, now, { caValidityDays: 30, servingValidityDays: validityDays, names, keyBits: 1024 });
  return material;
}

function writeExternal(dir: string, material: { caBundle: string; cert: string; key: string }): void {
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, 'ca.crt'), material.caBundle, 0o644);
  writeFileAtomic(join(dir, 'tls.key'), material.key, 0o600);
  writeFileAtomic(join(dir, 'tls.crt'), material.cert, 0o644);
}

describe('certificate rotation on a running HTTPS server', () => {
  it('rotates the CA with overlap: old-bundle clients keep working, new-CA clients connect after the switch, no restart', async () => {
    const dir = temp();
    // Every certificate is issued in the past (the clock runs up to the real now), so that real TLS
    // clients, which use the real time, accept all of them.
    const realNow = Date.now();
    const clock = testClock(new Date(realNow - 2 * DAY_MS - 4 * HOUR_MS));
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    const manager = createCertificateManager({
      config: certsConfig(dir, { caValidityDays: 3, servingValidityDays: 3, overlapSeconds: 3600 }),
      logger: silentLogger(),
      metrics,
      now: clock.now,
      keyBits: 1024,
    });
    const { port } = await serve(manager, undefined, metrics);
    const oldCa = manager.current().caBundle;
    const first = await handshake(port, oldCa);
    expect(first.ok).toBe(true);
    // A client that keeps its connection open across the whole rotation.
    const keepAlive = new Agent({ connect: { ca: oldCa }, keepAliveTimeout: 60_000 });
    cleanups.push(() => keepAlive.close());
    expect((await fetch(`https://localhost:${port}/ping`, { dispatcher: keepAlive })).status).toBe(200);

    // Step 1: the CA has less than a third of its life left → old + new CA are published.
    clock.set(new Date(realNow - 3 * HOUR_MS));
    expect((await manager.check()).steps).toEqual(['add-ca']);
    const overlapBundle = manager.current().caBundle;
    const [, newCa = ''] = pemBlocks(overlapBundle);
    expect(parseCertificates(readFileSync(join(dir, 'ca.crt'), 'utf8'), 'ca.crt')).toHaveLength(2);
    expect(await handshake(port, oldCa)).toEqual(first);
    expect(await handshake(port, overlapBundle)).toEqual(first);
    expect((await handshake(port, newCa)).ok).toBe(false);

    // Step 2: one overlap later, the served certificate is signed by the new CA.
    clock.set(new Date(realNow - 2 * HOUR_MS + 1000));
    expect((await manager.check()).steps).toEqual(['switch-serving']);
    const switched = await handshake(port, newCa);
    expect(switched.ok).toBe(true);
    expect(switched.fingerprint).not.toBe(first.fingerprint);
    expect(await handshake(port, overlapBundle)).toEqual(switched);
    expect((await fetch(`https://localhost:${port}/ping`, { dispatcher: keepAlive })).status).toBe(200);

    // Step 3: one more overlap later, the old CA leaves the bundle.
    clock.set(new Date(realNow - HOUR_MS + 2000));
    expect((await manager.check()).steps).toEqual(['drop-old-ca']);
    expect(pemBlocks(manager.current().caBundle)).toEqual([newCa]);
    expect(await handshake(port, overlapBundle)).toEqual(switched);
    expect(await handshake(port, newCa)).toEqual(switched);
    expect(await manager.check()).toEqual({ steps: [], reloaded: false });

    const [ca] = parseCertificates(newCa, 'new CA');
    expect(await metrics.metrics()).toContain(`portcullis_certificate_expiry_timestamp_seconds{kind="ca"} ${Math.floor((ca?.notAfter.getTime() ?? 0) / 1000)}`);
    expect(await metrics.metrics()).toContain('portcullis_certificate_rotations_total{step="switch-serving",result="ok"} 1');
  });

  it('renews the serving certificate when a third of its life remains and serves it without a restart', async () => {
    const dir = temp();
    const realNow = Date.now();
    const clock = testClock(new Date(realNow - 2 * DAY_MS - HOUR_MS));
    const manager = createCertificateManager({ config: certsConfig(dir, { caValidityDays: 30, servingValidityDays: 3 }), logger: silentLogger(), now: clock.now, keyBits: 1024 });
    const { port } = await serve(manager);
    const ca = manager.current().caBundle;
    const before = await handshake(port, ca);
    expect((await manager.check()).steps).toEqual([]);
    clock.set(new Date(realNow));
    expect((await manager.check()).steps).toEqual(['renew-serving']);
    const after = await handshake(port, ca);
    expect(after.ok).toBe(true);
    expect(after.fingerprint).not.toBe(before.fingerprint);
  });
});

describe('bring-your-own certificates from files', () => {
  it('reloads when the files change, keeps the last good certificate on bad input, and never writes', async () => {
    const dir = temp();
    const now = new Date();
    const firstMaterial = externalMaterial(now, 10);
    writeExternal(dir, firstMaterial);
    const { logger, lines } = capturingLogger();
    const manager = createCertificateManager({ config: certsConfig(dir, { mode: 'external' }), logger });
    const { port } = await serve(manager);
    const first = await handshake(port, firstMaterial.caBundle);
    expect(first.ok).toBe(true);

    // Someone else (kubelet updating a mounted Secret, an operator) replaces the files.
    const secondMaterial = externalMaterial(now, 10);
    const rotated = new Promise<void>((resolve) => manager.onRotate(() => resolve()));
    writeExternal(dir, secondMaterial);
    await rotated;
    const second = await handshake(port, secondMaterial.caBundle);
    expect(second.ok).toBe(true);
    expect(second.fingerprint).not.toBe(first.fingerprint);

    // A key that does not belong to the certificate: the error names the file; the server keeps
    // the last good certificate and nothing is rewritten.
    writeFileSync(join(dir, 'tls.key'), firstMaterial.key);
    const outcome = await manager.check();
    expect(outcome.error?.message).toBe(`file ${join(dir, 'tls.key')}: the private key does not match the certificate in file ${join(dir, 'tls.crt')} (subject CN=portcullis-webhook.portcullis.svc)`);
    expect(await handshake(port, secondMaterial.caBundle)).toEqual(second);
    expect(readFileSync(join(dir, 'tls.key'), 'utf8')).toBe(firstMaterial.key);
    expect(lines().some((line) => line.msg === 'certificate check failed; keeping the certificate in use')).toBe(true);
  });

  it.each([
    ['a corrupt certificate', { cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }, 'tls.crt: the certificate is corrupt'],
    ['a certificate for the wrong names', 'wrong-names', 'tls.crt: the certificate is for other.example; missing required portcullis-webhook.portcullis.svc'],
  ])('refuses to start on %s, naming the file', async (_name, change, message) => {
    const dir = temp();
    const now = new Date();
    let material = externalMaterial(now, 10);
    if (typeof change === 'string') {
      const { caKey: _none, ...other } = applyStep({ kind: 'issue', reason: 'test' }, undefined, now, { caValidityDays: 30, servingValidityDays: 10, names: { dnsNames: ['other.example'], ipAddresses: [] }, keyBits: 1024 });
      material = other;
    } else material = { ...material, ...change };
    writeExternal(dir, material);
    const manager = createCertificateManager({ config: certsConfig(dir, { mode: 'external' }), logger: silentLogger() });
    cleanups.push(() => manager.close());
    await expect(manager.start()).rejects.toThrow(`file ${join(dir, message)}`);
  });

  it('fails readiness once the served certificate has expired and warns when it nears expiry', async () => {
    const dir = temp();
    const now = new Date();
    writeExternal(dir, externalMaterial(now, 3));
    const clock = testClock(now);
    const readiness = new Readiness();
    const { logger, lines } = capturingLogger();
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    const manager = createCertificateManager({ config: certsConfig(dir, { mode: 'external' }), logger, readiness, metrics, now: clock.now });
    const { port } = await serve(manager, readiness, metrics);
    const dispatcher = new Agent({ connect: { ca: manager.current().caBundle } });
    cleanups.push(() => dispatcher.close());
    const ready = async () => (await fetch(`https://localhost:${port}/readyz`, { dispatcher })).json();
    expect(await ready()).toMatchObject({ ready: true, checks: { certificates: { ok: true } } });
    expect(await metrics.metrics()).toContain(`portcullis_certificate_expiry_timestamp_seconds{kind="serving"} ${Math.floor(manager.current().servingNotAfter.getTime() / 1000)}`);

    clock.set(new Date(now.getTime() + 2.5 * DAY_MS));
    await manager.check();
    expect(lines().filter((line) => line.level === 'warn').map((line) => line.msg)).toContain(
      'certificate expires soon and is not managed by portcullis: renew it where it comes from',
    );
    clock.set(new Date(now.getTime() + 4 * DAY_MS));
    expect(await ready()).toMatchObject({
      ready: false,
      checks: { certificates: { ok: false, reason: `the serving certificate expired at ${manager.current().servingNotAfter.toISOString()}` } },
    });
  });
});

describe('managed certificates in a directory', () => {
  it('issues on first start with localhost and 127.0.0.1, keys 0600, and restores the last good files after a corruption', async () => {
    const dir = temp();
    // No store watch: the test decides when checks happen.
    const manager = createCertificateManager({ config: certsConfig(dir), logger: silentLogger(), keyBits: 1024, watchStore: false });
    const { port } = await serve(manager);
    const { statSync } = await import('node:fs');
    expect(statSync(join(dir, 'tls.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'ca.key')).mode & 0o777).toBe(0o600);
    const served = await handshake(port, manager.current().caBundle);
    expect(served.ok).toBe(true);
    const goodKey = readFileSync(join(dir, 'tls.key'), 'utf8');

    writeFileSync(join(dir, 'tls.key'), 'garbage');
    // The first sighting might be another writer mid-way: report, keep serving, do not touch.
    expect((await manager.check()).error?.message).toBe(`file ${join(dir, 'tls.key')}: expected a PEM private key ("-----BEGIN … PRIVATE KEY-----"), found none`);
    expect(readFileSync(join(dir, 'tls.key'), 'utf8')).toBe('garbage');
    // Still broken on the next check: restore the last good material.
    expect((await manager.check()).error).toBeUndefined();
    expect(readFileSync(join(dir, 'tls.key'), 'utf8')).toBe(goodKey);
    expect(await handshake(port, manager.current().caBundle)).toEqual(served);
  });

  it('serves what `portcullis certs rotate` wrote, as soon as it is written, without a restart', async () => {
    const dir = temp();
    const manager = createCertificateManager({ config: certsConfig(dir), logger: silentLogger(), keyBits: 1024 });
    const { port } = await serve(manager);
    const ca = manager.current().caBundle;
    const before = await handshake(port, ca);
    const reloaded = new Promise<void>((resolve) => manager.onRotate(() => resolve()));
    const output: string[] = [];
    const code = await main(['certs', 'rotate', '--dir', dir], { stdout: (text) => output.push(text), stderr: (text) => output.push(text), env: {}, cwd: dir });
    expect(code, output.join('')).toBe(0);
    await reloaded;
    const after = await handshake(port, ca);
    expect(after.ok).toBe(true);
    expect(after.fingerprint).not.toBe(before.fingerprint);
    expect(after.fingerprint?.replace(/:/g, '')).toBe(manager.current().fingerprint.split('|')[0]?.replace(/:/g, ''));
  });
});
