import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { specErrors } from '../../test/scanner/adapter-spec.js';
import { countSeverities, normalizeTrivyReport, reportFindings, vulnerabilitySummary } from './normalize.js';
import { parseTrivyReport, TrivyOutputError } from './trivy-report.js';

const goldenDir = new URL('../../test/fixtures/trivy/', import.meta.url);
const shapesFile = new URL('../../test/scanner/fixtures/shapes.json', import.meta.url);
const scanner = { name: 'Trivy', vendor: 'Aqua Security', version: 'dev' };
const digest = `sha256:${'a'.repeat(64)}`;

function normalize(text: string) {
  return normalizeTrivyReport({
    trivy: parseTrivyReport(text),
    artifact: { repository: 'team/app', digest, mimeType: 'application/vnd.oci.image.manifest.v1+json' },
    scanner,
    generatedAt: '2026-01-02T03:04:05.000Z',
  });
}

// Expected figures per shared golden: report severity, count by severity, fixable count.
const GOLDENS: [string, string, Record<string, number>, number][] = [
  ['alpine-39-high-critical', 'Critical', { Critical: 2 }, 2],
  ['alpine-39-skip', 'Unknown', {}, 0],
  ['alpine-39', 'Critical', { Critical: 2, Medium: 4 }, 6],
  ['centos-7', 'Medium', { Medium: 1, Low: 2 }, 2],
  ['debian-buster', 'Critical', { Critical: 1, Low: 1 }, 1],
  ['distroless-base', 'Medium', { Medium: 2, Low: 2 }, 2],
  ['fluentd-gems', 'Critical', { Critical: 1, High: 1 }, 2],
  ['gomod', 'Medium', { Medium: 1, Unknown: 4 }, 5],
  ['npm', 'Medium', { Medium: 1 }, 1],
  ['photon-30', 'Critical', { Critical: 2, High: 1 }, 3],
  ['rockylinux-8', 'Medium', { Medium: 1 }, 1],
  ['ubuntu-1804-ignore-unfixed', 'Medium', { Medium: 4 }, 4],
];

