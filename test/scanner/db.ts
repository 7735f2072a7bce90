import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { migrate, openDatabase } from '../../src/db/database.js';
import { scannerMigrations } from '../../src/scanner/migrations.js';
import { ScannerStore, type ScannerTables } from '../../src/scanner/store.js';
import { tempDir } from '../helpers/tmp.js';

export interface ScannerTestDb {
  db: Kysely<ScannerTables>;
  store: ScannerStore;
  path: string;
  /** Opens a second connection to the same file (another "replica"). */
  reopen(): Promise<{ db: Kysely<ScannerTables>; store: ScannerStore; close(): Promise<void> }>;
  close(): Promise<void>;
}

/** A real SQLite file in a temp dir with the scanner's migrations applied. */
export async function scannerTestDb(): Promise<ScannerTestDb> {
  const dir = tempDir('portcullis-scanner-');
  const path = join(dir.path, 'scanner.db');
  const opened = openDatabase<ScannerTables>({ sqlitePath: path });
  await migrate(opened.db as unknown as Kysely<unknown>, scannerMigrations);
  const extra: (() => Promise<void>)[] = [];
  return {
    db: opened.db,
    store: new ScannerStore(opened.db),
    path,
    async reopen() {
      const again = openDatabase<ScannerTables>({ sqlitePath: path });
      extra.push(again.close);
      return { db: again.db, store: new ScannerStore(again.db), close: again.close };
    },
    async close() {
      for (const close of extra.splice(0)) await close();
      await opened.close();
      dir.remove();
    },
  };
}
