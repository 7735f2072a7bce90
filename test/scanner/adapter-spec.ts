import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { parse as parseYaml } from 'yaml';

/**
 * Validators for the components of the Harbor pluggable scanner-adapter OpenAPI v1.1 (a verbatim
 * copy of ../shared/reference/pluggable-scanner-spec in test/fixtures). Each component becomes an
 * ajv schema addressable as `spec#/components/schemas/<Name>`; OpenAPI's own keywords (`example`)
 * are ignored and its `url`/`float` formats are given their obvious meanings.
 */
const specFile = new URL('../fixtures/pluggable-scanner-spec/scanner-adapter-openapi-v1.1.yaml', import.meta.url);
export const examplesDir = new URL('../fixtures/pluggable-scanner-spec/harbor-scanner-trivy-examples/', import.meta.url);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

let ajv: Ajv | undefined;

function specAjv(): Ajv {
  if (ajv) return ajv;
  const spec: unknown = parseYaml(readFileSync(specFile, 'utf8'));
  if (!isRecord(spec) || !isRecord(spec.components)) throw new Error('scanner-adapter spec: no components');
  ajv = new Ajv({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addFormat('url', /^https?:\/\/\S+$/);
  ajv.addFormat('float', true);
  ajv.addSchema({ $id: 'spec', components: spec.components });
  return ajv;
}

export function specValidator(component: string): ValidateFunction {
  const validate = specAjv().getSchema(`spec#/components/schemas/${component}`);
  if (!validate) throw new Error(`scanner-adapter spec: no component ${component}`);
  return validate;
}

/** Validates `value` against a spec component; returns ajv's messages (empty when valid). */
export function specErrors(component: string, value: unknown): string[] {
  const validate = specValidator(component);
  if (validate(value)) return [];
  return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? ''}`);
}

export function example(name: string): unknown {
  return JSON.parse(readFileSync(new URL(name, examplesDir), 'utf8'));
}