describe('normalizeTrivyReport over every shared Trivy golden', () => {
  it('has an expectation for every golden in test/fixtures/trivy', () => {
    const files = readdirSync(goldenDir).filter((name) => name.endsWith('.json.golden')).map((name) => name.replace('.json.golden', ''));
    expect(files.sort()).toEqual(GOLDENS.map(([name]) => name).sort());
  });

  it.each(GOLDENS)('%s gives severity %s with counts %j and %i fixable', (name, severity, counts, fixable) => {
    const report = normalize(readFileSync(new URL(`${name}.json.golden`, goldenDir), 'utf8'));
    expect(report.severity).toBe(severity);
    const summary = vulnerabilitySummary(report);
    expect(summary.summary).toEqual(counts);
    expect(summary.total).toBe(Object.values(counts).reduce((sum, count) => sum + count, 0));
    expect(summary.fixable).toBe(fixable);
    expect(specErrors('HarborVulnerabilityReport', report)).toEqual([]);
    for (const item of report.vulnerabilities) {
      expect(item.id).toMatch(/^[A-Z]+-[\w-]+$/);
      expect(item.package.length).toBeGreaterThan(0);
      expect(item.version.length).toBeGreaterThan(0);
      expect(item.links?.length).toBeGreaterThan(0);
    }
  });

  it('keeps id, package, versions, status, the primary link and Trivy CVSS of a finding', () => {
    const report = normalize(readFileSync(new URL('debian-buster.json.golden', goldenDir), 'utf8'));
    const critical = report.vulnerabilities.find((item) => item.id === 'CVE-2019-18224');
    expect(critical).toMatchObject({
      package: 'libidn2-0',
      version: '2.0.5-1',
      fix_version: '2.0.5-1+deb10u1',
      severity: 'Critical',
      status: 'fixed',
      links: ['https://avd.aquasec.com/nvd/cve-2019-18224'],
      cwe_ids: ['CWE-787'],
      preferred_cvss: { score_v3: 9.8, vector_v3: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', score_v2: 7.5 },
      layer: { digest: 'sha256:4a56a430b2bac33260d6449e162017e2b23076c6411a17b46db67f5b84dde2bd' },
    });
    expect(critical?.vendor_attributes).toEqual({ CVSS: expect.objectContaining({ nvd: expect.objectContaining({ V3Score: 9.8 }) }) });
    const unfixed = report.vulnerabilities.find((item) => item.severity === 'Low');
    expect(unfixed?.status).toBe('affected');
    expect(unfixed?.fix_version).toBeUndefined();
  });

  it('reads repository reports that have no Metadata and no Layer', () => {
    const report = normalize(readFileSync(new URL('npm.json.golden', goldenDir), 'utf8'));
    expect(report.vulnerabilities[0]?.layer).toBeUndefined();
    expect(report.artifact).toEqual({ repository: 'team/app', digest, mime_type: 'application/vnd.oci.image.manifest.v1+json' });
  });
});

describe('normalizeTrivyReport over the shapes the goldens lack', () => {
  const report = normalize(readFileSync(shapesFile, 'utf8'));

  it('skips Results without Vulnerabilities (absent or null) and reads custom and language Results', () => {
    expect(report.vulnerabilities.map((item) => item.id)).toEqual(['CVE-2000-0001', 'CVE-2000-0002', 'GHSA-xxxx-0003', 'CVE-2000-0004']);
  });

  it('maps statuses through, Negligible to Negligible, and a severity Trivy never had to Unknown', () => {
    expect(report.vulnerabilities.map((item) => [item.status, item.severity])).toEqual([
      ['end_of_life', 'High'],
      ['will_not_fix', 'Low'],
      ['fixed', 'Unknown'],
      ['under_investigation', 'Negligible'],
    ]);
    expect(report.severity).toBe('High');
  });

  it('prefers PrimaryURL over References and takes the only CVSS vendor when NVD is absent', () => {
    const ghsa = report.vulnerabilities[2];
    expect(ghsa?.links).toEqual(['https://example.invalid/GHSA-xxxx-0003']);
    expect(ghsa?.preferred_cvss).toEqual({ score_v3: 9.8, vector_v3: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' });
    expect(report.vulnerabilities[1]?.links).toEqual([]);
  });

  it('counts fixable findings per severity and gives the policy engine its findings', () => {
    const counts = countSeverities(report);
    expect(counts.total).toBe(4);
    expect(counts.fixable).toBe(1);
    expect(counts.bySeverity.Unknown).toEqual({ total: 1, fixable: 1 });
    expect(counts.bySeverity.High).toEqual({ total: 1, fixable: 0 });
    expect(reportFindings(report)[2]).toEqual({
      id: 'GHSA-xxxx-0003',
      package: 'leftpad',
      installedVersion: '0.0.1',
      fixedVersion: '0.0.2',
      severity: 'Unknown',
      status: 'fixed',
      links: ['https://example.invalid/GHSA-xxxx-0003'],
    });
  });
});

describe('parseTrivyReport rejects what is not a Trivy report', () => {
  it.each([
    ['an empty output', '', 'trivy report: expected JSON, got nothing'],
    ['a log line instead of JSON', '2024-01-01T00:00:00Z\tFATAL\tboom', 'trivy report: expected JSON, got "2024-01-01T00:00:00Z\\tFATAL\\tboom"'],
    ['a SchemaVersion 1 report', '{"SchemaVersion":1}', 'trivy report /SchemaVersion: must be equal to constant 2, got 1'],
    ['a vulnerability without an id', '{"SchemaVersion":2,"Results":[{"Target":"t","Vulnerabilities":[{"PkgName":"p","InstalledVersion":"1","Severity":"LOW"}]}]}', "trivy report /Results/0/Vulnerabilities/0: must have required property 'VulnerabilityID'"],
    ['an empty vulnerability id', '{"SchemaVersion":2,"Results":[{"Target":"t","Vulnerabilities":[{"VulnerabilityID":"","PkgName":"p","Severity":"LOW"}]}]}', 'trivy report /Results/0/Vulnerabilities/0/VulnerabilityID: must NOT have fewer than 1 characters, got ""'],
    ['References that are not a list', '{"SchemaVersion":2,"Results":[{"Target":"t","Vulnerabilities":[{"VulnerabilityID":"C","PkgName":"p","Severity":"LOW","References":"https://x"}]}]}', 'trivy report /Results/0/Vulnerabilities/0/References: must be array, got "https://x"'],
    ['a list instead of a report', '[{"SchemaVersion":2}]', 'trivy report (top level): must be object, got [{"SchemaVersion":2}]'],
  ])('%s', (_name, text, message) => {
    expect(() => parseTrivyReport(text)).toThrow(TrivyOutputError);
    expect(() => parseTrivyReport(text)).toThrow(message);
  });
});
