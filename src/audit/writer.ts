import { Counter, Gauge, type Registry } from 'prom-client';
import type { DecisionRecord, DecisionSink } from '../admission/decision.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import type { Clock, Timer } from './clock.js';
import type { DecisionInserter } from './store.js';

export interface DecisionWriterOptions {
  store: DecisionInserter;
  logger: Logger;
  metrics: Registry;
  clock: Clock;
  /** Most decisions held in memory; beyond it decisions are dropped (and counted). */
  bufferSize: number;
  /** Most decisions per insert; a full batch is written without waiting for the timer. */
  batchSize: number;
  flushIntervalMs: number;
  /** Which decision to give up when the buffer is full. */
  dropPolicy: 'oldest' | 'newest';
}

export interface DecisionWriter extends DecisionSink {
  /** Starts the flush timer; idempotent. */
  start(): void;
  /**
   * Writes everything buffered now. Resolves when the buffer is empty or a write failed (the
   * failed batch stays buffered for the next attempt). Never rejects.
   */
  flush(): Promise<void>;
  /**
   * Stops the timer and flushes, waiting at most `deadlineMs` for the store; what is still
   * buffered then is dropped, counted and logged. Decisions recorded afterwards are dropped too.
   */
  close(deadlineMs?: number): Promise<void>;
  /** Decisions waiting to be written. */
  readonly buffered: number;
}

/**
 * The audit DecisionSink. `record` only appends to a bounded in-memory buffer and returns: the
 * database is touched by a flush that runs on a timer or when a batch is full, one write at a
 * time, never on the admission request's path. When the database is slow or down the buffer
 * fills, and then decisions are dropped by `dropPolicy`, counted in
 * `portcullis_audit_dropped_total` and reported by one warning per flush interval.
 */
export function createDecisionWriter(options: DecisionWriterOptions): DecisionWriter {
  const { store, logger, clock, bufferSize, batchSize, flushIntervalMs, dropPolicy } = options;
  const log = logger.child({ [F.component]: 'audit-writer' });
  const dropped = new Counter({
    name: 'portcullis_audit_dropped_total',
    help: 'Admission decisions not written to the audit store because the buffer was full or the writer closed.',
    labelNames: ['reason'],
    registers: [options.metrics],
  });
  const written = new Counter({ name: 'portcullis_audit_written_total', help: 'Admission decisions written to the audit store.', registers: [options.metrics] });
  const failures = new Counter({ name: 'portcullis_audit_write_failures_total', help: 'Failed batch writes to the audit store.', registers: [options.metrics] });
  const buffered = new Gauge({ name: 'portcullis_audit_buffered', help: 'Admission decisions waiting to be written.', registers: [options.metrics] });

  const buffer: DecisionRecord[] = [];
  let timer: Timer | undefined;
  let closed = false;
  let writing: Promise<boolean> | undefined;
  let droppedSinceWarning = 0;

  function drop(reason: 'buffer-full' | 'closed', count: number): void {
    dropped.inc({ reason }, count);
    droppedSinceWarning += count;
  }

  function warnAboutDrops(): void {
    if (droppedSinceWarning === 0) return;
    log.warn({ [F.count]: droppedSinceWarning, [F.limit]: bufferSize, [F.reason]: `dropping the ${dropPolicy}` }, 'audit buffer full: decisions dropped');
    droppedSinceWarning = 0;
  }

  /** Writes one batch; true when it was written. Only one runs at a time. */
  function writeBatch(): Promise<boolean> {
    if (writing) return writing;
    const batch = buffer.slice(0, batchSize);
    if (batch.length === 0) return Promise.resolve(true);
    writing = (async () => {
      try {
        await store.insert(batch);
        // Dropping the oldest while writing may already have removed part of `batch` from the
        // head; what is left of it is still the head, in order.
        const done = new Set(batch);
        let remove = 0;
        while (remove < buffer.length && done.has(buffer[remove] as DecisionRecord)) remove += 1;
        buffer.splice(0, remove);
        written.inc(batch.length);
        return true;
      } catch (error) {
        failures.inc();
        log.error({ [F.err]: describeError(error), [F.count]: batch.length }, 'audit write failed; batch kept for the next attempt');
        return false;
      } finally {
        buffered.set(buffer.length);
        writing = undefined;
      }
    })();
    return writing;
  }

  async function flush(): Promise<void> {
    warnAboutDrops();
    // Wait for a write already under way, then drain what is there now.
    if (writing) await writing;
    let remaining = buffer.length;
    while (remaining > 0 && buffer.length > 0) {
      const before = buffer.length;
      if (!(await writeBatch())) return;
      remaining -= before - buffer.length;
    }
  }

  function scheduleBatch(): void {
    if (writing || buffer.length < batchSize) return;
    // Off the caller's stack: record() returns before any database work begins.
    setImmediate(() => void writeBatch().then((ok) => (ok && buffer.length >= batchSize ? scheduleBatch() : undefined)));
  }

  return {
    record(decision) {
      if (closed) {
        drop('closed', 1);
        return;
      }
      if (buffer.length >= bufferSize) {
        drop('buffer-full', 1);
        if (dropPolicy === 'newest') return;
        buffer.shift();
      }
      buffer.push(decision);
      buffered.set(buffer.length);
      scheduleBatch();
    },
    start() {
      if (timer || closed) return;
      timer = clock.every(flushIntervalMs, () => void flush());
    },
    flush,
    async close(deadlineMs = 5000) {
      timer?.cancel();
      timer = undefined;
      closed = true;
      let deadline: Timer | undefined;
      await Promise.race([
        flush(),
        new Promise<void>((resolve) => {
          deadline = clock.every(deadlineMs, resolve);
        }),
      ]);
      deadline?.cancel();
      if (buffer.length > 0) {
        log.error({ [F.count]: buffer.length }, 'audit store unavailable at shutdown: decisions lost');
        drop('closed', buffer.length);
        buffer.length = 0;
        buffered.set(0);
      }
      warnAboutDrops();
    },
    get buffered() {
      return buffer.length;
    },
  };
}
