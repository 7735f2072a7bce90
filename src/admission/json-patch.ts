/**
 * RFC 6902 JSON Patch operations and RFC 6901 pointers, as the mutating webhook emits them.
 * Only the operations Portcullis needs; values are plain JSON.
 */
export type PatchOperation =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'test'; path: string; value: unknown };

/** Escapes one reference token: `~` → `~0`, `/` → `~1` (RFC 6901 §3). */
export function escapeToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Joins tokens into a pointer (`pointer('metadata', 'annotations', 'a/b')` → `/metadata/annotations/a~1b`). */
export function pointer(...tokens: (string | number)[]): string {
  return tokens.map((token) => `/${escapeToken(token)}`).join('');
}

/** Appends tokens to an existing pointer. */
export function childPointer(base: string, ...tokens: (string | number)[]): string {
  return base + pointer(...tokens);
}

/** Reads the value a pointer designates, or undefined when any step is missing. */
export function resolvePointer(root: unknown, path: string): unknown {
  if (path === '') return root;
  let value = root;
  for (const raw of path.split('/').slice(1)) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(value)) {
      const index = Number(token);
      if (!Number.isInteger(index)) return undefined;
      value = value[index];
    } else if (value !== null && typeof value === 'object') {
      value = (value as Record<string, unknown>)[token];
    } else {
      return undefined;
    }
  }
  return value;
}

/** One line per operation for logs and the audit record (`add /spec/imagePullSecrets/-`). */
export function describePatch(operations: readonly PatchOperation[]): string[] {
  return operations.map((operation) => `${operation.op} ${operation.path}`);
}

/**
 * Applies operations to a deep copy of `document` (used by tests and by `review` to show the
 * mutated object). Supports exactly the operations above; throws on a path that does not exist.
 */
export function applyPatch<T>(document: T, operations: readonly PatchOperation[]): T {
  const copy = structuredClone(document) as unknown;
  let root = copy;
  for (const operation of operations) {
    const tokens = operation.path.split('/').slice(1).map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (tokens.length === 0) {
      if (operation.op === 'test') continue;
      root = structuredClone(operation.value);
      continue;
    }
    const last = tokens.pop() as string;
    const parent = resolvePointer(root, tokens.length === 0 ? '' : `/${tokens.map((token) => escapeToken(token)).join('/')}`);
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      if (!Number.isInteger(index) || index < 0 || index > parent.length) throw new Error(`${operation.path}: no such array index`);
      if (operation.op === 'add') parent.splice(index, 0, structuredClone(operation.value));
      else if (operation.op === 'replace') parent[index] = structuredClone(operation.value);
      else if (JSON.stringify(parent[index]) !== JSON.stringify(operation.value)) throw new Error(`${operation.path}: test failed`);
    } else if (parent !== null && typeof parent === 'object') {
      const record = parent as Record<string, unknown>;
      if (operation.op === 'test') {
        if (JSON.stringify(record[last]) !== JSON.stringify(operation.value)) throw new Error(`${operation.path}: test failed`);
      } else {
        if (operation.op === 'replace' && !(last in record)) throw new Error(`${operation.path}: nothing to replace`);
        record[last] = structuredClone(operation.value);
      }
    } else {
      throw new Error(`${operation.path}: parent does not exist`);
    }
  }
  return root as T;
}
