import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../test/helpers/cli.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { main } from './main.js';

/** Runs the command in-process (the real-process runs above cover the entry point and exit code). */
async function lint(args: string[], cwd = process.cwd()): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['policy', 'lint', ...args], { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), env: {}, cwd });
  return { code, stdout, stderr };
}

const dir = tempDir();
afterAll(() => dir.remove());

const MISSPELLED = `apiVersion: portcullis.io/v1alpha1
kind: ImagePolicy
metadata:
  name: gate
spec:
  rules:
    vulnerabilities:
      maxSeverty: High
`;

const EXPIRING = `apiVersion: portcullis.io/v1alpha1
kind: ImagePolicy
metadata: { name: gate }
spec:
  rules: { disallowedTags: [latest] }
---
apiVersion: portcullis.io/v1alpha1
kind: PolicyException
metadata: { name: soon }
spec:
  policies: [gate]
  reason: migration in progress
  expires: 2026-06-05
`;

describe('portcullis policy lint', () => {
  it('exits 0 for the shipped policies and the examples (real process)', async () => {
    const result = await runCli(['policy', 'lint', 'policies/', 'policies/examples/']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('policies/: valid (3 ImagePolicy, 1 PullSecretPolicy, 0 PolicyException)');
    expect(result.stdout).toContain('policies/examples/: valid');
  });

  it('exits 1 naming file, line, column and the misspelled field (real process)', async () => {
    const bad = join(dir.path, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'gate.yaml'), MISSPELLED);
    const result = await runCli(['policy', 'lint', 'bad'], { cwd: dir.path });
    expect(result.code).toBe(1);
    expect(result.stdout.split('\n')).toEqual([
      'bad/gate.yaml:8:7 /spec/rules/vulnerabilities/maxSeverty: unknown field "maxSeverty" (did you mean "maxSeverity"?)',
      'bad/gate.yaml:8:7 /spec/rules/vulnerabilities: must set at least one of maxSeverity, maxCount',
      'bad: invalid (2 problems)',
      '',
    ]);
  });

  it('exits 0 but prints a warning for an exception expiring within 14 days (and lints single files)', async () => {
    const file = join(dir.path, 'expiring.yaml');
    writeFileSync(file, EXPIRING);
    const result = await lint(['--now', '2026-06-01T00:00:00Z', file]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${file}:13:12 /spec/expires: warning: exception "soon" expires in 5 days (2026-06-05)`);
    expect(result.stdout).toContain('1 PolicyException, 1 warning)');
  });

  it.each([
    { name: 'no directory is given', args: [], stderr: 'expected at least one policy directory or file' },
    { name: 'the directory does not exist', args: ['no/such/dir'], stderr: 'no/such/dir: no such file or directory' },
    { name: '--now is not a time', args: ['--now', 'soon', 'policies/'], stderr: '--now: expected an RFC 3339 time, got "soon"' },
  ])('exits 2 when $name', async ({ args, stderr }) => {
    const result = await lint(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(stderr);
  });

  it('explains itself with --help', async () => {
    const result = await lint(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: portcullis policy lint DIR\|FILE\.\.\./);
    expect(result.stdout).toContain('Exit codes:');
  });
});
