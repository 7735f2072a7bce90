import { describe, expect, it } from 'vitest';
import { DIGEST_A, DIGEST_B, NOW, context, finding, image, policySet, scanned } from '../../test/policy/builders.js';
import { evaluate, maxScanAgeMs, needsVerdict, planPullSecrets, shouldPinDigest } from './evaluate.js';
import type { PolicyResult, ResultStatus, Verdict } from './types.js';

const HEADER = 'apiVersion: portcullis.io/v1alpha1';

function imagePolicy(name: string, spec: string): string {
  return `${HEADER}\nkind: ImagePolicy\nmetadata:\n  name: ${name}\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;
}

function exception(name: string, spec: string): string {
  return `${HEADER}\nkind: PolicyException\nmetadata:\n  name: ${name}\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;
}

function only(results: readonly PolicyResult[], rule: string): PolicyResult {
  const found = results.filter((result) => result.rule === rule);
  expect(found).toHaveLength(1);
  return found[0] as PolicyResult;
}

const GATE = imagePolicy('gate', 'rules:\n  vulnerabilities:\n    maxSeverity: Medium');

describe('the vulnerability gate', () => {
  const many = [
    finding('CVE-2021-3711', 'Critical'),
    finding('CVE-2021-3712', 'Critical', { package: 'libssl', installedVersion: '1.1.1k', fixedVersion: '1.1.1l' }),
    finding('CVE-2021-23840', 'High', { package: 'zlib', installedVersion: '1.2.11', fixedVersion: undefined }),
    finding('CVE-2020-1000', 'Low'),
  ];

  it('names the policy, rule, image, short digest, counts worst first, the limit and up to three CVEs', () => {
    const evaluation = evaluate(policySet(GATE), context(), [image('registry.example.com/app:1.0', { digest: DIGEST_A, verdict: scanned(many) })], NOW);
    expect(evaluation.allowed).toBe(false);
    expect(only(evaluation.results, 'vulnerabilities')).toMatchObject({ status: 'fail', action: 'deny', digest: DIGEST_A });
    expect(evaluation.denyMessage?.split('\n')).toEqual([
      '[gate/vulnerabilities] registry.example.com/app:1.0 (sha256:aaaaaaaaaaaa): 2 Critical, 1 High above the limit Medium: ' +
        'CVE-2021-3711 (openssl 1.1.1k → 1.1.1l), CVE-2021-3712 (libssl 1.1.1k → 1.1.1l), CVE-2021-23840 (zlib 1.2.11, no fix)',
      expect.stringMatching(/^To request an exception, submit a PolicyException \(portcullis\.io\/v1alpha1\) with spec\.policies \[gate\], spec\.namespaces \[team-a\]/),
    ]);
  });

  it('counts the rest as (+N more) once three CVEs are listed', () => {
    const five = ['CVE-1', 'CVE-2', 'CVE-3', 'CVE-4', 'CVE-5'].map((id) => finding(id, 'Critical'));
    const evaluation = evaluate(policySet(GATE), context(), [image('app:1', { verdict: scanned(five) })], NOW);
    expect(evaluation.denyMessage?.split('\n')[0]).toBe(
      '[gate/vulnerabilities] app:1 (sha256:aaaaaaaaaaaa): 5 Critical above the limit Medium: CVE-1 (openssl 1.1.1k → 1.1.1l), CVE-2 (openssl 1.1.1k → 1.1.1l), CVE-3 (openssl 1.1.1k → 1.1.1l) (+2 more)',
    );
  });

  it('passes an image whose findings are all at or below the limit', () => {
    const evaluation = evaluate(policySet(GATE), context(), [image('app:1', { verdict: scanned([finding('CVE-1', 'Medium'), finding('CVE-2', 'Low')]) })], NOW);
    expect(evaluation.allowed).toBe(true);
    expect(only(evaluation.results, 'vulnerabilities').status).toBe('pass');
    expect(evaluation.denyMessage).toBeUndefined();
  });

  it('counts a CVE once per package and lists it once, saying how many other packages have it', () => {
    const both = [finding('CVE-2019-5481', 'Critical', { package: 'curl' }), finding('CVE-2019-5481', 'Critical', { package: 'curl-libs' })];
    const result = only(evaluate(policySet(GATE), context(), [image('photon:3.0', { verdict: scanned(both) })], NOW).results, 'vulnerabilities');
    expect(result.message).toBe('[gate/vulnerabilities] photon:3.0 (sha256:aaaaaaaaaaaa): 2 Critical above the limit Medium: CVE-2019-5481 (curl 1.1.1k → 1.1.1l, +1 package)');
  });

  it('counts the same CVE in one package once', () => {
    const twice = [finding('CVE-1', 'High'), finding('CVE-1', 'High')];
    const set = policySet(imagePolicy('count', 'rules:\n  vulnerabilities:\n    maxCount: { High: 1 }'));
    expect(only(evaluate(set, context(), [image('app:1', { verdict: scanned(twice) })], NOW).results, 'vulnerabilities').status).toBe('pass');
  });

  it.each([
    { name: 'fails when a severity has more findings than its limit', highs: 3, status: 'fail', text: '3 High, more than the 2 allowed' },
    { name: 'passes when a severity has exactly its limit', highs: 2, status: 'pass', text: '' },
  ])('count limits: $name', ({ highs, status, text }) => {
    const set = policySet(imagePolicy('count', 'rules:\n  vulnerabilities:\n    maxCount: { Critical: 0, High: 2 }'));
    const findings = Array.from({ length: highs }, (_, index) => finding(`CVE-${index}`, 'High'));
    const result = only(evaluate(set, context(), [image('app:1', { verdict: scanned(findings) })], NOW).results, 'vulnerabilities');
    expect(result.status).toBe(status);
    expect(result.message).toContain(text);
  });

  it('reports a severity limit and a count limit together in one line', () => {
    const set = policySet(imagePolicy('both', 'rules:\n  vulnerabilities:\n    maxSeverity: High\n    maxCount: { High: 0 }'));
    const result = only(evaluate(set, context(), [image('app:1', { verdict: scanned([finding('CVE-1', 'Critical'), finding('CVE-2', 'High')]) })], NOW).results, 'vulnerabilities');
    expect(result.message).toContain('1 Critical above the limit High; 1 High, more than the 0 allowed: CVE-1');
  });

  it('ignores findings without a fixed version when ignoreUnfixed is set', () => {
    const unfixed = [finding('CVE-1', 'Critical', { fixedVersion: undefined }), finding('CVE-2', 'Critical', { fixedVersion: '' })];
    const strict = policySet(GATE);
    const lenient = policySet(imagePolicy('gate', 'rules:\n  vulnerabilities:\n    maxSeverity: Medium\n    ignoreUnfixed: true'));
    expect(evaluate(strict, context(), [image('app:1', { verdict: scanned(unfixed) })], NOW).allowed).toBe(false);
    expect(evaluate(lenient, context(), [image('app:1', { verdict: scanned(unfixed) })], NOW).allowed).toBe(true);
  });

  it('drops allowlisted CVEs until the entry expires', () => {
    const set = policySet(
      imagePolicy(
        'gate',
        'rules:\n  vulnerabilities:\n    maxSeverity: Medium\n    allowlist:\n      - { id: CVE-1, reason: not reachable, expires: 2026-06-30 }\n      - { id: CVE-2, reason: old, expires: "2026-05-01T00:00:00Z" }',
      ),
    );
    const only1 = [image('app:1', { verdict: scanned([finding('CVE-1', 'Critical')]) })];
    const only2 = [image('app:1', { verdict: scanned([finding('CVE-2', 'Critical')]) })];
    expect(evaluate(set, context(), only1, NOW).allowed).toBe(true);
    expect(evaluate(set, context(), only2, NOW).allowed).toBe(false);
    // A date-only expiry lasts to the end of that day, UTC.
    expect(evaluate(set, context(), only1, new Date('2026-06-30T23:59:59Z')).allowed).toBe(true);
    expect(evaluate(set, context(), only1, new Date('2026-07-01T00:00:00Z')).allowed).toBe(false);
  });
});

