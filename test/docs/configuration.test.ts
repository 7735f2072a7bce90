import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envBindings } from '../../src/config/load.js';
import { DOC_PATH, renderConfigurationTable, withTable } from './configuration-table.js';

describe('docs/configuration.md', () => {
  const doc = readFileSync(DOC_PATH, 'utf8');

  it.each(envBindings().map((binding) => [binding.name, binding.path.join('.')]))('lists %s (%s)', (name, path) => {
    expect(doc).toContain(`| \`${path}\` | \`${name}\` |`);
  });

  it('carries the table generated from the schema, unchanged (run `npx tsx test/docs/configuration-table.ts --write`)', () => {
    expect(doc).toContain(renderConfigurationTable());
    expect(withTable(doc)).toBe(doc);
  });

  it('names no environment variable that does not exist', () => {
    const known = new Set([...envBindings().map((binding) => binding.name), 'PORTCULLIS_CONFIG']);
    const mentioned = [...doc.matchAll(/\bPORTCULLIS_[A-Z0-9_]+\b/g)].map((match) => match[0]);
    // The error example shows a misspelt variable on purpose.
    expect(mentioned.filter((name) => !known.has(name) && name !== 'PORTCULLIS_REGISTRY_LISTNE')).toEqual([]);
  });
});
