/**
 * Validates admissionregistration.k8s.io/v1 objects against Kubernetes' own OpenAPI v3 document
 * (v1.28, copied from ../shared/reference into test/fixtures), made strict: every object schema
 * that lists `properties` also refuses unknown ones (the apiserver's strict field validation), so
 * a misspelled or misplaced field (reinvocationPolicy on a validating webhook) fails. The rules
 * the OpenAPI does not express (enums, ranges, one-of) are checked from admission-facts.md.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';

const OPENAPI = new URL('../fixtures/k8s-admission/apis__admissionregistration.k8s.io__v1_openapi.json', import.meta.url);
const PREFIX = 'io.k8s.api.admissionregistration.v1.';

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Adds `additionalProperties: false` wherever a schema lists properties and says nothing else. */
function strict(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strict);
  if (!isRecord(schema)) return schema;
  const out: Json = {};
  for (const [key, value] of Object.entries(schema)) out[key] = key === 'properties' && isRecord(value) ? Object.fromEntries(Object.entries(value).map(([name, child]) => [name, strict(child)])) : strict(value);
  if (isRecord(schema.properties) && schema.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

let compiled: ((kind: string) => (value: unknown) => ErrorObject[]) | undefined;

function validators(): (kind: string) => (value: unknown) => ErrorObject[] {
  if (compiled) return compiled;
  const document: unknown = JSON.parse(readFileSync(OPENAPI, 'utf8'));
  if (!isRecord(document) || !isRecord(document.components)) throw new Error('OpenAPI document without components');
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addSchema({ $id: 'k8s', components: strict(document.components) });
  const cache = new Map<string, (value: unknown) => ErrorObject[]>();
  compiled = (kind) => {
    let validate = cache.get(kind);
    if (!validate) {
      const check = ajv.compile({ $ref: `k8s#/components/schemas/${PREFIX}${kind}` });
      validate = (value) => (check(value) ? [] : [...(check.errors ?? [])]);
      cache.set(kind, validate);
    }
    return validate;
  };
  return compiled;
}

function describe(error: ErrorObject): string {
  const extra = error.keyword === 'additionalProperties' ? ` "${(error.params as { additionalProperty: string }).additionalProperty}"` : '';
  return `${error.instancePath || '/'}: ${error.message ?? 'invalid'}${extra}`;
}

/**
 * Problems of one Validating/MutatingWebhookConfiguration, one line each (`/webhooks/0/timeoutSeconds: …`).
 * Empty when it is a valid v1 object.
 */
export function webhookConfigurationProblems(object: unknown): string[] {
  if (!isRecord(object)) return ['/: expected an object'];
  const kind = object.kind;
  if (kind !== 'ValidatingWebhookConfiguration' && kind !== 'MutatingWebhookConfiguration') return [`/kind: unexpected ${JSON.stringify(kind)}`];
  const problems = validators()(kind)(object).map(describe);
  if (object.apiVersion !== 'admissionregistration.k8s.io/v1') problems.push(`/apiVersion: must be admissionregistration.k8s.io/v1, got ${JSON.stringify(object.apiVersion)}`);
  const webhooks = Array.isArray(object.webhooks) ? object.webhooks : [];
  webhooks.forEach((webhook: unknown, index) => {
    const at = `/webhooks/${index}`;
    if (!isRecord(webhook)) return;
    const oneOf = (field: string, allowed: readonly string[], required = false) => {
      const value = webhook[field];
      if (value === undefined ? required : !allowed.includes(String(value))) problems.push(`${at}/${field}: must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
    };
    oneOf('sideEffects', ['None', 'NoneOnDryRun'], true);
    oneOf('failurePolicy', ['Fail', 'Ignore']);
    oneOf('matchPolicy', ['Exact', 'Equivalent']);
    if (kind === 'MutatingWebhookConfiguration') oneOf('reinvocationPolicy', ['Never', 'IfNeeded']);
    const timeout = webhook.timeoutSeconds;
    if (timeout !== undefined && (typeof timeout !== 'number' || timeout < 1 || timeout > 30)) problems.push(`${at}/timeoutSeconds: must be 1..30, got ${JSON.stringify(timeout)}`);
    if (!Array.isArray(webhook.admissionReviewVersions) || !webhook.admissionReviewVersions.includes('v1')) problems.push(`${at}/admissionReviewVersions: must include v1`);
    const client = isRecord(webhook.clientConfig) ? webhook.clientConfig : {};
    if ((client.url === undefined) === (client.service === undefined)) problems.push(`${at}/clientConfig: exactly one of url or service must be set`);
    if (typeof client.url === 'string') {
      const url = new URL(client.url);
      if (url.protocol !== 'https:' || url.username || url.password || url.hash || url.search) problems.push(`${at}/clientConfig/url: must be https without user info, query or fragment, got ${client.url}`);
    }
    if (typeof client.caBundle === 'string' && !Buffer.from(client.caBundle, 'base64').toString('utf8').includes('-----BEGIN CERTIFICATE-----')) {
      problems.push(`${at}/clientConfig/caBundle: must be base64 of PEM certificates`);
    }
    const rules = Array.isArray(webhook.rules) ? webhook.rules : [];
    rules.forEach((rule: unknown, ruleIndex) => {
      if (!isRecord(rule)) return;
      for (const operation of Array.isArray(rule.operations) ? rule.operations : []) {
        if (!['CREATE', 'UPDATE', 'DELETE', 'CONNECT', '*'].includes(String(operation))) problems.push(`${at}/rules/${ruleIndex}/operations: unknown operation ${JSON.stringify(operation)}`);
      }
      if (rule.scope !== undefined && !['Cluster', 'Namespaced', '*'].includes(String(rule.scope))) problems.push(`${at}/rules/${ruleIndex}/scope: must be Cluster, Namespaced or *`);
    });
  });
  return problems;
}
