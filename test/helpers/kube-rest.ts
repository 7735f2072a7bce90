import type { IncomingMessage } from 'node:http';
import { parseFieldSelector, parseLabelSelector, type KubeObject, type KubeStore, type ResourceType } from './kube-store.js';

/**
 * The REST conventions of kube-apiserver that the stand-in (kube-apiserver.ts) follows: how a
 * path names a resource, which verb a request is, the `Status` error bodies, identity checks.
 */

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  verb: Verb | 'unknown';
  /** Plural resource name (`secrets`), when the path names one. */
  resource?: string;
  namespace?: string;
  name?: string;
  contentType?: string;
}

/** Which requests a hook applies to; every given field must match. */
export interface RequestMatcher {
  verb?: Verb | Verb[];
  /** Plural (`secrets`) or kind (`Secret`). */
  resource?: string;
  namespace?: string;
  name?: string;
}

export interface ParsedPath {
  type: ResourceType;
  namespace?: string;
  name?: string;
}

export function statusBody(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

export class HttpFailure extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export function matches(matcher: RequestMatcher, request: RecordedRequest, store: KubeStore): boolean {
  if (matcher.verb !== undefined) {
    const verbs = Array.isArray(matcher.verb) ? matcher.verb : [matcher.verb];
    if (!verbs.includes(request.verb as Verb)) return false;
  }
  if (matcher.resource !== undefined && request.resource !== store.typeOf(matcher.resource).plural) return false;
  if (matcher.namespace !== undefined && request.namespace !== matcher.namespace) return false;
  if (matcher.name !== undefined && request.name !== matcher.name) return false;
  return true;
}

export function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

export function isObject(value: unknown): value is KubeObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parsePath(store: KubeStore, path: string): ParsedPath | undefined {
  const segments = path.split('/').filter((segment) => segment !== '').map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segments[0] === 'api' && segments.length >= 2) {
    group = '';
    version = segments[1] ?? '';
    rest = segments.slice(2);
  } else if (segments[0] === 'apis' && segments.length >= 3) {
    group = segments[1] ?? '';
    version = segments[2] ?? '';
    rest = segments.slice(3);
  } else return undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const type = store.typeByPlural(group, version, rest[2] ?? '');
    if (!type || !type.namespaced || rest.length > 4) return undefined;
    return { type, namespace: rest[1], name: rest[3] };
  }
  const type = store.typeByPlural(group, version, rest[0] ?? '');
  if (!type || rest.length > 2) return undefined;
  return { type, name: rest[1] };
}

export function verbOf(method: string, parsed: ParsedPath | undefined, query: Record<string, string>): Verb | 'unknown' {
  if (!parsed) return 'unknown';
  const named = parsed.name !== undefined;
  if (method === 'GET') return query.watch === 'true' || query.watch === '1' ? 'watch' : named ? 'get' : 'list';
  if (method === 'POST' && !named) return 'create';
  if (method === 'PUT' && named) return 'update';
  if (method === 'PATCH' && named) return 'patch';
  if (method === 'DELETE' && named) return 'delete';
  return 'unknown';
}

export function notFound(type: ResourceType, name: string): HttpFailure {
  return new HttpFailure(404, 'NotFound', `${type.plural}${type.group ? `.${type.group}` : ''} "${name}" not found`, {
    name,
    group: type.group,
    kind: type.plural,
  });
}

export function conflict(type: ResourceType, name: string): HttpFailure {
  return new HttpFailure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${type.plural}${type.group ? `.${type.group}` : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: type.group, kind: type.plural },
  );
}

export function parseBody(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpFailure(400, 'BadRequest', `the body of the request was in an unknown format: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export function checkIdentity(parsed: ParsedPath, object: KubeObject, name: string | undefined): void {
  const bodyNamespace = object.metadata?.namespace;
  if (parsed.type.namespaced && bodyNamespace !== undefined && bodyNamespace !== parsed.namespace) {
    throw new HttpFailure(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
  }
  if (name !== undefined && object.metadata?.name !== undefined && object.metadata.name !== name) {
    throw new HttpFailure(400, 'BadRequest', 'the name of the object does not match the name on the URL');
  }
  if (object.kind !== undefined && object.kind !== parsed.type.kind) {
    throw new HttpFailure(400, 'BadRequest', `the kind of the object "${object.kind}" does not match "${parsed.type.kind}"`);
  }
}

export function decorateForStore(parsed: ParsedPath, object: KubeObject): KubeObject {
  const metadata = (object.metadata ??= {});
  if (parsed.type.namespaced) metadata.namespace = parsed.namespace;
  if (parsed.type.kind === 'Namespace' && metadata.name) {
    metadata.labels = { ...(metadata.labels ?? {}), 'kubernetes.io/metadata.name': metadata.name };
    object.status = { phase: 'Active' };
  }
  return object;
}

export function parseSelectors(query: Record<string, string>): { labels: ReturnType<typeof parseLabelSelector>; fields: ReturnType<typeof parseFieldSelector> } {
  try {
    return { labels: parseLabelSelector(query.labelSelector ?? ''), fields: parseFieldSelector(query.fieldSelector ?? '') };
  } catch (error) {
    throw new HttpFailure(400, 'BadRequest', error instanceof Error ? error.message : String(error));
  }
}