describe('verdict states other than scanned', () => {
  const states: { state: Exclude<Verdict['state'], 'scanned'>; reason: string; shown: string }[] = [
    { state: 'pending', reason: 'queued', shown: 'scan pending: queued' },
    { state: 'unscanned', reason: 'never scanned; a scan was requested', shown: 'not scanned yet: never scanned; a scan was requested' },
    { state: 'failed', reason: 'trivy exited with 1', shown: 'scan failed: trivy exited with 1' },
    { state: 'unsupported', reason: 'artifact is a Helm chart', shown: 'cannot be scanned: artifact is a Helm chart' },
    { state: 'unavailable', reason: 'scanner not ready: trivy not found on PATH', shown: 'scanner not ready: trivy not found on PATH' },
  ];
  const cases = states.flatMap((entry) =>
    (['allow', 'warn', 'deny'] as const).map((action) => ({ ...entry, action, status: ({ allow: 'pass', warn: 'warn', deny: 'fail' } as const)[action] })),
  );

  it.each(cases)('$state with action $action gives $status and says why', ({ state, reason, shown, action, status }) => {
    const set = policySet(imagePolicy('gate', `rules:\n  vulnerabilities:\n    maxSeverity: High\n    verdictStates: { ${state}: ${action} }`));
    const evaluation = evaluate(set, context(), [image('app:1', { digest: DIGEST_B, verdict: { state, reason } })], NOW);
    const result = only(evaluation.results, 'vulnerabilities');
    expect(result.status).toBe(status);
    expect(evaluation.allowed).toBe(action !== 'deny');
    if (action === 'warn') expect(evaluation.warnings).toEqual([`[gate/vulnerabilities] app:1 (sha256:bbbbbbbbbbbb): ${shown}`]);
    if (action === 'deny') expect(evaluation.denyMessage?.split('\n')[0]).toBe(`[gate/vulnerabilities] app:1 (sha256:bbbbbbbbbbbb): ${shown}`);
    if (action === 'allow') expect(evaluation.warnings).toEqual([]);
  });

  it('uses the documented defaults when verdictStates is not set (warn, unsupported allowed)', () => {
    const set = policySet(GATE);
    const statusOf = (verdict: Verdict) => only(evaluate(set, context(), [image('app:1', { verdict })], NOW).results, 'vulnerabilities').status;
    expect(statusOf({ state: 'pending', reason: 'queued' })).toBe('warn');
    expect(statusOf({ state: 'unsupported', reason: 'chart' })).toBe('pass');
  });

  it('treats an image whose verdict was never looked up as unavailable', () => {
    const set = policySet(imagePolicy('gate', 'rules:\n  vulnerabilities:\n    maxSeverity: High\n    verdictStates: { unavailable: deny }'));
    const evaluation = evaluate(set, context(), [image('app:1')], NOW);
    expect(evaluation.allowed).toBe(false);
    expect(evaluation.denyMessage).toContain('[gate/vulnerabilities] app:1: no verdict was looked up for this image');
  });
});

