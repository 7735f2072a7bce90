import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../../src/cli/command.js';
import { main } from '../../src/cli/main.js';
import { policyTestCommand } from '../../src/cli/policy-test.js';
import { reviewCommand } from '../../src/cli/review.js';
import { repoRoot, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const deploy = fileURLToPath(new URL('../fixtures/admission/deploy.yaml', import.meta.url));
const golden = (name: string) => fileURLToPath(new URL(`../fixtures/trivy/${name}.json.golden`, import.meta.url));
const IMG = 'registry.example.com/shop/web:1.0';

const dirs: { remove(): void }[] = [];
afterAll(() => dirs.splice(0).forEach((dir) => dir.remove()));

/** Runs the CLI in-process (fast) with captured output, from the repository root. */
async function cli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { stdout: (text) => out.push(text), stderr: (text) => err.push(text), env: {}, cwd: repoRoot };
  const code = await main(args, io, [reviewCommand, policyTestCommand]);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('portcullis review as a real process', () => {
  it('exits 1 and names the Critical CVEs of a Deployment whose image has them (default policies)', async () => {
    const result = await runCli(['review', '-f', deploy, '--report', `${IMG}=${golden('photon-30')}`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('DENY   Deployment/web');
    expect(result.stdout).toContain('[deny-critical/vulnerabilities] registry.example.com/shop/web:1.0 (sha256:5ccb5186b75c): 2 Critical above the limit High');
    expect(result.stdout).toContain('CVE-2019-5481 (curl 7.61.1-4.ph3 → 7.61.1-5.ph3');
  }, 90_000);

  it('exits 0 for the same Deployment when the report has no findings', async () => {
    const result = await runCli(['review', '-f', deploy, '--report', `${IMG}=${golden('alpine-39-skip')}`]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('ALLOW  Deployment/web');
  }, 90_000);
});

describe('portcullis review', () => {
  it('prints JSON with the decision, message, warnings and per-policy results', async () => {
    const result = await cli(['review', '-f', deploy, '--report', `${IMG}=${golden('fluentd-gems')}`, '-o', 'json']);
    expect(result.code).toBe(1);
    const [decision] = JSON.parse(result.stdout) as { kind: string; decision: string; message: string; results: { policy: string; status: string }[] }[];
    expect(decision?.kind).toBe('Deployment');
    expect(decision?.decision).toBe('deny');
    expect(decision?.results.some((result) => result.policy === 'deny-critical' && result.status === 'fail')).toBe(true);
  });

  it('treats an image without a report as unscanned, which the default policies admit with a warning', async () => {
    const result = await cli(['review', '-f', deploy]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Warning: \[deny-critical\/vulnerabilities\] registry\.example.*: not scanned yet: not found in the given Trivy reports/);
  });

  it('evaluates every document of a multi-document file and skips objects without a pod spec', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const file = join(dir.path, 'all.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}',
        'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: dev}\nspec:\n  containers: [{name: a, image: "nginx:latest"}]',
        'apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: registry.example.com/x/y:1}]',
      ].join('\n---\n'),
    );
    const result = await cli(['review', '-f', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('SKIP   ConfigMap/c');
    expect(result.stdout).toContain('DENY   Pod/p  (namespace dev,');
    expect(result.stdout).toContain('[deny-latest/disallowedTags]');
    expect(result.stdout).toContain(`ALLOW  Job/j  (namespace default, ${file}:12)`);
    expect(result.stdout).toContain('3 object(s): 1 admitted, 1 denied, 1 skipped');
  });

  it.each([
    ['no file', ['review'], /-f FILE is required/],
    ['a missing file', ['review', '-f', 'nope.yaml'], /nope\.yaml: cannot read/],
    ['a report without IMAGE=', ['review', '-f', deploy, '--report', 'photon.json'], /--report "photon.json": expected IMAGE=TRIVY_JSON/],
    ['a report that is not Trivy JSON', ['review', '-f', deploy, '--report', `${IMG}=${deploy}`], /deploy\.yaml: expected JSON, got "apiVersion: apps\/v1/],
    ['an unknown output format', ['review', '-f', deploy, '-o', 'xml'], /--output must be table or json, got "xml"/],
    ['a policy directory that does not exist', ['review', '-f', deploy, '--policies', 'no-such-dir'], /the policies in .*no-such-dir are invalid/],
  ])('exits 2 for %s, saying what is wrong', async (_name, args, message) => {
    const result = await cli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('exits 2 for YAML that does not parse, naming file and line', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const file = join(dir.path, 'bad.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n');
    const result = await cli(['review', '-f', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/bad\.yaml:\d+:\d+: not valid YAML/);
  });

  it('has a usage text for --help', async () => {
    expect((await cli(['review', '--help'])).stdout).toMatch(/^Usage: portcullis review -f FILE/);
    expect((await cli(['policy', 'test', '--help'])).stdout).toMatch(/^Usage: portcullis policy test DIR/);
  });
});

describe('portcullis policy test', () => {
  it('passes the example cases shipped in policies/examples/tests', async () => {
    const result = await cli(['policy', 'test', 'policies/examples/tests']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^CASE +RESOURCE +EXPECTED +GOT +RESULT$/m);
    expect(result.stdout).toMatch(/7 expectation\(s\), 7 passed, 0 failed/);
  });

  it('exits 1 and explains a mismatch', async () => {
    const dir = tempDir();
    dirs.push(dir);
    cpSync(join(repoRoot, 'policies/examples/tests/deny-critical'), join(dir.path, 'case'), { recursive: true });
    const caseFile = join(dir.path, 'case', 'case.yaml');
    writeFileSync(
      caseFile,
      `policies: ${join(repoRoot, 'policies')}\nreports:\n  registry.example.com/shop/web:1.0: photon-30.json\nexpect:\n  - resource: Deployment/web\n    decision: allow\n  - resource: Deployment/gone\n    decision: deny\n`,
    );
    const result = await cli(['policy', 'test', dir.path]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/Deployment\/web +allow +deny +MISMATCH/);
    expect(result.stdout).toContain('Deployment/gone: no such resource in the manifests');
    expect(result.stdout).toContain('2 expectation(s), 0 passed, 2 failed');
  });

  it.each([
    ['a folder without cases', (dir: string) => dir, /no case\.yaml/],
    [
      'a case.yaml with a misspelled field',
      (dir: string) => {
        writeFileSync(join(dir, 'case.yaml'), 'expect:\n  - resource: Pod/x\n    decison: deny\n');
        return dir;
      },
      /case\.yaml .*\/expect\/0: must have required property 'decision'/,
    ],
  ])('exits 2 for %s', async (_name, prepare, message) => {
    const dir = tempDir();
    dirs.push(dir);
    const result = await cli(['policy', 'test', prepare(dir.path)]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});
