import { describe, expect, it } from 'vitest';
import { applyPatch, childPointer, escapeToken, pointer, resolvePointer } from './json-patch.js';

describe('JSON pointers and patches', () => {
  it.each([
    ['plain', 'annotations', 'annotations'],
    ['a slash', 'portcullis.io/original-images', 'portcullis.io~1original-images'],
    ['a tilde', 'a~b', 'a~0b'],
    ['both, tilde first', '~/', '~0~1'],
  ])('escapes a token with %s', (_name, token, escaped) => {
    expect(escapeToken(token)).toBe(escaped);
    expect(resolvePointer({ [token]: 1 }, pointer(token))).toBe(1);
  });

  it('builds pointers to array elements and children', () => {
    expect(childPointer('/spec/template/spec', 'containers', 0, 'image')).toBe('/spec/template/spec/containers/0/image');
  });

  it('applies add (member, append, insert), replace and test to a copy', () => {
    const document = { spec: { list: [{ name: 'a' }] }, metadata: { annotations: {} as Record<string, string> } };
    const patched = applyPatch(document, [
      { op: 'add', path: '/spec/list/-', value: { name: 'b' } },
      { op: 'add', path: '/spec/list/0', value: { name: 'first' } },
      { op: 'replace', path: '/spec/list/1/name', value: 'A' },
      { op: 'add', path: '/metadata/annotations/x~1y', value: 'z' },
      { op: 'test', path: '/metadata/annotations/x~1y', value: 'z' },
    ]);
    expect(patched).toEqual({ spec: { list: [{ name: 'first' }, { name: 'A' }, { name: 'b' }] }, metadata: { annotations: { 'x/y': 'z' } } });
    expect(document.spec.list).toEqual([{ name: 'a' }]);
  });

  it.each([
    ['a missing parent', { op: 'add' as const, path: '/nope/x', value: 1 }, /parent does not exist/],
    ['a replace of nothing', { op: 'replace' as const, path: '/x', value: 1 }, /nothing to replace/],
    ['an index past the end', { op: 'add' as const, path: '/list/5', value: 1 }, /no such array index/],
    ['a failed test', { op: 'test' as const, path: '/list/0', value: 2 }, /test failed/],
  ])('refuses %s', (_name, operation, message) => {
    expect(() => applyPatch({ list: [1] }, [operation])).toThrow(message);
  });
});
