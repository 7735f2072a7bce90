import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import type { RunningReport } from '../../src/audit/api-schemas.js';
import { buildPolicyReport, createPolicyReportWriter, OMITTED_ANNOTATION, REPORT_NAME } from '../../src/audit/policy-reports.js';
import { createBackgroundAudit, type BackgroundAudit } from '../../src/audit/running.js';
import { createMetricsRegistry } from '../../src/http/metrics.js';
import { createKubeClient } from '../../src/kube/client.js';
import { silentLogger } from '../../src/log/logger.js';
import type { ImageReference } from '../../src/policy/image-reference.js';
import { createPolicyStore, type PolicyStore } from '../../src/policy/store.js';
import type { Verdict } from '../../src/policy/types.js';
import type { VerdictOptions, VerdictSource } from '../../src/verdicts/source.js';
import { startKubeApiServer, type KubeApiServer, type KubeObject } from '../helpers/kube-apiserver.js';
import { tempDir } from '../helpers/tmp.js';
import { ManualClock } from './manual-clock.js';

const WEB = `sha256:${'1'.repeat(64)}`;
const INIT = `sha256:${'2'.repeat(64)}`;
const API = `sha256:${'3'.repeat(64)}`;

/** Verdicts by digest; records every lookup so the test can prove nothing asked for a scan. */
class DigestVerdicts implements VerdictSource {
  readonly name = 'test-verdicts';
  readonly verdicts = new Map<string, Verdict>();
  readonly lookups: { digest: string; triggerScan: boolean }[] = [];
  async resolveDigest(): Promise<string | undefined> {
    return undefined;
  }
  async verdict(_reference: ImageReference, digest: string, options: VerdictOptions): Promise<Verdict> {
    this.lookups.push({ digest, triggerScan: options.triggerScan });
    return this.verdicts.get(digest) ?? { state: 'unscanned', digest, reason: 'never scanned' };
  }
  clean(digest: string): void {
    this.verdicts.set(digest, { state: 'scanned', digest, scannedAt: '2026-11-21T09:00:00Z', findings: [] });
  }
  critical(digest: string): void {
    this.verdicts.set(digest, {
      state: 'scanned',
      digest,
      scannedAt: '2026-11-21T09:30:00Z',
      findings: [
        { id: 'CVE-2021-3711', package: 'openssl', installedVersion: '1.1.1k', fixedVersion: '1.1.1l', severity: 'Critical' },
        { id: 'CVE-2024-0001', package: 'busybox', installedVersion: '1.30.1', severity: 'Unknown' },
      ],
    });
  }
}

function policyYaml(maxSeverity: string): string {
  return `apiVersion: portcullis.io/v1alpha1
kind: ImagePolicy
metadata:
  name: deny-critical
spec:
  action: deny
  match:
    excludeNamespaces: [kube-system]
  rules:
    vulnerabilities:
      maxSeverity: ${maxSeverity}
      verdictStates: { pending: warn, unscanned: warn, failed: warn, unsupported: allow, unavailable: warn }
`;
}

