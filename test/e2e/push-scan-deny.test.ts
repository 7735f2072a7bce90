import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { VULNERABILITY_REPORT_MIME } from '../../src/harbor/report.js';
import { silentLogger } from '../../src/log/logger.js';
import { startSuite, type Suite } from '../../src/main.js';
import { AdmissionChain, loadWebhookConfigurations, pointAt } from '../helpers/admission-chain.js';
import { repoRoot } from '../helpers/cli.js';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-apiserver.js';
import { buildOciLayout } from '../helpers/oci-layout.js';
import { skopeoOk } from '../helpers/skopeo.js';
import { trustingAgent } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';
import { STANDIN_TRIVY, standinEnv } from '../trivy-standin/path.js';

/**
 * Push → scan → deny, all three roles in one process (the real composition root): skopeo pushes
 * images to the included registry, the registry's push event queues a scan, the scanner runs the
 * Trivy stand-in against the registry with a robot credential, and the admission chain (as
 * kube-apiserver calls the webhooks) submits Deployments using those images. The shipped policies
 * decide: deny-critical refuses fixable Critical findings and warns for images without a result.
 */
const webhooksDir = join(repoRoot, 'webhooks');
const ADMIN_PASSWORD = 'e2e-admin-Passw0rd';

interface World {
  data: { path: string; remove(): void };
  kube: KubeApiServer;
  suite: Suite;
  chain: AdmissionChain;
  registryHost: string;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  push(repository: string, tag: string, labels: Record<string, string>): Promise<string>;
}

function deployment(image: string, name: string): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'team-a', labels: { app: name } },
    spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image }] } } },
  };
}

