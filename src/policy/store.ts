/**
 * The live policy set of a running process: loaded from a directory at start, reloaded when the
 * directory changes (fs.watch, debounced), swapped atomically. A broken change never takes
 * enforcement down: the last good set stays active, and status, readiness and metrics say that
 * the latest change was rejected and why.
 */
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CheckResult } from '../http/readiness.js';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import type { PolicySet } from './compile.js';
import { formatProblem, isPolicyFileName, loadPolicyDirectory, type PolicyProblem } from './load.js';

export interface PolicyStoreOptions {
  dir: string;
  logger: Logger;
  /** Where the store's metrics are registered (one registry per process). */
  metrics?: Registry;
  /** Quiet time after the last file event before reloading (editors write in several steps). Default 200 ms. */
  debounceMs?: number;
  /** Whether to watch the directory (default true; the CLI loads once). */
  watch?: boolean;
  /**
   * While the directory cannot be watched (missing, removed, replaced), how often to try again.
   * Default 5 s. Once it can, it is loaded at once.
   */
  rewatchMs?: number;
  /** The clock for load times and expiry warnings. */
  now?: () => Date;
}

export interface PolicyStoreStatus {
  /** True when the latest load attempt produced a valid set (and that set is active). */
  ok: boolean;
  /** When the active set was loaded (ISO 8601); absent while none ever was. */
  loadedAt?: string;
  /** Revision of the active set. */
  revision?: string;
  /** Why the latest load attempt was rejected (empty when ok). */
  problems: PolicyProblem[];
  /** Warnings of the latest valid load (exceptions expiring soon, …). */
  warnings: PolicyProblem[];
  /** The files of the active set. */
  files: string[];
}

export interface PolicyStore {
  /** Loads the directory once and starts watching it. Resolves even when the first load is invalid (see status()). */
  start(): Promise<void>;
  /** The active set; undefined while no valid set was ever loaded. */
  current(): PolicySet | undefined;
  status(): PolicyStoreStatus;
  /** Not ok while no valid set was ever loaded; ok (with the reason) while a last good set covers a broken change. */
  readinessCheck(): CheckResult;
  /** Called after each swap to a new set (not when a reload yields the same revision). Returns an unsubscribe function. */
  onChange(listener: (set: PolicySet) => void): () => void;
  /** Called after every load attempt, valid or not (tests and the lint loop wait on it). Returns an unsubscribe function. */
  onReload(listener: (status: PolicyStoreStatus) => void): () => void;
  /** Loads the directory now (also what the watcher triggers). Concurrent calls share one load. */
  reload(): Promise<PolicyStoreStatus>;
  /** Stops watching; pending reloads are dropped. Idempotent. */
  close(): Promise<void>;
}

interface StoreMetrics {
  valid: Gauge;
  reloads: Counter<'result'>;
  documents: Gauge<'kind'>;
  loadedAt: Gauge;
}

function storeMetrics(registry: Registry): StoreMetrics {
  const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
  return {
    valid:
      existing<Gauge>('portcullis_policy_set_valid') ??
      new Gauge({ name: 'portcullis_policy_set_valid', help: '1 when the latest policy load was valid, 0 when it was rejected (the last good set stays active).', registers: [registry] }),
    reloads:
      existing<Counter<'result'>>('portcullis_policy_reload_total') ??
      new Counter({ name: 'portcullis_policy_reload_total', help: 'Policy directory loads by result (success, failure).', labelNames: ['result'], registers: [registry] }),
    documents:
      existing<Gauge<'kind'>>('portcullis_policy_documents') ??
      new Gauge({ name: 'portcullis_policy_documents', help: 'Documents in the active policy set, by kind.', labelNames: ['kind'], registers: [registry] }),
    loadedAt:
      existing<Gauge>('portcullis_policy_loaded_timestamp_seconds') ??
      new Gauge({ name: 'portcullis_policy_loaded_timestamp_seconds', help: 'When the active policy set was loaded (Unix time).', registers: [registry] }),
  };
}