function pod(namespace: string, name: string, containers: { name: string; image: string; digest?: string; init?: boolean }[], phase = 'Running'): KubeObject {
  const spec = containers.filter((c) => !c.init).map((c) => ({ name: c.name, image: c.image }));
  const initSpec = containers.filter((c) => c.init).map((c) => ({ name: c.name, image: c.image }));
  const status = (list: typeof containers) =>
    list
      .filter((c) => c.digest)
      .map((c) => ({ name: c.name, image: c.image, imageID: `docker-pullable://${c.image.split(':')[0]}@${c.digest}`, ready: true, restartCount: 0 }));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, uid: `uid-${namespace}-${name}`, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${name}-rs`, uid: 'rs', controller: true }] },
    spec: { containers: spec, ...(initSpec.length > 0 ? { initContainers: initSpec } : {}) },
    status: { phase, containerStatuses: status(containers.filter((c) => !c.init)), initContainerStatuses: status(containers.filter((c) => c.init)) },
  };
}

const crd = parseYaml(readFileSync(new URL('../fixtures/policyreport/wgpolicyk8s.io_policyreports.yaml', import.meta.url), 'utf8')) as {
  spec: { versions: { name: string; schema: { openAPIV3Schema: object } }[] };
};
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addFormat('int32', { type: 'number', validate: (value: number) => Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31 });
ajv.addFormat('int64', { type: 'number', validate: (value: number) => Number.isSafeInteger(value) });
const v1alpha2 = crd.spec.versions.find((version) => version.name === 'v1alpha2');
if (!v1alpha2) throw new Error('fixture CRD has no v1alpha2');
const validateReport = ajv.compile(v1alpha2.schema.openAPIV3Schema);

let kube: KubeApiServer;
let dir: ReturnType<typeof tempDir>;
let policies: PolicyStore;
let verdicts: DigestVerdicts;
let background: BackgroundAudit;
let clock: ManualClock;

beforeEach(async () => {
  kube = await startKubeApiServer();
  dir = tempDir('portcullis-background-');
  writeFileSync(`${dir.path}/policy.yaml`, policyYaml('High'));
  policies = createPolicyStore({ dir: dir.path, logger: silentLogger(), watch: false });
  await policies.start();
  verdicts = new DigestVerdicts();
  clock = new ManualClock();
  kube.objects.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { team: 'shop' } } });
  kube.objects.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system' } });
  const client = createKubeClient(kube.kubeConfig());
  background = createBackgroundAudit({
    kube: client,
    policies,
    verdicts,
    logger: silentLogger(),
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    clock,
    excludedNamespaces: ['kube-*'],
    reports: { writer: createPolicyReportWriter({ kube: client, logger: silentLogger() }), maxResults: 100 },
  });
});

afterEach(async () => {
  await background.close();
  await policies.close();
  await kube.close();
  dir.remove();
});

/** Resolves with the first evaluation report that satisfies `predicate`. */
function evaluation(predicate: (report: RunningReport) => boolean): Promise<RunningReport> {
  return new Promise((resolve) => {
    const unsubscribe = background.onEvaluated((report) => {
      if (!predicate(report)) return;
      unsubscribe();
      resolve(report);
    });
  });
}

describe('background audit against a kube-apiserver stand-in', () => {
  it('shows a pod admitted when clean as violating once its digest gets a Critical report, and writes a valid PolicyReport', async () => {
    verdicts.clean(WEB);
    verdicts.clean(INIT);
    kube.objects.put(
      pod('shop', 'web-1', [
        { name: 'web', image: 'registry.example.com/team/web:1.2', digest: WEB },
        { name: 'setup', image: 'registry.example.com/team/setup:3', digest: INIT, init: true },
        { name: 'sidecar', image: 'registry.example.com/team/sidecar:1' }, // not started: no digest, not audited
      ]),
    );
    kube.objects.put(pod('kube-system', 'dns', [{ name: 'dns', image: 'registry.example.com/dns:1', digest: WEB }]));
    kube.objects.put(pod('shop', 'done', [{ name: 'job', image: 'registry.example.com/team/web:1.2', digest: WEB }], 'Succeeded'));
    await background.start();
    expect(background.report()).toMatchObject({ state: 'ready', reason: 'start', pods: 1, violatingPods: 0, violations: [] });
    expect(kube.objects.get('policyreports', REPORT_NAME, 'shop')).toBeUndefined();

    // A scan finishes with a Critical finding: the injected event re-runs the audit.
    verdicts.critical(WEB);
    await background.rerun('scan finished');
    const report = background.report();
    expect(report).toMatchObject({ state: 'ready', reason: 'scan finished', pods: 1, violatingPods: 1 });
    expect(report.violations).toEqual([
      {
        namespace: 'shop',
        pod: 'web-1',
        owner: 'ReplicaSet/web-1-rs',
        container: 'web',
        image: 'registry.example.com/team/web:1.2',
        digest: WEB,
        policy: 'deny-critical',
        rule: 'vulnerabilities',
        status: 'fail',
        action: 'deny',
        message: expect.stringContaining('CVE-2021-3711'),
        severity: 'Critical',
      },
    ]);
    // Only what is known was asked for, never a scan, and each digest once per run.
    expect(verdicts.lookups.every((lookup) => lookup.triggerScan === false)).toBe(true);
    expect(verdicts.lookups.map((lookup) => lookup.digest).sort()).toEqual([WEB, WEB, INIT, INIT]);

    const written = kube.objects.get('policyreports', REPORT_NAME, 'shop');
    expect(written).toBeDefined();
    expect(validateReport(written), JSON.stringify(validateReport.errors)).toBe(true);
    expect(written).toMatchObject({
      metadata: { labels: { 'app.kubernetes.io/managed-by': 'portcullis' } },
      summary: { fail: 1, warn: 0, error: 0, pass: 1, skip: 0 },
      results: [
        {
          policy: 'deny-critical',
          rule: 'vulnerabilities',
          result: 'fail',
          severity: 'critical',
          source: 'portcullis',
          timestamp: { seconds: Math.floor(clock.now() / 1000), nanos: 0 },
          resources: [{ apiVersion: 'v1', kind: 'Pod', name: 'web-1', namespace: 'shop', uid: kube.objects.get('pods', 'web-1', 'shop')?.metadata?.uid }],
          properties: { container: 'web', image: 'registry.example.com/team/web:1.2', digest: WEB, owner: 'ReplicaSet/web-1-rs', severity: 'Critical', action: 'deny' },
        },
      ],
    });
    expect(kube.objects.get('policyreports', REPORT_NAME, 'kube-system')).toBeUndefined();

    // Re-running with nothing new does not rewrite the report.
    const writesBefore = kube.writes({ resource: 'policyreports' }).length;
    await background.rerun('trivy database changed');
    expect(kube.writes({ resource: 'policyreports' }).length).toBe(writesBefore);
  });

  it('re-evaluates when the policies change, and removes the report of a namespace that became clean', async () => {
    verdicts.critical(WEB);
    kube.objects.put(pod('shop', 'web-1', [{ name: 'web', image: 'registry.example.com/team/web:1.2', digest: WEB }]));
    await background.start();
    expect(background.report().violatingPods).toBe(1);
    const firstReport = kube.objects.get('policyreports', REPORT_NAME, 'shop');
    expect(firstReport).toBeDefined();

    writeFileSync(`${dir.path}/policy.yaml`, policyYaml('Critical'));
    const relaxed = evaluation((report) => report.reason === 'policies changed');
    await policies.reload();
    expect(await relaxed).toMatchObject({ violatingPods: 0, violations: [] });
    expect(kube.objects.get('policyreports', REPORT_NAME, 'shop')).toBeUndefined();

    writeFileSync(`${dir.path}/policy.yaml`, policyYaml('High'));
    const strict = evaluation((report) => report.reason === 'policies changed');
    await policies.reload();
    expect((await strict).violatingPods).toBe(1);
    expect(kube.objects.get('policyreports', REPORT_NAME, 'shop')).toBeDefined();
  });

  it('follows pods through the watch: a new violating pod appears, a deleted one goes, a new image digest is re-checked', async () => {
    verdicts.critical(WEB);
    verdicts.clean(API);
    await background.start();
    expect(background.report().pods).toBe(0);

    const added = evaluation((report) => report.violatingPods === 1);
    kube.objects.put(pod('shop', 'web-2', [{ name: 'web', image: 'registry.example.com/team/web:1.2', digest: WEB }]));
    expect((await added).violations.map((violation) => violation.pod)).toEqual(['web-2']);
    const report = kube.objects.get('policyreports', REPORT_NAME, 'shop');
    expect(validateReport(report), JSON.stringify(validateReport.errors)).toBe(true);

    // The Deployment rolls out a fixed image: the same pod now runs a clean digest.
    const fixed = evaluation((next) => next.violatingPods === 0 && next.pods === 1);
    kube.objects.put(pod('shop', 'web-2', [{ name: 'web', image: 'registry.example.com/team/web:1.3', digest: API }]));
    await fixed;
    expect(kube.objects.get('policyreports', REPORT_NAME, 'shop')).toBeUndefined();

    const gone = evaluation((next) => next.pods === 0);
    kube.objects.delete('pods', 'web-2', 'shop');
    await gone;
  });

  it('resumes after the server ends the watch, and lists again after 410 Expired', async () => {
    verdicts.critical(WEB);
    await background.start();
    // A pod created while no watch is open (just before the informer watches again) is not missed.
    const afterClose = evaluation((report) => report.violations.some((violation) => violation.pod === 'after-close'));
    kube.beforeNext({ verb: 'watch', resource: 'pods' }, () => {
      kube.objects.put(pod('shop', 'after-close', [{ name: 'web', image: 'registry.example.com/team/web:1.2', digest: WEB }]));
    });
    kube.closeWatches();
    await afterClose;
    // History compacted: resuming answers 410 Expired, and the informer lists again.
    const afterExpiry = evaluation((report) => report.violations.some((violation) => violation.pod === 'after-expiry'));
    kube.beforeNext({ verb: 'watch', resource: 'pods' }, () => {
      kube.objects.put(pod('shop', 'after-expiry', [{ name: 'web', image: 'registry.example.com/team/web:1.2', digest: WEB }]));
      kube.compact();
    });
    kube.closeWatches();
    expect((await afterExpiry).pods).toBe(2);
  });
});

describe('PolicyReport content', () => {
  const violation = (pod: string, severity: RunningReport['violations'][number]['severity'], status: 'fail' | 'warn') => ({
    namespace: 'shop',
    pod,
    container: 'app',
    image: `registry.example.com/team/${pod}:1`,
    policy: 'deny-critical',
    rule: 'vulnerabilities',
    status,
    action: 'deny' as const,
    message: `[deny-critical/vulnerabilities] ${pod}`,
    ...(severity ? { severity } : {}),
  });

  it('keeps the most severe results within the bound, counts all in the summary, maps Unknown to info, and validates', () => {
    const report = buildPolicyReport(
      'shop',
      {
        violations: [violation('a-unknown', 'Unknown', 'fail'), violation('b-warned', 'High', 'warn'), violation('c-critical', 'Critical', 'fail'), violation('d-none', undefined, 'fail')],
        passed: 7,
        podUids: new Map([['c-critical', 'uid-c']]),
      },
      Date.parse('2026-11-21T10:00:00.250Z'),
      2,
    );
    expect(validateReport(report), JSON.stringify(validateReport.errors)).toBe(true);
    expect(report?.summary).toEqual({ pass: 7, fail: 3, warn: 1, error: 0, skip: 0 });
    expect(report?.results?.map((result) => [result.resources?.[0]?.name, result.severity, result.result])).toEqual([
      ['c-critical', 'critical', 'fail'],
      ['b-warned', 'high', 'warn'],
    ]);
    expect(report?.metadata?.annotations).toEqual({ [OMITTED_ANNOTATION]: '2' });
    expect(report?.results?.[0]?.timestamp).toEqual({ seconds: Math.floor(Date.parse('2026-11-21T10:00:00Z') / 1000), nanos: 250_000_000 });
    const unknown = buildPolicyReport('shop', { violations: [violation('a-unknown', 'Unknown', 'fail')], passed: 0, podUids: new Map() }, 0, 10);
    expect(unknown?.results?.[0]).toMatchObject({ severity: 'info', properties: { severity: 'Unknown' } });
    expect(buildPolicyReport('shop', { violations: [], passed: 3, podUids: new Map() }, 0, 10)).toBeUndefined();
  });
});
