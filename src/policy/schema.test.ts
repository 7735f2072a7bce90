import { describe, expect, it } from 'vitest';
import { IMAGE_RULES, POLICY_KINDS, STATE_KEYS, type PolicyDocument } from './documents.js';
import { policySchema, validatePolicyDocument } from './schema.js';
import { SEVERITIES } from './types.js';

/** One document of each kind using every field the schema knows; `satisfies` checks it against the TS types. */
const EVERY_FIELD = [
  {
    apiVersion: 'portcullis.io/v1alpha1',
    kind: 'ImagePolicy',
    metadata: { name: 'all', labels: { a: 'b' }, annotations: { c: 'd' } },
    spec: {
      action: 'warn',
      match: {
        namespaces: ['a-*'],
        excludeNamespaces: ['a-b'],
        namespaceSelector: { matchLabels: { env: 'prod' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['x'] }] },
        images: ['**'],
        excludeImages: ['x/**'],
      },
      rules: {
        vulnerabilities: {
          maxSeverity: 'High',
          maxCount: { Unknown: 9, Negligible: 9, Low: 9, Medium: 9, High: 1, Critical: 0 },
          ignoreUnfixed: true,
          allowlist: [{ id: 'CVE-1', reason: 'r', expires: '2027-01-01' }],
          maxScanAge: '7d',
          verdictStates: { pending: 'warn', unscanned: 'deny', failed: 'warn', unsupported: 'allow', unavailable: 'warn', stale: 'deny' },
        },
        allowedRegistries: ['*.example.com'],
        disallowedTags: ['latest'],
        requireDigest: true,
      },
      pinDigest: true,
    },
  },
  {
    apiVersion: 'portcullis.io/v1alpha1',
    kind: 'PullSecretPolicy',
    metadata: { name: 'all' },
    spec: {
      match: {
        namespaces: ['*'],
        excludeNamespaces: ['kube-system'],
        namespaceSelector: { matchLabels: { a: 'b' }, matchExpressions: [{ key: 'c', operator: 'NotIn', values: ['d'] }] },
        images: ['**'],
        excludeImages: ['docker.io/**'],
      },
      registries: ['r.example.com'],
      secretName: 'pull',
      source: { namespace: 'portcullis', name: 'pull' },
    },
  },
  {
    apiVersion: 'portcullis.io/v1alpha1',
    kind: 'PolicyException',
    metadata: { name: 'all' },
    spec: {
      policies: ['all'],
      rules: ['vulnerabilities'],
      namespaces: ['a'],
      images: ['sha256:0'],
      cves: ['CVE-1'],
      reason: 'r',
      expires: '2027-01-01T00:00:00Z',
    },
  },
] satisfies PolicyDocument[];

type Schema = Record<string, unknown>;

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every property path the schema defines below `node` (`spec.rules.vulnerabilities.allowlist[].id`). */
function schemaPaths(root: Schema, node: Schema, prefix: string, seen = new Set<Schema>()): string[] {
  if (seen.has(node)) return [];
  const ref = node.$ref;
  if (typeof ref === 'string') {
    const target = ref.replace('#/definitions/', '');
    const definitions = root.definitions;
    const resolved = isSchema(definitions) ? definitions[target] : undefined;
    return isSchema(resolved) ? schemaPaths(root, resolved, prefix, new Set([...seen, node])) : [];
  }
  const paths: string[] = [];
  const properties = node.properties;
  if (isSchema(properties)) {
    for (const [name, child] of Object.entries(properties)) {
      const path = prefix === '' ? name : `${prefix}.${name}`;
      paths.push(path);
      if (isSchema(child)) paths.push(...schemaPaths(root, child, path, seen));
    }
  }
  if (isSchema(node.items)) paths.push(...schemaPaths(root, node.items, `${prefix}[]`, seen));
  return paths;
}

function hasPath(value: unknown, path: string): boolean {
  const [head, ...rest] = path.split('.');
  if (head === undefined) return true;
  const array = head.endsWith('[]');
  const key = array ? head.slice(0, -2) : head;
  const child = key === '' ? value : isSchema(value) ? value[key] : undefined;
  if (child === undefined) return false;
  if (array) return Array.isArray(child) && child.some((item) => rest.length === 0 || hasPath(item, rest.join('.')));
  return rest.length === 0 || hasPath(child, rest.join('.'));
}

describe('the policy schema', () => {
  const schema = policySchema();
  const definitions = schema.definitions;
  const definition = (name: string): Schema => {
    const found = isSchema(definitions) ? definitions[name] : undefined;
    if (!isSchema(found)) throw new Error(`no definition ${name}`);
    return found;
  };

  it('accepts a document of each kind that uses every field', () => {
    for (const document of EVERY_FIELD) expect(validatePolicyDocument(document)).toEqual({ ok: true, document });
  });

  it.each([
    { kind: 'ImagePolicy', spec: 'imagePolicySpec' },
    { kind: 'PullSecretPolicy', spec: 'pullSecretPolicySpec' },
    { kind: 'PolicyException', spec: 'policyExceptionSpec' },
  ])('has no $kind field that the TypeScript types (and the every-field document) lack', ({ kind, spec }) => {
    const document = EVERY_FIELD.find((candidate) => candidate.kind === kind);
    const paths = [...schemaPaths(schema, schema, ''), ...schemaPaths(schema, definition(spec), 'spec')].filter((path) => path !== 'spec');
    const maps = ['metadata.labels', 'metadata.annotations'];
    expect(paths.filter((path) => !hasPath(document, path) && !maps.includes(path))).toEqual([]);
  });

  it('lists the same kinds, severities, rule names and verdict states as the code', () => {
    const properties = (name: string) => Object.keys(definition(name).properties as Schema);
    expect((schema.properties as { kind: { enum: string[] } }).kind.enum).toEqual([...POLICY_KINDS]);
    expect(definition('severity').enum).toEqual([...SEVERITIES]);
    expect(properties('vulnerabilities').includes('verdictStates')).toBe(true);
    const states = ((definition('vulnerabilities').properties as Schema).verdictStates as { properties: Schema }).properties;
    expect(Object.keys(states)).toEqual([...STATE_KEYS]);
    const exceptionRules = ((definition('policyExceptionSpec').properties as Schema).rules as { items: { enum: string[] } }).items.enum;
    expect(exceptionRules).toEqual([...IMAGE_RULES]);
    expect(Object.keys((definition('imagePolicySpec').properties as { rules: { properties: Schema } }).rules.properties)).toEqual([...IMAGE_RULES]);
  });
});
