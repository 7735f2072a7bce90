import { sql, type Kysely, type Selectable } from 'kysely';
import type { HarborVulnerabilityReport } from '../harbor/report.js';

/**
 * Persistence of scan jobs and their outcomes (tables of src/scanner/migrations.ts). Every method
 * is one statement or a short conditional update, so that several scanner replicas sharing
 * PostgreSQL never run the same job twice: a job changes hands only through `claim`, which
 * succeeds for exactly one caller.
 */

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Why a scan was requested (logged, and shown by the adapter API's job listing). */
export type ScanTrigger = 'push' | 'demand' | 'verdict' | 'rescan' | 'adapter';

interface JobsTable {
  id: string;
  digest: string;
  repository: string;
  media_type: string;
  artifact_type: string | null;
  tag: string | null;
  registry_url: string | null;
  status: JobStatus;
  trigger: ScanTrigger;
  attempts: number;
  not_before: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  lease_until: string | null;
  owner: string | null;
  error: string | null;
}

interface ReportsTable {
  digest: string;
  repository: string;
  outcome: 'report' | 'unsupported';
  report: string | null;
  reason: string | null;
  scanned_at: string;
  db_updated_at: string | null;
  trivy_version: string | null;
  job_id: string;
  started_at: string;
}

export interface ScannerTables {
  scanner_jobs: JobsTable;
  scanner_reports: ReportsTable;
}

export interface ScanJob {
  id: string;
  digest: string;
  repository: string;
  mediaType: string;
  artifactType?: string;
  tag?: string;
  /** Registry to pull from when it is not the configured one (adapter requests from a real Harbor). */
  registryUrl?: string;
  status: JobStatus;
  trigger: ScanTrigger;
  attempts: number;
  notBefore: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  error?: string;
}

export type NewJob = Pick<ScanJob, 'id' | 'digest' | 'repository' | 'mediaType' | 'artifactType' | 'tag' | 'registryUrl' | 'trigger' | 'createdAt'>;

export type StoredOutcome =
  | {
      kind: 'report';
      digest: string;
      repository: string;
      report: HarborVulnerabilityReport;
      scannedAt: string;
      startedAt: string;
      dbUpdatedAt?: string;
      trivyVersion?: string;
      jobId: string;
    }
  | { kind: 'unsupported'; digest: string; repository: string; reason: string; scannedAt: string; startedAt: string; jobId: string };

function toJob(row: Selectable<JobsTable>): ScanJob {
  const job: ScanJob = {
    id: row.id,
    digest: row.digest,
    repository: row.repository,
    mediaType: row.media_type,
    status: row.status,
    trigger: row.trigger,
    attempts: Number(row.attempts),
    notBefore: row.not_before,
    createdAt: row.created_at,
  };
  if (row.artifact_type !== null) job.artifactType = row.artifact_type;
  if (row.tag !== null) job.tag = row.tag;
  if (row.registry_url !== null) job.registryUrl = row.registry_url;
  if (row.started_at !== null) job.startedAt = row.started_at;
  if (row.finished_at !== null) job.finishedAt = row.finished_at;
  if (row.error !== null) job.error = row.error;
  return job;
}

function isHarborReport(value: unknown): value is HarborVulnerabilityReport {
  return (
    typeof value === 'object' &&
    value !== null &&
    'vulnerabilities' in value &&
    Array.isArray(value.vulnerabilities) &&
    'severity' in value &&
    typeof value.severity === 'string' &&
    'artifact' in value &&
    'scanner' in value
  );
}

function toOutcome(row: Selectable<ReportsTable>): StoredOutcome {
  if (row.outcome === 'unsupported') {
    return {
      kind: 'unsupported',
      digest: row.digest,
      repository: row.repository,
      reason: row.reason ?? 'not scannable',
      scannedAt: row.scanned_at,
      startedAt: row.started_at,
      jobId: row.job_id,
    };
  }
  const report: unknown = JSON.parse(row.report ?? 'null');
  if (!isHarborReport(report)) throw new Error(`scanner_reports ${row.digest}: stored report is not a Harbor vulnerability report`);
  const outcome: StoredOutcome = {
    kind: 'report',
    digest: row.digest,
    repository: row.repository,
    report,
    scannedAt: row.scanned_at,
    startedAt: row.started_at,
    jobId: row.job_id,
  };
  if (row.db_updated_at !== null) outcome.dbUpdatedAt = row.db_updated_at;
  if (row.trivy_version !== null) outcome.trivyVersion = row.trivy_version;
  return outcome;
}

export class ScannerStore {
  readonly #db: Kysely<ScannerTables>;

  constructor(db: Kysely<ScannerTables>) {
    this.#db = db;
  }

  /** The queued or running job of `digest`, if any. */
  async activeJob(digest: string): Promise<ScanJob | undefined> {
    const row = await this.#db
      .selectFrom('scanner_jobs')
      .selectAll()
      .where('digest', '=', digest)
      .where('status', 'in', ['queued', 'running'])
      .executeTakeFirst();
    return row ? toJob(row) : undefined;
  }

  /** Inserts a queued job. Rejects (unique violation) when another request queued `digest` first. */
  async insertJob(job: NewJob): Promise<ScanJob> {
    const row: JobsTable = {
      id: job.id,
      digest: job.digest,
      repository: job.repository,
      media_type: job.mediaType,
      artifact_type: job.artifactType ?? null,
      tag: job.tag ?? null,
      registry_url: job.registryUrl ?? null,
      status: 'queued',
      trigger: job.trigger,
      attempts: 0,
      not_before: job.createdAt,
      created_at: job.createdAt,
      started_at: null,
      finished_at: null,
      lease_until: null,
      owner: null,
      error: null,
    };
    await this.#db.insertInto('scanner_jobs').values(row).execute();
    return toJob(row);
  }

  async job(id: string): Promise<ScanJob | undefined> {
    const row = await this.#db.selectFrom('scanner_jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toJob(row) : undefined;
  }

  /** The queued or running job of `digest`, else its most recent one. */
  async latestJob(digest: string): Promise<ScanJob | undefined> {
    const row = await this.#db
      .selectFrom('scanner_jobs')
      .selectAll()
      .where('digest', '=', digest)
      // A queued or running job is the latest by definition (timestamps may tie under a test clock).
      .orderBy(sql`case when status in ('queued', 'running') then 0 else 1 end`)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? toJob(row) : undefined;
  }

  /**
   * Takes the oldest queued job that is due, marking it running for `owner` until `leaseUntil`.
   * Returns undefined when none is due or another replica took it first.
   */
  async claim(now: string, owner: string, leaseUntil: string): Promise<ScanJob | undefined> {
    const candidate = await this.#db
      .selectFrom('scanner_jobs')
      .select('id')
      .where('status', '=', 'queued')
      .where('not_before', '<=', now)
      .orderBy('not_before')
      .orderBy('created_at')
      .limit(1)
      .executeTakeFirst();
    if (!candidate) return undefined;
    const result = await this.#db
      .updateTable('scanner_jobs')
      .set((eb) => ({ status: 'running', owner, lease_until: leaseUntil, started_at: now, attempts: eb('attempts', '+', 1) }))
      .where('id', '=', candidate.id)
      .where('status', '=', 'queued')
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return undefined;
    return this.job(candidate.id);
  }

  /** The earliest `not_before` of a queued job (when the queue next has work), if any. */
  async nextDue(): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('scanner_jobs')
      .select('not_before')
      .where('status', '=', 'queued')
      .orderBy('not_before')
      .limit(1)
      .executeTakeFirst();
    return row?.not_before;
  }

  async finish(id: string, status: 'succeeded' | 'failed', finishedAt: string, error?: string): Promise<void> {
    await this.#db
      .updateTable('scanner_jobs')
      .set({ status, finished_at: finishedAt, error: error ?? null, owner: null, lease_until: null })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .execute();
  }

  /** Puts a running job back in the queue, due at `notBefore`. `refund` undoes the attempt count. */
  async requeue(id: string, notBefore: string, error: string, refund = false): Promise<void> {
    await this.#db
      .updateTable('scanner_jobs')
      .set((eb) => ({
        status: 'queued',
        not_before: notBefore,
        error,
        owner: null,
        lease_until: null,
        attempts: refund ? eb('attempts', '-', 1) : eb('attempts', '+', 0),
      }))
      .where('id', '=', id)
      .where('status', '=', 'running')
      .execute();
  }

  /**
   * Returns jobs left running by a crashed process to the queue: those of `owner` (this process's
   * previous life) and those of anyone whose lease ran out. Returns how many were reclaimed.
   */
  async reclaim(owner: string, now: string): Promise<number> {
    const result = await this.#db
      .updateTable('scanner_jobs')
      .set({ status: 'queued', owner: null, lease_until: null, not_before: now })
      .where('status', '=', 'running')
      .where((eb) => eb.or([eb('owner', '=', owner), eb('lease_until', '<', now)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async countByStatus(): Promise<Record<JobStatus, number>> {
    const rows = await this.#db
      .selectFrom('scanner_jobs')
      .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
      .groupBy('status')
      .execute();
    const counts: Record<JobStatus, number> = { queued: 0, running: 0, succeeded: 0, failed: 0 };
    for (const row of rows) counts[row.status] = Number(row.count);
    return counts;
  }

  async saveOutcome(outcome: StoredOutcome): Promise<void> {
    const row: ReportsTable = {
      digest: outcome.digest,
      repository: outcome.repository,
      outcome: outcome.kind,
      report: outcome.kind === 'report' ? JSON.stringify(outcome.report) : null,
      reason: outcome.kind === 'unsupported' ? outcome.reason : null,
      scanned_at: outcome.scannedAt,
      db_updated_at: outcome.kind === 'report' ? (outcome.dbUpdatedAt ?? null) : null,
      trivy_version: outcome.kind === 'report' ? (outcome.trivyVersion ?? null) : null,
      job_id: outcome.jobId,
      started_at: outcome.startedAt,
    };
    const { digest: _digest, ...update } = row;
    await this.#db
      .insertInto('scanner_reports')
      .values(row)
      .onConflict((conflict) => conflict.column('digest').doUpdateSet(update))
      .execute();
  }

  /**
   * Artifacts of the configured registry whose stored report was made with a vulnerability DB
   * other than `dbUpdatedAt` (or an unknown one), oldest scan first, at most `limit`. Reports of
   * other registries (adapter jobs) are left out: their credentials are not kept.
   */
  async reportsScannedBefore(dbUpdatedAt: string, limit: number): Promise<{ digest: string; repository: string; mediaType: string }[]> {
    const rows = await this.#db
      .selectFrom('scanner_reports as r')
      .innerJoin('scanner_jobs as j', 'j.id', 'r.job_id')
      .select(['r.digest', 'r.repository', 'j.media_type'])
      .where('r.outcome', '=', 'report')
      .where('j.registry_url', 'is', null)
      .where((eb) => eb.or([eb('r.db_updated_at', 'is', null), eb('r.db_updated_at', '!=', dbUpdatedAt)]))
      .orderBy('r.scanned_at')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ digest: row.digest, repository: row.repository, mediaType: row.media_type }));
  }

  async outcome(digest: string): Promise<StoredOutcome | undefined> {
    const row = await this.#db.selectFrom('scanner_reports').selectAll().where('digest', '=', digest).executeTakeFirst();
    return row ? toOutcome(row) : undefined;
  }
}
