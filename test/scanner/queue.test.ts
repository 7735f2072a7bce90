import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { manualClock, type ManualClock } from '../../src/scanner/clock.js';
import { ScanQueue, type JobExecutor, type JobResult, type QueueOptions } from '../../src/scanner/queue.js';
import type { ScanJob, ScannerStore } from '../../src/scanner/store.js';
import { scannerTestDb, type ScannerTestDb } from './db.js';

const digestOf = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const request = (n: number) => ({ digest: digestOf(n), repository: 'team/app', mediaType: 'application/vnd.oci.image.manifest.v1+json', trigger: 'demand' as const });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: { execute: JobExecutor; clock?: ManualClock; store?: ScannerStore } & Partial<QueueOptions>) {
  let db: ScannerTestDb | undefined;
  let store = options.store;
  if (!store) {
    db = await scannerTestDb();
    store = db.store;
  }
  const clock = options.clock ?? manualClock();
  const settledRuns: { job: ScanJob; result: JobResult }[] = [];
  const listeners: (() => void)[] = [];
  const queue = new ScanQueue({
    logger: silentLogger(),
    canRun: () => true,
    concurrency: 1,
    maxAttempts: 3,
    retryBackoffMs: 1000,
    leaseMs: 60_000,
    owner: 'host-a',
    ...options,
    store,
    clock,
    onSettled: (job, result) => {
      settledRuns.push({ job, result });
      listeners.splice(0).forEach((listener) => listener());
    },
  });
  cleanups.push(async () => {
    await queue.close();
    await db?.close();
  });
  /** Resolves when `count` runs in total have settled (succeeded, failed or requeued). */
  const runsSettled = (count: number) =>
    new Promise<void>((resolve) => {
      const check = () => (settledRuns.length >= count ? resolve() : listeners.push(check));
      check();
    });
  return { queue, store, clock, db, settledRuns, runsSettled };
}

/** An executor whose runs wait until the test releases them. */
function gatedExecutor() {
  const started: ScanJob[] = [];
  const releases: ((result: JobResult) => void)[] = [];
  const startListeners: (() => void)[] = [];
  let active = 0;
  let maxActive = 0;
  const execute: JobExecutor = (job) => {
    started.push(job);
    active += 1;
    maxActive = Math.max(maxActive, active);
    startListeners.splice(0).forEach((listener) => listener());
    return new Promise<JobResult>((resolve) => releases.push((result) => {
      active -= 1;
      resolve(result);
    }));
  };
  const startedCount = (count: number) =>
    new Promise<void>((resolve) => {
      const check = () => (started.length >= count ? resolve() : startListeners.push(check));
      check();
    });
  return { execute, started, releases, startedCount, maxActive: () => maxActive };
}

