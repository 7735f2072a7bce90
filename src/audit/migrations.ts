import { sql, type Kysely } from 'kysely';
import type { Migration } from '../db/database.js';
import { isPostgres } from './tables.js';

/**
 * The audit schema. Indexes follow the queries of src/audit/store.ts: every list query orders by
 * (time_ms DESC, id DESC) and filters on a few equality columns, so the selective columns of
 * audit_decisions (namespace, username, name) each lead an index that ends in (time_ms, id): the
 * database walks one index in order and stops after `limit` matches. Image, digest and policy filters go through the child
 * tables, whose indexes end in time_ms for the same reason. `npm run bench:audit` checks the
 * result over one million decisions.
 */
async function createDecisions(db: Kysely<unknown>): Promise<void> {
  const postgres = isPostgres(db);
  // PostgreSQL needs an identity column; SQLite's INTEGER PRIMARY KEY AUTOINCREMENT never reuses
  // ids of pruned rows, which keeps cursors unambiguous.
  await db.schema
    .createTable('audit_decisions')
    .addColumn('id', postgres ? 'bigserial' : 'integer', (column) => (postgres ? column.primaryKey() : column.primaryKey().autoIncrement()))
    .addColumn('time_ms', 'bigint', (column) => column.notNull())
    .addColumn('uid', 'text', (column) => column.notNull())
    .addColumn('webhook', 'text', (column) => column.notNull())
    .addColumn('username', 'text', (column) => column.notNull())
    .addColumn('groups', 'text', (column) => column.notNull())
    .addColumn('operation', 'text', (column) => column.notNull())
    .addColumn('namespace', 'text', (column) => column.notNull())
    .addColumn('kind', 'text', (column) => column.notNull())
    .addColumn('name', 'text', (column) => column.notNull())
    .addColumn('decision', 'text', (column) => column.notNull())
    .addColumn('mode', 'text', (column) => column.notNull())
    .addColumn('dry_run', 'integer', (column) => column.notNull())
    .addColumn('duration_ms', 'double precision', (column) => column.notNull())
    .addColumn('images', 'text', (column) => column.notNull())
    .addColumn('results', 'text', (column) => column.notNull())
    .addColumn('warnings', 'text', (column) => column.notNull())
    .addColumn('patch', 'text', (column) => column.notNull())
    .execute();
  const index = (name: string, columns: string[]) => db.schema.createIndex(name).on('audit_decisions').columns(columns).execute();
  // The time index also carries the columns the summary counts, so a window is counted from the
  // index alone. `decision` has no index of its own: a tenth or more of all decisions are denials,
  // so walking the time index finds a page of them quickly.
  await index('audit_decisions_time', ['time_ms', 'id', 'namespace', 'decision', 'mode', 'dry_run']);
  await index('audit_decisions_namespace_time', ['namespace', 'time_ms', 'id']);
  await index('audit_decisions_username_time', ['username', 'time_ms', 'id']);
  await index('audit_decisions_name_time', ['name', 'time_ms', 'id']);
}

async function createChildren(db: Kysely<unknown>): Promise<void> {
  const postgres = isPostgres(db);
  // Image names are compared byte-wise (glob prefix ranges rely on it); PostgreSQL's default
  // collation may be linguistic.
  const textC = postgres ? sql`text collate "C"` : sql`text`;
  await db.schema
    .createTable('audit_decision_images')
    .addColumn('decision_id', 'bigint', (column) => column.notNull().references('audit_decisions.id').onDelete('cascade'))
    .addColumn('time_ms', 'bigint', (column) => column.notNull())
    .addColumn('image', textC, (column) => column.notNull())
    .addColumn('digest', 'text')
    .addColumn('denied', 'integer', (column) => column.notNull())
    .execute();
  const imageIndex = (name: string, columns: string[]) => db.schema.createIndex(name).on('audit_decision_images').columns(columns).execute();
  await imageIndex('audit_decision_images_decision', ['decision_id']);
  await imageIndex('audit_decision_images_digest_time', ['digest', 'time_ms', 'decision_id']);
  // Image globs either walk this in time order checking each image, or (for a narrow literal
  // prefix) the image index; the planner picks with the statistics.
  await imageIndex('audit_decision_images_time', ['time_ms', 'decision_id', 'image', 'denied']);
  await imageIndex('audit_decision_images_image_time', ['image', 'time_ms', 'decision_id']);

  await db.schema
    .createTable('audit_decision_policies')
    .addColumn('decision_id', 'bigint', (column) => column.notNull().references('audit_decisions.id').onDelete('cascade'))
    .addColumn('time_ms', 'bigint', (column) => column.notNull())
    .addColumn('policy', 'text', (column) => column.notNull())
    .addColumn('status', 'text', (column) => column.notNull())
    .addColumn('violated', 'integer', (column) => column.notNull())
    .execute();
  const policyIndex = (name: string, columns: string[]) => db.schema.createIndex(name).on('audit_decision_policies').columns(columns).execute();
  await policyIndex('audit_decision_policies_decision', ['decision_id', 'policy']);
  await policyIndex('audit_decision_policies_policy_time', ['policy', 'violated', 'time_ms', 'decision_id']);
  await policyIndex('audit_decision_policies_time', ['time_ms', 'policy', 'status']);
}

export const auditMigrations: readonly Migration[] = [
  {
    name: 'audit/0001-decisions',
    async up(db) {
      await createDecisions(db);
      await createChildren(db);
    },
  },
];
