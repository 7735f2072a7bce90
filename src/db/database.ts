import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Migration as KyselyMigration, type MigrationProvider } from 'kysely';
import pg from 'pg';
import { PortcullisError, describeError } from '../errors.js';

export interface DatabaseConfig {
  /** SQLite file, created with its directory when missing. Used when `url` is absent. */
  sqlitePath: string;
  /** PostgreSQL connection string. */
  url?: string;
}

export type Dialect = 'sqlite' | 'postgres';

/**
 * One schema change owned by one subsystem. Names are `<subsystem>/<NNNN>-<what>` and never change
 * once released; each subsystem exports its list from its own `migrations.ts`, and src/main.ts
 * hands the lists to `migrate`.
 */
export interface Migration {
  name: string;
  up(db: Kysely<unknown>): Promise<void>;
}

export interface OpenDatabase<T> {
  db: Kysely<T>;
  dialect: Dialect;
  close(): Promise<void>;
}

/**
 * Opens the configured database: PostgreSQL when `url` is set, otherwise SQLite in WAL mode with
 * foreign keys on and a busy timeout (several roles in one process share the file).
 */
export function openDatabase<T>(config: DatabaseConfig): OpenDatabase<T> {
  if (config.url) {
    const db = new Kysely<T>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: config.url, max: 10 }) }) });
    return { db, dialect: 'postgres', close: () => db.destroy() };
  }
  if (config.sqlitePath !== ':memory:') mkdirSync(dirname(config.sqlitePath), { recursive: true });
  let sqlite: SqliteDatabase.Database;
  try {
    sqlite = new SqliteDatabase(config.sqlitePath);
  } catch (error) {
    throw new PortcullisError('CONFIG_INVALID', `database.sqlitePath ${config.sqlitePath}: cannot open: ${describeError(error)}`, { cause: error });
  }
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<T>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { db, dialect: 'sqlite', close: () => db.destroy() };
}

const MIGRATION_TABLE = 'portcullis_migrations';

/** Names of the migrations already applied to `db` (none when it was never migrated). */
async function appliedMigrations(db: Kysely<unknown>): Promise<string[]> {
  const tables = await db.introspection.getTables();
  if (!tables.some((table) => table.name === MIGRATION_TABLE)) return [];
  const rows = await (db as Kysely<Record<string, { name: string }>>).selectFrom(MIGRATION_TABLE).select('name').execute();
  return rows.map((row) => row.name);
}

/**
 * Applies every migration of `migrations` not yet applied, in name order. Subsystems add migrations
 * independently, so a later name may sort before an already-applied one; that is allowed. The
 * database may be shared with subsystems this process does not run (`portcullis registry` on the
 * data directory of `portcullis up`, or roles in their own Deployments on one PostgreSQL):
 * migrations applied by them are left alone. Throws with the name of the failing migration. On
 * PostgreSQL a failed migration leaves nothing behind (transactional DDL) and concurrent processes
 * take turns under the migrator's lock; on SQLite migrations run without a transaction, so run
 * them from one process at a time.
 */
export async function migrate(db: Kysely<unknown>, migrations: readonly Migration[]): Promise<string[]> {
  const seen = new Set<string>();
  for (const migration of migrations) {
    if (seen.has(migration.name)) throw new Error(`duplicate migration name ${migration.name}`);
    seen.add(migration.name);
  }
  try {
    return await migrateOnce(db, migrations, seen);
  } catch (error) {
    // Another process may have applied a migration of its own between this one's reading of what
    // is applied and the migrator's (which happens under its lock): read again, once.
    if (!(error instanceof Error) || !describeError(error.cause).includes('corrupted migrations: previously executed migration')) throw error;
    return migrateOnce(db, migrations, seen);
  }
}

async function migrateOnce(db: Kysely<unknown>, migrations: readonly Migration[], seen: ReadonlySet<string>): Promise<string[]> {
  const othersApplied = (await appliedMigrations(db)).filter((name) => !seen.has(name));
  const provider: MigrationProvider = {
    async getMigrations() {
      const all: Record<string, KyselyMigration> = {};
      for (const migration of migrations) all[migration.name] = { up: (kdb) => migration.up(kdb as Kysely<unknown>) };
      // Applied by another subsystem's process: listed so that the migrator does not take them for
      // lost, never run here (they are applied already).
      for (const name of othersApplied) {
        all[name] = {
          up: () => {
            throw new Error(`migration ${name} belongs to a subsystem this process does not run`);
          },
        };
      }
      return all;
    },
  };
  const migrator = new Migrator({
    db,
    provider,
    allowUnorderedMigrations: true,
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: 'portcullis_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((result) => result.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '(unknown)'} failed: ${describeError(error)}`, { cause: error });
  }
  return (results ?? []).filter((result) => result.status === 'Success').map((result) => result.migrationName);
}
