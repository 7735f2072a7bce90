import { afterAll, beforeAll, describe, it } from 'vitest';
import { auditMigrations } from '../../src/audit/migrations.js';
import type { AuditTables } from '../../src/audit/tables.js';
import { migrate, openDatabase } from '../../src/db/database.js';
import { postgresAvailable, startPostgres, type PostgresCluster } from './postgres.js';
import { storeSpecification } from './store-specification.js';

// The same specification as on SQLite, against a real PostgreSQL server started for this file
// (skipped, and said so, where PostgreSQL is not installed).
const available = postgresAvailable();
let cluster: PostgresCluster | undefined;

if (available) {
  beforeAll(async () => {
    cluster = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  storeSpecification('PostgreSQL', async () => {
    if (!cluster) throw new Error('PostgreSQL did not start');
    const opened = openDatabase<unknown>({ sqlitePath: ':memory:', url: await cluster.database() });
    await migrate(opened.db, auditMigrations);
    return { db: opened.db.withTables<AuditTables>(), close: () => opened.close() };
  });
} else {
  describe('decision store (PostgreSQL)', () => {
    it.skip('needs PostgreSQL (Debian package postgresql, installed by .ci/run) and a postgres user', () => undefined);
  });
}
