/**
 * The policy JSON Schema (policies/policy.schema.json, shipped with the package so editors and CI
 * can use it too) compiled once with ajv, and its errors turned into one readable issue each:
 * which field, what was expected, what came.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { PolicyDocument } from './documents.js';

export interface SchemaIssue {
  /** JSON pointer of the offending value (for unknown fields: of the object that holds it). */
  pointer: string;
  /** The unknown field's name, when the issue is an unknown field. */
  key?: string;
  message: string;
}

export type SchemaValidation = { ok: true; document: PolicyDocument } | { ok: false; issues: SchemaIssue[] };

const SCHEMA_URL = new URL('../../policies/policy.schema.json', import.meta.url);

let compiled: ValidateFunction<PolicyDocument> | undefined;

/** The parsed JSON Schema (read from the package's policies/ directory). */
export function policySchema(): Record<string, unknown> {
  const parsed: unknown = JSON.parse(readFileSync(SCHEMA_URL, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${SCHEMA_URL.pathname}: not a JSON object`);
  return parsed as Record<string, unknown>;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function isDate(text: string): boolean {
  const match = DATE.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

function validator(): ValidateFunction<PolicyDocument> {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false, verbose: true });
    ajv.addFormat('date', isDate);
    ajv.addFormat('date-time', (text: string) => DATE_TIME.test(text) && !Number.isNaN(Date.parse(text)));
    compiled = ajv.compile<PolicyDocument>(policySchema());
  }
  return compiled;
}

/** Validates one parsed YAML document against the policy schema. */
export function validatePolicyDocument(value: unknown): SchemaValidation {
  const validate = validator();
  if (validate(value)) return { ok: true, document: value };
  return { ok: false, issues: describeErrors(validate.errors ?? []) };
}

function describeErrors(errors: readonly ErrorObject[]): SchemaIssue[] {
  // `anyOf` alternatives are reported once, by the anyOf itself; `if` only says "then failed".
  const anyOfPaths = errors.filter((error) => error.keyword === 'anyOf').map((error) => error.schemaPath);
  const issues: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    if (error.keyword === 'if') continue;
    if (anyOfPaths.some((path) => error.schemaPath.startsWith(`${path}/`))) continue;
    const issue = describeError(error);
    const key = `${issue.pointer}|${issue.key ?? ''}|${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(issue);
  }
  return issues;
}

function got(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function schemaOf(error: ErrorObject): Record<string, unknown> {
  const schema: unknown = error.parentSchema;
  return typeof schema === 'object' && schema !== null ? (schema as Record<string, unknown>) : {};
}

function describeError(error: ErrorObject): SchemaIssue {
  const pointer = error.instancePath;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const properties = schemaOf(error).properties;
      const known = typeof properties === 'object' && properties !== null ? Object.keys(properties) : [];
      const suggestion = closest(key, known);
      const hint = suggestion ? ` (did you mean "${suggestion}"?)` : known.length > 0 ? ` (expected one of ${known.join(', ')})` : '';
      return { pointer, key, message: `unknown field "${key}"${hint}` };
    }
    case 'required':
      return { pointer, message: `missing required field "${String(params.missingProperty)}"` };
    case 'enum':
      return { pointer, message: `must be one of ${(params.allowedValues as unknown[]).map(String).join(', ')}, got ${got(error.data)}` };
    case 'const':
      return { pointer, message: `must be ${String(params.allowedValue)}, got ${got(error.data)}` };
    case 'type':
      return { pointer, message: `must be ${String(params.type)}, got ${got(error.data)}` };
    case 'pattern': {
      const description = schemaOf(error).description;
      const expected = typeof description === 'string' ? description : `text matching ${String(params.pattern)}`;
      return { pointer, message: `must be ${lowerFirst(expected)}, got ${got(error.data)}` };
    }
    case 'anyOf': {
      const schema = schemaOf(error);
      const alternatives = Array.isArray(schema.anyOf) ? (schema.anyOf as Record<string, unknown>[]) : [];
      const required = alternatives.flatMap((alternative) => (Array.isArray(alternative.required) ? alternative.required.map(String) : []));
      if (required.length > 0) return { pointer, message: `must set at least one of ${required.join(', ')}` };
      const description = schema.description;
      const expected = typeof description === 'string' ? lowerFirst(description) : 'valid';
      return { pointer, message: `must be ${expected}, got ${got(error.data)}` };
    }
    case 'minItems':
      return { pointer, message: `must list at least ${String(params.limit)} item${params.limit === 1 ? '' : 's'}` };
    case 'minProperties':
      return { pointer, message: `must set at least ${String(params.limit)} field${params.limit === 1 ? '' : 's'}` };
    case 'minLength':
      return { pointer, message: `must not be empty` };
    default:
      return { pointer, message: `${error.message ?? 'is invalid'}, got ${got(error.data)}` };
  }
}

function lowerFirst(text: string): string {
  const trimmed = text.replace(/\.$/, '');
  return trimmed.charAt(0).toLowerCase() + trimmed.slice(1);
}

/** The known name closest to a misspelt one, when it is close enough to be a likely typo. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  if (!best) return undefined;
  return best.distance <= Math.max(2, Math.floor(best.name.length / 4)) ? best.name : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