describe('maximum scan age', () => {
  const policy = (stale: string) => policySet(imagePolicy('fresh', `rules:\n  vulnerabilities:\n    maxSeverity: High\n    maxScanAge: 7d\n    verdictStates: { stale: ${stale} }`));

  it.each([
    { name: 'a scan within the age passes', scannedAt: '2026-05-30T12:00:00Z', stale: 'deny', status: 'pass' },
    { name: 'an older scan fails when stale is deny', scannedAt: '2026-05-20T12:00:00Z', stale: 'deny', status: 'fail' },
    { name: 'an older scan warns when stale is warn', scannedAt: '2026-05-20T12:00:00Z', stale: 'warn', status: 'warn' },
    { name: 'an older scan passes when stale is allow', scannedAt: '2026-05-20T12:00:00Z', stale: 'allow', status: 'pass' },
  ])('$name', ({ scannedAt, stale, status }) => {
    const result = only(evaluate(policy(stale), context(), [image('app:1', { verdict: scanned([], scannedAt) })], NOW).results, 'vulnerabilities');
    expect(result.status).toBe(status);
    if (status !== 'pass') expect(result.message).toBe('[fresh/vulnerabilities] app:1 (sha256:aaaaaaaaaaaa): scan is 12d old, older than the 7d allowed');
  });

  it('adds the age to a failing gate rather than hiding the findings', () => {
    const result = only(evaluate(policy('warn'), context(), [image('app:1', { verdict: scanned([finding('CVE-9', 'Critical')], '2026-05-20T12:00:00Z') })], NOW).results, 'vulnerabilities');
    expect(result.status).toBe('fail');
    expect(result.message).toBe('[fresh/vulnerabilities] app:1 (sha256:aaaaaaaaaaaa): 1 Critical above the limit High: CVE-9 (openssl 1.1.1k → 1.1.1l); scan is 12d old, older than the 7d allowed');
  });

  it('is an error result, shown as a warning, when the scan time is not a timestamp', () => {
    const evaluation = evaluate(policy('deny'), context(), [image('app:1', { verdict: scanned([], 'yesterday') })], NOW);
    expect(only(evaluation.results, 'vulnerabilities').status).toBe('error');
    expect(evaluation.allowed).toBe(true);
    expect(evaluation.warnings[0]).toContain('scan time "yesterday" is not a timestamp');
  });

  it('is reported to the verdict source as the strictest age in scope', () => {
    const set = policySet(
      imagePolicy('a', 'rules:\n  vulnerabilities:\n    maxSeverity: High\n    maxScanAge: 7d') +
        imagePolicy('b', 'rules:\n  vulnerabilities:\n    maxSeverity: High\n    maxScanAge: 1d12h') +
        imagePolicy('c', 'match: { namespaces: [other] }\nrules:\n  vulnerabilities:\n    maxSeverity: High\n    maxScanAge: 1h'),
    );
    expect(maxScanAgeMs(set, context(), image('app:1'))).toBe(36 * 3_600_000);
    expect(maxScanAgeMs(policySet(GATE), context(), image('app:1'))).toBeUndefined();
  });
});

