import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import SqliteDatabase from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log/logger.js';
import { startSuite, type Suite } from '../../src/main.js';
import type { TrivyReport } from '../../src/verdicts/trivy-report.js';
import { AdmissionChain, asWebhookConfiguration, loadWebhookConfigurations, pointAt, type WebhookConfiguration } from '../helpers/admission-chain.js';
import { repoRoot } from '../helpers/cli.js';
import { main as cli } from '../../src/cli/main.js';
import { harborReportFromTrivy, startHarborStandin, type HarborStandin } from '../helpers/harbor-standin.js';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-apiserver.js';
import { testTls } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * End to end, the way a cluster exercises Portcullis: the real composition root (`startSuite`, the
 * webhook role with the shipped policies/ and webhooks/), a kube-apiserver stand-in for the API
 * calls the suite makes, a Harbor API stand-in as the verdict source, and the apiserver-faithful
 * admission chain (test/helpers/admission-chain.ts) submitting objects as `kubectl apply` would.
 */
const webhooksDir = join(repoRoot, 'webhooks');
const tls = testTls();
const CRITICAL_DIGEST = `sha256:${'c'.repeat(64)}`;
const CLEAN_DIGEST = `sha256:${'0'.repeat(64)}`;

function trivyGolden(name: string): TrivyReport {
  return JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/trivy', name), 'utf8')) as TrivyReport;
}

function deployment(image: string, namespace = 'team-a', name = 'api'): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels: { app: name } },
    spec: { replicas: 2, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image }] } } },
  };
}

function pod(image: string, namespace = 'team-a', name = 'web'): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace }, spec: { containers: [{ name: 'app', image }] } };
}

interface World {
  data: { path: string; remove(): void };
  harbor: HarborStandin;
  kube: KubeApiServer;
  suite: Suite;
  chain: AdmissionChain;
  /** The webhook configurations as kube-apiserver would use them now. */
  configurations(): WebhookConfiguration[];
}

/**
 * Starts the world. With `fromCluster`, the chain reads the webhook configurations from the kube
 * stand-in on every request, with the caBundle the certificate manager injected there (as
 * kube-apiserver does); otherwise from webhooks/ with the suite's CA.
 */
async function startWorld(options: { fromCluster?: boolean; freshConnections?: boolean } = {}): Promise<World> {
  const data = tempDir('portcullis-e2e-');
  const harbor = await startHarborStandin({
    tls: tls.serving,
    username: 'robot$verdicts',
    password: 'verdicts-secret',
    artifacts: [
      { repository: 'library/api', digest: CRITICAL_DIGEST, tags: ['1.4'], scanStatus: 'Success', report: harborReportFromTrivy(trivyGolden('alpine-39.json.golden'), { repository: 'library/api', digest: CRITICAL_DIGEST }) },
      { repository: 'library/clean', digest: CLEAN_DIGEST, tags: ['1.0'], scanStatus: 'Success', report: harborReportFromTrivy(trivyGolden('alpine-39-skip.json.golden'), { repository: 'library/clean', digest: CLEAN_DIGEST }) },
    ],
  });
  const kube = await startKubeApiServer();
  for (const name of ['team-a', 'kube-system', 'portcullis']) kube.objects.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name } } });
  kube.objects.put({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'portcullis-pull', namespace: 'portcullis' },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths: { '127.0.0.1:5000': { auth: Buffer.from('robot:pull').toString('base64') } } })).toString('base64') },
  });
  // What `kubectl apply -k manifests/` would have created: the configurations from webhooks/.
  for (const configuration of loadWebhookConfigurations(webhooksDir)) kube.objects.put(configuration as unknown as Parameters<KubeApiServer['objects']['put']>[0]);

  const harborCa = join(data.path, 'harbor-ca.crt');
  writeFileSync(harborCa, tls.ca.cert);
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: data.path,
      kube: { mode: 'auto', kubeconfig: kube.kubeconfigPath(data.path) },
      webhook: { listen: '127.0.0.1:0', verdicts: { source: 'harbor', harbor: { url: harbor.url, username: 'robot$verdicts', password: 'verdicts-secret', caFile: harborCa } } },
      registry: { listen: '127.0.0.1:0' },
      scanner: { listen: '127.0.0.1:0' },
    },
  });
  const suite = await startSuite({ config, logger: silentLogger(), env: {}, cwd: repoRoot, roles: ['webhook'] });
  const webhookUrl = suite.endpoints.webhook?.url;
  if (!webhookUrl) throw new Error('the webhook role did not start');
  const caPem = readFileSync(suite.caFile, 'utf8');
  const stored = () =>
    [...kube.objects.list('validatingwebhookconfigurations'), ...kube.objects.list('mutatingwebhookconfigurations')].map((object, index) => asWebhookConfiguration(object, `cluster object ${index}`));
  const configurations = () => (options.fromCluster ? pointAt(stored(), { url: webhookUrl }) : pointAt(loadWebhookConfigurations(webhooksDir), { url: webhookUrl, caPem }));
  const chain = new AdmissionChain({ configurations, namespaces: { 'team-a': { team: 'a' } }, freshConnections: options.freshConnections ?? false });
  return { data, harbor, kube, suite, chain, configurations };
}