export function createPolicyStore(options: PolicyStoreOptions): PolicyStore {
  const { dir, logger } = options;
  const debounceMs = options.debounceMs ?? 200;
  const rewatchMs = options.rewatchMs ?? 5_000;
  const now = options.now ?? (() => new Date());
  const metrics = options.metrics ? storeMetrics(options.metrics) : undefined;
  const changeListeners = new Set<(set: PolicySet) => void>();
  const reloadListeners = new Set<(status: PolicyStoreStatus) => void>();

  let active: PolicySet | undefined;
  let state: PolicyStoreStatus = { ok: false, problems: [], warnings: [], files: [] };
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let rewatchTimer: NodeJS.Timeout | undefined;
  let running: Promise<PolicyStoreStatus> | undefined;
  let again = false;
  let closed = false;

  function notify<T>(listeners: Set<(value: T) => void>, value: T): void {
    for (const listener of listeners) {
      try {
        listener(value);
      } catch (error) {
        // A listener's bug must not stop the swap or the other listeners.
        logger.error({ [F.err]: error, [F.path]: dir }, 'policy listener failed');
      }
    }
  }

  async function loadOnce(): Promise<PolicyStoreStatus> {
    const at = now();
    const result = await loadPolicyDirectory(dir, { now: at });
    if (result.ok) {
      const changed = active?.revision !== result.set.revision;
      active = result.set;
      state = { ok: true, loadedAt: at.toISOString(), revision: result.set.revision, problems: [], warnings: result.warnings, files: [...result.set.files] };
      metrics?.valid.set(1);
      metrics?.reloads.inc({ result: 'success' });
      metrics?.loadedAt.set(at.getTime() / 1000);
      metrics?.documents.set({ kind: 'ImagePolicy' }, result.set.imagePolicies.length);
      metrics?.documents.set({ kind: 'PullSecretPolicy' }, result.set.pullSecretPolicies.length);
      metrics?.documents.set({ kind: 'PolicyException' }, result.set.exceptions.length);
      logger.info({ [F.path]: dir, revision: result.set.revision, [F.count]: result.set.files.length, warnings: result.warnings.map(formatProblem) }, 'policy set loaded');
      if (changed) notify(changeListeners, result.set);
    } else {
      state = { ...state, ok: false, problems: result.problems };
      metrics?.valid.set(0);
      metrics?.reloads.inc({ result: 'failure' });
      logger.error(
        { [F.path]: dir, problems: result.problems.map(formatProblem), revision: active?.revision },
        active ? 'policy change rejected; the last good set stays active' : 'policy set invalid; no policy set is active',
      );
    }
    // A removed or replaced directory leaves the watcher on a dead inode: watch it anew once it is back.
    if (!result.ok && watcher && !existsSync(dir)) detach('policy directory disappeared; watching for it to come back');
    const snapshot = statusSnapshot();
    notify(reloadListeners, snapshot);
    return snapshot;
  }

  function reload(): Promise<PolicyStoreStatus> {
    if (running) {
      // A change arrived while loading: load once more afterwards so the last write wins.
      again = true;
      return running;
    }
    running = (async () => {
      try {
        let status = await loadOnce();
        while (again && !closed) {
          again = false;
          status = await loadOnce();
        }
        return status;
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  function schedule(): void {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void reload();
    }, debounceMs);
  }

  /** Starts watching; when that fails, tries again every `rewatchMs` and loads as soon as it works. */
  function attach(): boolean {
    if (closed || watcher) return true;
    try {
      watcher = watch(dir, (_event, filename) => {
        // `..data` is how a mounted ConfigMap swaps its files; hidden editor files are noise,
        // unless the directory itself went away.
        const name = filename === null ? undefined : String(filename);
        if (name !== undefined && !isPolicyFileName(name) && name !== '..data' && existsSync(dir)) return;
        schedule();
      });
      watcher.on('error', (error) => {
        detach('policy directory watch failed; watching for it anew', error);
      });
      return true;
    } catch (error) {
      logger.error({ [F.err]: error, [F.path]: dir, retryMs: rewatchMs }, 'cannot watch the policy directory; trying again');
      scheduleRewatch();
      return false;
    }
  }

  function detach(message: string, error?: unknown): void {
    watcher?.close();
    watcher = undefined;
    logger.warn({ [F.err]: error, [F.path]: dir, retryMs: rewatchMs }, message);
    scheduleRewatch();
  }

  function scheduleRewatch(): void {
    if (closed || rewatchTimer) return;
    rewatchTimer = setTimeout(() => {
      rewatchTimer = undefined;
      if (attach()) void reload();
    }, rewatchMs);
  }

  function statusSnapshot(): PolicyStoreStatus {
    return { ...state, problems: [...state.problems], warnings: [...state.warnings], files: [...state.files] };
  }

  return {
    async start() {
      await reload();
      if (options.watch === false || closed) return;
      attach();
    },
    current: () => active,
    status: statusSnapshot,
    readinessCheck() {
      if (!active) {
        const first = state.problems[0];
        return { ok: false, reason: first ? `no valid policy set: ${formatProblem(first)}${state.problems.length > 1 ? ` (+${state.problems.length - 1} more)` : ''}` : 'policy set not loaded yet' };
      }
      if (!state.ok) {
        return { ok: true, reason: `policy set ${active.revision} active; latest change rejected: ${state.problems.map(formatProblem).slice(0, 3).join('; ')}` };
      }
      return { ok: true, reason: `policy set ${active.revision} loaded at ${state.loadedAt ?? ''}` };
    },
    onChange(listener) {
      changeListeners.add(listener);
      return () => changeListeners.delete(listener);
    },
    onReload(listener) {
      reloadListeners.add(listener);
      return () => reloadListeners.delete(listener);
    },
    reload,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (rewatchTimer) clearTimeout(rewatchTimer);
      rewatchTimer = undefined;
      watcher?.close();
      watcher = undefined;
      if (running) await running;
    },
  };
}