describe('image rules', () => {
  const rules = policySet(
    imagePolicy(
      'hygiene',
      'rules:\n  allowedRegistries: ["*.example.com", "127.0.0.1:5000"]\n  disallowedTags: [latest, "*-rc*"]\n  requireDigest: false',
    ) + imagePolicy('pinned', 'match: { namespaces: [prod] }\nrules:\n  requireDigest: true'),
  );
  const cases: { name: string; ref: string; namespace?: string; rule: string; status: ResultStatus; message?: string }[] = [
    { name: 'a registry matching a host glob is allowed', ref: 'registry.example.com/app:1', rule: 'allowedRegistries', status: 'pass' },
    { name: 'a registry with a port matches exactly', ref: '127.0.0.1:5000/team/app:1', rule: 'allowedRegistries', status: 'pass' },
    {
      name: 'Docker Hub is refused when not listed',
      ref: 'nginx:1.25',
      rule: 'allowedRegistries',
      status: 'fail',
      message: '[hygiene/allowedRegistries] nginx:1.25: registry docker.io is not allowed (allowed: *.example.com, 127.0.0.1:5000)',
    },
    {
      name: 'an explicit latest tag is refused',
      ref: 'registry.example.com/app:latest',
      rule: 'disallowedTags',
      status: 'fail',
      message: '[hygiene/disallowedTags] registry.example.com/app:latest: tag "latest" is not allowed; use a version tag or a digest',
    },
    {
      name: 'a missing tag is the implicit latest and is refused',
      ref: 'registry.example.com/app',
      rule: 'disallowedTags',
      status: 'fail',
      message: '[hygiene/disallowedTags] registry.example.com/app: tag "latest" is not allowed (no tag means "latest"); use a version tag or a digest',
    },
    { name: 'a tag glob refuses release candidates', ref: 'registry.example.com/app:2.0-rc1', rule: 'disallowedTags', status: 'fail' },
    { name: 'a latest tag pinned by digest passes', ref: `registry.example.com/app:latest@${DIGEST_A}`, rule: 'disallowedTags', status: 'pass' },
    { name: 'a digest-only reference passes the tag rule', ref: `registry.example.com/app@${DIGEST_A}`, rule: 'disallowedTags', status: 'pass' },
    {
      name: 'a tag without digest fails requireDigest',
      ref: 'registry.example.com/app:1',
      namespace: 'prod',
      rule: 'requireDigest',
      status: 'fail',
      message: '[pinned/requireDigest] registry.example.com/app:1: must be pinned by digest (name@sha256:…)',
    },
    { name: 'a digest passes requireDigest', ref: `registry.example.com/app@${DIGEST_A}`, namespace: 'prod', rule: 'requireDigest', status: 'pass' },
  ];

  it.each(cases)('$name', ({ ref, namespace, rule, status, message }) => {
    const result = only(evaluate(rules, context({ namespace: namespace ?? 'team-a' }), [image(ref)], NOW).results, rule);
    expect(result.status).toBe(status);
    if (message) expect(result.message).toBe(message);
  });

  it('does not evaluate a rule that a policy does not set', () => {
    const results = evaluate(rules, context(), [image('registry.example.com/app:1')], NOW).results;
    expect(results.filter((result) => result.policy === 'hygiene').map((result) => result.rule)).toEqual(['allowedRegistries', 'disallowedTags']);
  });
});

