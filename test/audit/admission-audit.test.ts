import { cpSync } from 'node:fs';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmission, type Admission } from '../../src/admission/admission.js';
import type { DecisionRecord, DecisionSink } from '../../src/admission/decision.js';
import { createAdmissionKube } from '../../src/admission/kube-port.js';
import { createAudit, type Audit } from '../../src/audit/audit.js';
import { auditMigrations } from '../../src/audit/migrations.js';
import type { DecisionPage } from '../../src/audit/api-schemas.js';
import { createDecisionWriter } from '../../src/audit/writer.js';
import { defaultConfig } from '../../src/config/schema.js';
import { migrate, openDatabase, type OpenDatabase } from '../../src/db/database.js';
import { createMetricsRegistry, type Registry } from '../../src/http/metrics.js';
import { Readiness } from '../../src/http/readiness.js';
import { buildServer, listen, type HttpServer } from '../../src/http/server.js';
import { createKubeClient } from '../../src/kube/client.js';
import { silentLogger } from '../../src/log/logger.js';
import { createPolicyStore, type PolicyStore } from '../../src/policy/store.js';
import type { Finding } from '../../src/policy/types.js';
import { ScriptedSource, admissionReview, workload } from '../helpers/admission.js';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-apiserver.js';
import { testTls, trustingAgent } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';
import { ManualClock } from './manual-clock.js';

const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const critical: Finding = { id: 'CVE-2021-3711', package: 'openssl', installedVersion: '1.1.1k', fixedVersion: '1.1.1l', severity: 'Critical' };
const high: Finding = { id: 'CVE-2022-0001', package: 'zlib', installedVersion: '1.2.11', fixedVersion: '1.2.12', severity: 'High' };
const scanned = (findings: Finding[]) => ({ state: 'scanned' as const, scannedAt: new Date().toISOString(), findings });
const CLEAN = 'registry.example.com/team/clean:1';
const CRITICAL = 'registry.example.com/team/critical:1';
const HIGH = 'registry.example.com/team/high:1';

/** Passes decisions on and keeps a copy: what the webhook handed over, to compare with what was stored. */
class Tee implements DecisionSink {
  readonly records: DecisionRecord[] = [];
  constructor(private readonly next: DecisionSink) {}
  record(decision: DecisionRecord): void {
    this.records.push(structuredClone(decision));
    this.next.record(decision);
  }
}

let dir: ReturnType<typeof tempDir>;
let kube: KubeApiServer;
let policies: PolicyStore;
let database: OpenDatabase<unknown>;
const source = new ScriptedSource();
const dispatcher = trustingAgent(testTls().ca.cert);
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dir = tempDir('portcullis-admission-audit-');
  cpSync(new URL('../fixtures/admission/policies/', import.meta.url), `${dir.path}/policies`, { recursive: true });
  policies = createPolicyStore({ dir: `${dir.path}/policies`, logger: silentLogger(), watch: false });
  await policies.start();
  source.set(CLEAN, digest(1), scanned([])).set(CRITICAL, digest(2), scanned([critical, high])).set(HIGH, digest(3), scanned([high]));
  kube = await startKubeApiServer();
  kube.objects.put({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'example-pull', namespace: 'portcullis' },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
  });
  database = openDatabase<unknown>({ sqlitePath: `${dir.path}/portcullis.db` });
  await migrate(database.db, auditMigrations);
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await policies.close();
  await kube.close();
  await database.close();
  dir.remove();
});

