import { describe, expect, it } from 'vitest';
import { applyJsonPatch } from './json-patch-apply.js';

/** The examples of RFC 6902 Appendix A, plus the error cases the apiserver would refuse. */
describe('JSON Patch (RFC 6902) as kube-apiserver applies it', () => {
  it.each([
    ['A.1 adds an object member', { foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux' }], { baz: 'qux', foo: 'bar' }],
    ['A.2 adds an array element', { foo: ['bar', 'baz'] }, [{ op: 'add', path: '/foo/1', value: 'qux' }], { foo: ['bar', 'qux', 'baz'] }],
    ['A.3 removes an object member', { baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz' }], { foo: 'bar' }],
    ['A.4 removes an array element', { foo: ['bar', 'qux', 'baz'] }, [{ op: 'remove', path: '/foo/1' }], { foo: ['bar', 'baz'] }],
    ['A.5 replaces a value', { baz: 'qux', foo: 'bar' }, [{ op: 'replace', path: '/baz', value: 'boo' }], { baz: 'boo', foo: 'bar' }],
    ['A.6 moves a value', { foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } }, [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }], { foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } }],
    ['A.7 moves an array element', { foo: ['all', 'grass', 'cows', 'eat'] }, [{ op: 'move', from: '/foo/1', path: '/foo/3' }], { foo: ['all', 'cows', 'eat', 'grass'] }],
    ['A.8 passes a test', { baz: 'qux', foo: ['a', 2, 'c'] }, [{ op: 'test', path: '/baz', value: 'qux' }, { op: 'test', path: '/foo/1', value: 2 }], { baz: 'qux', foo: ['a', 2, 'c'] }],
    ['A.10 adds a nested member object', { foo: 'bar' }, [{ op: 'add', path: '/child', value: { grandchild: {} } }], { foo: 'bar', child: { grandchild: {} } }],
    ['A.14 unescapes ~0 and ~1', { '/': 9, '~1': 10 }, [{ op: 'test', path: '/~01', value: 10 }], { '/': 9, '~1': 10 }],
    ['A.16 appends with "-"', { foo: ['bar'] }, [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }], { foo: ['bar', ['abc', 'def']] }],
    ['copies a value', { a: { b: 1 } }, [{ op: 'copy', from: '/a', path: '/c' }], { a: { b: 1 }, c: { b: 1 } }],
    ['adds imagePullSecrets the way the mutating webhook does', { spec: { containers: [] } }, [{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'pull' }] }], { spec: { containers: [], imagePullSecrets: [{ name: 'pull' }] } }],
  ])('%s', (_name, document, patch, expected) => {
    expect(applyJsonPatch(document, patch)).toEqual(expected);
  });

  it.each([
    ['A.9 a failing test', { baz: 'qux' }, [{ op: 'test', path: '/baz', value: 'bar' }], 'operation 0 (test /baz): test failed: values differ'],
    ['A.12 adding to a nonexistent target', { foo: 'bar' }, [{ op: 'add', path: '/baz/bat', value: 'qux' }], 'operation 0 (add /baz/bat): path segment "baz" does not exist'],
    ['removing a missing member', { a: 1 }, [{ op: 'remove', path: '/b' }], 'operation 0 (remove /b): path "/b" does not exist'],
    ['an index past the end', { a: [1] }, [{ op: 'add', path: '/a/5', value: 2 }], 'operation 0 (add /a/5): index 5 is out of bounds (length 1)'],
    ['an unknown op', {}, [{ op: 'merge', path: '/a', value: 1 }], 'operation 0 is not a valid JSON Patch operation'],
    ['a patch that is not a list', {}, { op: 'add' }, 'a JSON Patch must be an array, got object'],
  ])('refuses %s', (_name, document, patch, message) => {
    expect(() => applyJsonPatch(document, patch)).toThrow(message);
  });

  it('leaves the input untouched when a later operation fails', () => {
    const document = { a: 1 };
    expect(() => applyJsonPatch(document, [{ op: 'add', path: '/b', value: 2 }, { op: 'remove', path: '/zzz' }])).toThrow();
    expect(document).toEqual({ a: 1 });
  });
});
