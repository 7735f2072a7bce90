import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { testTls } from './tls.js';
import {
  DEFAULT_RESOURCES,
  KubeStore,
  PatchError,
  apiVersionOf,
  clone,
  jsonPatch,
  matchesFields,
  matchesLabels,
  mergePatch,
  type KubeObject,
  type ResourceType,
  type StoredEvent,
} from './kube-store.js';
import {
  HttpFailure,
  checkIdentity,
  conflict,
  decorateForStore,
  isObject,
  matches,
  notFound,
  parseBody,
  parsePath,
  parseSelectors,
  readBody,
  statusBody,
  verbOf,
  type ParsedPath,
  type RecordedRequest,
  type RequestMatcher,
  type Verb,
} from './kube-rest.js';

export type { RecordedRequest, RequestMatcher, Verb } from './kube-rest.js';

/**
 * A kube-apiserver stand-in on 127.0.0.1 over HTTPS, for tests of code that uses
 * @kubernetes/client-node. It serves the REST paths of the resources in kube-store.ts
 * (Secrets, Namespaces, Pods, both webhook configuration kinds, PolicyReports, Leases, …) with
 * the behaviour that matters for correctness:
 *
 * - every write bumps one global `metadata.resourceVersion`;
 * - PUT or PATCH carrying a stale `metadata.resourceVersion` → 409 `Status` reason `Conflict`;
 * - create of an existing name → 409 `AlreadyExists`; missing object → 404 `NotFound`;
 * - PATCH as merge-patch, strategic-merge-patch (treated as merge) and json-patch;
 * - `?watch=true` streams newline-delimited events (ADDED/MODIFIED/DELETED), honouring
 *   `resourceVersion` (410 `Expired` when older than `compact()`), `labelSelector`, `fieldSelector`,
 *   `timeoutSeconds`;
 * - lists honour `labelSelector` and `fieldSelector` and carry the list resourceVersion;
 * - `?dryRun=All` on writes: checked, answered, not stored;
 * - bearer-token authentication (401 without the token).
 *
 * Test hooks: `objects` (read and seed the store directly; seeding emits watch events),
 * `failNext` (one-shot injected responses), `beforeNext` (run code — e.g. another replica's write —
 * just before a matching request is handled), `requests` (every request: method, path, verb).
 *
 * Usage:
 *   const kube = await startKubeApiServer();
 *   const config = kube.kubeConfig();          // or kube.kubeconfigPath(dir) for a file
 *   …
 *   await kube.close();
 */

export interface InjectedFailure extends RequestMatcher {
  status: number;
  /** Status reason, e.g. `Conflict`, `InternalError`, `ServiceUnavailable`. */
  reason?: string;
  message?: string;
  /** How many matching requests fail (default 1). */
  times?: number;
}

export interface ObjectsAccess {
  /** The stored object (a copy), or undefined. `resource` is a plural or a kind. */
  get(resource: string, name: string, namespace?: string): KubeObject | undefined;
  list(resource: string, namespace?: string): KubeObject[];
  /**
   * Creates or replaces an object as another writer would (kind/apiVersion must be set), bumping
   * its resourceVersion and emitting a watch event. Returns the stored copy.
   */
  put(object: KubeObject): KubeObject;
  delete(resource: string, name: string, namespace?: string): boolean;
}

export interface KubeApiServer {
  url: string;
  caPem: string;
  token: string;
  objects: ObjectsAccess;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** The recorded requests that were writes (create, update, patch, delete). */
  writes(matcher?: RequestMatcher): RecordedRequest[];
  /** The next matching request(s) get this error `Status` instead of being handled. */
  failNext(failure: InjectedFailure): void;
  /** Shorthand: the next matching update/patch answers 409 Conflict. */
  conflictNext(matcher: RequestMatcher): void;
  /** Runs `action` right before the next matching request is handled (e.g. a concurrent write). */
  beforeNext(matcher: RequestMatcher, action: () => void): void;
  /** Makes watches from a resourceVersion at or below the current one answer 410 Expired. */
  compact(): void;
  /** Ends every open watch stream (as the server does on its timeout). */
  closeWatches(): void;
  /** A KubeConfig pointing at this server with its CA and token. */
  kubeConfig(namespace?: string): KubeConfig;
  /** Writes a kubeconfig file into `dir` and returns its path. */
  kubeconfigPath(dir: string, namespace?: string): string;
  close(): Promise<void>;
}

