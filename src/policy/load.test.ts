import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { NOW } from '../../test/policy/builders.js';
import { formatProblem, loadPolicyDirectory, parsePolicyDocuments, parsePolicyFiles, policyError, type PolicyLoadResult } from './load.js';

const dirs: { remove(): void }[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => dir.remove()));

function problems(result: PolicyLoadResult): string[] {
  if (result.ok) throw new Error('expected the policies to be rejected');
  return result.problems.map(formatProblem);
}

function warnings(result: PolicyLoadResult): string[] {
  if (!result.ok) throw new Error(`expected valid policies, got:\n${result.problems.map(formatProblem).join('\n')}`);
  return result.warnings.map(formatProblem);
}

const VALID = `apiVersion: portcullis.io/v1alpha1
kind: ImagePolicy
metadata:
  name: gate
spec:
  rules:
    vulnerabilities:
      maxSeverity: High
`;

describe('parsePolicyDocuments', () => {
  it('accepts a valid document and compiles it', () => {
    const result = parsePolicyDocuments(VALID, 'policies/gate.yaml', { now: NOW });
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.set.imagePolicies.map((policy) => policy.name)).toEqual(['gate']);
      expect(result.set.imagePolicies[0]).toMatchObject({ action: 'deny', file: 'policies/gate.yaml', requireDigest: false, pinDigest: false });
      expect(Object.isFrozen(result.set.imagePolicies[0])).toBe(true);
    }
  });

  // Each case: the YAML after the first four lines of VALID (spec onwards), and the one problem it must give.
  const cases: { name: string; spec: string; expected: string }[] = [
    {
      name: 'a misspelled field names file, line, column and the field, and suggests the right one',
      spec: 'spec:\n  rules:\n    vulnerabilites:\n      maxSeverity: High\n',
      expected: 'policies/x.yaml:7:5 /spec/rules/vulnerabilites: unknown field "vulnerabilites" (did you mean "vulnerabilities"?)',
    },
    {
      name: 'an unknown severity lists the allowed ones and what came',
      spec: 'spec:\n  rules:\n    vulnerabilities:\n      maxSeverity: Severe\n',
      expected: 'policies/x.yaml:8:20 /spec/rules/vulnerabilities/maxSeverity: must be one of Unknown, Negligible, Low, Medium, High, Critical, got "Severe"',
    },
    {
      name: 'a wrong type says which type',
      spec: 'spec:\n  rules:\n    requireDigest: "yes"\n',
      expected: 'policies/x.yaml:7:20 /spec/rules/requireDigest: must be boolean, got "yes"',
    },
    {
      name: 'a bad action lists the actions',
      spec: 'spec:\n  action: block\n  rules:\n    requireDigest: true\n',
      expected: 'policies/x.yaml:6:11 /spec/action: must be one of deny, warn, audit, got "block"',
    },
    {
      name: 'a vulnerability rule without a limit asks for one',
      spec: 'spec:\n  rules:\n    vulnerabilities:\n      ignoreUnfixed: true\n',
      expected: 'policies/x.yaml:8:7 /spec/rules/vulnerabilities: must set at least one of maxSeverity, maxCount',
    },
    {
      name: 'a bad duration shows the expected form',
      spec: 'spec:\n  rules:\n    vulnerabilities:\n      maxSeverity: High\n      maxScanAge: 1 week\n',
      expected: 'policies/x.yaml:9:19 /spec/rules/vulnerabilities/maxScanAge: must be a duration such as 30m, 12h, 7d, 2w or 1d12h, got "1 week"',
    },
    {
      name: 'a negative count limit is refused',
      spec: 'spec:\n  rules:\n    vulnerabilities:\n      maxCount: { High: -1 }\n',
      expected: 'policies/x.yaml:8:25 /spec/rules/vulnerabilities/maxCount/High: must be >= 0, got -1',
    },
    {
      name: 'a bad verdict-state action lists the choices',
      spec: 'spec:\n  rules:\n    vulnerabilities:\n      maxSeverity: High\n      verdictStates: { pending: block }\n',
      expected: 'policies/x.yaml:9:33 /spec/rules/vulnerabilities/verdictStates/pending: must be one of allow, warn, deny, got "block"',
    },
    {
      name: 'an empty rules block is refused',
      spec: 'spec:\n  rules: {}\n',
      expected: 'policies/x.yaml:6:10 /spec/rules: must set at least 1 field',
    },
    {
      name: 'an image policy with neither rules nor pinDigest asks for one',
      spec: 'spec:\n  action: warn\n',
      expected: 'policies/x.yaml:6:3 /spec: must set at least one of rules, pinDigest',
    },
    {
      name: 'a missing spec is named',
      spec: '',
      expected: 'policies/x.yaml:1:1: missing required field "spec"',
    },
  ];

  it.each(cases)('$name', ({ spec, expected }) => {
    const text = `${VALID.split('\n').slice(0, 4).join('\n')}\n${spec}`;
    expect(problems(parsePolicyDocuments(text, 'policies/x.yaml', { now: NOW }))).toEqual([expected]);
  });

  it.each([
    {
      name: 'a wrong apiVersion says which one is expected',
      text: VALID.replace('portcullis.io/v1alpha1', 'portcullis.io/v1'),
      expected: ['policies/x.yaml:1:13 /apiVersion: must be portcullis.io/v1alpha1, got "portcullis.io/v1"'],
    },
    {
      name: 'an unknown kind lists the kinds',
      text: VALID.replace('ImagePolicy', 'ImagePolice'),
      expected: ['policies/x.yaml:2:7 /kind: must be one of ImagePolicy, PullSecretPolicy, PolicyException, got "ImagePolice"'],
    },
    {
      name: 'a name that is not a DNS label says what a name may hold',
      text: VALID.replace('name: gate', 'name: Gate_1'),
      expected: [
        "policies/x.yaml:4:9 /metadata/name: must be a Kubernetes-style name (DNS-1123 label): lower-case letters, digits and '-', at most 63 characters, got \"Gate_1\"",
      ],
    },
    {
      name: 'YAML syntax errors give the position of the parser',
      text: 'apiVersion: portcullis.io/v1alpha1\nkind: [ImagePolicy\n',
      expected: [expect.stringMatching(/^policies\/x\.yaml:\d+:\d+: YAML: /)],
    },
    {
      name: 'duplicate keys are YAML errors',
      text: `${VALID}kind: ImagePolicy\n`,
      expected: [expect.stringMatching(/^policies\/x\.yaml:9:1: YAML: Map keys must be unique/)],
    },
    {
      name: 'an exception without reason and expiry is refused',
      text: 'apiVersion: portcullis.io/v1alpha1\nkind: PolicyException\nmetadata: { name: e }\nspec:\n  policies: [gate]\n',
      expected: ['policies/x.yaml:5:3 /spec: missing required field "reason"', 'policies/x.yaml:5:3 /spec: missing required field "expires"'],
    },
    {
      name: 'an expiry that is not a date says what is accepted',
      text: 'apiVersion: portcullis.io/v1alpha1\nkind: PolicyException\nmetadata: { name: e }\nspec:\n  policies: [gate]\n  reason: r\n  expires: 2026-02-30\n',
      expected: [
        'policies/x.yaml:7:12 /spec/expires: must be an RFC 3339 date-time with a zone (2026-12-31T23:59:59Z) or a date (2026-12-31, meaning the end of that day, UTC), got "2026-02-30"',
      ],
    },
    {
      name: 'a pull secret policy with a bad Secret name is refused',
      text: 'apiVersion: portcullis.io/v1alpha1\nkind: PullSecretPolicy\nmetadata: { name: p }\nspec:\n  registries: ["*"]\n  secretName: Pull_Secret\n',
      expected: [expect.stringMatching(/^policies\/x\.yaml:6:15 \/spec\/secretName: must be a Secret name \(DNS-1123 subdomain\), got "Pull_Secret"$/)],
    },
    {
      name: 'In without values is refused by lint',
      text: `${VALID.replace('spec:\n', 'spec:\n  match:\n    namespaceSelector:\n      matchExpressions:\n        - { key: env, operator: In }\n')}`,
      expected: ['policies/x.yaml:9:11 /spec/match/namespaceSelector/matchExpressions/0: operator In needs a non-empty "values" list'],
    },
  ])('$name', ({ text, expected }) => {
    expect(problems(parsePolicyDocuments(text, 'policies/x.yaml', { now: NOW }))).toEqual(expected);
  });

  it('reports problems of every document of a multi-document file, naming the document when the pointer is its root', () => {
    const text = `${VALID}---\n# nothing here\n---\nkind: ImagePolicy\n`;
    expect(problems(parsePolicyDocuments(text, 'policies/x.yaml', { now: NOW }))).toEqual([
      'policies/x.yaml:12:1: document 3: missing required field "apiVersion"',
      'policies/x.yaml:12:1: document 3: missing required field "metadata"',
      'policies/x.yaml:12:1: document 3: missing required field "spec"',
    ]);
  });

  it('refuses duplicate names of one kind across files, naming where the first one is', () => {
    const result = parsePolicyFiles(
      [
        { file: 'p/a.yaml', text: VALID },
        { file: 'p/b.yaml', text: `# comment\n${VALID}` },
      ],
      { now: NOW },
    );
    expect(problems(result)).toEqual(['p/b.yaml:5:9 /metadata/name: duplicate ImagePolicy name "gate" (first defined at p/a.yaml:1:1)']);
  });

  it('accepts an image policy that only pins digests', () => {
    const text = 'apiVersion: portcullis.io/v1alpha1\nkind: ImagePolicy\nmetadata: { name: pin }\nspec:\n  pinDigest: true\n';
    expect(warnings(parsePolicyDocuments(text, 'x.yaml', { now: NOW }))).toEqual([]);
  });

  it('turns problems into one POLICY_INVALID error, or POLICY_PARSE_ERROR when every problem is YAML syntax', () => {
    const invalid = parsePolicyDocuments(VALID.replace('High', 'Severe'), 'x.yaml');
    const unparsable = parsePolicyDocuments('kind: [', 'y.yaml');
    if (invalid.ok || unparsable.ok) throw new Error('expected problems');
    const error = policyError(invalid.problems);
    expect(error).toMatchObject({ code: 'POLICY_INVALID', status: 400, detail: { problems: invalid.problems } });
    expect(error.message).toBe(`invalid policies:\n  ${formatProblem(invalid.problems[0]!)}`);
    expect(policyError(unparsable.problems).code).toBe('POLICY_PARSE_ERROR');
  });

  it('allows one name for different kinds', () => {
    const exception = 'apiVersion: portcullis.io/v1alpha1\nkind: PolicyException\nmetadata: { name: gate }\nspec:\n  policies: [gate]\n  reason: r\n  expires: 2027-01-01\n';
    expect(warnings(parsePolicyDocuments(`${VALID}---\n${exception}`, 'x.yaml', { now: NOW }))).toEqual([]);
  });

  it.each([
    { name: 'an exception expiring within 14 days', expires: '2026-06-10', expected: 'x.yaml:7:12 /spec/expires: warning: exception "soon" expires in 10 days (2026-06-10)' },
    { name: 'an exception that has expired', expires: '2026-05-01', expected: 'x.yaml:7:12 /spec/expires: warning: exception "soon" expired on 2026-05-01 and no longer applies' },
  ])('warns about $name', ({ expires, expected }) => {
    const exception = `apiVersion: portcullis.io/v1alpha1\nkind: PolicyException\nmetadata: { name: soon }\nspec:\n  policies: [gate]\n  reason: r\n  expires: ${expires}\n`;
    expect(warnings(parsePolicyFiles([{ file: 'g.yaml', text: VALID }, { file: 'x.yaml', text: exception }], { now: NOW }))).toEqual([expected]);
  });

  it('does not warn about an exception that expires in more than 14 days', () => {
    const exception = 'apiVersion: portcullis.io/v1alpha1\nkind: PolicyException\nmetadata: { name: later }\nspec:\n  policies: [gate]\n  reason: r\n  expires: "2026-06-16T12:00:01Z"\n';
    expect(warnings(parsePolicyFiles([{ file: 'g.yaml', text: VALID }, { file: 'x.yaml', text: exception }], { now: NOW }))).toEqual([]);
  });

  it('warns about an allowlist entry close to expiry and an exception naming no policy', () => {
    const text = `${VALID}      allowlist:\n        - { id: CVE-1, reason: r, expires: 2026-06-02 }\n---\napiVersion: portcullis.io/v1alpha1\nkind: PolicyException\nmetadata: { name: e }\nspec:\n  policies: [gaet]\n  reason: r\n  expires: 2027-01-01\n`;
    expect(warnings(parsePolicyDocuments(text, 'x.yaml', { now: NOW }))).toEqual([
      'x.yaml:10:44 /spec/rules/vulnerabilities/allowlist/0/expires: warning: allowlist entry CVE-1 expires in 2 days (2026-06-02)',
      'x.yaml:16:14 /spec/policies/0: warning: names no ImagePolicy of this set ("gaet")',
    ]);
  });
});

