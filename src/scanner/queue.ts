import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import { describeError } from '../errors.js';
import type { Clock } from './clock.js';
import type { NewJob, ScanJob, ScannerStore } from './store.js';

/**
 * The durable scan queue: jobs live in the database (scanner_jobs), so a restart loses nothing.
 *
 *   queued ──claim──▶ running ──▶ succeeded
 *     ▲                  │   └──▶ failed      (permanent error, or transient ones out of attempts)
 *     └──── backoff ─────┘                    (transient error: registry 5xx, network)
 *
 * One job per digest: a request for a digest that is queued or running joins that job. At most
 * `concurrency` jobs run at once in this process (Trivy locks its cache directory, so the default
 * is 1). Nothing is claimed while the scanner is not ready; queued jobs wait for it.
 */

/** What one run of a job came to; the executor has already stored any report. */
export type JobResult =
  | { kind: 'done' }
  /** Worth retrying after a backoff (registry 5xx, connection refused, killed by the OOM killer…). */
  | { kind: 'transient'; error: string }
  /** Retrying cannot help (unauthorized, manifest unknown, timeout, unparseable output). */
  | { kind: 'permanent'; error: string }
  /** Trivy or its database went missing under the job: back to the queue, attempt not counted. */
  | { kind: 'not-ready'; error: string };

export type JobExecutor = (job: ScanJob, signal: AbortSignal) => Promise<JobResult>;

export interface QueueOptions {
  store: ScannerStore;
  clock: Clock;
  logger: Logger;
  execute: JobExecutor;
  /** Whether jobs may start now (the scanner is ready). */
  canRun: () => boolean;
  concurrency: number;
  /** Runs per job before a transient failure becomes final. */
  maxAttempts: number;
  /** Backoff before retry n (1-based) is `retryBackoffMs * 2^(n-1)`. */
  retryBackoffMs: number;
  /** How long a claimed job may stay running before another replica may reclaim it. */
  leaseMs: number;
  /** Stable name of this process (hostname); its own leftover running jobs are reclaimed on start. */
  owner: string;
  newId?: () => string;
  /** Called after every settled run (for metrics and waiters). */
  onSettled?: (job: ScanJob, result: JobResult) => void;
}

export interface EnqueueRequest {
  digest: string;
  repository: string;
  mediaType: string;
  artifactType?: string;
  tag?: string;
  registryUrl?: string;
  trigger: NewJob['trigger'];
}

export interface EnqueueResult {
  job: ScanJob;
  /** True when the request joined a job already queued or running. */
  joined: boolean;
}

export class ScanQueue {
  readonly #options: QueueOptions;
  readonly #newId: () => string;
  readonly #inflightEnqueues = new Map<string, Promise<EnqueueResult>>();
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  readonly #waiters = new Map<string, ((job: ScanJob) => void)[]>();
  #pumping: Promise<void> | undefined;
  #pumpAgain = false;
  #cancelTimer: (() => void) | undefined;
  #started = false;
  #closed = false;

  constructor(options: QueueOptions) {
    this.#options = options;
    this.#newId = options.newId ?? randomUUID;
  }

