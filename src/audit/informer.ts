import type { KubernetesObject } from '@kubernetes/client-node';
import { describeError, isPortcullisError } from '../errors.js';
import type { ListResult, WatchEventType, WatchHandle, WatchListener } from '../kube/client.js';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import type { Clock, Timer } from './clock.js';

export interface InformerOptions<T extends KubernetesObject> {
  /** For logs (`pods`, `namespaces`). */
  resource: string;
  list(): Promise<ListResult<T>>;
  watch(resourceVersion: string, listener: WatchListener<T>): Promise<WatchHandle>;
  /** The whole collection after each (re)list; replaces what was known. */
  onList(items: T[]): void;
  /** One change seen by the watch. */
  onEvent(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): void;
  logger: Logger;
  clock: Clock;
  /** Wait before listing again after a failure (default 2 s). */
  retryMs?: number;
}

export interface Informer {
  /** Resolves after the first successful list. */
  readonly synced: Promise<void>;
  /** Stops watching; idempotent. */
  stop(): Promise<void>;
}

function isExpired(error: unknown): boolean {
  if (!isPortcullisError(error)) return false;
  const detail = error.detail;
  return typeof detail === 'object' && detail !== null && 'kubeStatus' in detail && detail.kubeStatus === 410;
}

/**
 * List, then watch from the list's resourceVersion (the informer pattern, without polling): a
 * watch the server ends is resumed from the last resourceVersion seen; an expired one (410) or a
 * failure leads to a fresh list.
 */
export function startInformer<T extends KubernetesObject>(options: InformerOptions<T>): Informer {
  const log = options.logger.child({ [F.component]: 'informer', [F.resource]: options.resource });
  const retryMs = options.retryMs ?? 2000;
  let stopped = false;
  let handle: WatchHandle | undefined;
  let retry: Timer | undefined;
  let wake: (() => void) | undefined;
  let markSynced: () => void = () => undefined;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      wake = resolve;
      retry = options.clock.every(ms, () => {
        retry?.cancel();
        resolve();
      });
    });

  async function run(): Promise<void> {
    let resourceVersion: string | undefined;
    while (!stopped) {
      try {
        if (resourceVersion === undefined) {
          const listed = await options.list();
          if (stopped) return;
          options.onList(listed.items);
          markSynced();
          resourceVersion = listed.resourceVersion;
        }
        let expired = false;
        const listener = (type: WatchEventType, object: T) => {
          if (type === 'ERROR') {
            expired = true;
            return;
          }
          const version = object.metadata?.resourceVersion;
          if (version) resourceVersion = version;
          if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') options.onEvent(type, object);
        };
        handle = await options.watch(resourceVersion, listener);
        if (stopped) handle.stop();
        await handle.done;
        if (expired) resourceVersion = undefined;
      } catch (error) {
        if (stopped) return;
        if (isExpired(error)) {
          resourceVersion = undefined;
          continue;
        }
        log.warn({ [F.err]: describeError(error) }, 'kubernetes list/watch failed; listing again');
        resourceVersion = undefined;
        await wait(retryMs);
      }
    }
  }

  const running = run();
  return {
    synced,
    async stop() {
      stopped = true;
      retry?.cancel();
      wake?.();
      handle?.stop();
      await running;
    },
  };
}