describe('ScanQueue', () => {
  it('runs Trivy once when 100 requests for one digest arrive at the same time', async () => {
    let runs = 0;
    const { queue } = await setup({ execute: async () => ((runs += 1), { kind: 'done' }) });
    await queue.start();
    const results = await Promise.all(Array.from({ length: 100 }, () => queue.enqueue(request(1))));
    const ids = new Set(results.map((result) => result.job.id));
    expect(ids.size).toBe(1);
    expect(results.filter((result) => !result.joined)).toHaveLength(1);
    const job = await queue.settled(results[0]!.job.id);
    expect(job.status).toBe('succeeded');
    expect(runs).toBe(1);
  });

  it('lets a second replica join the job another replica queued (the unique index decides)', async () => {
    const gate = gatedExecutor();
    const first = await setup({ execute: gate.execute });
    const other = await first.db!.reopen();
    const second = await setup({ execute: gate.execute, store: other.store, owner: 'host-b' });
    const [a, b] = await Promise.all([first.queue.enqueue(request(2)), second.queue.enqueue(request(2))]);
    expect(a.job.id).toBe(b.job.id);
    expect([a.joined, b.joined].sort()).toEqual([false, true]);
  });

  it('never runs more jobs at once than the concurrency limit', async () => {
    const gate = gatedExecutor();
    const { queue, runsSettled } = await setup({ execute: gate.execute, concurrency: 2 });
    await queue.start();
    for (let n = 10; n < 15; n += 1) await queue.enqueue(request(n));
    await gate.startedCount(2);
    expect(queue.runningCount).toBe(2);
    for (let released = 0; released < 5; released += 1) {
      await gate.startedCount(released + 1);
      gate.releases[released]!({ kind: 'done' });
      await runsSettled(released + 1);
    }
    expect(gate.started).toHaveLength(5);
    expect(gate.maxActive()).toBe(2);
  });

  it('retries a transient failure after a backoff on the injected clock, then succeeds', async () => {
    const outcomes: JobResult[] = [{ kind: 'transient', error: 'registry answered 503 Service Unavailable' }, { kind: 'done' }];
    const { queue, clock, store, runsSettled } = await setup({ execute: async () => outcomes.shift() ?? { kind: 'done' } });
    await queue.start();
    const { job } = await queue.enqueue(request(20));
    await runsSettled(1);
    const waiting = await store.job(job.id);
    expect(waiting).toMatchObject({ status: 'queued', attempts: 1, error: 'registry answered 503 Service Unavailable' });
    expect(new Date(waiting!.notBefore).getTime() - clock.now().getTime()).toBe(1000);
    clock.advance(999);
    expect((await store.job(job.id))?.status).toBe('queued');
    clock.advance(1);
    const done = await queue.settled(job.id);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2 });
  });

  it('doubles the backoff and gives up after maxAttempts transient failures', async () => {
    const { queue, clock, store, runsSettled } = await setup({ execute: async () => ({ kind: 'transient', error: 'connection refused' }) });
    await queue.start();
    const { job } = await queue.enqueue(request(21));
    await runsSettled(1);
    clock.advance(1000);
    await runsSettled(2);
    expect(new Date((await store.job(job.id))!.notBefore).getTime() - clock.now().getTime()).toBe(2000);
    clock.advance(2000);
    const failed = await queue.settled(job.id);
    expect(failed).toMatchObject({ status: 'failed', attempts: 3, error: 'connection refused (gave up after 3 attempts)' });
  });

  it('fails a permanent error at once, without retrying', async () => {
    let runs = 0;
    const { queue } = await setup({ execute: async () => ((runs += 1), { kind: 'permanent', error: 'UNAUTHORIZED: authentication required' }) });
    await queue.start();
    const { job } = await queue.enqueue(request(22));
    expect(await queue.settled(job.id)).toMatchObject({ status: 'failed', attempts: 1, error: 'UNAUTHORIZED: authentication required' });
    expect(runs).toBe(1);
  });

  it('holds jobs while the scanner is not ready and does not count a not-ready run as an attempt', async () => {
    let ready = false;
    const outcomes: JobResult[] = [{ kind: 'not-ready', error: 'vulnerability database missing' }, { kind: 'done' }];
    const { queue, store, runsSettled } = await setup({ execute: async () => outcomes.shift() ?? { kind: 'done' }, canRun: () => ready });
    await queue.start();
    const { job } = await queue.enqueue(request(23));
    queue.pump();
    expect((await store.job(job.id))?.status).toBe('queued');
    ready = true;
    queue.pump();
    await runsSettled(1);
    expect(await store.job(job.id)).toMatchObject({ status: 'queued', attempts: 0 });
    queue.pump();
    expect(await queue.settled(job.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('requeues on start the jobs a crashed process left running, and those whose lease expired', async () => {
    const db = await scannerTestDb();
    cleanups.push(() => db.close());
    const clock = manualClock();
    const now = clock.now().toISOString();
    const later = new Date(clock.now().getTime() + 60_000).toISOString();
    const earlier = new Date(clock.now().getTime() - 1).toISOString();
    // Three jobs "running" when the previous process died: ours, another live replica's, and an expired one.
    for (const [n, owner, lease] of [[30, 'host-a', later], [31, 'host-b', later], [32, 'host-c', earlier]] as const) {
      await db.store.insertJob({ ...request(n), id: `job-${n}`, createdAt: now });
      await db.store.claim(now, owner, lease);
    }
    let runs = 0;
    const { queue } = await setup({ execute: async () => ((runs += 1), { kind: 'done' }), store: db.store, clock, concurrency: 2 });
    expect(await queue.start()).toBe(2);
    expect((await queue.settled('job-30')).status).toBe('succeeded');
    expect((await queue.settled('job-32')).status).toBe('succeeded');
    expect((await db.store.job('job-31'))?.status).toBe('running');
    expect(runs).toBe(2);
  });

  it('puts running jobs back in the queue when closed, so the next start resumes them', async () => {
    const gate = gatedExecutor();
    const { queue, store } = await setup({
      execute: (job, signal) => {
        const run = gate.execute(job, signal);
        signal.addEventListener('abort', () => gate.releases.at(-1)?.({ kind: 'transient', error: 'killed' }));
        return run;
      },
    });
    await queue.start();
    const { job } = await queue.enqueue(request(40));
    await gate.startedCount(1);
    await queue.close();
    expect(await store.job(job.id)).toMatchObject({ status: 'queued', attempts: 0 });
  });
});
