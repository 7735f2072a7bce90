import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { HTPASSWD_USER, startDistribution, type Distribution } from './distribution.js';
import { STANDIN_TRIVY, standinEnv } from './path.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function trivy(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile('trivy', args, { env: standinEnv(env), timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

let open: Distribution;
let locked: Distribution;
const dir = tempDir('portcullis-standin-');
let photon = { digest: '' };
let clean = { digest: '' };
let chart = { digest: '' };
let locked1 = { digest: '' };

beforeAll(async () => {
  [open, locked] = await Promise.all([startDistribution(), startDistribution({ auth: true })]);
  photon = await open.push('team/photon', '3.0', { labels: { 'portcullis.test/trivy-report': 'photon-30' } });
  clean = await open.push('team/clean', '1.0', {});
  chart = await open.push('charts/app', '0.1.0', { configMediaType: 'application/vnd.cncf.helm.config.v1+json' });
  locked1 = await locked.push('team/debian', 'buster', { labels: { 'portcullis.test/trivy-report': 'debian-buster' } });
});

afterAll(async () => {
  await Promise.all([open?.close(), locked?.close()]);
  dir.remove();
});

const scanArgs = (ref: string, extra: string[] = []) => ['image', '--format', 'json', '--quiet', '--scanners', 'vuln', '--timeout', '30s', '--cache-dir', join(dir.path, 'cache'), ...extra, ref];

describe('the trivy stand-in', () => {
  it('is found on PATH by the helper and answers --version --format json with the database', async () => {
    expect(STANDIN_TRIVY.endsWith('test/trivy-standin/trivy')).toBe(true);
    const result = await trivy(['--version', '--format', 'json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ Version: expect.any(String), VulnerabilityDB: { Version: 2, UpdatedAt: '2026-01-01T00:00:00Z' } });
  });

  it('pulls the manifest and config and prints the golden named by the image label, with name and digest filled in', async () => {
    const ref = `${open.host}/team/photon@${photon.digest}`;
    const result = await trivy(scanArgs(ref), { SSL_CERT_FILE: open.caFile });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.ArtifactName).toBe(ref);
    expect(report.Metadata.RepoDigests).toEqual([`${open.host}/team/photon@${photon.digest}`]);
    expect(report.Results[0].Vulnerabilities.map((v: { Severity: string }) => v.Severity).sort()).toEqual(['CRITICAL', 'CRITICAL', 'HIGH']);
  });

  it('prints a report without Results for an image without the label', async () => {
    const result = await trivy(scanArgs(`${open.host}/team/clean@${clean.digest}`), { SSL_CERT_FILE: open.caFile });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).Results).toBeUndefined();
  });

  it('authenticates with TRIVY_USERNAME and TRIVY_PASSWORD from the environment', async () => {
    const result = await trivy(scanArgs(`${locked.host}/team/debian@${locked1.digest}`), {
      SSL_CERT_FILE: locked.caFile,
      TRIVY_USERNAME: HTPASSWD_USER.username,
      TRIVY_PASSWORD: HTPASSWD_USER.password,
    });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout).Results[0].Vulnerabilities).toHaveLength(2);
  });

  it.each([
    ['wrong credentials', { TRIVY_USERNAME: HTPASSWD_USER.username, TRIVY_PASSWORD: 'wrong' }, /UNAUTHORIZED/],
    ['no credentials', {}, /UNAUTHORIZED/],
  ])('fails like Trivy with %s: exit 1 and a FATAL line naming the registry error', async (_name, creds, pattern) => {
    const result = await trivy(scanArgs(`${locked.host}/team/debian@${locked1.digest}`), { SSL_CERT_FILE: locked.caFile, ...creds });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/\tFATAL\t/);
    expect(result.stderr).toMatch(pattern);
  });

  it('fails TLS verification without the registry CA, and passes with --insecure', async () => {
    const ref = `${open.host}/team/clean@${clean.digest}`;
    const untrusted = await trivy(scanArgs(ref), { SSL_CERT_FILE: undefined });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/certificate/i);
    expect((await trivy(scanArgs(ref, ['--insecure']), { SSL_CERT_FILE: undefined })).code).toBe(0);
  });

  it('reports a Helm chart as an unsupported media type', async () => {
    const result = await trivy(scanArgs(`${open.host}/charts/app@${chart.digest}`), { SSL_CERT_FILE: open.caFile });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unsupported MediaType: "application/vnd.cncf.helm.config.v1+json"');
  });

  it.each([
    ['an unknown flag', ['image', '--bogus', 'x'], 'Error: unknown flag: --bogus'],
    ['a flag without its value', ['image', '--timeout'], 'Error: flag needs an argument: --timeout'],
    ['a bad duration', ['image', '--timeout', 'soon', 'x'], 'invalid argument "soon" for "--timeout" flag'],
    ['no image', ['image', '--format', 'json'], '"trivy image" requires exactly 1 argument, got 0'],
    ['an unknown command', ['frobnicate'], 'unknown command "frobnicate" for "trivy"'],
  ])('rejects %s with exit 1, like Trivy', async (_name, args, message) => {
    const result = await trivy(args);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
  });

  it('has no database in no-db mode: --version lacks it, scans and --download-db-only fail', async () => {
    const env = { PORTCULLIS_TEST_TRIVY_MODE: 'no-db', SSL_CERT_FILE: open.caFile };
    expect(JSON.parse((await trivy(['--version', '--format', 'json'], env)).stdout).VulnerabilityDB).toBeUndefined();
    const download = await trivy(['image', '--download-db-only', '--quiet'], env);
    expect(download.code).toBe(1);
    expect(download.stderr).toContain('failed to download vulnerability DB');
    expect((await trivy(scanArgs(`${open.host}/team/clean@${clean.digest}`), env)).stderr).toContain('failed to download vulnerability DB');
  });

  it('fails once per digest in transient mode with a registry 503, then succeeds', async () => {
    const env = { PORTCULLIS_TEST_TRIVY_MODE: 'transient', SSL_CERT_FILE: open.caFile };
    const args = scanArgs(`${open.host}/team/photon@${photon.digest}`, ['--cache-dir', join(dir.path, 'transient')]);
    const first = await trivy(args, env);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('503 Service Unavailable');
    expect((await trivy(args, env)).code).toBe(0);
  });

  it('follows a control file and logs each invocation without the password', async () => {
    const controlFile = join(dir.path, 'control.json');
    const logFile = join(dir.path, 'log.jsonl');
    writeFileSync(controlFile, JSON.stringify({ dbUpdatedAt: '2026-02-02T00:00:00Z' }));
    const result = await trivy(['--version', '--format', 'json'], {
      PORTCULLIS_TEST_TRIVY_CONTROL: controlFile,
      PORTCULLIS_TEST_TRIVY_LOG: logFile,
      TRIVY_USERNAME: 'robot',
      TRIVY_PASSWORD: 'hunter2hunter2',
    });
    expect(JSON.parse(result.stdout).VulnerabilityDB.UpdatedAt).toBe('2026-02-02T00:00:00Z');
    expect(existsSync(logFile)).toBe(true);
    const line = readFileSync(logFile, 'utf8');
    expect(JSON.parse(line)).toMatchObject({ argv: ['--version', '--format', 'json'], username: 'robot', passwordSet: true });
    expect(line).not.toContain('hunter2hunter2');
  });
});
