import { describe, expect, it } from 'vitest';
import type { ProcessRequest, ProcessResult, RunProcess } from './process.js';
import { classifyFailure, scanArgs, TrivyRunner } from './trivy.js';

const target = { registryHost: 'registry.example:5000', repository: 'team/app', digest: `sha256:${'b'.repeat(64)}` };
const base = { cacheDir: '/var/cache/trivy', timeoutSeconds: 300, insecure: false, extraArgs: [] as string[] };

describe('scanArgs', () => {
  it.each([
    ['the defaults', base, ['image', '--format', 'json', '--quiet', '--scanners', 'vuln', '--timeout', '300s', '--cache-dir', '/var/cache/trivy']],
    ['--insecure only when configured', { ...base, insecure: true }, ['image', '--format', 'json', '--quiet', '--scanners', 'vuln', '--timeout', '300s', '--cache-dir', '/var/cache/trivy', '--insecure']],
    ['extra arguments before the image', { ...base, extraArgs: ['--skip-db-update', '--offline-scan'] }, ['image', '--format', 'json', '--quiet', '--scanners', 'vuln', '--timeout', '300s', '--cache-dir', '/var/cache/trivy', '--skip-db-update', '--offline-scan']],
  ])('builds %s', (_name, config, expected) => {
    expect(scanArgs(config, target)).toEqual([...expected, 'registry.example:5000/team/app@sha256:' + 'b'.repeat(64)]);
  });
});

describe('classifyFailure', () => {
  const fatal = (message: string) => `2026-01-01T00:00:00Z\tINFO\tstarting\n2026-01-01T00:00:00Z\tFATAL\tFatal error\t${message}\n`;
  it.each([
    ['a registry 503', fatal('remote error: GET https://r/v2/a/manifests/x: unexpected status code 503 Service Unavailable'), 'transient'],
    ['a refused connection', fatal('dial tcp 127.0.0.1:5000: connect: connection refused'), 'transient'],
    ['rate limiting', fatal('GET https://r/v2/: TOOMANYREQUESTS: slow down'), 'transient'],
    ['wrong credentials', fatal('GET https://r/v2/a/manifests/x: UNAUTHORIZED: authentication required'), 'permanent'],
    ['an unknown manifest', fatal('GET https://r/v2/a/manifests/x: MANIFEST_UNKNOWN: manifest unknown'), 'permanent'],
    ['a bad flag', 'Error: unknown flag: --bogus\n', 'permanent'],
    ['anything unrecognised', fatal('something odd happened'), 'permanent'],
    ['a Helm chart', fatal('unsupported MediaType: "application/vnd.cncf.helm.config.v1+json"'), 'unsupported'],
    ['no database on the first run with --skip-db-update', fatal('--skip-db-update cannot be specified on the first run'), 'not-ready'],
    ['a failed database download', fatal('init error: DB error: failed to download vulnerability DB: no such host'), 'not-ready'],
  ])('sorts %s as %s', (_name, stderr, kind) => {
    expect(classifyFailure(stderr).kind).toBe(kind);
  });

  it('keeps the FATAL line and what follows as the message', () => {
    const outcome = classifyFailure(fatal('GET https://r/v2/: UNAUTHORIZED: authentication required'));
    expect(outcome).toEqual({ kind: 'permanent', error: '2026-01-01T00:00:00Z\tFATAL\tFatal error\tGET https://r/v2/: UNAUTHORIZED: authentication required' });
  });
});

describe('TrivyRunner', () => {
  function runner(answer: (request: ProcessRequest) => Promise<ProcessResult>, env: Record<string, string> = {}) {
    const requests: ProcessRequest[] = [];
    const run: RunProcess = (request) => (requests.push(request), answer(request));
    return { requests, runner: new TrivyRunner({ trivyPath: 'trivy', ...base, env, caFile: '/tmp/ca.pem', killGraceMs: 100 }, run) };
  }
  const ok = (stdout: string): Promise<ProcessResult> => Promise.resolve({ exitCode: 0, signal: null, stdout, stderr: '', timedOut: false });

  it('passes credentials and the CA through the environment only, never its own TRIVY_ secrets', async () => {
    const { runner: trivy, requests } = runner(() => ok('{"SchemaVersion":2}'), { PATH: '/bin', TRIVY_PASSWORD: 'leaked', HOME: '/root' });
    const outcome = await trivy.scan({ ...target, auth: { kind: 'basic', username: 'robot$team+scan', password: 's3cret' } });
    expect(outcome.kind).toBe('report');
    const [request] = requests;
    expect(request?.env).toEqual({ PATH: '/bin', HOME: '/root', SSL_CERT_FILE: '/tmp/ca.pem', TRIVY_USERNAME: 'robot$team+scan', TRIVY_PASSWORD: 's3cret' });
    expect(request?.args.join(' ')).not.toContain('s3cret');
    expect(request?.timeoutMs).toBe(300_100);
    await trivy.scan({ ...target, auth: { kind: 'bearer', token: 'jwt' } });
    expect(requests[1]?.env.TRIVY_REGISTRY_TOKEN).toBe('jwt');
    expect(requests[1]?.env.TRIVY_PASSWORD).toBeUndefined();
  });

  it.each([
    ['a timeout', { exitCode: null, signal: 'SIGKILL' as const, stdout: '', stderr: '', timedOut: true }, { kind: 'permanent', error: 'trivy did not finish within 300s; its process tree was killed' }],
    ['a kill from outside (OOM)', { exitCode: null, signal: 'SIGKILL' as const, stdout: '', stderr: '', timedOut: false }, { kind: 'transient', error: 'trivy was killed by SIGKILL' }],
    ['output that is not a report', { exitCode: 0, signal: null, stdout: 'Total: 0', stderr: '', timedOut: false }, { kind: 'permanent', error: expect.stringContaining('trivy report: expected JSON, got "Total: 0"') }],
  ])('classifies %s', async (_name, result, expected) => {
    const { runner: trivy } = runner(() => Promise.resolve(result));
    expect(await trivy.scan({ ...target, auth: { kind: 'none' } })).toEqual(expected);
  });

  it('reports a missing binary as not ready, from both the probe and a scan', async () => {
    const missing = Object.assign(new Error('spawn trivy ENOENT'), { code: 'ENOENT' });
    const { runner: trivy } = runner(() => Promise.reject(missing));
    expect(await trivy.version()).toEqual({ ok: false, reason: 'trivy not found: "trivy" is not on PATH and is not a file (install Trivy or set scanner.trivyPath)' });
    expect((await trivy.scan({ ...target, auth: { kind: 'none' } })).kind).toBe('not-ready');
  });

  it('reads the version and database of trivy --version --format json', async () => {
    const { runner: trivy, requests } = runner(() => ok('{"Version":"0.58.1","VulnerabilityDB":{"Version":2,"UpdatedAt":"2026-01-01T06:00:00Z","NextUpdate":"2026-01-02T06:00:00Z"}}'));
    expect(await trivy.version()).toEqual({ ok: true, info: { Version: '0.58.1', VulnerabilityDB: { Version: 2, UpdatedAt: '2026-01-01T06:00:00Z', NextUpdate: '2026-01-02T06:00:00Z' } } });
    expect(requests[0]?.args).toEqual(['--version', '--format', 'json', '--cache-dir', '/var/cache/trivy']);
  });
});
