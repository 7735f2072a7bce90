import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOciLayout } from '../helpers/oci-layout.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoOk } from '../helpers/skopeo.js';
import { tempDir } from '../helpers/tmp.js';
import { registryDigestResolver, resolveManifest } from '../../src/scanner/registry-client.js';
import { trustingAgent } from '../helpers/tls.js';
import { standinEnv } from './path.js';

/**
 * The stand-in against the Portcullis registry itself: its Docker token flow (401 with a Bearer
 * challenge → token service with basic credentials → bearer token), with a short-lived robot
 * credential as the scanner issues them, and a refused one.
 */
const ADMIN_PASSWORD = 'standin-Admin-passw0rd';
let registry: TestRegistry;
const dir = tempDir('portcullis-standin-portcullis-');
let digest = '';

function trivy(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('trivy', args, { env: standinEnv(env), timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  registry = await startTestRegistry({ withIdentity: { adminPassword: ADMIN_PASSWORD, challengeScheme: 'bearer' } });
  const admin = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;
  const created = await registry.call('/api/v2.0/projects', { method: 'POST', headers: { authorization: admin, 'content-type': 'application/json' }, body: JSON.stringify({ project_name: 'team' }) });
  expect(created.status).toBe(201);
  const layout = buildOciLayout(join(dir.path, 'layout'), { tag: '1.0', labels: { 'portcullis.test/trivy-report': 'centos-7' } });
  await skopeoOk(['copy', '--quiet', '--dest-cert-dir', registry.certDir, '--dest-creds', `admin:${ADMIN_PASSWORD}`, layout.reference, `docker://${registry.host}/team/centos:1.0`]);
  digest = layout.manifestDigest;
  writeFileSync(join(dir.path, 'ca.crt'), registry.caPem);
});

afterAll(async () => {
  await registry?.close();
  dir.remove();
});

describe('the trivy stand-in against the Portcullis registry (token flow)', () => {
  const args = () => ['image', '--format', 'json', '--quiet', '--scanners', 'vuln', '--timeout', '30s', `${registry.host}/team/centos@${digest}`];

  it('pulls with a short-lived pull-only robot credential through the Bearer token flow', async () => {
    const robot = await registry.identity!.issueRobotCredential('team', ['pull'], 120);
    const result = await trivy(args(), { SSL_CERT_FILE: join(dir.path, 'ca.crt'), TRIVY_USERNAME: robot.username, TRIVY_PASSWORD: robot.password });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { Results: { Vulnerabilities: unknown[] }[] };
    expect(report.Results[0]?.Vulnerabilities).toHaveLength(3);
  });

  it('fails like Trivy when the token service refuses the credentials', async () => {
    const robot = await registry.identity!.issueRobotCredential('team', ['pull'], 120);
    const result = await trivy(args(), { SSL_CERT_FILE: join(dir.path, 'ca.crt'), TRIVY_USERNAME: robot.username, TRIVY_PASSWORD: `${robot.password}-wrong` });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/\tFATAL\t[\s\S]*remote error: GET https:\/\/127\.0\.0\.1:\d+\/service\/token\?/);
    expect(result.stderr).toMatch(/UNAUTHORIZED|401/);
  });

  it('resolves tags to digests through the same token flow (the scanner side of portcullis scan and the HTTP verdict source)', async () => {
    const robot = await registry.identity!.issueRobotCredential('team', ['pull'], 120);
    const dispatcher = trustingAgent(registry.caPem);
    const options = { baseUrl: registry.url, username: robot.username, password: robot.password, dispatcher };
    expect(await resolveManifest(options, 'team/centos', '1.0')).toEqual({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    expect(await resolveManifest(options, 'team/centos', 'missing')).toBeUndefined();
    expect(await registryDigestResolver(options).resolve('team/centos', '1.0', new AbortController().signal)).toBe(digest);
    await expect(resolveManifest({ ...options, password: 'wrong' }, 'team/centos', '1.0')).rejects.toThrow(/token service .* answered 401/);
    await dispatcher.close();
  });
});