describe('loadPolicyDirectory', () => {
  function dir(files: Record<string, string>): string {
    const made = tempDir();
    dirs.push(made);
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(made.path, name, '..'), { recursive: true });
      writeFileSync(join(made.path, name), text);
    }
    return made.path;
  }

  it('reads *.yaml and *.yml in name order, skipping hidden files, other files and subdirectories', async () => {
    const path = dir({
      'b.yml': VALID.replace('gate', 'second'),
      'a.yaml': VALID,
      '.hidden.yaml': 'not: [valid',
      'notes.txt': 'not yaml',
      'sub/c.yaml': 'not: [valid',
    });
    const result = await loadPolicyDirectory(path, { now: NOW });
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.set.files).toEqual([join(path, 'a.yaml'), join(path, 'b.yml')]);
      expect(result.set.imagePolicies.map((policy) => policy.name)).toEqual(['gate', 'second']);
    }
  });

  it('loads the shipped default policies without problems or warnings', async () => {
    const result = await loadPolicyDirectory('policies', { now: NOW });
    expect(warnings(result)).toEqual([]);
    if (result.ok) {
      expect(result.set.imagePolicies.map((policy) => `${policy.name}:${policy.action}`).sort()).toEqual(['deny-critical:deny', 'deny-latest:deny', 'warn-high:warn']);
      expect(result.set.pullSecretPolicies.map((policy) => policy.secretName)).toEqual(['portcullis-pull']);
    }
  });

  it('loads every example policy directory without problems', async () => {
    const result = await loadPolicyDirectory('policies/examples', { now: NOW });
    expect(result.ok ? [] : result.problems.map(formatProblem)).toEqual([]);
  });

  it('names the directory when it does not exist', async () => {
    const missing = join(dir({}), 'nope');
    expect(problems(await loadPolicyDirectory(missing))).toEqual([expect.stringMatching(new RegExp(`^${missing}: cannot read the policy directory: ENOENT`))]);
  });

  it('gives an empty set for an empty directory, with a warning that nothing is enforced', async () => {
    const path = dir({});
    const result = await loadPolicyDirectory(path);
    expect(result.ok && result.set.imagePolicies.length === 0).toBe(true);
    expect(warnings(result)).toEqual([`${path}: warning: no policy documents found: nothing is enforced`]);
  });
});