async function stopWorld(world: World | undefined): Promise<void> {
  if (!world) return;
  await world.chain.close();
  await world.suite.close();
  await world.kube.close();
  await world.harbor.close();
  world.data.remove();
}

describe('end to end: kube-apiserver admission chain → Portcullis webhooks', () => {
  let world: World;
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(() => stopWorld(world));

  it('refuses at apply a Deployment whose image has a Critical vulnerability, in the apiserver words', async () => {
    const image = `${world.harbor.host}/library/api:1.4`;
    const result = await world.chain.admit({ object: deployment(image) });
    expect(result.allowed).toBe(false);
    if (result.allowed) return;
    expect(result.code).toBe(403);
    expect(result.message).toMatch(/^admission webhook "validate\.portcullis\.io" denied the request: /);
    expect(result.message).toContain('deny-critical');
    expect(result.message).toContain(image);
    expect(result.message).toContain('CVE-2019-14697');
    expect(result.calls.map((call) => `${call.webhook}:${call.outcome}`)).toEqual(['mutate.portcullis.io:allowed', 'validate.portcullis.io:denied']);
  });

  it('admits the same Deployment with an image whose report is clean', async () => {
    const result = await world.chain.admit({ object: deployment(`${world.harbor.host}/library/clean:1.0`) });
    expect(result.allowed, result.allowed ? '' : result.message).toBe(true);
  });

  it('evaluates a dry run without copying the pull secret', async () => {
    const result = await world.chain.admit({ object: pod('127.0.0.1:5000/library/app:1.0', 'team-a', 'dry'), dryRun: true });
    expect(result.allowed).toBe(true);
    expect(world.kube.objects.get('secrets', 'portcullis-pull', 'team-a')).toBeUndefined();
  });

  it('gives a pod from the private registry its pull secret and copies the Secret into the namespace', async () => {
    const result = await world.chain.admit({ object: pod('127.0.0.1:5000/library/app:1.0') });
    expect(result.allowed, result.allowed ? '' : result.message).toBe(true);
    if (!result.allowed) return;
    expect(result.object).toMatchObject({ spec: { imagePullSecrets: [{ name: 'portcullis-pull' }] } });
    expect(result.calls.map((call) => `${call.webhook}:${call.outcome}`)).toEqual(['mutate.portcullis.io:patched', 'validate.portcullis.io:allowed']);
    const copied = world.kube.objects.get('secrets', 'portcullis-pull', 'team-a');
    expect(copied).toMatchObject({ type: 'kubernetes.io/dockerconfigjson' });
  });

  it('leaves kube-system alone: neither webhook is called there', async () => {
    const result = await world.chain.admit({ object: deployment(`${world.harbor.host}/library/api:1.4`, 'kube-system') });
    expect(result.allowed).toBe(true);
    expect(result.calls.map((call) => call.outcome)).toEqual(['skipped', 'skipped']);
  });

  it('shuts down gracefully: an admission request in flight is answered, and its decision reaches the audit log', { timeout: 60_000 }, async () => {
    // The verdict source stops answering, so the request stays in flight until its deadline.
    world.harbor.hang = true;
    const seen = world.harbor.requests;
    // An image not looked up before, so that the verdict cache cannot answer.
    const inFlight = world.chain.admit({ object: deployment(`${world.harbor.host}/library/fresh:2.0`, 'team-a', 'inflight') });
    const giveUp = Date.now() + 20_000;
    while (world.harbor.requests === seen) {
      if (Date.now() > giveUp) throw new Error('the webhook never asked the verdict source');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await world.suite.close();
    world.harbor.hang = false;
    const result = await inFlight;
    // Answered by the webhook (the policy's choice for `unavailable` is a warning), not failed.
    expect(result.calls.map((call) => call.outcome)).not.toContain('failed-closed');
    expect(result.allowed).toBe(true);
    expect(result.warnings.join('\n')).toMatch(/unavailable|not available|could not|deadline/i);
    const database = new SqliteDatabase(join(world.data.path, 'portcullis.db'), { readonly: true });
    try {
      const row = database.prepare("select count(*) as n from audit_decisions where name = 'inflight' and webhook = 'validate'").get() as { n: number };
      expect(row.n).toBe(1);
    } finally {
      database.close();
    }
  });

  describe('with the webhook down', () => {
    beforeAll(async () => {
      // Idempotent: the graceful shutdown above already closed it.
      await world.suite.close();
    });

    it('refuses under failurePolicy Fail (validating) with the apiserver "failed calling webhook" error, after the mutating one failed open', async () => {
      const result = await world.chain.admit({ object: deployment(`${world.harbor.host}/library/clean:1.0`) });
      expect(result.allowed).toBe(false);
      if (result.allowed) return;
      expect(result.code).toBe(500);
      expect(result.message).toMatch(/^Internal error occurred: failed calling webhook "validate\.portcullis\.io": failed to call webhook: Post "https:\/\/127\.0\.0\.1:\d+\/validate\?timeout=10s": dial tcp 127\.0\.0\.1:\d+: connect: connection refused$/);
      expect(result.calls.map((call) => `${call.webhook}:${call.outcome}`)).toEqual(['mutate.portcullis.io:failed-open', 'validate.portcullis.io:failed-closed']);
    });

    it('admits under failurePolicy Ignore (the break-glass setting), recording both calls as failed open', async () => {
      const ignoring = new AdmissionChain({
        configurations: () => world.configurations().map((configuration) => ({ ...configuration, webhooks: configuration.webhooks.map((webhook) => ({ ...webhook, failurePolicy: 'Ignore' as const })) })),
      });
      try {
        const result = await ignoring.admit({ object: deployment(`${world.harbor.host}/library/api:1.4`) });
        expect(result.allowed).toBe(true);
        expect(result.calls.map((call) => call.outcome)).toEqual(['failed-open', 'failed-open']);
      } finally {
        await ignoring.close();
      }
    });
  });
});

describe('end to end: a certificate rotation during steady traffic', () => {
  let world: World;
  beforeAll(async () => {
    world = await startWorld({ fromCluster: true, freshConnections: true });
  });
  afterAll(() => stopWorld(world));

  /** Connects to the webhook trusting only `caPem`: `ok`, or the TLS error message. */
  function handshake(caPem: string): Promise<string> {
    const endpoint = world.suite.endpoints.webhook;
    return new Promise((resolve) => {
      const socket = connectTls({ host: '127.0.0.1', port: endpoint?.port ?? 0, ca: caPem, servername: 'localhost' }, () => {
        socket.end();
        resolve('ok');
      });
      socket.on('error', (error) => resolve(error.message));
    });
  }

  /** `portcullis certs rotate …` through the real dispatcher, in this process. */
  async function certsRotate(args: string[]): Promise<{ code: number; stderr: string }> {
    let stderr = '';
    const code = await cli(['certs', 'rotate', ...args], { stdout: () => undefined, stderr: (text) => (stderr += text), env: {}, cwd: repoRoot });
    return { code, stderr };
  }

  it('rotates the CA and the serving certificate under load without a single failed call', { timeout: 180_000 }, async () => {
    const certsDir = join(world.data.path, 'certs');
    const caBundleCerts = () =>
      world.configurations().map((configuration) => (Buffer.from(configuration.webhooks[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8').match(/BEGIN CERTIFICATE/g) ?? []).length);
    // The certificate manager injected the caBundle into both configurations at start.
    expect(caBundleCerts()).toEqual([1, 1]);

    const results: { allowed: boolean; message?: string; fingerprint: string }[] = [];
    const waiters: { count: number; resolve: () => void }[] = [];
    const record = (result: { allowed: boolean; message?: string }) => {
      results.push({ ...result, fingerprint: world.suite.certificates.current().fingerprint });
      for (const waiter of waiters.filter((w) => results.length >= w.count)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    };
    const after = (more: number) => new Promise<void>((resolve) => waiters.push({ count: results.length + more, resolve }));
    let running = true;
    // Steady traffic: three clients in a loop, each a `kubectl apply` of a fresh Deployment.
    const loops = Array.from({ length: 3 }, async (_, loop) => {
      for (let i = 0; running && i < 2_000; i += 1) {
        const result = await world.chain.admit({ object: deployment(`${world.harbor.host}/library/clean:1.0`, 'team-a', `steady-${loop}-${i}`) });
        record(result.allowed ? { allowed: true } : { allowed: false, message: result.message });
      }
    });

    try {
      await after(6);
      const before = world.suite.certificates.current();

      // 1. A new CA joins the bundle (injected into both configurations); the old CA still signs
      //    the served certificate.
      const addCa = await certsRotate(['--dir', certsDir, '--ca']);
      expect(addCa.code, addCa.stderr).toBe(0);
      await world.suite.certificates.check();
      expect(caBundleCerts()).toEqual([2, 2]);
      await after(6);

      // 2. The served certificate is renewed under the new CA and swapped in without a restart.
      const renew = await certsRotate(['--dir', certsDir]);
      expect(renew.code, renew.stderr).toBe(0);
      await world.suite.certificates.check();
      const rotated = world.suite.certificates.current();
      expect(rotated.fingerprint).not.toBe(before.fingerprint);
      // The server now presents a certificate that only the new CA verifies.
      const [oldCa, newCa] = readFileSync(join(certsDir, 'ca.crt'), 'utf8').split(/(?<=-----END CERTIFICATE-----\n?)/).filter((pem) => pem.includes('BEGIN'));
      expect(await handshake(oldCa ?? '')).toMatch(/unable to verify|self.signed|certificate/i);
      expect(await handshake(newCa ?? '')).toBe('ok');
      await after(9);

      running = false;
      await Promise.all(loops);
      expect(results.filter((result) => !result.allowed)).toEqual([]);
      expect(results.filter((result) => result.fingerprint === rotated.fingerprint).length).toBeGreaterThanOrEqual(9);
    } finally {
      running = false;
      for (const waiter of waiters.splice(0)) waiter.resolve();
      await Promise.all(loops);
    }
  });
});

describe('end to end: all roles in one process, the registry on a port chosen at start', () => {
  const data = tempDir('portcullis-e2e-all-');
  let suite: Suite | undefined;
  let chain: AdmissionChain | undefined;
  beforeAll(async () => {
    const config = loadConfig({
      env: {},
      overrides: { dataDir: data.path, kube: { mode: 'off' }, webhook: { listen: '127.0.0.1:0' }, registry: { listen: '127.0.0.1:0' }, scanner: { listen: '127.0.0.1:0', trivyPath: '/nonexistent/trivy' } },
    });
    suite = await startSuite({ config, logger: silentLogger(), env: {}, cwd: repoRoot });
    const url = suite.endpoints.webhook?.url ?? '';
    const caPem = readFileSync(suite.caFile, 'utf8');
    chain = new AdmissionChain({ configurations: () => pointAt(loadWebhookConfigurations(webhooksDir), { url, caPem }) });
  });
  afterAll(async () => {
    await chain?.close();
    await suite?.close();
    data.remove();
  });

  it('gives pods pulling from the included registry its pull secret at the address it really listens on', async () => {
    const port = suite?.endpoints.registry?.port;
    expect(port).not.toBe(5000);
    const result = await chain?.admit({ object: pod(`127.0.0.1:${port}/demo/app:1.0`) });
    expect(result?.allowed).toBe(true);
    if (!result?.allowed) return;
    expect(result.object).toMatchObject({ spec: { imagePullSecrets: [{ name: 'portcullis-pull' }] } });
    // The builtin verdict source knows the registry: an unknown tag is unscanned, and the shipped policy warns.
    expect(result.warnings.join('\n')).toMatch(/demo\/app:1\.0/);
  });

  it('leaves images of other registries without the pull secret', async () => {
    const result = await chain?.admit({ object: pod('docker.io/library/nginx:1.27', 'team-a', 'other') });
    expect(result?.allowed).toBe(true);
    if (!result?.allowed) return;
    expect(result.object).not.toHaveProperty('spec.imagePullSecrets');
  });
});
