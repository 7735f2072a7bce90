import { describe, expect, it } from 'vitest';
import { PortcullisError } from '../errors.js';
import { parseJsonBody } from './json-body.js';

function refusal(text: string): PortcullisError {
  try {
    parseJsonBody(text);
  } catch (error) {
    if (error instanceof PortcullisError) return error;
    throw error;
  }
  throw new Error(`accepted ${text}`);
}

describe('parseJsonBody', () => {
  it('parses ordinary documents, including escapes and the words in values', () => {
    expect(parseJsonBody('{"a":[1,{"b":"c"}]}')).toEqual({ a: [1, { b: 'c' }] });
    expect(parseJsonBody('{"note":"\\u003cb\\u003e & constructor of __proto__"}')).toEqual({ note: '<b> & constructor of __proto__' });
    expect(parseJsonBody('"text"')).toBe('text');
    expect(parseJsonBody('null')).toBeNull();
  });

  it('refuses an empty body', () => {
    const error = refusal('');
    expect(error.code).toBe('REQUEST_MALFORMED');
    expect(error.message).toMatch(/empty/);
  });

  it('says where malformed JSON breaks', () => {
    const error = refusal('{"apiVersion": "v1",}');
    expect(error.code).toBe('REQUEST_MALFORMED');
    expect(error.message).toMatch(/^body is not valid JSON: .*position 20/);
  });

  it.each([
    ['__proto__ spelled out', '{"a":{"__proto__":{"admin":true}}}'],
    ['__proto__ written with escapes', '{"\\u005f\\u005fproto__":{"admin":true}}'],
    ['constructor with a prototype', '{"constructor":{"prototype":{"admin":true}}}'],
    ['constructor written with escapes', '{"x":[{"\\u0063onstructor":{"prototype":{}}}]}'],
  ])('refuses a key that could poison prototypes: %s', (_name, text) => {
    const error = refusal(text);
    expect(error.code).toBe('REQUEST_MALFORMED');
    expect(error.message).toMatch(/forbidden prototype property/);
  });
});
