import { LRUCache } from 'lru-cache';
import { PortcullisError, describeError } from '../errors.js';
import { isAlreadyExists, type KubeClient } from '../kube/client.js';

/**
 * The little the admission pipelines need from Kubernetes. Implemented over the typed client
 * (src/kube/client.ts, @kubernetes/client-node) below; tests may pass their own.
 */
export interface AdmissionKube {
  /**
   * The labels of namespace `name` (empty when it has none or does not exist). Throws
   * KUBE_API_ERROR when the API cannot be reached.
   */
  namespaceLabels(name: string): Promise<Record<string, string>>;
  /** The labels of namespace `name` when they are at hand without a call; undefined otherwise. */
  cachedNamespaceLabels?(name: string): Record<string, string> | undefined;
  /**
   * Makes sure Secret `name` exists in `namespace`, copying `source` when it does not. Idempotent:
   * an existing Secret is left as it is (also when another replica created it concurrently).
   * Returns what happened. Throws KUBE_API_ERROR when the source is missing or a call fails.
   */
  ensureSecret(namespace: string, name: string, source: { namespace: string; name: string }): Promise<'existed' | 'copied'>;
}

export interface KubePortOptions {
  /** How long namespace labels and known Secrets are remembered (default 30 s). */
  ttlMs?: number;
}

/** Marks a copied Secret so that operators can tell where it came from. */
export const COPIED_FROM_ANNOTATION = 'portcullis.io/copied-from';

export function createAdmissionKube(client: KubeClient, options: KubePortOptions = {}): AdmissionKube {
  const ttl = options.ttlMs ?? 30_000;
  const labels = new LRUCache<string, Record<string, string>>({ max: 10_000, ttl });
  const secrets = new LRUCache<string, true>({ max: 10_000, ttl });
  const inflight = new Map<string, Promise<'existed' | 'copied'>>();

  return {
    cachedNamespaceLabels(name) {
      return labels.get(name);
    },

    async namespaceLabels(name) {
      const cached = labels.get(name);
      if (cached) return cached;
      const namespace = await client.namespaces.get(name);
      const value = { ...(namespace?.metadata?.labels ?? {}) };
      labels.set(name, value);
      return value;
    },

    ensureSecret(namespace, name, source) {
      const key = `${namespace}/${name}`;
      if (secrets.get(key)) return Promise.resolve('existed');
      const running = inflight.get(key);
      if (running) return running;
      const work = (async (): Promise<'existed' | 'copied'> => {
        if (await client.secrets.get(namespace, name)) {
          secrets.set(key, true);
          return 'existed';
        }
        const original = await client.secrets.get(source.namespace, source.name);
        if (!original) {
          throw new PortcullisError('KUBE_API_ERROR', `source Secret ${source.namespace}/${source.name} does not exist`, {
            status: 404,
            detail: { namespace: source.namespace, name: source.name },
          });
        }
        try {
          await client.secrets.create(namespace, {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: {
              name,
              namespace,
              labels: { 'app.kubernetes.io/managed-by': 'portcullis' },
              annotations: { [COPIED_FROM_ANNOTATION]: `${source.namespace}/${source.name}` },
            },
            ...(original.type !== undefined ? { type: original.type } : {}),
            ...(original.data !== undefined ? { data: original.data } : {}),
          });
        } catch (error) {
          // Another replica (or a re-invocation) created it between our get and create.
          if (!isAlreadyExists(error)) throw error instanceof PortcullisError ? error : new PortcullisError('KUBE_API_ERROR', describeError(error), { cause: error });
          secrets.set(key, true);
          return 'existed';
        }
        secrets.set(key, true);
        return 'copied';
      })().finally(() => inflight.delete(key));
      inflight.set(key, work);
      return work;
    },
  };
}
