import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseImageReference } from '../policy/image-reference.js';
import { harborReportFromTrivy, startHarborStandin, type HarborStandin } from '../../test/helpers/harbor-standin.js';
import { testTls } from '../../test/helpers/tls.js';
import { VerdictCache } from './cache.js';
import { HarborVerdictSource } from './harbor-source.js';
import { parseTrivyReportText } from './trivy-report.js';

// Verbatim copies of ../shared/reference/harbor/swagger.v2.15.2.yaml and
// ../shared/reference/pluggable-scanner-spec/scanner-adapter-openapi-v1.1.yaml.
const swaggerFile = new URL('../../test/fixtures/harbor/swagger.v2.15.2.yaml', import.meta.url);
const adapterFile = new URL('../../test/fixtures/pluggable-scanner-spec/scanner-adapter-openapi-v1.1.yaml', import.meta.url);

/** Validators for Harbor swagger definitions (Swagger 2.0) and the scanner-adapter report (OpenAPI 3). */
function specValidators(): Record<'Artifact' | 'Errors' | 'VulnerabilityAdditions', ValidateFunction> {
  const ajv = new Ajv({ strict: false, validateSchema: false, allErrors: true });
  addFormats.default(ajv);
  for (const format of ['int', 'int32', 'int64']) ajv.addFormat(format, true);
  const swagger = parseYaml(readFileSync(swaggerFile, 'utf8')) as { definitions: Record<string, unknown> };
  const adapter = parseYaml(readFileSync(adapterFile, 'utf8').replaceAll('#/components/schemas/', '#/definitions/')) as {
    components: { schemas: Record<string, unknown> };
  };
  const swaggerRoot = (name: string) => ({ definitions: swagger.definitions, $ref: `#/definitions/${name}` });
  return {
    Artifact: ajv.compile(swaggerRoot('Artifact')),
    Errors: ajv.compile(swaggerRoot('Errors')),
    // The addition's body is, per Harbor, a map from report MIME type to a v1.1 report.
    VulnerabilityAdditions: ajv.compile({
      definitions: adapter.components.schemas,
      type: 'object',
      additionalProperties: { $ref: '#/definitions/HarborVulnerabilityReport' },
    }),
  };
}

const DIGEST = `sha256:${'1'.repeat(64)}`;
const PENDING_DIGEST = `sha256:${'2'.repeat(64)}`;
const UNSCANNED_DIGEST = `sha256:${'3'.repeat(64)}`;
const ERROR_DIGEST = `sha256:${'4'.repeat(64)}`;
const CHART_DIGEST = `sha256:${'5'.repeat(64)}`;
const FOREIGN_DIGEST = `sha256:${'6'.repeat(64)}`;

let harbor: HarborStandin;
let source: HarborVerdictSource;

beforeAll(async () => {
  const tls = testTls();
  const photon = parseTrivyReportText(readFileSync(new URL('../../test/fixtures/trivy/photon-30.json.golden', import.meta.url), 'utf8'));
  harbor = await startHarborStandin({
    tls: tls.serving,
    username: 'robot$portcullis',
    password: 's3cret',
    artifacts: [
      { repository: 'team/photon', digest: DIGEST, tags: ['3.0'], scanStatus: 'Success', report: harborReportFromTrivy(photon, { repository: 'team/photon', digest: DIGEST }) },
      { repository: 'team/apps/web', digest: PENDING_DIGEST, tags: ['1'], scanStatus: 'Running' },
      { repository: 'team/new', digest: UNSCANNED_DIGEST, tags: ['1'] },
      { repository: 'team/broken', digest: ERROR_DIGEST, tags: ['1'], scanStatus: 'Error' },
      { repository: 'team/chart', digest: CHART_DIGEST, tags: ['1'], type: 'CHART' },
      { repository: 'team/sbom', digest: FOREIGN_DIGEST, tags: ['1'], scanStatus: 'Success', foreignMime: 'application/vnd.example.sbom; version=1' },
    ],
  });
  source = new HarborVerdictSource({ url: harbor.url, username: 'robot$portcullis', password: 's3cret', ca: tls.ca.cert });
});

afterAll(async () => {
  await source.close();
  await harbor.close();
});

function options(triggerScan = false) {
  return { signal: AbortSignal.timeout(5_000), triggerScan };
}

