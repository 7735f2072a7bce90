import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PortcullisError } from '../errors.js';
import type { Severity } from '../policy/types.js';
import { parseTrivyReportText, readTrivyReport, trivyVerdict } from './trivy-report.js';

const goldenDir = new URL('../../test/fixtures/trivy/', import.meta.url);

function golden(name: string): string {
  return readFileSync(new URL(name, goldenDir), 'utf8');
}

type Counts = Partial<Record<Severity, number>>;

/** What each golden holds, counted by hand from the files (MANIFEST.md agrees). */
const EXPECTED: [file: string, total: number, counts: Counts, unfixed: number][] = [
  ['alpine-39-high-critical.json.golden', 2, { Critical: 2 }, 0],
  ['alpine-39-skip.json.golden', 0, {}, 0],
  ['alpine-39.json.golden', 6, { Critical: 2, Medium: 4 }, 0],
  ['centos-7.json.golden', 3, { Medium: 1, Low: 2 }, 1],
  ['debian-buster.json.golden', 2, { Critical: 1, Low: 1 }, 1],
  ['distroless-base.json.golden', 4, { Medium: 2, Low: 2 }, 2],
  ['fluentd-gems.json.golden', 2, { Critical: 1, High: 1 }, 0],
  // Five entries, but GMS-2022-20 in the same module version is listed under three go.mod files:
  // one finding, counted once.
  ['gomod.json.golden', 3, { Medium: 1, Unknown: 2 }, 0],
  ['npm.json.golden', 1, { Medium: 1 }, 0],
  ['photon-30.json.golden', 3, { Critical: 2, High: 1 }, 0],
  ['rockylinux-8.json.golden', 1, { Medium: 1 }, 0],
  ['ubuntu-1804-ignore-unfixed.json.golden', 4, { Medium: 4 }, 0],
];

function countBySeverity(findings: { severity: Severity }[]): Counts {
  const counts: Counts = {};
  for (const finding of findings) counts[finding.severity] = (counts[finding.severity] ?? 0) + 1;
  return counts;
}

describe('Trivy JSON reports', () => {
  it('has an expectation for every golden in the fixtures folder', () => {
    const files = readdirSync(goldenDir).filter((file) => file.endsWith('.golden')).sort();
    expect(files).toEqual(EXPECTED.map(([file]) => file).sort());
  });

  it.each(EXPECTED)('%s parses into a scanned verdict with %i findings', (file, total, counts, unfixed) => {
    const verdict = trivyVerdict(parseTrivyReportText(golden(file), file));
    expect(verdict.state).toBe('scanned');
    if (verdict.state !== 'scanned') return;
    expect(verdict.findings).toHaveLength(total);
    expect(countBySeverity(verdict.findings)).toEqual(counts);
    expect(verdict.findings.filter((finding) => finding.fixedVersion === undefined)).toHaveLength(unfixed);
    expect(verdict.scannedAt).toBe('2021-08-25T12:20:30.000Z');
    expect(verdict.scanner).toBe('Trivy dev');
  });

  it('keeps package, versions, status and the primary link of each finding', () => {
    const verdict = trivyVerdict(parseTrivyReportText(golden('debian-buster.json.golden')), { digest: 'sha256:' + 'a'.repeat(64) });
    if (verdict.state !== 'scanned') throw new Error('expected scanned');
    expect(verdict.digest).toBe('sha256:' + 'a'.repeat(64));
    const unfixed = verdict.findings.find((finding) => finding.fixedVersion === undefined);
    expect(unfixed).toMatchObject({ severity: 'Low', status: 'affected' });
    const critical = verdict.findings.find((finding) => finding.severity === 'Critical');
    expect(critical?.fixedVersion).toBeDefined();
    expect(critical?.links?.[0]).toMatch(/^https:\/\//);
  });

  it('uses the image id as the digest when the caller knows none, and the artifact id is absent for repositories', () => {
    const image = trivyVerdict(parseTrivyReportText(golden('photon-30.json.golden')));
    expect(image.digest).toBe('sha256:5ccb5186b75cd13ff0d028f5b5b2bdf7ef7ca2b3d56eb2c6eb6c136077a6991a');
    const repository = trivyVerdict(parseTrivyReportText(golden('npm.json.golden')));
    expect(repository.digest).toBe('unknown');
  });

  it.each([
    ['a Result without a Vulnerabilities key', { SchemaVersion: 2, Results: [{ Target: 'app', Class: 'lang-pkgs' }] }, 0],
    ['a Result whose Vulnerabilities is null', { SchemaVersion: 2, Results: [{ Target: 'app', Vulnerabilities: null }] }, 0],
    [
      'mixed classes including custom',
      {
        SchemaVersion: 2,
        Results: [
          { Target: 'os', Class: 'os-pkgs', Vulnerabilities: [{ VulnerabilityID: 'CVE-1', PkgName: 'a', InstalledVersion: '1', Severity: 'HIGH' }] },
          { Target: 'custom', Class: 'custom' },
          { Target: 'lang', Class: 'lang-pkgs', Vulnerabilities: [{ VulnerabilityID: 'CVE-2', PkgName: 'b', Severity: 'UNKNOWN', Status: 'end_of_life' }] },
        ],
      },
      2,
    ],
  ])('accepts %s', (_name, report, total) => {
    const verdict = trivyVerdict(readTrivyReport(report));
    if (verdict.state !== 'scanned') throw new Error('expected scanned');
    expect(verdict.findings).toHaveLength(total);
  });

  it.each([
    ['text that is not JSON', '{"SchemaVersion":', /^report\.json: expected JSON, got "\{\\"SchemaVersion\\":" \(/, undefined],
    ['an older schema version', '{"SchemaVersion":1}', /^report\.json \/SchemaVersion: must be equal to constant 2, got 1$/, '/SchemaVersion'],
    [
      'a severity Trivy never writes',
      '{"SchemaVersion":2,"Results":[{"Target":"x","Vulnerabilities":[{"VulnerabilityID":"C","PkgName":"p","Severity":"SEVERE"}]}]}',
      /\/Results\/0\/Vulnerabilities\/0\/Severity: must be equal to one of the allowed values \(UNKNOWN, NEGLIGIBLE, LOW, MEDIUM, HIGH, CRITICAL\), got "SEVERE"$/,
      '/Results/0/Vulnerabilities/0/Severity',
    ],
    ['an array instead of a report', '[]', /^report\.json \(top level\): must be object, got \[\]$/, ''],
  ])('rejects %s, saying where', (_name, text, message, pointer) => {
    let caught: unknown;
    try {
      parseTrivyReportText(text, 'report.json');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PortcullisError);
    expect((caught as PortcullisError).message).toMatch(message);
    if (pointer !== undefined) expect((caught as PortcullisError).detail).toEqual({ file: 'report.json', pointer });
  });
});
