/**
 * RFC 6902 JSON Patch, the applying side (what kube-apiserver does with a mutating webhook's
 * `patch`). All six operations; JSON Pointers per RFC 6901 (`~1` is `/`, `~0` is `~`); `-` appends
 * to an array; the patch is atomic: on any error the input is left as it was and an error names the
 * operation index, the op and the path.
 */

export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

export class JsonPatchError extends Error {}

type Container = Record<string, unknown> | unknown[];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Splits a JSON Pointer into unescaped reference tokens. */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new JsonPatchError(`pointer "${pointer}" must be empty or start with "/"`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function arrayIndex(token: string, length: number, allowEnd: boolean): number {
  if (allowEnd && token === '-') return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new JsonPatchError(`"${token}" is not an array index`);
  const index = Number(token);
  if (index > length || (!allowEnd && index === length)) throw new JsonPatchError(`index ${index} is out of bounds (length ${length})`);
  return index;
}

/** Deep equality of JSON values (key order ignored), as the `test` operation defines it. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, index) => jsonEqual(item, b[index]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key]));
  }
  return false;
}

function resolveParent(document: unknown, tokens: string[]): { parent: Container; key: string } {
  let node: unknown = document;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[arrayIndex(token, node.length, false)];
    else if (isObject(node) && Object.hasOwn(node, token)) node = node[token];
    else throw new JsonPatchError(`path segment "${token}" does not exist`);
  }
  if (!Array.isArray(node) && !isObject(node)) throw new JsonPatchError('parent is not an object or array');
  return { parent: node, key: tokens[tokens.length - 1] as string };
}

function get(document: unknown, pointer: string): unknown {
  let node = document;
  for (const token of parsePointer(pointer)) {
    if (Array.isArray(node)) node = node[arrayIndex(token, node.length, false)];
    else if (isObject(node) && Object.hasOwn(node, token)) node = node[token];
    else throw new JsonPatchError(`path "${pointer}" does not exist`);
  }
  return node;
}

function add(document: unknown, pointer: string, value: unknown): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return value;
  const { parent, key } = resolveParent(document, tokens);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length, true), 0, value);
  else parent[key] = value;
  return document;
}

function remove(document: unknown, pointer: string): { document: unknown; removed: unknown } {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return { document: null, removed: document };
  const { parent, key } = resolveParent(document, tokens);
  if (Array.isArray(parent)) {
    const [removed] = parent.splice(arrayIndex(key, parent.length, false), 1);
    return { document, removed };
  }
  if (!Object.hasOwn(parent, key)) throw new JsonPatchError(`path "${pointer}" does not exist`);
  const removed = parent[key];
  delete parent[key];
  return { document, removed };
}

function isOperation(value: unknown): value is JsonPatchOperation {
  if (!isObject(value) || typeof value.path !== 'string') return false;
  switch (value.op) {
    case 'add':
    case 'replace':
    case 'test':
      return Object.hasOwn(value, 'value');
    case 'remove':
      return true;
    case 'move':
    case 'copy':
      return typeof value.from === 'string';
    default:
      return false;
  }
}

/** Checks that `patch` is a JSON Patch document; throws naming the first bad operation. */
export function asJsonPatch(patch: unknown): JsonPatchOperation[] {
  if (!Array.isArray(patch)) throw new JsonPatchError(`a JSON Patch must be an array, got ${patch === null ? 'null' : typeof patch}`);
  patch.forEach((operation, index) => {
    if (!isOperation(operation)) throw new JsonPatchError(`operation ${index} is not a valid JSON Patch operation: ${JSON.stringify(operation)}`);
  });
  return patch as JsonPatchOperation[];
}

/** Applies `patch` to a copy of `document` and returns the result; `document` is never changed. */
export function applyJsonPatch(document: unknown, patch: unknown): unknown {
  let result: unknown = structuredClone(document);
  asJsonPatch(patch).forEach((operation, index) => {
    try {
      switch (operation.op) {
        case 'add':
          result = add(result, operation.path, structuredClone(operation.value));
          break;
        case 'remove':
          result = remove(result, operation.path).document;
          break;
        case 'replace':
          get(result, operation.path);
          result = add(remove(result, operation.path).document, operation.path, structuredClone(operation.value));
          break;
        case 'move': {
          if (operation.path.startsWith(`${operation.from}/`)) throw new JsonPatchError('cannot move a value into one of its children');
          const moved = remove(result, operation.from);
          result = add(moved.document, operation.path, moved.removed);
          break;
        }
        case 'copy':
          result = add(result, operation.path, structuredClone(get(result, operation.from)));
          break;
        case 'test':
          if (!jsonEqual(get(result, operation.path), operation.value)) throw new JsonPatchError('test failed: values differ');
          break;
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new JsonPatchError(`operation ${index} (${operation.op} ${operation.path}): ${reason}`);
    }
  });
  return result;
}
