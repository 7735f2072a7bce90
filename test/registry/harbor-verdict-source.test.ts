import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VULNERABILITY_REPORT_MIME, type HarborScanOverview, type HarborVulnerabilityReport } from '../../src/harbor/report.js';
import { parseImageReference } from '../../src/policy/image-reference.js';
import type { ScanPort } from '../../src/registry/scan-port.js';
import { normalizeTrivyReport } from '../../src/scanner/normalize.js';
import { parseTrivyReport } from '../../src/scanner/trivy-report.js';
import { HarborVerdictSource } from '../../src/verdicts/harbor-source.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage, type PushedImage } from './oci-client.js';

/**
 * The webhook's Harbor verdict source against the included registry's Harbor-compatible API (the
 * in-cluster path: the webhook Deployment reads verdicts from the registry with a robot account).
 * The same source is also tested against a swagger-validated Harbor stand-in in
 * src/verdicts/harbor-source.test.ts.
 */

const ADMIN = 'Verdict-Test-Passw0rd';
const adminAuth = { authorization: `Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}` };

/** Finished scans served the way the scanner serves them: a report and its overview by digest. */
class FinishedScans implements ScanPort {
  readonly reports = new Map<string, HarborVulnerabilityReport>();
  async overview(digest: string): Promise<HarborScanOverview | undefined> {
    const report = this.reports.get(digest);
    if (!report) return undefined;
    const summary: Record<string, number> = {};
    for (const item of report.vulnerabilities) summary[item.severity] = (summary[item.severity] ?? 0) + 1;
    return {
      [VULNERABILITY_REPORT_MIME]: {
        report_id: `report-${digest.slice(7, 19)}`,
        scan_status: 'Success',
        severity: report.severity,
        summary: { total: report.vulnerabilities.length, fixable: report.vulnerabilities.filter((item) => item.fix_version).length, summary },
        end_time: report.generated_at,
        complete_percent: 100,
        scanner: report.scanner,
      },
    };
  }
  async report(digest: string): Promise<HarborVulnerabilityReport | undefined> {
    return this.reports.get(digest);
  }
  async requestScan(): Promise<void> {}
}

let registry: TestRegistry;
let source: HarborVerdictSource;
let scanned: PushedImage;
let unscanned: PushedImage;
const scans = new FinishedScans();

beforeAll(async () => {
  registry = await startTestRegistry({ withIdentity: { adminPassword: ADMIN }, headers: adminAuth, scans });
  const call = (method: string, path: string, body: unknown) =>
    registry.call(`/api/v2.0${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect((await call('POST', '/projects', { project_name: 'shop', metadata: { public: 'false' } })).status).toBe(201);
  scanned = await pushImage(registry, 'shop/web', '1.0');
  unscanned = await pushImage(registry, 'shop/api', '2.0', { seed: 'api' });
  const trivy = parseTrivyReport(readFileSync(new URL('../fixtures/trivy/photon-30.json.golden', import.meta.url), 'utf8'));
  scans.reports.set(
    scanned.digest,
    normalizeTrivyReport({
      trivy,
      artifact: { repository: 'shop/web', digest: scanned.digest, tag: '1.0' },
      scanner: { name: 'Trivy', vendor: 'Aqua Security', version: '0.58.0' },
      generatedAt: new Date().toISOString(),
    }),
  );
  // The webhook's credential: a robot of the project that may only pull.
  const robot = await call('POST', '/robots', {
    name: 'verdicts',
    duration: -1,
    level: 'project',
    permissions: [{ kind: 'project', namespace: 'shop', access: [{ resource: 'repository', action: 'pull' }] }],
  });
  expect(robot.status).toBe(201);
  const { name, secret } = (await robot.json()) as { name: string; secret: string };
  source = new HarborVerdictSource({ url: registry.url, username: name, password: secret, ca: registry.caPem });
});

afterAll(async () => {
  await source?.close();
  await registry?.close();
});

const options = () => ({ signal: new AbortController().signal, triggerScan: false });

describe('the Harbor verdict source against the included registry', () => {
  it('resolves a tag to the digest the registry serves', async () => {
    expect(await source.resolveDigest(parseImageReference(`${registry.host}/shop/web:1.0`), options())).toBe(scanned.digest);
    expect(await source.resolveDigest(parseImageReference(`${registry.host}/shop/web:missing`), options())).toBeUndefined();
  });

  it('reads a finished scan as a scanned verdict with every finding of the report', async () => {
    const verdict = await source.verdict(parseImageReference(`${registry.host}/shop/web:1.0`), scanned.digest, options());
    expect(verdict.state).toBe('scanned');
    if (verdict.state !== 'scanned') return;
    // photon-30: CVE-2019-5481 (Critical) in curl and curl-libs, CVE-2019-18276 (High) in bash.
    const found = verdict.findings.map((finding) => `${finding.severity} ${finding.id} ${finding.package} ${finding.installedVersion} → ${finding.fixedVersion}`).sort();
    expect(found).toEqual([
      'Critical CVE-2019-5481 curl 7.61.1-4.ph3 → 7.61.1-5.ph3',
      'Critical CVE-2019-5481 curl-libs 7.61.1-4.ph3 → 7.61.1-5.ph3',
      'High CVE-2019-18276 bash 4.4.18-1.ph3 → 4.4.18-2.ph3',
    ]);
  });

  it('says unscanned for an artifact the scanner never saw', async () => {
    const verdict = await source.verdict(parseImageReference(`${registry.host}/shop/api:2.0`), unscanned.digest, options());
    expect(verdict.state).toBe('unscanned');
  });

  it('fails loudly (the webhook then answers unavailable) when the robot secret is wrong', async () => {
    const wrong = new HarborVerdictSource({ url: registry.url, username: 'robot$shop+verdicts', password: 'not-the-secret', ca: registry.caPem });
    try {
      await expect(wrong.verdict(parseImageReference(`${registry.host}/shop/web:1.0`), scanned.digest, options())).rejects.toThrow(/401/);
    } finally {
      await wrong.close();
    }
  });
});
