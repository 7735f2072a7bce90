import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, PortcullisError } from './errors.js';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map(
  [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((match) => [match[1] as string, Number(match[2])]),
);

describe('the error catalog', () => {
  it.each(Object.entries(ERROR_CODES))('documents %s with its status in docs/errors.md', (code, { status }) => {
    expect(documented.get(code)).toBe(status);
  });

  it('documents no code that the catalog does not have', () => {
    expect([...documented.keys()].filter((code) => !(code in ERROR_CODES))).toEqual([]);
  });

  it('gives an error the catalog status unless one is passed', () => {
    expect(new PortcullisError('FORBIDDEN', 'no').status).toBe(403);
    expect(new PortcullisError('REQUEST_MALFORMED', 'no', { status: 422 }).status).toBe(422);
  });
});