describe('matching', () => {
  const scoped = policySet(
    imagePolicy(
      'scoped',
      [
        'match:',
        '  namespaces: ["team-*", prod]',
        '  excludeNamespaces: [team-sandbox]',
        '  namespaceSelector:',
        '    matchLabels: { tier: app }',
        '    matchExpressions:',
        '      - { key: env, operator: In, values: [prod, staging] }',
        '      - { key: legacy, operator: DoesNotExist }',
        '      - { key: owner, operator: Exists }',
        '      - { key: region, operator: NotIn, values: [cn] }',
        '  images: ["registry.example.com/**", "docker.io/library/*"]',
        '  excludeImages: ["registry.example.com/tools/**"]',
        'rules:',
        '  disallowedTags: [latest]',
      ].join('\n'),
    ),
  );
  const labels = { tier: 'app', env: 'prod', owner: 'me' };
  const inScope = (namespace: string, namespaceLabels: Record<string, string>, ref: string) =>
    only(evaluate(scoped, context({ namespace, namespaceLabels }), [image(ref)], NOW).results, 'disallowedTags');

  it.each<{ name: string; namespace: string; labels: Record<string, string>; ref: string }>([
    { name: 'a namespace matching a glob with all labels is in scope', namespace: 'team-a', labels, ref: 'nginx:latest' },
    { name: 'an exact namespace is in scope', namespace: 'prod', labels, ref: 'registry.example.com/a/b/c:latest' },
    { name: 'the NotIn expression passes a namespace without the label', namespace: 'prod', labels: { ...labels }, ref: 'nginx:latest' },
  ])('$name', ({ namespace, labels: given, ref }) => {
    expect(inScope(namespace, given, ref).status).toBe('fail');
  });

  it.each<{ name: string; namespace: string; labels: Record<string, string> }>([
    { name: 'a namespace outside the globs is skipped', namespace: 'other', labels },
    { name: 'an excluded namespace is skipped', namespace: 'team-sandbox', labels },
    { name: 'a missing matchLabels label is skipped', namespace: 'team-a', labels: { env: 'prod', owner: 'me' } },
    { name: 'a value outside In is skipped', namespace: 'team-a', labels: { ...labels, env: 'dev' } },
    { name: 'a label that must not exist is skipped', namespace: 'team-a', labels: { ...labels, legacy: 'yes' } },
    { name: 'a label that must exist is skipped when absent', namespace: 'team-a', labels: { tier: 'app', env: 'prod' } },
    { name: 'a value listed in NotIn is skipped', namespace: 'team-a', labels: { ...labels, region: 'cn' } },
  ])('$name', ({ namespace, labels: given }) => {
    const results = evaluate(scoped, context({ namespace, namespaceLabels: given }), [image('nginx:latest')], NOW).results;
    expect(results).toEqual([{ policy: 'scoped', rule: 'match', status: 'skip', action: 'deny', message: `namespace ${namespace} is not in scope` }]);
  });

  it.each([
    { name: 'an image outside the image globs is skipped', ref: 'quay.io/app:latest' },
    { name: 'an excluded image is skipped', ref: 'registry.example.com/tools/kubectl:latest' },
    { name: 'a Docker Hub image outside library/ is skipped', ref: 'bitnami/nginx:latest' },
  ])('$name', ({ ref }) => {
    const result = only(evaluate(scoped, context({ namespace: 'team-a', namespaceLabels: labels }), [image(ref)], NOW).results, 'match');
    expect(result).toMatchObject({ status: 'skip', image: ref, message: 'image is not in scope' });
  });
});