async function startWorld(control: { mode?: string }): Promise<World> {
  const data = tempDir('portcullis-e2e-scan-');
  const controlFile = join(data.path, 'trivy-control.json');
  writeFileSync(controlFile, JSON.stringify(control));
  const kube = await startKubeApiServer();
  for (const name of ['team-a', 'kube-system', 'portcullis']) kube.objects.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name } } });
  kube.objects.put({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'portcullis-pull', namespace: 'portcullis' },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths: {} })).toString('base64') },
  });
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: data.path,
      kube: { mode: 'auto', kubeconfig: kube.kubeconfigPath(data.path) },
      webhook: { listen: '127.0.0.1:0' },
      registry: { listen: '127.0.0.1:0', adminPassword: ADMIN_PASSWORD },
      scanner: { listen: '127.0.0.1:0', trivyPath: STANDIN_TRIVY, cacheDir: join(data.path, 'trivy-cache') },
    },
  });
  const suite = await startSuite({ config, logger: silentLogger(), env: standinEnv({ PORTCULLIS_TEST_TRIVY_CONTROL: controlFile }), cwd: repoRoot });
  const webhookUrl = suite.endpoints.webhook?.url;
  const registryUrl = suite.endpoints.registry?.url;
  if (!webhookUrl || !registryUrl) throw new Error('the webhook or registry role did not start');
  const caPem = readFileSync(suite.caFile, 'utf8');
  const chain = new AdmissionChain({ configurations: () => pointAt(loadWebhookConfigurations(webhooksDir), { url: webhookUrl, caPem }), namespaces: { 'team-a': { team: 'a' } } });
  const dispatcher = trustingAgent(caPem);
  const authorization = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;
  const registryHost = new URL(registryUrl).host;
  let layouts = 0;
  return {
    data,
    kube,
    suite,
    chain,
    registryHost,
    async api(method, path, body) {
      const response = await fetch(`${registryUrl}/api/v2.0${path}`, {
        method,
        dispatcher,
        headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
    },
    async push(repository, tag, labels) {
      const layout = buildOciLayout(join(data.path, `layout-${(layouts += 1)}`), { tag, labels, files: { 'app.txt': `${repository}:${tag}\n` } });
      await skopeoOk(['copy', '--quiet', '--dest-cert-dir', suite.trustDir, '--dest-creds', `admin:${ADMIN_PASSWORD}`, layout.reference, `docker://${registryHost}/${repository}:${tag}`]);
      return layout.manifestDigest;
    },
  };
}

async function stopWorld(world: World | undefined): Promise<void> {
  if (!world) return;
  await world.chain.close();
  await world.suite.close();
  await world.kube.close();
  world.data.remove();
}

/** The artifact's scan_overview as the registry's Harbor API shows it. */
async function scanStatus(world: World, project: string, repository: string, digest: string): Promise<string | undefined> {
  const { status, json } = await world.api('GET', `/projects/${project}/repositories/${encodeURIComponent(repository)}/artifacts/${digest}?with_scan_overview=true`);
  if (status !== 200) throw new Error(`artifact ${project}/${repository}@${digest}: ${status} ${JSON.stringify(json)}`);
  const overview = (json as { scan_overview?: Record<string, { scan_status?: string }> }).scan_overview;
  return overview?.[VULNERABILITY_REPORT_MIME]?.scan_status;
}

/**
 * Waits for a scan to finish. The scan runs in the suite's background; this end-to-end test sees
 * only the public API, so it asks the registry again until the deadline (no fixed sleep).
 */
async function scanned(world: World, project: string, repository: string, digest: string): Promise<void> {
  const deadline = Date.now() + 25_000;
  for (;;) {
    const status = await scanStatus(world, project, repository, digest);
    if (status === 'Success') return;
    if (status === 'Error' || Date.now() > deadline) throw new Error(`scan of ${digest} ended as ${status ?? 'nothing'}`);
    await delay(100);
  }
}

describe('end to end: skopeo push → scan on push → admission', () => {
  let world: World;
  let critical = '';
  let clean = '';
  beforeAll(async () => {
    world = await startWorld({});
    expect((await world.api('POST', '/projects', { project_name: 'team', metadata: { public: 'false' } })).status).toBe(201);
    expect((await world.api('POST', '/projects', { project_name: 'quiet', metadata: { public: 'false', auto_scan: 'false' } })).status).toBe(201);
    [critical, clean] = await Promise.all([
      world.push('team/api', '1.4', { 'portcullis.test/trivy-report': 'alpine-39' }),
      world.push('team/clean', '1.0', { 'portcullis.test/trivy-report': 'alpine-39-skip' }),
    ]);
    await Promise.all([scanned(world, 'team', 'api', critical), scanned(world, 'team', 'clean', clean)]);
  });
  afterAll(() => stopWorld(world));

  it('denies a Deployment whose image the push scan found Critical, naming the CVEs', async () => {
    const image = `${world.registryHost}/team/api:1.4`;
    const result = await world.chain.admit({ object: deployment(image, 'api') });
    expect(result.allowed).toBe(false);
    if (result.allowed) return;
    expect(result.code).toBe(403);
    expect(result.message).toMatch(/^admission webhook "validate\.portcullis\.io" denied the request: /);
    expect(result.message).toContain('deny-critical');
    expect(result.message).toContain(image);
    expect(result.message).toContain('CVE-2019-14697');
  });

  it('shows the report in the registry: scan_overview and /additions/vulnerabilities', async () => {
    const { json } = await world.api('GET', `/projects/team/repositories/api/artifacts/${critical}?with_scan_overview=true`);
    expect((json as { scan_overview: Record<string, unknown> }).scan_overview[VULNERABILITY_REPORT_MIME]).toMatchObject({
      scan_status: 'Success',
      severity: 'Critical',
      summary: { total: 6, fixable: 6, summary: { Critical: 2, Medium: 4 } },
    });
    const additions = await world.api('GET', `/projects/team/repositories/api/artifacts/${critical}/additions/vulnerabilities`);
    expect(additions.status).toBe(200);
    expect(JSON.stringify(additions.json)).toContain('CVE-2019-14697');
  });

  it('allows the same Deployment with an image whose report is clean', async () => {
    const result = await world.chain.admit({ object: deployment(`${world.registryHost}/team/clean:1.0`, 'clean') });
    expect(result.allowed, result.allowed ? '' : result.message).toBe(true);
  });

  it('gives an unscanned image the policy answer for unscanned (warn) and starts its scan', async () => {
    const digest = await world.push('quiet/app', '2.0', { 'portcullis.test/trivy-report': 'photon-30' });
    expect(await scanStatus(world, 'quiet', 'app', digest)).toBeUndefined();
    const result = await world.chain.admit({ object: deployment(`${world.registryHost}/quiet/app:2.0`, 'quiet') });
    expect(result.allowed, result.allowed ? '' : result.message).toBe(true);
    expect(result.warnings.join('\n')).toContain('not scanned yet');
    // The verdict lookup queued the scan (auto_scan is off for this project, so nothing else did).
    await scanned(world, 'quiet', 'app', digest);
    const { json } = await world.api('GET', `/projects/quiet/repositories/app/artifacts/${digest}?with_scan_overview=true`);
    expect((json as { scan_overview: Record<string, unknown> }).scan_overview[VULNERABILITY_REPORT_MIME]).toMatchObject({ severity: 'Critical' });
  });
});

describe('end to end: the scanner is not ready', () => {
  let world: World;
  beforeAll(async () => {
    world = await startWorld({ mode: 'no-db' });
    expect((await world.api('POST', '/projects', { project_name: 'team', metadata: { public: 'false' } })).status).toBe(201);
  });
  afterAll(() => stopWorld(world));

  it('answers with the policy choice for unavailable (warn), saying why, and reports it in /readyz', async () => {
    await world.push('team/api', '1.4', { 'portcullis.test/trivy-report': 'alpine-39' });
    const result = await world.chain.admit({ object: deployment(`${world.registryHost}/team/api:1.4`, 'api') });
    expect(result.allowed, result.allowed ? '' : result.message).toBe(true);
    expect(result.warnings.join('\n')).toContain('scanner not ready');
    const readiness = await world.suite.readiness('scanner');
    expect(readiness.ready).toBe(false);
    expect(readiness.checks.trivy?.reason).toMatch(/^not ready: (downloading the vulnerability database|vulnerability database not found)/);
  });
});
