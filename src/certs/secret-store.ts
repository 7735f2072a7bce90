import type { V1Secret } from '@kubernetes/client-node';
import { PortcullisError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import { isAlreadyExists, isConflict, type KubeClient, type WatchHandle } from '../kube/client.js';
import { FILES } from './file-store.js';
import type { CertificateMaterial, MaterialSources } from './material.js';
import { StoreConflictError, type CertificateStore, type StoredMaterial } from './store.js';

export interface SecretStoreOptions {
  kube: KubeClient;
  namespace: string;
  name: string;
  /** Whether `ca.key` must be present (managed mode) or may be absent (bring-your-own, e.g. cert-manager). */
  requireCaKey: boolean;
  logger: Logger;
  /** Pause before re-opening a watch that failed (default 5 s). */
  retryMs?: number;
}

function decode(secret: V1Secret, key: string): string | undefined {
  const value = secret.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

function encode(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/**
 * A `kubernetes.io/tls` Secret holding `tls.crt`, `tls.key`, `ca.crt` and (managed mode) `ca.key`.
 * Saves are conditional on the resourceVersion that was read, so two replicas never overwrite
 * each other: the loser gets StoreConflictError, re-reads and adopts what the winner wrote.
 */
export function createSecretStore(options: SecretStoreOptions): CertificateStore {
  const { kube, namespace, name } = options;
  const where = `secret ${namespace}/${name}`;
  const sources: MaterialSources = {
    caBundle: `${where} key ${FILES.caBundle}`,
    caKey: `${where} key ${FILES.caKey}`,
    cert: `${where} key ${FILES.cert}`,
    key: `${where} key ${FILES.key}`,
  };

  return {
    description: where,
    sources,
    load: async (): Promise<StoredMaterial | undefined> => {
      const secret = await kube.secrets.get(namespace, name);
      if (!secret) return undefined;
      const pieces = {
        caBundle: decode(secret, FILES.caBundle),
        caKey: decode(secret, FILES.caKey),
        cert: decode(secret, FILES.cert),
        key: decode(secret, FILES.key),
      };
      const required = ['cert', 'key', 'caBundle', ...(options.requireCaKey ? (['caKey'] as const) : [])] as const;
      const missing = required.filter((piece) => pieces[piece] === undefined || pieces[piece] === '');
      if (missing.length > 0) {
        const present = Object.keys(secret.data ?? {}).sort().join(', ') || 'none';
        throw new PortcullisError('CERT_INVALID', `${where}: key ${missing.map((piece) => FILES[piece]).join(', ')} missing (keys present: ${present})`);
      }
      const material: CertificateMaterial = {
        caBundle: pieces.caBundle ?? '',
        ...(pieces.caKey ? { caKey: pieces.caKey } : {}),
        cert: pieces.cert ?? '',
        key: pieces.key ?? '',
      };
      return { material, version: secret.metadata?.resourceVersion ?? '' };
    },
    currentVersion: async () => (await kube.secrets.get(namespace, name))?.metadata?.resourceVersion,
    save: async (material, expected) => {
      const data: Record<string, string> = {
        [FILES.cert]: encode(material.cert),
        [FILES.key]: encode(material.key),
        [FILES.caBundle]: encode(material.caBundle),
        ...(material.caKey !== undefined ? { [FILES.caKey]: encode(material.caKey) } : {}),
      };
      const metadata = { name, namespace, labels: { 'app.kubernetes.io/name': 'portcullis', 'app.kubernetes.io/component': 'certificates' } };
      try {
        if (expected === undefined) {
          const created = await kube.secrets.create(namespace, { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata, data });
          return created.metadata?.resourceVersion ?? '';
        }
        const current = await kube.secrets.get(namespace, name);
        if (!current) throw new StoreConflictError(where);
        const replaced = await kube.secrets.replace(namespace, name, {
          ...current,
          type: 'kubernetes.io/tls',
          // The version we decided on, not the one just read: a write in between must conflict.
          metadata: { ...current.metadata, labels: { ...current.metadata?.labels, ...metadata.labels }, resourceVersion: expected },
          data,
        });
        return replaced.metadata?.resourceVersion ?? '';
      } catch (error) {
        if (isConflict(error) || isAlreadyExists(error)) throw new StoreConflictError(where);
        throw error;
      }
    },
    watch: (onChange) => {
      let handle: WatchHandle | undefined;
      let stopped = false;
      const start = async (): Promise<void> => {
        while (!stopped) {
          try {
            handle = await kube.watch(`/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`, { fieldSelector: `metadata.name=${name}` }, () => onChange());
            if (stopped) handle.stop();
            await handle.done;
          } catch (error) {
            // The periodic check reloads anyway; the watch only makes changes visible sooner, so
            // a failed watch is logged and retried after a pause rather than treated as fatal.
            options.logger.debug({ [F.err]: error, [F.name]: name }, 'certificate secret watch failed; retrying');
            await new Promise<void>((resolve) => setTimeout(resolve, options.retryMs ?? 5000).unref());
            continue;
          }
          // The server ended the stream (its timeout): reconnect and look again.
          if (!stopped) onChange();
        }
      };
      void start();
      return () => {
        stopped = true;
        handle?.stop();
      };
    },
  };
}
