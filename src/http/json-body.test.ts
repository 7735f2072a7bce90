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

  it.each([
    ['a missing colon', '{"apiVersion" "v1"}', "body is not valid JSON: expected ':' after property name at line 1, column 15"],
    ['a missing comma, on the third line', '{\n  "a": 1\n  "b": 2}', "body is not valid JSON: expected ',' or '}' after property value at line 3, column 3"],
    ['a document cut short', '{"a": ', 'body is not valid JSON: it ends too early'],
    ['an array cut short', '{"a": [1, 2', "body is not valid JSON: expected ',' or ']' after array element at line 1, column 12"],
    ['text after the document', '{"a": 1} {"b": 2}', 'body is not valid JSON: unexpected non-whitespace character after JSON at line 1, column 10'],
    ['a stray character', '{"a": }', 'body is not valid JSON: unexpected character'],
  ])('says what is wrong with %s, and where when the parser tells', (_name, text, message) => {
    const error = refusal(text);
    expect(error.code).toBe('REQUEST_MALFORMED');
    expect(error.message).toBe(message);
  });

  it('never quotes the body in its message (it is answered and logged, and may hold a secret)', () => {
    for (const text of ['{"password":Hunter2Secret}', '{"token": "abc", "password": Hunter2Secret}', '{"secret":"Hunter2Secret"']) {
      expect(refusal(text).message).not.toMatch(/Hunter2|password|token|secret/);
    }
  });

  it('accepts a leading byte-order mark', () => {
    expect(parseJsonBody('\uFEFF{"a":1}')).toEqual({ a: 1 });
    expect(refusal('\uFEFF').message).toMatch(/empty/);
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
