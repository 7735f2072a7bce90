import { sql, type Kysely } from 'kysely';
import type { Migration } from '../db/database.js';

/**
 * The scanner's tables. Timestamps are ISO 8601 text (UTC, fixed width), which sorts and compares
 * the same way on SQLite and PostgreSQL.
 *
 * scanner_jobs     one row per scan attempt series; at most one queued/running row per digest
 *                  (the partial unique index makes a second request join the first, even across replicas)
 * scanner_reports  the latest outcome per digest: a normalized Harbor report, or `unsupported`
 */
export const scannerMigrations: Migration[] = [
  {
    name: 'scanner/0001-jobs-and-reports',
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('scanner_jobs')
        .addColumn('id', 'text', (column) => column.primaryKey())
        .addColumn('digest', 'text', (column) => column.notNull())
        .addColumn('repository', 'text', (column) => column.notNull())
        .addColumn('media_type', 'text', (column) => column.notNull())
        .addColumn('artifact_type', 'text')
        .addColumn('tag', 'text')
        .addColumn('registry_url', 'text')
        .addColumn('status', 'text', (column) => column.notNull())
        .addColumn('trigger', 'text', (column) => column.notNull())
        .addColumn('attempts', 'integer', (column) => column.notNull().defaultTo(0))
        .addColumn('not_before', 'text', (column) => column.notNull())
        .addColumn('created_at', 'text', (column) => column.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('lease_until', 'text')
        .addColumn('owner', 'text')
        .addColumn('error', 'text')
        .execute();
      await sql`create unique index scanner_jobs_active_digest on scanner_jobs (digest) where status in ('queued', 'running')`.execute(db);
      await db.schema.createIndex('scanner_jobs_status_not_before').on('scanner_jobs').columns(['status', 'not_before']).execute();
      await db.schema.createIndex('scanner_jobs_digest_created').on('scanner_jobs').columns(['digest', 'created_at']).execute();

      await db.schema
        .createTable('scanner_reports')
        .addColumn('digest', 'text', (column) => column.primaryKey())
        .addColumn('repository', 'text', (column) => column.notNull())
        .addColumn('outcome', 'text', (column) => column.notNull())
        .addColumn('report', 'text')
        .addColumn('reason', 'text')
        .addColumn('scanned_at', 'text', (column) => column.notNull())
        .addColumn('db_updated_at', 'text')
        .addColumn('trivy_version', 'text')
        .addColumn('job_id', 'text', (column) => column.notNull())
        .addColumn('started_at', 'text', (column) => column.notNull())
        .execute();
    },
  },
];
