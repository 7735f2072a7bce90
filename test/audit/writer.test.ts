import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { DecisionRecord } from '../../src/admission/decision.js';
import { createDecisionStore } from '../../src/audit/store.js';
import { createDecisionWriter, type DecisionWriter } from '../../src/audit/writer.js';
import type { DecisionInserter } from '../../src/audit/store.js';
import { createLogger } from '../../src/log/logger.js';
import { createMetricsRegistry } from '../../src/http/metrics.js';
import { auditDatabase, decision } from './decisions.js';
import { ManualClock } from './manual-clock.js';

function logCapture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: 'info' }, stream), lines };
}

const stores: { release(): void }[] = [];

/**
 * A store whose inserts wait until the test releases it (from then on it writes at once), or
 * fail when told to.
 */
function blockingStore() {
  const inserted: DecisionRecord[][] = [];
  let release: (() => void) | undefined;
  let open = false;
  let failNext = false;
  let entered: (() => void) | undefined;
  const store: DecisionInserter & { release(): void; fail(): void; entered: Promise<void>; inserted: DecisionRecord[][] } = {
    inserted,
    entered: new Promise<void>((resolve) => (entered = resolve)),
    async insert(records) {
      entered?.();
      if (!open) await new Promise<void>((resolve) => (release = resolve));
      if (failNext) {
        failNext = false;
        throw new Error('database is locked');
      }
      inserted.push([...records]);
    },
    release: () => {
      open = true;
      release?.();
    },
    fail: () => {
      failNext = true;
      release?.();
    },
  };
  stores.push(store);
  return store;
}

async function metricValue(registry: ReturnType<typeof createMetricsRegistry>, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((entry) => entry.name === name);
  const value = metric?.values.find((entry) => Object.entries(labels).every(([key, wanted]) => entry.labels[key] === wanted));
  return value?.value ?? 0;
}

const writers: DecisionWriter[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) store.release();
  await Promise.all(writers.splice(0).map((writer) => writer.close()));
});

function writer(store: DecisionInserter, overrides: Partial<Parameters<typeof createDecisionWriter>[0]> = {}) {
  const metrics = createMetricsRegistry({ defaultMetrics: false });
  const clock = new ManualClock();
  const { logger, lines } = logCapture();
  const created = createDecisionWriter({ store, logger, metrics, clock, bufferSize: 5, batchSize: 100, flushIntervalMs: 1000, dropPolicy: 'oldest', ...overrides });
  writers.push(created);
  return { writer: created, metrics, clock, lines };
}

describe('decision writer', () => {
  it('writes batches to a real SQLite store on the timer, and flush() drains the rest', async () => {
    const database = await auditDatabase();
    try {
      const store = createDecisionStore(database.db);
      const { writer: sink, clock, metrics } = writer(store, { bufferSize: 100, batchSize: 50 });
      sink.start();
      for (let index = 0; index < 3; index += 1) sink.record(decision({ uid: `t-${index}` }));
      expect((await store.list({}, { limit: 10 })).items).toHaveLength(0);
      clock.advance(1000);
      await sink.flush();
      expect((await store.list({}, { limit: 10 })).items.map((item) => item.uid)).toEqual(['t-2', 't-1', 't-0']);
      expect(await metricValue(metrics, 'portcullis_audit_written_total')).toBe(3);
    } finally {
      await database.close();
    }
  });

  it('writes a full batch without waiting for the timer', async () => {
    const store = blockingStore();
    const { writer: sink } = writer(store, { bufferSize: 10, batchSize: 2 });
    sink.record(decision({ uid: 'a' }));
    sink.record(decision({ uid: 'b' }));
    await store.entered;
    store.release();
    await sink.flush();
    expect(store.inserted.map((batch) => batch.map((item) => item.uid))).toEqual([['a', 'b']]);
  });

  it.each([
    ['oldest', ['c', 'd', 'e', 'f', 'g']],
    ['newest', ['a', 'b', 'c', 'd', 'e']],
  ] as const)('while the store blocks, record() returns at once and drops the %s beyond the buffer, counted and logged', async (dropPolicy, kept) => {
    const store = blockingStore();
    const { writer: sink, metrics, lines } = writer(store, { dropPolicy, bufferSize: 5, batchSize: 100 });
    sink.start();
    const started = performance.now();
    for (const uid of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) sink.record(decision({ uid }));
    expect(performance.now() - started).toBeLessThan(50);
    expect(sink.buffered).toBe(5);
    expect(await metricValue(metrics, 'portcullis_audit_dropped_total', { reason: 'buffer-full' })).toBe(2);
    const flushing = sink.flush();
    await store.entered;
    expect(lines.find((line) => line.msg === 'audit buffer full: decisions dropped')).toMatchObject({ level: 'warn', count: 2, reason: `dropping the ${dropPolicy}` });
    store.release();
    await flushing;
    expect(store.inserted.flat().map((item) => item.uid)).toEqual(kept);
  });

  it('keeps a failed batch and writes it on the next attempt', async () => {
    const store = blockingStore();
    const { writer: sink, metrics, lines } = writer(store);
    sink.record(decision({ uid: 'x' }));
    const first = sink.flush();
    await store.entered;
    store.fail();
    await first;
    expect(sink.buffered).toBe(1);
    expect(await metricValue(metrics, 'portcullis_audit_write_failures_total')).toBe(1);
    expect(lines.some((line) => line.msg === 'audit write failed; batch kept for the next attempt' && line.level === 'error')).toBe(true);
    store.release();
    await sink.flush();
    expect(store.inserted.flat().map((item) => item.uid)).toEqual(['x']);
  });

  it('does not write a decision twice when the oldest are dropped during a write', async () => {
    const store = blockingStore();
    const { writer: sink } = writer(store, { bufferSize: 3 });
    for (const uid of ['a', 'b', 'c']) sink.record(decision({ uid }));
    const flushing = sink.flush();
    await store.entered;
    sink.record(decision({ uid: 'd' })); // drops a, which is being written
    store.release();
    await flushing;
    const uids = store.inserted.flat().map((item) => item.uid);
    expect(new Set(uids).size).toBe(uids.length);
    expect(uids).toEqual(expect.arrayContaining(['b', 'c', 'd']));
  });

  it('close() gives up on a blocked store after its deadline and counts what was lost', async () => {
    const store = blockingStore();
    const { writer: sink, metrics, clock, lines } = writer(store);
    sink.record(decision({ uid: 'stuck' }));
    const closing = sink.close(2000);
    await store.entered;
    clock.advance(2000);
    await closing;
    expect(await metricValue(metrics, 'portcullis_audit_dropped_total', { reason: 'closed' })).toBe(1);
    expect(lines.some((line) => line.msg === 'audit store unavailable at shutdown: decisions lost')).toBe(true);
    sink.record(decision({ uid: 'late' }));
    expect(await metricValue(metrics, 'portcullis_audit_dropped_total', { reason: 'closed' })).toBe(2);
    store.release();
  });
});
