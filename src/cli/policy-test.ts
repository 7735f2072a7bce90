import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { Ajv, type JSONSchemaType } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { readManifests, reportEntry, resourceName, reviewResources, type OfflineDecision } from '../admission/offline.js';
import { PortcullisError, describeError } from '../errors.js';
import { formatProblem, loadPolicyDirectory } from '../policy/load.js';
import { StaticVerdictSource } from '../verdicts/static-source.js';
import { EXIT, UsageError, type Command } from './command.js';

/** `case.yaml`: one test case of `portcullis policy test` (docs/admission.md, "Policy tests"). */
interface CaseFile {
  description?: string;
  /** Policy directory relative to the case folder (default: `policies`). */
  policies?: string;
  /** The instant policies are evaluated at (exception expiry, scan age); default: now. */
  now?: string;
  /** Manifest files relative to the case folder (default: `resources.yaml`). */
  resources?: string[];
  /** Image as written in the manifests → Trivy JSON report, relative to the case folder. */
  reports?: Record<string, string>;
  expect: { resource: string; decision: 'allow' | 'deny' | 'skip'; messages?: string[] }[];
}

const caseSchema: JSONSchemaType<CaseFile> = {
  type: 'object',
  additionalProperties: false,
  required: ['expect'],
  properties: {
    description: { type: 'string', nullable: true },
    policies: { type: 'string', minLength: 1, nullable: true },
    now: { type: 'string', format: 'date-time', nullable: true },
    resources: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, nullable: true },
    reports: { type: 'object', required: [], additionalProperties: { type: 'string', minLength: 1 }, nullable: true },
    expect: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['resource', 'decision'],
        properties: {
          resource: { type: 'string', pattern: '^[A-Za-z]+/(?:[a-z0-9.-]+/)?[a-z0-9.-]+$' },
          decision: { type: 'string', enum: ['allow', 'deny', 'skip'] },
          messages: { type: 'array', items: { type: 'string', minLength: 1 }, nullable: true },
        },
      },
    },
  },
};

const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addFormat('date-time', (value: string) => !Number.isNaN(Date.parse(value)) && /^\d{4}-\d{2}-\d{2}T/.test(value));
const validateCase = ajv.compile(caseSchema);

export interface CaseRow {
  case: string;
  resource: string;
  expected: string;
  got: string;
  ok: boolean;
  /** Why the row failed (missing message text, resource not found). */
  detail?: string;
}

function readCase(dir: string): CaseFile {
  const file = join(dir, 'case.yaml');
  let data: unknown;
  try {
    data = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new PortcullisError('REQUEST_MALFORMED', `${file}: ${describeError(error)}`, { detail: { file } });
  }
  if (!validateCase(data)) {
    const problems = (validateCase.errors ?? []).map((error) => `${error.instancePath || '(top level)'}: ${error.message ?? 'is invalid'}`);
    throw new PortcullisError('REQUEST_MALFORMED', `${file} ${problems.join('; ')}`, { detail: { file, problems } });
  }
  return data;
}

/** The case folders under `dir`: `dir` itself when it holds case.yaml, else its subfolders that do. */
export function findCases(dir: string): string[] {
  if (existsSync(join(dir, 'case.yaml'))) return [dir];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (error) {
    throw new PortcullisError('REQUEST_MALFORMED', `${dir}: cannot read: ${describeError(error)}`, { detail: { file: dir } });
  }
  return names.map((name) => join(dir, name)).filter((path) => statSync(path).isDirectory() && existsSync(join(path, 'case.yaml')));
}