describe('Harbor verdict source against a Harbor API stand-in over TLS', () => {
  it('resolves a tag to its digest, including repositories with slashes', async () => {
    expect(await source.resolveDigest(parseImageReference(`${harbor.host}/team/photon:3.0`), options())).toBe(DIGEST);
    expect(await source.resolveDigest(parseImageReference(`${harbor.host}/team/apps/web:1`), options())).toBe(PENDING_DIGEST);
    expect(await source.resolveDigest(parseImageReference(`${harbor.host}/team/photon:nope`), options())).toBeUndefined();
    expect(await source.resolveDigest(parseImageReference('docker.io/library/nginx:1'), options())).toBeUndefined();
  });

  it('reads a successful scan as a scanned verdict with every finding', async () => {
    const verdict = await source.verdict(parseImageReference(`${harbor.host}/team/photon:3.0`), DIGEST, options());
    expect(verdict).toMatchObject({ state: 'scanned', digest: DIGEST, scannedAt: '2026-01-02T03:04:08.000Z' });
    if (verdict.state !== 'scanned') return;
    expect(verdict.findings.map((finding) => finding.severity).sort()).toEqual(['Critical', 'Critical', 'High']);
    expect(verdict.findings.every((finding) => finding.fixedVersion !== undefined)).toBe(true);
  });

  it.each([
    ['a running scan is pending', 'team/apps/web', PENDING_DIGEST, 'pending'],
    ['no scan overview is unscanned', 'team/new', UNSCANNED_DIGEST, 'unscanned'],
    ['a scan in error is failed', 'team/broken', ERROR_DIGEST, 'failed'],
    ['a Helm chart is unsupported', 'team/chart', CHART_DIGEST, 'unsupported'],
    ['an overview of an unknown report type is unsupported', 'team/sbom', FOREIGN_DIGEST, 'unsupported'],
    ['an unknown digest is unscanned', 'team/photon', `sha256:${'9'.repeat(64)}`, 'unscanned'],
  ])('maps Harbor states: %s', async (_name, repository, digest, state) => {
    const verdict = await source.verdict(parseImageReference(`${harbor.host}/${repository}:1`), digest, options());
    expect(verdict.state).toBe(state);
  });

  it('asks Harbor for a scan of an unscanned image only when told to', async () => {
    const reference = parseImageReference(`${harbor.host}/team/new:1`);
    await source.verdict(reference, UNSCANNED_DIGEST, options(false));
    expect(harbor.scanRequests).toEqual([]);
    const verdict = await source.verdict(reference, UNSCANNED_DIGEST, options(true));
    expect(verdict).toMatchObject({ state: 'unscanned', reason: 'never scanned; a scan was requested' });
    expect(harbor.scanRequests).toEqual([`team/new@${UNSCANNED_DIGEST}`]);
  });

  it('fails with the Harbor error message when the credentials are wrong', async () => {
    const wrong = new HarborVerdictSource({ url: harbor.url, username: 'robot$portcullis', password: 'wrong', ca: testTls().ca.cert });
    try {
      await expect(wrong.resolveDigest(parseImageReference(`${harbor.host}/team/photon:3.0`), options())).rejects.toThrow(
        /Harbor GET \/projects\/team\/repositories\/photon\/artifacts\/3\.0\?with_scan_overview=true&with_tag=false: HTTP 401 UNAUTHORIZED: unauthorized/,
      );
    } finally {
      await wrong.close();
    }
  });

  it('refuses a server whose certificate is not signed by the configured CA', async () => {
    const untrusting = new HarborVerdictSource({ url: harbor.url, username: 'u', password: 'p' });
    try {
      await expect(untrusting.resolveDigest(parseImageReference(`${harbor.host}/team/photon:3.0`), options())).rejects.toThrow(/Harbor GET/);
    } finally {
      await untrusting.close();
    }
  });

  it('served only bodies that validate against the Harbor swagger and the scanner-adapter spec', () => {
    const validators = specValidators();
    expect(harbor.served.map((served) => served.definition)).toEqual(expect.arrayContaining(['Artifact', 'Errors', 'VulnerabilityAdditions']));
    for (const served of harbor.served) {
      const validate = validators[served.definition];
      expect(validate(served.body), `${served.definition}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    // The validators are not vacuous.
    expect(validators.Artifact({ digest: 5 })).toBe(false);
    expect(validators.VulnerabilityAdditions({ x: { severity: 'Severe' } })).toBe(false);
  });
});

describe('verdict cache over the Harbor source', () => {
  it('answers unavailable at the deadline while Harbor hangs, then serves cached verdicts without asking again', async () => {
    const cache = new VerdictCache({ source, max: 100, ttlMs: 60_000 });
    const reference = parseImageReference(`${harbor.host}/team/photon:3.0`);
    const warm = await cache.lookup(reference, options());
    expect(warm.verdict.state).toBe('scanned');
    const before = harbor.requests;
    const again = await cache.lookup(reference, options());
    expect(again.verdict.state).toBe('scanned');
    expect(harbor.requests).toBe(before);

    harbor.hang = true;
    try {
      const controller = new AbortController();
      const pending = cache.lookup(parseImageReference(`${harbor.host}/team/broken:1`), { signal: controller.signal, triggerScan: false });
      controller.abort();
      const late = await pending;
      expect(late.verdict).toMatchObject({ state: 'unavailable', reason: 'verdict source harbor did not answer before the deadline' });
    } finally {
      harbor.hang = false;
    }
  });

  it('asks the source again for a digest it was told to forget (its scan just finished)', async () => {
    const cache = new VerdictCache({ source, max: 100, ttlMs: 60_000 });
    const reference = parseImageReference(`${harbor.host}/team/photon:3.0`);
    const first = await cache.lookup(reference, options());
    expect(first.digest).toBeDefined();
    const before = harbor.requests;
    cache.forget(first.digest!);
    expect((await cache.lookup(reference, options())).verdict.state).toBe('scanned');
    expect(harbor.requests).toBeGreaterThan(before);
  });
});