describe('policy actions', () => {
  const critical = [finding('CVE-1', 'Critical')];
  const withAction = (action: string) => policySet(imagePolicy('gate', `action: ${action}\nrules:\n  vulnerabilities:\n    maxSeverity: High`));

  it('deny refuses the object', () => {
    const evaluation = evaluate(withAction('deny'), context(), [image('app:1', { verdict: scanned(critical) })], NOW);
    expect(evaluation).toMatchObject({ allowed: false, warnings: [], auditAnnotations: {} });
  });

  it('warn admits with a warning and no denial', () => {
    const evaluation = evaluate(withAction('warn'), context(), [image('app:1', { verdict: scanned(critical) })], NOW);
    expect(evaluation).toMatchObject({ allowed: true, auditAnnotations: {} });
    expect(evaluation.denyMessage).toBeUndefined();
    expect(evaluation.warnings).toEqual(['[gate/vulnerabilities] app:1 (sha256:aaaaaaaaaaaa): 1 Critical above the limit High: CVE-1 (openssl 1.1.1k → 1.1.1l)']);
  });

  it('audit admits silently and records an audit annotation without a prefix (the API server adds the webhook name)', () => {
    const evaluation = evaluate(withAction('audit'), context(), [image('app:1', { verdict: scanned(critical) })], NOW);
    expect(evaluation).toMatchObject({ allowed: true, warnings: [] });
    expect(evaluation.auditAnnotations).toEqual({ 'audit-gate': expect.stringContaining('[gate/vulnerabilities] app:1') });
  });

  it('lists one line per violation once, even when two containers use the same image', () => {
    const set = policySet(GATE + imagePolicy('tags', 'rules:\n  disallowedTags: [latest]'));
    const images = [image('app', { verdict: scanned(critical) }, 0), image('app', { verdict: scanned(critical) }, 1)];
    const lines = evaluate(set, context(), images, NOW).denyMessage?.split('\n') ?? [];
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^\[gate\/vulnerabilities\] app /);
    expect(lines[1]).toMatch(/^\[tags\/disallowedTags\] app: /);
    expect(lines[2]).toContain('spec.policies [gate, tags]');
  });

  it('keeps every warning under 120 characters: packages, then ids only, then without digest, then none, then a shortened image name', () => {
    const findings = Array.from({ length: 8 }, (_, index) => finding(`CVE-2024-${10000 + index}`, 'Critical', { package: `package-number-${index}` }));
    const set = policySet(imagePolicy('gate', 'action: warn\nrules:\n  vulnerabilities:\n    maxSeverity: High'));
    const warningsFor = (ref: string) => evaluate(set, context(), [image(ref, { verdict: scanned(findings) })], NOW).warnings;
    const head = '[gate/vulnerabilities]';
    const tail = '(sha256:aaaaaaaaaaaa): 8 Critical above the limit High';
    expect(warningsFor('app:1.2')).toEqual([`${head} app:1.2 ${tail}: CVE-2024-10000 (+7 more)`]);
    // Without the digest, one CVE fits again.
    expect(warningsFor('registry.example.com/team/app:1.2')).toEqual([`${head} registry.example.com/team/app:1.2: 8 Critical above the limit High: CVE-2024-10000 (+7 more)`]);
    expect(warningsFor('registry.example.com/team/service/app:1.2.3-rc1')).toEqual([`${head} registry.example.com/team/service/app:1.2.3-rc1: 8 Critical above the limit High`]);
    const long = warningsFor(`registry.example.com/${'very-long-team-name/'.repeat(3)}service:1.0.0-build.12345`);
    expect(long).toEqual([`${head} registry.example.com/very-long-…-name/service:1.0.0-build.12345: 8 Critical above the limit High`]);
    for (const warning of long) expect(warning.length).toBeLessThan(120);
  });
});