/** Runs one case folder; throws REQUEST_MALFORMED (exit 2) for bad input. */
export async function runCase(dir: string, name: string): Promise<CaseRow[]> {
  const spec = readCase(dir);
  const policiesDir = resolve(dir, spec.policies ?? 'policies');
  const loaded = await loadPolicyDirectory(policiesDir, spec.now ? { now: new Date(spec.now) } : {});
  if (!loaded.ok) {
    throw new PortcullisError('POLICY_INVALID', `${name}: the policies in ${policiesDir} are invalid:\n${loaded.problems.map((problem) => `  ${formatProblem(problem)}`).join('\n')}`);
  }
  const source = new StaticVerdictSource();
  for (const [image, report] of Object.entries(spec.reports ?? {})) source.add(...reportEntry(image, report, dir));
  const resources = readManifests(spec.resources ?? ['resources.yaml'], { cwd: dir });
  const decisions = await reviewResources(resources, { set: loaded.set, source, now: spec.now ? new Date(spec.now) : new Date() });
  const rows: CaseRow[] = [];
  for (const expectation of spec.expect) {
    const decision = decisions.find((candidate) => matches(candidate, expectation.resource));
    if (!decision) {
      rows.push({ case: name, resource: expectation.resource, expected: expectation.decision, got: '(missing)', ok: false, detail: 'no such resource in the manifests' });
      continue;
    }
    const text = [decision.message ?? '', ...decision.warnings, ...Object.values(decision.auditAnnotations)].join('\n');
    const missing = (expectation.messages ?? []).filter((fragment) => !text.includes(fragment));
    const row: CaseRow = { case: name, resource: expectation.resource, expected: expectation.decision, got: decision.decision, ok: decision.decision === expectation.decision && missing.length === 0 };
    if (missing.length > 0) row.detail = `message lacks ${missing.map((fragment) => JSON.stringify(fragment)).join(', ')}; got: ${text.replace(/\n/g, ' | ') || '(nothing)'}`;
    else if (!row.ok) row.detail = text === '' ? undefined : text.replace(/\n/g, ' | ');
    if (row.detail === undefined) delete row.detail;
    rows.push(row);
  }
  return rows;
}

/** `Kind/name` or `Kind/namespace/name`. */
function matches(decision: OfflineDecision, wanted: string): boolean {
  const parts = wanted.split('/');
  const { resource } = decision;
  if (parts.length === 3) return parts[0] === resource.kind && parts[1] === resource.namespace && parts[2] === resource.name;
  return wanted === resourceName(resource);
}

export function renderRows(rows: readonly CaseRow[]): string {
  const header: CaseRow = { case: 'CASE', resource: 'RESOURCE', expected: 'EXPECTED', got: 'GOT', ok: true };
  const width = (key: 'case' | 'resource' | 'expected' | 'got') => Math.max(...[header, ...rows].map((row) => row[key].length));
  const line = (row: CaseRow, result: string) =>
    `${row.case.padEnd(width('case'))}  ${row.resource.padEnd(width('resource'))}  ${row.expected.padEnd(width('expected'))}  ${row.got.padEnd(width('got'))}  ${result}`;
  const out = [line(header, 'RESULT'), ...rows.map((row) => line(row, row.ok ? 'ok' : 'MISMATCH'))];
  const failures = rows.filter((row) => !row.ok && row.detail !== undefined);
  if (failures.length > 0) out.push('', ...failures.map((row) => `${row.case} ${row.resource}: ${row.detail ?? ''}`));
  const failed = rows.filter((row) => !row.ok).length;
  out.push('', `${rows.length} expectation(s), ${rows.length - failed} passed, ${failed} failed`);
  return `${out.join('\n')}\n`;
}

export const policyTestCommand: Command = {
  name: 'policy test',
  summary: 'Run policy test cases offline and compare decisions with the expected ones',
  usage: `Usage: portcullis policy test DIR…

Runs policy test cases: each case is a folder with a case.yaml, manifests and Trivy JSON reports.
Every resource is evaluated exactly as the validating webhook would (same pipeline as
\`portcullis review\`), and the decision is compared with the expected one. DIR is a case folder or
a folder of case folders.

A case folder:
  case.yaml        description, policies (directory, default ./policies), now (optional instant),
                   resources (manifest files, default [resources.yaml]), reports (image → Trivy JSON),
                   expect: [{resource: Kind/name or Kind/namespace/name, decision: allow|deny|skip,
                   messages: [text the denial, warnings or audit annotations must contain]}]
  resources.yaml   the manifests (multi-document YAML)
  *.json           Trivy reports (\`trivy image --format json\`)

Exit codes:
  0  every expectation holds
  1  at least one mismatch
  2  bad input: no case found, invalid case.yaml, policies, manifests or reports

Example:
  portcullis policy test policies/examples/tests
`,
  options: {},
  positionals: true,
  async run({ positionals, io }) {
    if (positionals.length === 0) throw new UsageError('DIR is required');
    const rows: CaseRow[] = [];
    for (const positional of positionals) {
      const dir = resolve(io.cwd, positional);
      const cases = findCases(dir);
      if (cases.length === 0) {
        io.stderr(`portcullis policy test: no case.yaml in ${positional} or its subfolders\n`);
        return EXIT.usage;
      }
      for (const folder of cases) rows.push(...(await runCase(folder, relative(io.cwd, folder) || basename(folder))));
    }
    io.stdout(renderRows(rows));
    return rows.every((row) => row.ok) ? EXIT.ok : EXIT.negative;
  },
};
