import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';
import { parse as parseYaml } from 'yaml';

/** Harbor's v2.15.2 swagger (a verbatim copy of ../shared/reference/harbor/swagger.v2.15.2.yaml). */
export const HARBOR_SWAGGER_FILE = new URL('../fixtures/harbor/swagger.v2.15.2.yaml', import.meta.url);

const swagger: unknown = parseYaml(readFileSync(HARBOR_SWAGGER_FILE, 'utf8'));
const definitions = (swagger as { definitions: Record<string, unknown> }).definitions;
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv);
for (const format of ['int32', 'int64', 'int']) ajv.addFormat(format, true);
const validators = new Map<string, ValidateFunction>();

/** Asserts that `body` validates against the swagger definition `name` (or an array of it). */
export function expectSwagger(name: string, body: unknown, array = false): void {
  const key = `${name}${array ? '[]' : ''}`;
  let validate = validators.get(key);
  if (!validate) {
    const ref = { $ref: `#/definitions/${name}` };
    validate = ajv.compile({ definitions, ...(array ? { type: 'array', items: ref } : ref) });
    validators.set(key, validate);
  }
  expect(validate(body), `${key}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}
