import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log/logger.js';
import { startSuite, type Suite } from '../../src/main.js';
import type { TrivyReport } from '../../src/verdicts/trivy-report.js';
import { AdmissionChain, loadWebhookConfigurations, pointAt, type WebhookConfiguration } from '../helpers/admission-chain.js';
import { repoRoot } from '../helpers/cli.js';
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

async function startWorld(): Promise<World> {
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
  const configurations = () => pointAt(loadWebhookConfigurations(webhooksDir), { url: webhookUrl, caPem });
  const chain = new AdmissionChain({ configurations, namespaces: { 'team-a': { team: 'a' } } });
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

  describe('with the webhook down', () => {
    beforeAll(async () => {
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
