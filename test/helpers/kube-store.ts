import { randomUUID } from 'node:crypto';

/**
 * The in-memory object store behind the kube-apiserver stand-in (test/helpers/kube-apiserver.ts):
 * resources, one global resourceVersion counter (like etcd's revision), an event log for watches,
 * label and field selectors, merge and JSON patches.
 */

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
};

export interface ResourceType {
  /** API group; '' for core. */
  group: string;
  version: string;
  /** Lower-case plural used in paths (`secrets`). */
  plural: string;
  kind: string;
  namespaced: boolean;
}

/** The resources served by default; pass more to `startKubeApiServer({ resources })`. */
export const DEFAULT_RESOURCES: readonly ResourceType[] = [
  { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false },
  { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
  { group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true },
  { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'validatingwebhookconfigurations', kind: 'ValidatingWebhookConfiguration', namespaced: false },
  { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false },
  { group: 'wgpolicyk8s.io', version: 'v1alpha2', plural: 'policyreports', kind: 'PolicyReport', namespaced: true },
  { group: 'wgpolicyk8s.io', version: 'v1alpha2', plural: 'clusterpolicyreports', kind: 'ClusterPolicyReport', namespaced: false },
  { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'replicasets', kind: 'ReplicaSet', namespaced: true },
];

export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredEvent {
  revision: number;
  type: WatchEventType;
  type_: ResourceType;
  object: KubeObject;
}

/** Deep copy of JSON data (objects leave and enter the store by value). */
export function clone<T>(value: T): T {
  return structuredClone(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class KubeStore {
  readonly #objects = new Map<string, KubeObject>();
  readonly #events: StoredEvent[] = [];
  readonly #listeners = new Set<(event: StoredEvent) => void>();
  #revision = 1;
  /** Watches asking for a resourceVersion older than this get 410 Gone. */
  compactedBefore = 0;

  constructor(readonly types: readonly ResourceType[]) {}

  get revision(): number {
    return this.#revision;
  }

  typeByPlural(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types.find((type) => type.group === group && type.version === version && type.plural === plural);
  }

  /** Finds a type by plural (`secrets`), kind (`Secret`) or apiVersion+kind of an object. */
  typeOf(kindOrPlural: string, apiVersion?: string): ResourceType {
    const found = this.types.find(
      (type) => (type.plural === kindOrPlural || type.kind === kindOrPlural) && (apiVersion === undefined || apiVersionOf(type) === apiVersion),
    );
    if (!found) throw new Error(`kube stand-in: unknown resource ${apiVersion ?? ''} ${kindOrPlural}`);
    return found;
  }

  #key(type: ResourceType, namespace: string | undefined, name: string): string {
    return `${type.group}/${type.plural}/${type.namespaced ? (namespace ?? '') : ''}/${name}`;
  }

  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const found = this.#objects.get(this.#key(type, namespace, name));
    return found ? clone(found) : undefined;
  }

  list(type: ResourceType, namespace: string | undefined): KubeObject[] {
    const prefix = `${type.group}/${type.plural}/${type.namespaced && namespace !== undefined ? `${namespace}/` : ''}`;
    return [...this.#objects.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .map(([, object]) => clone(object))
      .sort((a, b) => `${a.metadata?.namespace ?? ''}/${a.metadata?.name ?? ''}`.localeCompare(`${b.metadata?.namespace ?? ''}/${b.metadata?.name ?? ''}`));
  }

  /** Stores `object` (creating or replacing), stamping kind, apiVersion, uid and a new resourceVersion. */
  write(type: ResourceType, object: KubeObject, eventType: 'ADDED' | 'MODIFIED'): KubeObject {
    const stored = clone(object);
    stored.apiVersion = apiVersionOf(type);
    stored.kind = type.kind;
    const metadata = (stored.metadata ??= {});
    const name = metadata.name;
    if (!name) throw new Error('kube stand-in: object without metadata.name');
    if (!type.namespaced) delete metadata.namespace;
    this.#revision += 1;
    metadata.resourceVersion = String(this.#revision);
    if (eventType === 'ADDED') {
      metadata.uid = randomUUID();
      metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      metadata.generation = 1;
    } else {
      const previous = this.#objects.get(this.#key(type, metadata.namespace, name));
      metadata.uid = previous?.metadata?.uid ?? metadata.uid ?? randomUUID();
      metadata.creationTimestamp = previous?.metadata?.creationTimestamp ?? metadata.creationTimestamp;
      const generation = previous?.metadata?.generation;
      metadata.generation = (typeof generation === 'number' ? generation : 0) + 1;
    }
    this.#objects.set(this.#key(type, metadata.namespace, name), stored);
    this.#emit({ revision: this.#revision, type: eventType, type_: type, object: clone(stored) });
    return clone(stored);
  }

  remove(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = this.#key(type, namespace, name);
    const existing = this.#objects.get(key);
    if (!existing) return undefined;
    this.#objects.delete(key);
    this.#revision += 1;
    const deleted = clone(existing);
    (deleted.metadata ??= {}).resourceVersion = String(this.#revision);
    this.#emit({ revision: this.#revision, type: 'DELETED', type_: type, object: clone(deleted) });
    return deleted;
  }

  #emit(event: StoredEvent): void {
    this.#events.push(event);
    for (const listener of this.#listeners) listener(event);
  }

  eventsAfter(revision: number): StoredEvent[] {
    return this.#events.filter((event) => event.revision > revision);
  }

  subscribe(listener: (event: StoredEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

// ---------------------------------------------------------------------------------------------
// Selectors

type Requirement =
  | { op: '=' | '!='; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | '!exists'; key: string };

/** Parses a label selector (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`); throws on syntax errors. */
export function parseLabelSelector(selector: string): Requirement[] {
  const requirements: Requirement[] = [];
  // Split on commas that are not inside parentheses.
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth += 1;
    if (char === ')') depth -= 1;
    if (char === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += char;
  }
  if (current.trim() !== '') parts.push(current);
  for (const raw of parts) {
    const part = raw.trim();
    let match: RegExpMatchArray | null;
    if ((match = part.match(/^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      requirements.push({ op: match[2] as 'in' | 'notin', key: match[1] ?? '', values: (match[3] ?? '').split(',').map((value) => value.trim()) });
    } else if ((match = part.match(/^([\w./-]+)\s*(!=|==|=)\s*([\w./-]*)$/))) {
      requirements.push({ op: match[2] === '!=' ? '!=' : '=', key: match[1] ?? '', value: match[3] ?? '' });
    } else if ((match = part.match(/^!([\w./-]+)$/))) {
      requirements.push({ op: '!exists', key: match[1] ?? '' });
    } else if ((match = part.match(/^([\w./-]+)$/))) {
      requirements.push({ op: 'exists', key: match[1] ?? '' });
    } else {
      throw new Error(`unable to parse requirement: "${part}"`);
    }
  }
  return requirements;
}

function satisfies(values: (key: string) => string | undefined, requirements: Requirement[]): boolean {
  return requirements.every((requirement) => {
    const value = values(requirement.key);
    switch (requirement.op) {
      case '=':
        return value === requirement.value;
      case '!=':
        return value !== requirement.value;
      case 'in':
        return value !== undefined && requirement.values.includes(value);
      case 'notin':
        return value === undefined || !requirement.values.includes(value);
      case 'exists':
        return value !== undefined;
      case '!exists':
        return value === undefined;
    }
  });
}

export function matchesLabels(object: KubeObject, requirements: Requirement[]): boolean {
  const labels = object.metadata?.labels ?? {};
  return satisfies((key) => labels[key], requirements);
}

/** Field selectors: `metadata.name=x`, `spec.nodeName!=y`, any dotted path to a scalar. */
export function parseFieldSelector(selector: string): Requirement[] {
  return selector
    .split(',')
    .filter((part) => part.trim() !== '')
    .map((part) => {
      const match = part.trim().match(/^([\w.]+)\s*(!=|==|=)\s*(.*)$/);
      if (!match) throw new Error(`invalid field selector: "${part}"`);
      return { op: match[2] === '!=' ? '!=' : '=', key: match[1] ?? '', value: match[3] ?? '' } as const;
    });
}

export function matchesFields(object: KubeObject, requirements: Requirement[]): boolean {
  return satisfies((path) => {
    let node: unknown = object;
    for (const segment of path.split('.')) node = isRecord(node) ? node[segment] : undefined;
    return node === undefined || node === null ? (path === 'metadata.namespace' ? '' : undefined) : String(node);
  }, requirements);
}

// ---------------------------------------------------------------------------------------------
// Patches

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return clone(patch);
  const result: Record<string, unknown> = isRecord(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

export class PatchError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

function pointerParts(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`invalid JSON pointer "${pointer}"`, 422);
  return pointer.slice(1).split('/').map(unescapePointer);
}

function resolveParent(document: unknown, parts: string[], pointer: string): { parent: Record<string, unknown> | unknown[]; last: string } {
  let node: unknown = document;
  for (const part of parts.slice(0, -1)) {
    if (Array.isArray(node)) node = node[Number(part)];
    else if (isRecord(node)) node = node[part];
    else node = undefined;
    if (node === undefined) throw new PatchError(`doc is missing path: "${pointer}"`, 422);
  }
  if (!Array.isArray(node) && !isRecord(node)) throw new PatchError(`doc is missing path: "${pointer}"`, 422);
  return { parent: node, last: parts[parts.length - 1] ?? '' };
}

function getAt(document: unknown, pointer: string): unknown {
  let node: unknown = document;
  for (const part of pointerParts(pointer)) {
    if (Array.isArray(node)) node = node[Number(part)];
    else if (isRecord(node)) node = node[part];
    else return undefined;
  }
  return node;
}

function removeAt(document: unknown, pointer: string): unknown {
  const parts = pointerParts(pointer);
  const { parent, last } = resolveParent(document, parts, pointer);
  if (Array.isArray(parent)) {
    const index = Number(last);
    if (!Number.isInteger(index) || index < 0 || index >= parent.length) throw new PatchError(`unable to remove nonexistent key: "${pointer}"`, 422);
    return parent.splice(index, 1)[0];
  }
  if (!(last in parent)) throw new PatchError(`unable to remove nonexistent key: "${last}"`, 422);
  const value = parent[last];
  delete parent[last];
  return value;
}

function addAt(document: unknown, pointer: string, value: unknown, replace: boolean): unknown {
  const parts = pointerParts(pointer);
  if (parts.length === 0) return clone(value);
  const { parent, last } = resolveParent(document, parts, pointer);
  if (Array.isArray(parent)) {
    if (last === '-' && !replace) parent.push(clone(value));
    else {
      const index = Number(last);
      if (!Number.isInteger(index) || index < 0 || index > parent.length - (replace ? 1 : 0)) {
        throw new PatchError(`index out of range: "${pointer}"`, 422);
      }
      if (replace) parent[index] = clone(value);
      else parent.splice(index, 0, clone(value));
    }
  } else {
    if (replace && !(last in parent)) throw new PatchError(`replace operation does not apply: doc is missing key: "${pointer}"`, 422);
    parent[last] = clone(value);
  }
  return document;
}

/** RFC 6902 JSON patch (add, remove, replace, move, copy, test). */
export function jsonPatch(target: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) throw new PatchError('json patch must be an array of operations', 400);
  let document = clone(target);
  for (const operation of operations) {
    if (!isRecord(operation) || typeof operation.op !== 'string' || typeof operation.path !== 'string') {
      throw new PatchError('json patch operation must have "op" and "path"', 400);
    }
    const { op, path } = operation;
    switch (op) {
      case 'add':
        document = addAt(document, path, operation.value, false);
        break;
      case 'replace':
        document = addAt(document, path, operation.value, true);
        break;
      case 'remove':
        removeAt(document, path);
        break;
      case 'move':
      case 'copy': {
        if (typeof operation.from !== 'string') throw new PatchError(`json patch ${op} needs "from"`, 400);
        const value = op === 'move' ? removeAt(document, operation.from) : clone(getAt(document, operation.from));
        if (value === undefined) throw new PatchError(`doc is missing from path: "${operation.from}"`, 422);
        document = addAt(document, path, value, false);
        break;
      }
      case 'test':
        if (JSON.stringify(getAt(document, path)) !== JSON.stringify(operation.value)) {
          throw new PatchError(`testing value ${path} failed`, 422);
        }
        break;
      default:
        throw new PatchError(`unexpected json patch op "${op}"`, 400);
    }
  }
  return document;
}
