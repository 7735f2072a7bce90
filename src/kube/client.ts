import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type KubernetesObject,
  type V1Lease,
  type V1MutatingWebhookConfiguration,
  type V1Namespace,
  type V1Pod,
  type V1Secret,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { PortcullisError } from '../errors.js';
import { isNotFound, toKubeError } from './errors.js';

export { isAlreadyExists, isConflict, isNotFound, kubeErrorDetail, toKubeError, type KubeErrorDetail } from './errors.js';

/** Where the in-cluster service account files live. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConfigSource {
  /** An explicit kubeconfig file (config `kube.kubeconfig`); wins over everything else. */
  kubeconfigPath?: string;
  /** The environment to read `KUBECONFIG` and `KUBERNETES_SERVICE_HOST/PORT` from (the caller passes process.env). */
  env: Readonly<Record<string, string | undefined>>;
  /** The service account directory; tests point it elsewhere. */
  serviceAccountDir?: string;
}

/**
 * Builds a KubeConfig from, in order: an explicit path, the first file of `KUBECONFIG`, the
 * in-cluster service account. Returns undefined when none is present (run without Kubernetes).
 * Throws KUBE_API_ERROR when a named file cannot be loaded.
 */
export function loadKubeConfig(source: KubeConfigSource): KubeConfig | undefined {
  const fromFile = (path: string, origin: string): KubeConfig => {
    const config = new KubeConfig();
    try {
      config.loadFromFile(path);
    } catch (error) {
      // Only the first line: a YAML error goes on to quote the lines around the mistake, which in a
      // kubeconfig are tokens, passwords and keys. The original is not kept as `cause` for the same reason.
      const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
      throw new PortcullisError('KUBE_API_ERROR', `${origin} ${path}: cannot load kubeconfig: ${reason}`);
    }
    if (!config.getCurrentCluster()) {
      throw new PortcullisError('KUBE_API_ERROR', `${origin} ${path}: kubeconfig has no current context with a cluster`);
    }
    return config;
  };
  if (source.kubeconfigPath) return fromFile(source.kubeconfigPath, 'kube.kubeconfig');
  const first = source.env.KUBECONFIG?.split(':').find((path) => path !== '');
  if (first) return fromFile(first, 'KUBECONFIG');
  const host = source.env.KUBERNETES_SERVICE_HOST;
  const port = source.env.KUBERNETES_SERVICE_PORT;
  const dir = source.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (!host || !port || !existsSync(join(dir, 'token'))) return undefined;
  const namespaceFile = join(dir, 'namespace');
  const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined;
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'in-cluster', server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`, caFile: join(dir, 'ca.crt'), skipTLSVerify: false }],
    // The token file is re-read by client-node as it is rotated by the kubelet.
    users: [{ name: 'in-cluster', authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } } }],
    contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'in-cluster', ...(namespace ? { namespace } : {}) }],
    currentContext: 'in-cluster',
  });
  return config;
}

// ---------------------------------------------------------------------------------------------
// Types the suite uses beyond the generated ones

/** wgpolicyk8s.io/v1alpha2 PolicyReport (see reference/policyreport). Only the fields the suite writes are typed. */
export interface PolicyReport extends KubernetesObject {
  scope?: { apiVersion?: string; kind?: string; name?: string; namespace?: string; uid?: string };
  summary?: { pass?: number; fail?: number; warn?: number; error?: number; skip?: number };
  results?: PolicyReportResult[];
}

export interface PolicyReportResult {
  policy: string;
  rule?: string;
  category?: string;
  severity?: 'critical' | 'high' | 'medium' | 'low' | 'info';
  result?: 'pass' | 'fail' | 'warn' | 'error' | 'skip';
  message?: string;
  source?: string;
  scored?: boolean;
  timestamp?: { seconds: number; nanos: number };
  properties?: Record<string, string>;
  resources?: { apiVersion?: string; kind?: string; name?: string; namespace?: string; uid?: string }[];
}

export const POLICY_REPORT = { group: 'wgpolicyk8s.io', version: 'v1alpha2', plural: 'policyreports', kind: 'PolicyReport' } as const;

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
}

export interface ListResult<T> {
  items: T[];
  /** The list's resourceVersion: start a watch from here to miss nothing. */
  resourceVersion: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchOptions extends ListOptions {
  /** Start after this resourceVersion (from a list); absent: ADDED events for what exists now first. */
  resourceVersion?: string;
  /** Ask the server to end the stream after this many seconds. */
  timeoutSeconds?: number;
}

export interface WatchHandle {
  /** Ends the stream; `done` then resolves. Idempotent. */
  stop(): void;
  /** Resolves when the stream ends (server closed it or stop()); rejects with KUBE_API_ERROR on failure (unobserved, that is harmless). */
  done: Promise<void>;
}

export type WatchListener<T> = (type: WatchEventType, object: T) => void;

// ---------------------------------------------------------------------------------------------
// The client

export interface NamespacedCrud<T> {
  /** The object, or undefined when it does not exist. Throws KUBE_API_ERROR otherwise. */
  get(namespace: string, name: string): Promise<T | undefined>;
  /** Throws KUBE_API_ERROR (isAlreadyExists) when the name is taken. */
  create(namespace: string, object: T): Promise<T>;
  /** PUT; with `metadata.resourceVersion` set, a concurrent change answers 409 (isConflict). */
  replace(namespace: string, name: string, object: T): Promise<T>;
  /** JSON merge patch (RFC 7386); include `metadata.resourceVersion` for optimistic concurrency. */
  patch(namespace: string, name: string, mergePatch: unknown): Promise<T>;
  /** Returns false when it did not exist. */
  delete(namespace: string, name: string): Promise<boolean>;
  list(namespace: string, options?: ListOptions): Promise<ListResult<T>>;
}

export interface ClusterCrud<T> {
  get(name: string): Promise<T | undefined>;
  create(object: T): Promise<T>;
  replace(name: string, object: T): Promise<T>;
  patch(name: string, mergePatch: unknown): Promise<T>;
  list(options?: ListOptions): Promise<ListResult<T>>;
}

export interface KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly secrets: NamespacedCrud<V1Secret>;
  readonly namespaces: {
    get(name: string): Promise<V1Namespace | undefined>;
    list(options?: ListOptions): Promise<ListResult<V1Namespace>>;
    watch(options: WatchOptions, listener: WatchListener<V1Namespace>): Promise<WatchHandle>;
  };
  readonly pods: {
    /** Pods of one namespace, or of all namespaces when `namespace` is undefined. */
    list(namespace: string | undefined, options?: ListOptions): Promise<ListResult<V1Pod>>;
    watch(namespace: string | undefined, options: WatchOptions, listener: WatchListener<V1Pod>): Promise<WatchHandle>;
  };
  readonly validatingWebhooks: ClusterCrud<V1ValidatingWebhookConfiguration>;
  readonly mutatingWebhooks: ClusterCrud<V1MutatingWebhookConfiguration>;
  readonly policyReports: NamespacedCrud<PolicyReport>;
  readonly leases: NamespacedCrud<V1Lease>;
  /** Watches any collection path, e.g. `/api/v1/namespaces/NS/secrets` (with fieldSelector for one object). */
  watch<T>(path: string, options: WatchOptions, listener: WatchListener<T>): Promise<WatchHandle>;
}

const mergePatchOptions = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

async function call<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toKubeError(error, operation);
  }
}

async function orUndefined<T>(operation: string, run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call(operation, run);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

function isKubeObject(value: unknown): value is KubernetesObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && (!('metadata' in value) || typeof value.metadata === 'object');
}

function asPolicyReport(value: unknown, operation: string): PolicyReport {
  if (!isKubeObject(value)) throw new PortcullisError('KUBE_API_ERROR', `kubernetes ${operation}: the answer is not an object`, { detail: { operation } });
  return value;
}

function listResult<T>(list: { items: T[]; metadata?: { resourceVersion?: string } }): ListResult<T> {
  return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
}

function watchQuery(options: WatchOptions): Record<string, string | number | boolean> {
  const query: Record<string, string | number | boolean> = { allowWatchBookmarks: true };
  if (options.resourceVersion) query.resourceVersion = options.resourceVersion;
  if (options.labelSelector) query.labelSelector = options.labelSelector;
  if (options.fieldSelector) query.fieldSelector = options.fieldSelector;
  if (options.timeoutSeconds) query.timeoutSeconds = options.timeoutSeconds;
  return query;
}

/** Builds the typed client over a KubeConfig (see loadKubeConfig). Opens no connection until called. */
export function createKubeClient(kubeConfig: KubeConfig): KubeClient {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const coordination = kubeConfig.makeApiClient(CoordinationV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const watcher = new Watch(kubeConfig);

  async function watch<T>(path: string, options: WatchOptions, listener: WatchListener<T>): Promise<WatchHandle> {
    let stopped = false;
    let settle: { resolve: () => void; reject: (error: unknown) => void } | undefined;
    const done = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    // A caller that never looks at `done` must not crash the process with an unhandled rejection.
    done.catch(() => undefined);
    const controller = await call(`watch ${path}`, () => watcher.watch(
      path,
      watchQuery(options),
      (type: string, object: unknown) => {
        if (stopped) return;
        listener(type as WatchEventType, object as T);
      },
      (error: unknown) => {
        // An abort we asked for is a normal end, not a failure.
        if (error && !stopped) settle?.reject(toKubeError(error, `watch ${path}`));
        else settle?.resolve();
      },
    ));
    return {
      stop: () => {
        if (stopped) return;
        stopped = true;
        controller.abort();
        settle?.resolve();
      },
      done,
    };
  }

  const secrets: NamespacedCrud<V1Secret> = {
    get: (namespace, name) => orUndefined(`get secrets ${namespace}/${name}`, () => core.readNamespacedSecret({ namespace, name })),
    create: (namespace, body) => call(`create secrets ${namespace}/${body.metadata?.name ?? ''}`, () => core.createNamespacedSecret({ namespace, body })),
    replace: (namespace, name, body) => call(`replace secrets ${namespace}/${name}`, () => core.replaceNamespacedSecret({ namespace, name, body })),
    patch: (namespace, name, body) => call(`patch secrets ${namespace}/${name}`, () => core.patchNamespacedSecret({ namespace, name, body }, mergePatchOptions)),
    delete: async (namespace, name) =>
      (await orUndefined(`delete secrets ${namespace}/${name}`, () => core.deleteNamespacedSecret({ namespace, name }))) !== undefined,
    list: async (namespace, options = {}) => listResult(await call(`list secrets ${namespace}`, () => core.listNamespacedSecret({ namespace, ...options }))),
  };

  const leases: NamespacedCrud<V1Lease> = {
    get: (namespace, name) => orUndefined(`get leases ${namespace}/${name}`, () => coordination.readNamespacedLease({ namespace, name })),
    create: (namespace, body) => call(`create leases ${namespace}/${body.metadata?.name ?? ''}`, () => coordination.createNamespacedLease({ namespace, body })),
    replace: (namespace, name, body) => call(`replace leases ${namespace}/${name}`, () => coordination.replaceNamespacedLease({ namespace, name, body })),
    patch: (namespace, name, body) =>
      call(`patch leases ${namespace}/${name}`, () => coordination.patchNamespacedLease({ namespace, name, body }, mergePatchOptions)),
    delete: async (namespace, name) =>
      (await orUndefined(`delete leases ${namespace}/${name}`, () => coordination.deleteNamespacedLease({ namespace, name }))) !== undefined,
    list: async (namespace, options = {}) => listResult(await call(`list leases ${namespace}`, () => coordination.listNamespacedLease({ namespace, ...options }))),
  };

  const validatingWebhooks: ClusterCrud<V1ValidatingWebhookConfiguration> = {
    get: (name) => orUndefined(`get validatingwebhookconfigurations ${name}`, () => admission.readValidatingWebhookConfiguration({ name })),
    create: (body) =>
      call(`create validatingwebhookconfigurations ${body.metadata?.name ?? ''}`, () => admission.createValidatingWebhookConfiguration({ body })),
    replace: (name, body) => call(`replace validatingwebhookconfigurations ${name}`, () => admission.replaceValidatingWebhookConfiguration({ name, body })),
    patch: (name, body) =>
      call(`patch validatingwebhookconfigurations ${name}`, () => admission.patchValidatingWebhookConfiguration({ name, body }, mergePatchOptions)),
    list: async (options = {}) => listResult(await call('list validatingwebhookconfigurations', () => admission.listValidatingWebhookConfiguration(options))),
  };

  const mutatingWebhooks: ClusterCrud<V1MutatingWebhookConfiguration> = {
    get: (name) => orUndefined(`get mutatingwebhookconfigurations ${name}`, () => admission.readMutatingWebhookConfiguration({ name })),
    create: (body) => call(`create mutatingwebhookconfigurations ${body.metadata?.name ?? ''}`, () => admission.createMutatingWebhookConfiguration({ body })),
    replace: (name, body) => call(`replace mutatingwebhookconfigurations ${name}`, () => admission.replaceMutatingWebhookConfiguration({ name, body })),
    patch: (name, body) =>
      call(`patch mutatingwebhookconfigurations ${name}`, () => admission.patchMutatingWebhookConfiguration({ name, body }, mergePatchOptions)),
    list: async (options = {}) => listResult(await call('list mutatingwebhookconfigurations', () => admission.listMutatingWebhookConfiguration(options))),
  };

  const report = { group: POLICY_REPORT.group, version: POLICY_REPORT.version, plural: POLICY_REPORT.plural };
  const policyReports: NamespacedCrud<PolicyReport> = {
    get: async (namespace, name) => {
      const operation = `get policyreports ${namespace}/${name}`;
      const found: unknown = await orUndefined(operation, () => custom.getNamespacedCustomObject({ ...report, namespace, name }));
      return found === undefined ? undefined : asPolicyReport(found, operation);
    },
    create: async (namespace, body) => {
      const operation = `create policyreports ${namespace}/${body.metadata?.name ?? ''}`;
      const object = { apiVersion: `${report.group}/${report.version}`, kind: POLICY_REPORT.kind, ...body };
      return asPolicyReport(await call(operation, () => custom.createNamespacedCustomObject({ ...report, namespace, body: object })), operation);
    },
    replace: async (namespace, name, body) => {
      const operation = `replace policyreports ${namespace}/${name}`;
      const object = { apiVersion: `${report.group}/${report.version}`, kind: POLICY_REPORT.kind, ...body };
      return asPolicyReport(await call(operation, () => custom.replaceNamespacedCustomObject({ ...report, namespace, name, body: object })), operation);
    },
    patch: async (namespace, name, body) => {
      const operation = `patch policyreports ${namespace}/${name}`;
      return asPolicyReport(await call(operation, () => custom.patchNamespacedCustomObject({ ...report, namespace, name, body }, mergePatchOptions)), operation);
    },
    delete: async (namespace, name) =>
      (await orUndefined(`delete policyreports ${namespace}/${name}`, () => custom.deleteNamespacedCustomObject({ ...report, namespace, name }))) !== undefined,
    list: async (namespace, options = {}) => {
      const operation = `list policyreports ${namespace}`;
      const list: unknown = await call(operation, () => custom.listNamespacedCustomObject({ ...report, namespace, ...options }));
      if (typeof list !== 'object' || list === null || !('items' in list) || !Array.isArray(list.items)) {
        throw new PortcullisError('KUBE_API_ERROR', `kubernetes ${operation}: the answer is not a list`, { detail: { operation } });
      }
      const metadata = 'metadata' in list && typeof list.metadata === 'object' && list.metadata !== null ? list.metadata : {};
      const resourceVersion = 'resourceVersion' in metadata && typeof metadata.resourceVersion === 'string' ? metadata.resourceVersion : '';
      return { items: list.items.map((item: unknown) => asPolicyReport(item, operation)), resourceVersion };
    },
  };

  return {
    kubeConfig,
    secrets,
    namespaces: {
      get: (name) => orUndefined(`get namespaces ${name}`, () => core.readNamespace({ name })),
      list: async (options = {}) => listResult(await call('list namespaces', () => core.listNamespace(options))),
      watch: (options, listener) => watch('/api/v1/namespaces', options, listener),
    },
    pods: {
      list: async (namespace, options = {}) =>
        listResult(
          await call(`list pods ${namespace ?? '(all namespaces)'}`, () =>
            namespace === undefined ? core.listPodForAllNamespaces(options) : core.listNamespacedPod({ namespace, ...options }),
          ),
        ),
      watch: (namespace, options, listener) =>
        watch(namespace === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, options, listener),
    },
    validatingWebhooks,
    mutatingWebhooks,
    policyReports,
    leases,
    watch,
  };
}
