/**
 * Table-driven policy cases kept as folders of YAML and JSON under test/fixtures/policies/cases
 * (see the README there): each folder is one sentence of the specification.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { formatProblem, loadPolicyDirectory, parsePolicyDocuments, type PolicyLoadResult } from '../../src/policy/load.js';
import { evaluate, planPullSecrets, shouldPinDigest } from '../../src/policy/evaluate.js';
import { parseImageReference } from '../../src/policy/image-reference.js';
import { VERDICT_STATES, type AdmissionContext, type ReviewedImage, type Verdict } from '../../src/policy/types.js';
import { repoRoot } from '../helpers/cli.js';

const CASES = join(repoRoot, 'test/fixtures/policies/cases');

interface CaseRequest {
  policiesDir?: string;
  now: string;
  context: AdmissionContext;
  images: { image: string; digest?: string; verdict?: Verdict }[];
}

interface CaseExpected {
  allowed: boolean;
  denyMessage?: string;
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
  results?: Record<string, unknown>[];
  pullSecrets?: unknown[];
  pin?: boolean[];
}

const ajv = new Ajv({ allErrors: true, strict: false });
const isRequest = ajv.compile<CaseRequest>({
  type: 'object',
  required: ['now', 'context', 'images'],
  properties: {
    policiesDir: { type: 'string' },
    now: { type: 'string' },
    context: {
      type: 'object',
      required: ['namespace', 'namespaceLabels', 'kind', 'name', 'operation'],
      properties: { operation: { enum: ['CREATE', 'UPDATE'] }, namespaceLabels: { type: 'object', additionalProperties: { type: 'string' } } },
    },
    images: {
      type: 'array',
      items: {
        type: 'object',
        required: ['image'],
        properties: {
          image: { type: 'string' },
          digest: { type: 'string' },
          verdict: { type: 'object', required: ['state'], properties: { state: { enum: [...VERDICT_STATES] } } },
        },
        additionalProperties: false,
      },
    },
  },
  additionalProperties: false,
});
const isExpected = ajv.compile<CaseExpected>({
  type: 'object',
  required: ['allowed'],
  properties: {
    allowed: { type: 'boolean' },
    denyMessage: { type: 'string' },
    warnings: { type: 'array', items: { type: 'string' } },
    auditAnnotations: { type: 'object' },
    results: { type: 'array', items: { type: 'object' } },
    pullSecrets: { type: 'array' },
    pin: { type: 'array', items: { type: 'boolean' } },
  },
  additionalProperties: false,
});

function readJson<T>(file: string, guard: { (value: unknown): value is T; errors?: unknown }): T {
  const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (!guard(value)) throw new Error(`${file}: ${ajv.errorsText(guard.errors as Parameters<typeof ajv.errorsText>[0])}`);
  return value;
}

async function policiesOf(folder: string, request: CaseRequest, now: Date): Promise<PolicyLoadResult> {
  if (request.policiesDir !== undefined) return loadPolicyDirectory(join(repoRoot, request.policiesDir), { now });
  const file = join(folder, 'policies.yaml');
  return parsePolicyDocuments(readFileSync(file, 'utf8'), file, { now });
}

const names = readdirSync(CASES, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

describe('policy cases', () => {
  it('has cases to run', () => {
    expect(names.length).toBeGreaterThan(5);
  });

  it.each(names)('%s', async (name) => {
    const folder = join(CASES, name);
    const request = readJson(join(folder, 'request.json'), isRequest);
    const expected = readJson(join(folder, 'expected.json'), isExpected);
    expect(request.policiesDir !== undefined || existsSync(join(folder, 'policies.yaml'))).toBe(true);
    const now = new Date(request.now);
    const loaded = await policiesOf(folder, request, now);
    if (!loaded.ok) throw new Error(loaded.problems.map(formatProblem).join('\n'));
    const images: ReviewedImage[] = request.images.map((entry, index) => ({
      pointer: `/spec/containers/${index}/image`,
      container: `c${index}`,
      containerType: 'containers',
      reference: parseImageReference(entry.image),
      ...(entry.digest ? { digest: entry.digest } : {}),
      ...(entry.verdict ? { verdict: entry.verdict } : {}),
    }));

    const evaluation = evaluate(loaded.set, request.context, images, now);
    expect(evaluation.allowed).toBe(expected.allowed);
    expect(evaluation.denyMessage).toBe(expected.denyMessage);
    if (expected.warnings) expect(evaluation.warnings).toEqual(expected.warnings);
    if (expected.auditAnnotations) expect(evaluation.auditAnnotations).toEqual(expected.auditAnnotations);
    for (const result of expected.results ?? []) expect(evaluation.results).toContainEqual(expect.objectContaining(result));
    if (expected.pullSecrets) expect(planPullSecrets(loaded.set, request.context, images)).toEqual(expected.pullSecrets);
    if (expected.pin) expect(images.map((image) => shouldPinDigest(loaded.set, request.context, image))).toEqual(expected.pin);
  });
});
