import { Counter, type Registry } from 'prom-client';
import { describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import type { Clock, Timer } from './clock.js';
import type { DecisionStore } from './store.js';

export interface RetentionOptions {
  store: Pick<DecisionStore, 'prune'>;
  logger: Logger;
  metrics: Registry;
  clock: Clock;
  retentionDays: number;
  maxRecords: number;
  intervalMs: number;
}

export interface Retention {
  /** Prunes once now (in the background) and then every interval; idempotent. */
  start(): void;
  /** Prunes now; concurrent calls share one run. Never rejects (failures are logged and retried next interval). */
  pruneNow(): Promise<{ deleted: number }>;
  /** Stops the timer and waits for a run under way. */
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;

/** Keeps the audit record within its age and count limits. */
export function createRetention(options: RetentionOptions): Retention {
  const log = options.logger.child({ [F.component]: 'audit-retention' });
  const pruned = new Counter({ name: 'portcullis_audit_pruned_total', help: 'Audit decisions deleted by retention.', registers: [options.metrics] });
  let timer: Timer | undefined;
  let running: Promise<{ deleted: number }> | undefined;

  function pruneNow(): Promise<{ deleted: number }> {
    if (running) return running;
    running = (async () => {
      const olderThanMs = options.clock.now() - options.retentionDays * DAY_MS;
      try {
        const result = await options.store.prune({ olderThanMs, maxRecords: options.maxRecords });
        pruned.inc(result.deleted);
        if (result.deleted > 0) log.info({ [F.count]: result.deleted, [F.since]: new Date(olderThanMs).toISOString(), [F.limit]: options.maxRecords }, 'audit decisions pruned');
        return result;
      } catch (error) {
        log.error({ [F.err]: describeError(error) }, 'audit pruning failed; retrying at the next interval');
        return { deleted: 0 };
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  return {
    start() {
      if (timer) return;
      timer = options.clock.every(options.intervalMs, () => void pruneNow());
      void pruneNow();
    },
    pruneNow,
    async close() {
      timer?.cancel();
      timer = undefined;
      if (running) await running;
    },
  };
}