/** A webhook server that hands its decisions to `sink`. */
async function webhook(sink: DecisionSink, metrics: Registry): Promise<(path: string, body: Record<string, unknown>) => Promise<{ allowed: boolean; ms: number }>> {
  const admission: Admission = createAdmission({
    config: { ...defaultConfig(dir.path).webhook },
    logger: silentLogger(),
    metrics,
    readiness: new Readiness(),
    policies,
    verdicts: source,
    kube: createAdmissionKube(createKubeClient(kube.kubeConfig())),
    decisions: sink,
    webhooks: { validate: { path: '/validate', timeoutSeconds: 2, file: 'test' }, mutate: { path: '/mutate', timeoutSeconds: 2, file: 'test' } },
    tls: testTls().serving,
  });
  const server = await admission.buildServer();
  closers.push(() => server.close());
  const { port } = await listen(server, '127.0.0.1', 0);
  return async (path, body) => {
    const started = performance.now();
    const response = await fetch(`https://127.0.0.1:${port}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, dispatcher });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { response: { allowed: boolean } };
    return { allowed: answer.response.allowed, ms: performance.now() - started };
  };
}

describe('decisions from real webhook calls', () => {
  let audit: Audit;
  let api: HttpServer;
  let tee: Tee;
  let call: Awaited<ReturnType<typeof webhook>>;

  beforeAll(async () => {
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    audit = createAudit({
      config: { ...defaultConfig(dir.path).audit, apiToken: 'audit-token-0123456789' },
      logger: silentLogger(),
      db: database.db,
      metrics,
      authenticate: async () => ({ kind: 'anonymous' }),
      clock: new ManualClock(),
    });
    closers.push(() => audit.close());
    tee = new Tee(audit.sink);
    call = await webhook(tee, metrics);
    api = buildServer({ logger: silentLogger() });
    await api.register(audit.routes);
    closers.push(() => api.close());
  });

  async function query(parameters: string): Promise<DecisionPage> {
    const response = await api.inject({ method: 'GET', url: `/api/v1/audit/decisions?${parameters}`, headers: { authorization: 'Bearer audit-token-0123456789' } });
    expect(response.statusCode).toBe(200);
    return response.json<DecisionPage>();
  }

  it('stores validate and mutate decisions with every field, dry runs flagged, and filters combine', async () => {
    const pod = (name: string, images: string[]) => workload('Pod', { name, namespace: 'team-a', containers: images });
    expect((await call('/validate', admissionReview({ object: pod('denied', [CRITICAL]), uid: 'uid-deny' }))).allowed).toBe(false);
    expect((await call('/validate', admissionReview({ object: pod('dry', [CRITICAL]), uid: 'uid-dry', dryRun: true }))).allowed).toBe(false);
    expect((await call('/validate', admissionReview({ object: pod('warned', [HIGH]), uid: 'uid-warn' }))).allowed).toBe(true);
    expect((await call('/mutate', admissionReview({ object: pod('mutated', [CLEAN]), uid: 'uid-mutate' }))).allowed).toBe(true);
    await audit.sink.flush();

    const all = await query('limit=100');
    expect(all.items).toHaveLength(tee.records.length);
    for (const recorded of tee.records) {
      const stored = all.items.find((item) => item.uid === recorded.uid && item.webhook === recorded.webhook);
      expect(stored).toEqual({ id: expect.any(Number), ...recorded });
    }
    const denied = all.items.find((item) => item.uid === 'uid-deny');
    expect(denied).toMatchObject({ decision: 'deny', mode: 'deny', dryRun: false, user: { username: 'alice@example.com' }, images: [{ image: CRITICAL, digest: digest(2) }] });
    expect(denied?.results.some((result) => result.policy === 'deny-critical' && result.status === 'fail' && result.message.includes('CVE-2021-3711'))).toBe(true);
    expect(all.items.find((item) => item.uid === 'uid-dry')?.dryRun).toBe(true);
    expect(all.items.find((item) => item.uid === 'uid-warn')).toMatchObject({ decision: 'allow', mode: 'warn' });
    expect(all.items.find((item) => item.webhook === 'mutate' && item.uid === 'uid-mutate')?.patch.length).toBeGreaterThan(0);

    expect((await query('decision=deny&dryRun=false')).items.map((item) => item.uid)).toEqual(['uid-deny']);
    expect((await query(`decision=deny&dryRun=true&policy=deny-critical&digest=${digest(2)}&namespace=team-a`)).items.map((item) => item.uid)).toEqual(['uid-dry']);
    expect((await query('policy=warn-high&image=registry.example.com/team/high*')).items.map((item) => item.uid)).toContain('uid-warn');
  });
});

describe('admission while the audit store is slow or failing', () => {
  it.each([
    ['blocks forever', 'block'],
    ['fails every write', 'fail'],
  ] as const)('answers every request when the store %s, and counts what it drops', async (_name, behaviour) => {
    let attempts = 0;
    let settled = 0;
    const insert = async (): Promise<void> => {
      attempts += 1;
      if (behaviour === 'block') await new Promise<void>(() => undefined);
      settled += 1;
      throw new Error('disk I/O error');
    };
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    const clock = new ManualClock();
    const writer = createDecisionWriter({ store: { insert }, logger: silentLogger(), metrics, clock, bufferSize: 5, batchSize: 2, flushIntervalMs: 100, dropPolicy: 'oldest' });
    writer.start();
    const call = await webhook(writer, metrics);
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        call('/validate', admissionReview({ object: workload('Pod', { name: `p${index}`, namespace: 'team-a', containers: [CLEAN] }), uid: `slow-${index}` })),
      ),
    );
    clock.advance(500);
    // Every request was answered (allowed, as the policies say) although the store was asked to
    // write and never succeeded: with a blocking store not one write has even returned.
    expect(answers.every((answer) => answer.allowed)).toBe(true);
    expect(attempts).toBeGreaterThan(0);
    if (behaviour === 'block') expect(settled).toBe(0);
    expect(writer.buffered).toBe(5);
    const dropped = (await metrics.getSingleMetric('portcullis_audit_dropped_total')?.get())?.values.reduce((sum, value) => sum + value.value, 0);
    expect(dropped).toBe(25);
    // The writer never holds shutdown longer than its deadline.
    const closing = writer.close(1000);
    clock.advance(1000);
    await closing;
  });
});