describe('exceptions', () => {
  const critical = (ids: string[]) => scanned(ids.map((id) => finding(id, 'Critical')));
  const base = GATE + imagePolicy('tags', 'rules:\n  disallowedTags: [latest]');

  it('turn a failing result into a pass naming the exception, within their scope', () => {
    const set = policySet(base + exception('team-a-app', 'policies: [gate]\nnamespaces: [team-a]\nimages: ["registry.example.com/app:*"]\nreason: fix scheduled\nexpires: 2026-07-01'));
    const app = image('registry.example.com/app:1', { verdict: critical(['CVE-1']) });
    const result = only(evaluate(set, context(), [app], NOW).results, 'vulnerabilities');
    expect(result).toMatchObject({ status: 'pass', exception: 'team-a-app', message: 'excepted by team-a-app' });
    expect(evaluate(set, context({ namespace: 'team-b' }), [app], NOW).allowed).toBe(false);
    expect(evaluate(set, context(), [image('registry.example.com/other:1', { verdict: critical(['CVE-1']) })], NOW).allowed).toBe(false);
  });

  it('match an image by digest', () => {
    const set = policySet(base + exception('by-digest', `policies: ["*"]\nimages: ["${DIGEST_B}"]\nreason: vetted build\nexpires: 2026-07-01`));
    expect(evaluate(set, context(), [image('app:1', { digest: DIGEST_B, verdict: critical(['CVE-1']) })], NOW).allowed).toBe(true);
    expect(evaluate(set, context(), [image('app:1', { digest: DIGEST_A, verdict: critical(['CVE-1']) })], NOW).allowed).toBe(false);
  });

  it('scoped to CVE ids remove only those findings', () => {
    const set = policySet(base + exception('cve-1', 'policies: [gate]\ncves: [CVE-1]\nreason: not reachable\nexpires: 2026-07-01'));
    const partial = evaluate(set, context(), [image('app:1', { verdict: critical(['CVE-1', 'CVE-2']) })], NOW);
    expect(partial.allowed).toBe(false);
    expect(partial.denyMessage).toContain('1 Critical above the limit Medium: CVE-2');
    expect(partial.denyMessage).not.toContain('CVE-1 ');
    const full = only(evaluate(set, context(), [image('app:1', { verdict: critical(['CVE-1']) })], NOW).results, 'vulnerabilities');
    expect(full).toMatchObject({ status: 'pass', exception: 'cve-1' });
  });

  it('scoped to CVE ids do not excuse other rules', () => {
    const set = policySet(base + exception('cve-1', 'policies: ["*"]\ncves: [CVE-1]\nreason: not reachable\nexpires: 2026-07-01'));
    expect(only(evaluate(set, context(), [image('app', { verdict: critical(['CVE-1']) })], NOW).results, 'disallowedTags').status).toBe('fail');
  });

  it('scoped to rules leave the other rules alone', () => {
    const set = policySet(base + exception('tags-only', 'policies: ["*"]\nrules: [disallowedTags]\nreason: demo\nexpires: 2026-07-01'));
    const results = evaluate(set, context(), [image('app', { verdict: critical(['CVE-1']) })], NOW).results;
    expect(only(results, 'disallowedTags').status).toBe('pass');
    expect(only(results, 'vulnerabilities').status).toBe('fail');
  });

  it('stop applying by themselves once expired', () => {
    const set = policySet(base + exception('short', 'policies: [gate]\nreason: hotfix\nexpires: "2026-06-01T13:00:00Z"'));
    const app = [image('app:1', { verdict: critical(['CVE-1']) })];
    expect(evaluate(set, context(), app, NOW).allowed).toBe(true);
    expect(evaluate(set, context(), app, new Date('2026-06-01T13:00:00Z')).allowed).toBe(false);
  });

  it('also excuse a non-scanned state that would deny', () => {
    const set = policySet(
      imagePolicy('strict', 'rules:\n  vulnerabilities:\n    maxSeverity: High\n    verdictStates: { unscanned: deny }') +
        exception('new-image', 'policies: [strict]\nimages: ["app:*"]\nreason: scanning\nexpires: 2026-07-01'),
    );
    expect(evaluate(set, context(), [image('app:1', { verdict: { state: 'unscanned', reason: 'new' } })], NOW).allowed).toBe(true);
  });
});