export interface KubeApiServerOptions {
  /** Extra resource types to serve beyond DEFAULT_RESOURCES. */
  resources?: ResourceType[];
  /** When true, writes to a namespace that does not exist answer 404 as a real server does. */
  requireNamespaces?: boolean;
}

export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const tls = testTls();
  const token = randomBytes(16).toString('hex');
  const store = new KubeStore([...DEFAULT_RESOURCES, ...(options.resources ?? [])]);
  const requests: RecordedRequest[] = [];
  const failures: InjectedFailure[] = [];
  const hooks: { matcher: RequestMatcher; action: () => void }[] = [];
  const watches = new Set<ServerResponse>();

  function checkNamespace(parsed: ParsedPath): void {
    if (!options.requireNamespaces || !parsed.type.namespaced || parsed.namespace === undefined) return;
    if (!store.get(store.typeOf('namespaces'), undefined, parsed.namespace)) {
      throw new HttpFailure(404, 'NotFound', `namespaces "${parsed.namespace}" not found`, { name: parsed.namespace, kind: 'namespaces' });
    }
  }

  function handleRead(parsed: ParsedPath, verb: Verb, query: Record<string, string>): unknown {
    if (verb === 'get') {
      const found = store.get(parsed.type, parsed.namespace, parsed.name ?? '');
      if (!found) throw notFound(parsed.type, parsed.name ?? '');
      return found;
    }
    const labels = parseSelectors(query);
    const items = store.list(parsed.type, parsed.namespace).filter((item) => matchesLabels(item, labels.labels) && matchesFields(item, labels.fields));
    return { kind: `${parsed.type.kind}List`, apiVersion: apiVersionOf(parsed.type), metadata: { resourceVersion: String(store.revision) }, items };
  }

  function handleWrite(parsed: ParsedPath, verb: Verb, body: string, contentType: string, dryRun: boolean): { code: number; body: unknown } {
    checkNamespace(parsed);
    const type = parsed.type;
    // `?dryRun=All`: every check runs, nothing is stored, no resourceVersion moves.
    const persist = (object: KubeObject, event: 'ADDED' | 'MODIFIED'): KubeObject =>
      dryRun ? { ...object, apiVersion: apiVersionOf(type), kind: type.kind } : store.write(type, object, event);
    if (verb === 'create') {
      const object = parseBody(body);
      if (!isObject(object)) throw new HttpFailure(400, 'BadRequest', 'the body must be an object');
      checkIdentity(parsed, object, undefined);
      const metadata = (object.metadata ??= {});
      if (!metadata.name && typeof metadata.generateName === 'string') {
        metadata.name = `${metadata.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
      }
      if (!metadata.name) throw new HttpFailure(422, 'Invalid', `${type.kind} "" is invalid: metadata.name: Required value: name or generateName is required`);
      if (store.get(type, parsed.namespace, metadata.name)) {
        throw new HttpFailure(409, 'AlreadyExists', `${type.plural}${type.group ? `.${type.group}` : ''} "${metadata.name}" already exists`, {
          name: metadata.name,
          group: type.group,
          kind: type.plural,
        });
      }
      delete metadata.resourceVersion;
      return { code: 201, body: persist(decorateForStore(parsed, object), 'ADDED') };
    }
    const name = parsed.name ?? '';
    const existing = store.get(type, parsed.namespace, name);
    if (verb === 'delete') {
      if (!existing) throw notFound(type, name);
      if (!dryRun) store.remove(type, parsed.namespace, name);
      return {
        code: 200,
        body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: type.group, kind: type.plural, uid: existing.metadata?.uid } },
      };
    }
    if (!existing) throw notFound(type, name);
    let updated: unknown;
    if (verb === 'update') {
      updated = parseBody(body);
      if (!isObject(updated)) throw new HttpFailure(400, 'BadRequest', 'the body must be an object');
      checkIdentity(parsed, updated, name);
    } else {
      const patch = parseBody(body);
      const mediaType = contentType.split(';')[0]?.trim() ?? '';
      try {
        if (mediaType === 'application/json-patch+json') updated = jsonPatch(existing, patch);
        else if (mediaType === 'application/merge-patch+json' || mediaType === 'application/strategic-merge-patch+json') updated = mergePatch(existing, patch);
        else throw new HttpFailure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`);
      } catch (error) {
        if (error instanceof PatchError) throw new HttpFailure(error.status, error.status === 422 ? 'Invalid' : 'BadRequest', error.message);
        throw error;
      }
      if (!isObject(updated)) throw new HttpFailure(422, 'Invalid', 'the patch produced a non-object');
    }
    const sent = updated.metadata?.resourceVersion;
    if (sent !== undefined && sent !== '' && sent !== existing.metadata?.resourceVersion) throw conflict(type, name);
    (updated.metadata ??= {}).name = name;
    return { code: 200, body: persist(decorateForStore(parsed, updated), 'MODIFIED') };
  }

  function startWatch(parsed: ParsedPath, query: Record<string, string>, response: ServerResponse): void {
    const selectors = parseSelectors(query);
    const wanted = (event: StoredEvent): boolean =>
      event.type_ === parsed.type &&
      (!parsed.type.namespaced || parsed.namespace === undefined || event.object.metadata?.namespace === parsed.namespace) &&
      (parsed.name === undefined || event.object.metadata?.name === parsed.name) &&
      matchesLabels(event.object, selectors.labels) &&
      matchesFields(event.object, selectors.fields);
    const fromText = query.resourceVersion;
    response.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // Send the headers now: a client waits for them before it reads (and before a test writes).
    response.flushHeaders();
    const send = (type: string, object: unknown) => response.write(`${JSON.stringify({ type, object })}\n`);
    if (fromText !== undefined && fromText !== '' && fromText !== '0' && Number(fromText) < store.compactedBefore) {
      send('ERROR', statusBody(410, 'Expired', `too old resource version: ${fromText} (${store.compactedBefore})`));
      response.end();
      return;
    }
    if (fromText === undefined || fromText === '' || fromText === '0') {
      for (const object of store.list(parsed.type, parsed.namespace)) {
        if (wanted({ revision: 0, type: 'ADDED', type_: parsed.type, object })) send('ADDED', object);
      }
    } else {
      for (const event of store.eventsAfter(Number(fromText))) if (wanted(event)) send(event.type, event.object);
    }
    const unsubscribe = store.subscribe((event) => {
      if (wanted(event)) send(event.type, event.object);
    });
    watches.add(response);
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      unsubscribe();
      watches.delete(response);
      if (timer) clearTimeout(timer);
      if (!response.writableEnded) response.end();
    };
    const timeoutSeconds = Number(query.timeoutSeconds);
    if (Number.isFinite(timeoutSeconds) && timeoutSeconds > 0) timer = setTimeout(finish, timeoutSeconds * 1000);
    response.on('close', finish);
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'https://127.0.0.1');
    const query = Object.fromEntries(url.searchParams.entries());
    const method = request.method ?? 'GET';
    const parsed = parsePath(store, url.pathname);
    const verb = verbOf(method, parsed, query);
    const recorded: RecordedRequest = {
      method,
      path: url.pathname,
      query,
      verb,
      ...(parsed ? { resource: parsed.type.plural } : {}),
      ...(parsed?.namespace !== undefined ? { namespace: parsed.namespace } : {}),
      ...(parsed?.name !== undefined ? { name: parsed.name } : {}),
      ...(request.headers['content-type'] ? { contentType: request.headers['content-type'] } : {}),
    };
    requests.push(recorded);
    const body = await readBody(request);
    const reply = (code: number, payload: unknown) => {
      response.writeHead(code, { 'content-type': 'application/json' });
      response.end(JSON.stringify(payload));
    };
    try {
      if (request.headers.authorization !== `Bearer ${token}`) throw new HttpFailure(401, 'Unauthorized', 'Unauthorized');
      if (!parsed || verb === 'unknown') throw new HttpFailure(404, 'NotFound', 'the server could not find the requested resource');
      const hookIndex = hooks.findIndex((hook) => matches(hook.matcher, recorded, store));
      if (hookIndex >= 0) {
        const [hook] = hooks.splice(hookIndex, 1);
        hook?.action();
      }
      const failure = failures.find((candidate) => matches(candidate, recorded, store));
      if (failure) {
        failure.times = (failure.times ?? 1) - 1;
        if (failure.times <= 0) failures.splice(failures.indexOf(failure), 1);
        throw new HttpFailure(failure.status, failure.reason ?? 'InternalError', failure.message ?? `injected failure ${failure.status}`);
      }
      if (verb === 'watch') return startWatch(parsed, query, response);
      if (verb === 'get' || verb === 'list') return reply(200, handleRead(parsed, verb, query));
      const result = handleWrite(parsed, verb, body, request.headers['content-type'] ?? '', query.dryRun === 'All');
      return reply(result.code, result.body);
    } catch (error) {
      if (error instanceof HttpFailure) return reply(error.code, statusBody(error.code, error.reason, error.message, error.details));
      return reply(500, statusBody(500, 'InternalError', error instanceof Error ? error.message : String(error)));
    }
  }

  const server: Server = createServer({ key: tls.serving.key, cert: tls.serving.cert }, (request, response) => {
    void handle(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('kube stand-in: no address');
  const url = `https://127.0.0.1:${address.port}`;

  const objects: ObjectsAccess = {
    get: (resource, name, namespace) => store.get(store.typeOf(resource), namespace, name),
    list: (resource, namespace) => store.list(store.typeOf(resource), namespace),
    put: (object) => {
      const type = store.typeOf(object.kind ?? '', object.apiVersion);
      const name = object.metadata?.name ?? '';
      const exists = store.get(type, object.metadata?.namespace, name) !== undefined;
      const copy = clone(object);
      // What the real server adds to every Namespace (the label the webhooks select on).
      const stored = type.kind === 'Namespace' ? decorateForStore({ type }, copy) : copy;
      return store.write(type, stored, exists ? 'MODIFIED' : 'ADDED');
    },
    delete: (resource, name, namespace) => store.remove(store.typeOf(resource), namespace, name) !== undefined,
  };

  function kubeConfig(namespace?: string): KubeConfig {
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'stand-in', server: url, caData: Buffer.from(tls.ca.cert).toString('base64') }],
      users: [{ name: 'stand-in', token }],
      contexts: [{ name: 'stand-in', cluster: 'stand-in', user: 'stand-in', ...(namespace ? { namespace } : {}) }],
      currentContext: 'stand-in',
    });
    return config;
  }

  return {
    url,
    caPem: tls.ca.cert,
    token,
    objects,
    requests,
    writes: (matcher = {}) =>
      requests.filter((request) => ['create', 'update', 'patch', 'delete'].includes(request.verb) && matches(matcher, request, store)),
    failNext: (failure) => failures.push({ ...failure }),
    conflictNext: (matcher) =>
      failures.push({ verb: ['update', 'patch'], ...matcher, status: 409, reason: 'Conflict', message: 'the object has been modified; please apply your changes to the latest version and try again' }),
    beforeNext: (matcher, action) => hooks.push({ matcher, action }),
    compact: () => {
      store.compactedBefore = store.revision + 1;
    },
    closeWatches: () => {
      for (const response of [...watches]) response.end();
    },
    kubeConfig,
    kubeconfigPath: (dir, namespace) => {
      const path = join(dir, 'kubeconfig.yaml');
      writeFileSync(path, kubeConfig(namespace).exportConfig(), { mode: 0o600 });
      return path;
    },
    close: async () => {
      for (const response of [...watches]) response.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

export type { KubeObject, ResourceType } from './kube-store.js';
