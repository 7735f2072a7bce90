import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer, listen, type HttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { main } from '../../src/cli/main.js';
import { runCli } from '../helpers/cli.js';
import { testTls } from '../helpers/tls.js';
import { HTPASSWD_USER, startDistribution, type Distribution } from '../trivy-standin/distribution.js';
import { scannerHarness, type Harness } from './harness.js';

let registry: Distribution;
let harness: Harness;
let app: HttpServer;
let scannerUrl: string;
const images: Record<string, { digest: string }> = {};

beforeAll(async () => {
  registry = await startDistribution({ auth: true });
  images.photon = await registry.push('team/photon', '3.0', { labels: { 'portcullis.test/trivy-report': 'photon-30' } });
  images.clean = await registry.push('team/clean', '1.0', {});
  images.chart = await registry.push('charts/app', '0.1.0', { configMediaType: 'application/vnd.cncf.helm.config.v1+json' });
  harness = await scannerHarness({ registryHost: registry.host, caPem: testTls().ca.cert, credentials: { issueRobotCredential: async () => HTPASSWD_USER } });
  await harness.start();
  app = buildServer({ logger: silentLogger(), tls: testTls().serving });
  await app.register(harness.adapterRoutes);
  scannerUrl = `https://127.0.0.1:${(await listen(app, '127.0.0.1', 0)).port}`;
});

afterAll(async () => {
  await app?.close();
  await harness?.dispose();
  await registry?.close();
});

/** Runs the CLI in this process (same code as the entry point, without a child's start-up cost). */
async function cli(args: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (text) => void (stdout += text), stderr: (text) => void (stderr += text), env: { PATH: process.env.PATH, ...env }, cwd: process.cwd() });
  return { code, stdout, stderr };
}

const connection = () => ['--scanner', scannerUrl, '--ca', registry.caFile, '--username', HTPASSWD_USER.username];
const env = () => ({ PORTCULLIS_REGISTRY_PASSWORD: HTPASSWD_USER.password });

describe('portcullis scan IMAGE', () => {
  it('resolves the tag, scans, and prints a summary table by severity with the findings (the real entry point)', async () => {
    const result = await runCli(['scan', ...connection(), `${registry.host}/team/photon:3.0`], { env: env() });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(`Image:     ${registry.host}/team/photon:3.0@${images.photon!.digest}`);
    expect(lines).toContain('Severity:  Critical');
    expect(result.stdout).toContain(['SEVERITY    TOTAL  FIXABLE', 'Critical        2        2', 'High            1        1', 'Medium          0        0'].join('\n'));
    expect(result.stdout).toMatch(/Total\s+3\s+3/);
    expect(result.stdout).toMatch(/^ID\s+SEVERITY\s+PACKAGE\s+INSTALLED\s+FIXED IN\s+STATUS$/m);
    expect(result.stdout).toMatch(/^CVE-\S+\s+Critical\s+\S+/m);
  });

  it('prints the Harbor report as JSON with -o json, and says so when nothing was found', async () => {
    const json = await cli(['scan', ...connection(), '-o', 'json', `${registry.host}/team/photon@${images.photon!.digest}`], env());
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ severity: 'Critical', artifact: { digest: images.photon!.digest } });
    const clean = await cli(['scan', ...connection(), `${registry.host}/team/clean:1.0`], env());
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain('Severity:  None (no vulnerabilities found)');
  });

  it.each([
    ['a Helm chart', () => [`${registry.host}/charts/app:0.1.0`], 1, 'not a container image'],
    ['an unknown tag', () => [`${registry.host}/team/photon:nope`], 1, 'team/photon:nope not found'],
    ['a bad image reference', () => ['Team/Photon'], 2, 'repository component "Team" must be lower-case'],
    ['two images', () => ['a/b', 'c/d'], 2, 'expected one IMAGE, got 2'],
    ['a bad --wait', () => ['--wait', 'soon', 'a/b'], 2, '--wait: expected whole seconds, got "soon"'],
  ])('exits non-zero for %s, saying why', async (_name, args, code, message) => {
    const result = await cli(['scan', ...connection(), ...args()], env());
    expect(result.code).toBe(code);
    expect(result.stderr).toContain(message);
  });

  it('exits 1 when the registry refuses the credentials for the tag lookup', async () => {
    const result = await cli(['scan', ...connection(), `${registry.host}/team/photon:3.0`], { PORTCULLIS_REGISTRY_PASSWORD: 'wrong' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`registry https://${registry.host} refused team/photon:3.0 (401)`);
  });

  it('portcullis scanner status reports readiness, the database and the queue', async () => {
    const result = await cli(['scanner', 'status', '--scanner', scannerUrl, '--ca', registry.caFile]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Status:    ready');
    expect(result.stdout).toContain('DB:        updated 2026-01-01T00:00:00Z');
    expect(result.stdout).toMatch(/Queue:     queued \d+, running \d+, succeeded \d+, failed \d+/);
  });
});