describe('what the webhook asks before evaluating', () => {
  const set = policySet(
    imagePolicy('gate', 'match: { namespaces: [team-*] }\nrules:\n  vulnerabilities:\n    maxSeverity: Medium') +
      imagePolicy('pin', 'match: { images: ["registry.example.com/**"] }\npinDigest: true\nrules:\n  disallowedTags: [latest]'),
  );

  it.each([
    { name: 'a verdict is needed where a vulnerability rule is in scope', namespace: 'team-a', expected: true },
    { name: 'no verdict is needed where none is in scope', namespace: 'ops', expected: false },
  ])('$name', ({ namespace, expected }) => {
    expect(needsVerdict(set, context({ namespace }), image('app:1'))).toBe(expected);
  });

  it.each([
    { name: 'a tag is pinned when a policy in scope asks for it', ref: 'registry.example.com/app:1', expected: true },
    { name: 'an image out of the pinning policy scope is not pinned', ref: 'nginx:1', expected: false },
    { name: 'a reference that already has a digest is not pinned again', ref: `registry.example.com/app:1@${DIGEST_A}`, expected: false },
  ])('$name', ({ ref, expected }) => {
    expect(shouldPinDigest(set, context(), image(ref))).toBe(expected);
  });

  it('pins nothing by default', () => {
    expect(shouldPinDigest(policySet(GATE), context(), image('app:1'))).toBe(false);
  });
});

describe('pull secret planning', () => {
  const pull = (name: string, spec: string) => `${HEADER}\nkind: PullSecretPolicy\nmetadata:\n  name: ${name}\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;
  const set = policySet(
    pull('included', 'registries: ["127.0.0.1:5000", "portcullis-registry.portcullis.svc:5000"]\nsecretName: portcullis-pull\nsource: { namespace: portcullis, name: portcullis-pull }') +
      pull('corp', 'match: { excludeNamespaces: [public] }\nregistries: ["*.corp.example"]\nsecretName: corp-pull') +
      pull('corp-mirror', 'registries: ["mirror.example"]\nsecretName: corp-pull'),
  );

  it('gives one plan per registry secret, each registry once', () => {
    const images = [image('127.0.0.1:5000/team/a:1', {}, 0), image('127.0.0.1:5000/team/b:1', {}, 1), image('harbor.corp.example/x/y:2', {}, 2), image('nginx:1', {}, 3)];
    expect(planPullSecrets(set, context(), images)).toEqual([
      { policy: 'included', secretName: 'portcullis-pull', source: { namespace: 'portcullis', name: 'portcullis-pull' }, registries: ['127.0.0.1:5000'] },
      { policy: 'corp', secretName: 'corp-pull', registries: ['harbor.corp.example'] },
    ]);
  });

  it('merges policies that name the same Secret', () => {
    const images = [image('harbor.corp.example/x:1', {}, 0), image('mirror.example/x:1', {}, 1), image('portcullis-registry.portcullis.svc:5000/p/x:1', {}, 2)];
    expect(planPullSecrets(set, context(), images)).toEqual([
      { policy: 'included', secretName: 'portcullis-pull', source: { namespace: 'portcullis', name: 'portcullis-pull' }, registries: ['portcullis-registry.portcullis.svc:5000'] },
      { policy: 'corp', secretName: 'corp-pull', registries: ['harbor.corp.example', 'mirror.example'] },
    ]);
  });

  it('plans nothing for images of other registries or namespaces out of scope', () => {
    expect(planPullSecrets(set, context(), [image('nginx:1')])).toEqual([]);
    expect(planPullSecrets(set, context({ namespace: 'public' }), [image('harbor.corp.example/x:1')])).toEqual([]);
  });
});