  /** Reclaims this owner's (and expired) running jobs, then starts working. Idempotent. */
  async start(): Promise<number> {
    if (this.#started) return 0;
    this.#started = true;
    const reclaimed = await this.#options.store.reclaim(this.#options.owner, this.#options.clock.now().toISOString());
    if (reclaimed > 0) this.#options.logger.warn({ [F.count]: reclaimed }, 'scan jobs left running by a previous process were requeued');
    this.pump();
    return reclaimed;
  }

  /**
   * Queues a scan of `digest`, or joins the queued or running one. Concurrent calls for one digest
   * in this process share one database round trip; across processes the unique index decides.
   */
  enqueue(request: EnqueueRequest): Promise<EnqueueResult> {
    const inflight = this.#inflightEnqueues.get(request.digest);
    if (inflight) return inflight.then((result) => ({ job: result.job, joined: true }));
    const promise = this.#enqueue(request).finally(() => this.#inflightEnqueues.delete(request.digest));
    this.#inflightEnqueues.set(request.digest, promise);
    return promise;
  }

  async #enqueue(request: EnqueueRequest): Promise<EnqueueResult> {
    const { store } = this.#options;
    const active = await store.activeJob(request.digest);
    if (active) return { job: active, joined: true };
    const job: NewJob = { ...request, id: this.#newId(), createdAt: this.#options.clock.now().toISOString() };
    try {
      const inserted = await store.insertJob(job);
      this.#options.logger.info({ [F.jobId]: inserted.id, [F.digest]: inserted.digest, [F.repository]: inserted.repository, trigger: inserted.trigger }, 'scan queued');
      this.pump();
      return { job: inserted, joined: false };
    } catch (error) {
      // Another replica queued the digest between our read and our insert: join its job.
      const winner = await store.activeJob(request.digest);
      if (winner) return { job: winner, joined: true };
      throw error;
    }
  }

  /** Resolves with the job once it has succeeded or failed (immediately when it already has). */
  async settled(jobId: string): Promise<ScanJob> {
    const waiting = new Promise<ScanJob>((resolve) => {
      const list = this.#waiters.get(jobId) ?? [];
      list.push(resolve);
      this.#waiters.set(jobId, list);
    });
    const current = await this.#options.store.job(jobId);
    if (current && (current.status === 'succeeded' || current.status === 'failed')) {
      this.#notify(current);
      return current;
    }
    return waiting;
  }

  /** How many jobs this process is running now. */
  get runningCount(): number {
    return this.#running.size;
  }

  /** Looks for due work and starts it, up to the concurrency limit. Safe to call any time. */
  pump(): void {
    if (!this.#started || this.#closed) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = this.#fill()
      .catch((error: unknown) => this.#options.logger.error({ [F.err]: error }, 'scan queue could not claim a job'))
      .finally(() => {
        this.#pumping = undefined;
        if (this.#pumpAgain) {
          this.#pumpAgain = false;
          this.pump();
        }
      });
  }

  async #fill(): Promise<void> {
    const options = this.#options;
    const { store, clock } = options;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    while (this.#running.size < options.concurrency && options.canRun() && !this.#closed) {
      const now = clock.now();
      const job = await store.claim(now.toISOString(), options.owner, new Date(now.getTime() + options.leaseMs).toISOString());
      if (!job) break;
      this.#run(job);
    }
    if (this.#closed || !options.canRun()) return;
    const next = await store.nextDue();
    if (next !== undefined && this.#running.size < options.concurrency) {
      const delay = Math.max(new Date(next).getTime() - clock.now().getTime(), 0);
      if (delay > 0) this.#cancelTimer = clock.setTimer(() => this.pump(), delay);
      else this.#pumpAgain = true;
    }
  }

  #run(job: ScanJob): void {
    const controller = new AbortController();
    const log = this.#options.logger.child({ [F.jobId]: job.id, [F.digest]: job.digest, [F.attempt]: job.attempts });
    log.info({ [F.repository]: job.repository }, 'scan started');
    const started = performance.now();
    const done = this.#options
      .execute(job, controller.signal)
      .catch((error: unknown): JobResult => ({ kind: 'permanent', error: `scan crashed: ${describeError(error)}` }))
      .then(async (result) => {
        if (controller.signal.aborted && result.kind !== 'done') {
          // Closing: leave the job for the next start rather than failing it.
          await this.#options.store.requeue(job.id, this.#options.clock.now().toISOString(), 'scanner stopped during the scan', true);
          return;
        }
        const settled = await this.#settle(job, result);
        log.info({ [F.durationMs]: Math.round(performance.now() - started), status: settled.status, [F.reason]: settled.error }, 'scan settled');
        this.#options.onSettled?.(settled, result);
        if (settled.status === 'succeeded' || settled.status === 'failed') this.#notify(settled);
      })
      .catch((error: unknown) => log.error({ [F.err]: error }, 'scan result could not be recorded'))
      .finally(() => {
        this.#running.delete(job.id);
        this.pump();
      });
    this.#running.set(job.id, { controller, done });
  }

  async #settle(job: ScanJob, result: JobResult): Promise<ScanJob> {
    const { store, clock, maxAttempts, retryBackoffMs } = this.#options;
    const now = clock.now();
    switch (result.kind) {
      case 'done':
        await store.finish(job.id, 'succeeded', now.toISOString());
        break;
      case 'not-ready':
        await store.requeue(job.id, now.toISOString(), result.error, true);
        break;
      case 'transient':
        if (job.attempts < maxAttempts) {
          const backoff = retryBackoffMs * 2 ** (job.attempts - 1);
          await store.requeue(job.id, new Date(now.getTime() + backoff).toISOString(), result.error);
        } else {
          await store.finish(job.id, 'failed', now.toISOString(), `${result.error} (gave up after ${job.attempts} attempts)`);
        }
        break;
      case 'permanent':
        await store.finish(job.id, 'failed', now.toISOString(), result.error);
        break;
    }
    return (await store.job(job.id)) ?? job;
  }

  #notify(job: ScanJob): void {
    const list = this.#waiters.get(job.id);
    if (!list) return;
    this.#waiters.delete(job.id);
    for (const resolve of list) resolve(job);
  }

  /** Stops claiming, kills running scans (their jobs go back to the queue) and waits for them. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelTimer?.();
    await this.#pumping;
    const running = [...this.#running.values()];
    for (const entry of running) entry.controller.abort();
    await Promise.all(running.map((entry) => entry.done));
  }
}
