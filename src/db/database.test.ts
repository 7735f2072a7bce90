import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.js';
import { migrate, openDatabase, type Migration } from './database.js';

const tmp = tempDir('portcullis-db-');
afterAll(() => tmp.remove());

/** A migration that creates table `name`. */
function creates(migration: string, table: string): Migration {
  return { name: migration, up: (db: Kysely<unknown>) => db.schema.createTable(table).addColumn('id', 'integer').execute() };
}

async function tables(db: Kysely<unknown>): Promise<string[]> {
  return (await db.introspection.getTables()).map((table) => table.name).filter((name) => !name.startsWith('portcullis_migrations')).sort();
}

describe('migrate', () => {
  it('applies what is not applied yet, once', async () => {
    const database = openDatabase<unknown>({ sqlitePath: join(tmp.path, 'once.db') });
    try {
      expect(await migrate(database.db, [creates('a/0001', 'a_one'), creates('a/0002', 'a_two')])).toEqual(['a/0001', 'a/0002']);
      expect(await migrate(database.db, [creates('a/0001', 'a_one'), creates('a/0002', 'a_two')])).toEqual([]);
      expect(await tables(database.db)).toEqual(['a_one', 'a_two']);
    } finally {
      await database.close();
    }
  });

  it('leaves alone what other subsystems applied to a shared database', async () => {
    const database = openDatabase<unknown>({ sqlitePath: join(tmp.path, 'shared.db') });
    try {
      // `portcullis up` migrates every subsystem; `portcullis registry` later only its own.
      await migrate(database.db, [creates('audit/0001', 'decisions'), creates('registry/0001', 'manifests')]);
      expect(await migrate(database.db, [creates('registry/0001', 'manifests'), creates('registry/0002', 'events')])).toEqual(['registry/0002']);
      expect(await tables(database.db)).toEqual(['decisions', 'events', 'manifests']);
      // And the full set again afterwards still finds everything in order.
      expect(await migrate(database.db, [creates('audit/0001', 'decisions'), creates('registry/0001', 'manifests'), creates('registry/0002', 'events')])).toEqual([]);
    } finally {
      await database.close();
    }
  });

  it('reads again when another process applies a migration of its own while this one starts', async () => {
    const path = join(tmp.path, 'racing.db');
    const ours = openDatabase<unknown>({ sqlitePath: path });
    const theirs = openDatabase<unknown>({ sqlitePath: path });
    try {
      await migrate(ours.db, [creates('audit/0001', 'decisions'), creates('registry/0001', 'manifests')]);
      // The migrator asks for the tables after this process read what was applied and before it
      // reads that again under its lock: the other process migrates right then (the second call).
      let calls = 0;
      const racing = new Proxy(ours.db, {
        get(target, property) {
          if (property === 'introspection') {
            const introspection = target.introspection;
            const getTables: typeof introspection.getTables = async (options) => {
              calls += 1;
              if (calls === 2) await migrate(theirs.db, [creates('registry/0001', 'manifests'), creates('registry/0002', 'events')]);
              return introspection.getTables(options);
            };
            return { getSchemas: introspection.getSchemas.bind(introspection), getMetadata: introspection.getMetadata.bind(introspection), getTables };
          }
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
      expect(await migrate(racing, [creates('audit/0001', 'decisions'), creates('audit/0002', 'summaries')])).toEqual(['audit/0002']);
      expect(calls).toBeGreaterThan(2);
      expect(await tables(ours.db)).toEqual(['decisions', 'events', 'manifests', 'summaries']);
    } finally {
      await theirs.close();
      await ours.close();
    }
  });

  it('refuses duplicate names, and names the migration that failed', async () => {
    const database = openDatabase<unknown>({ sqlitePath: join(tmp.path, 'failing.db') });
    try {
      await expect(migrate(database.db, [creates('a/0001', 'x'), creates('a/0001', 'y')])).rejects.toThrow('duplicate migration name a/0001');
      const broken: Migration = { name: 'a/0002-broken', up: async (db) => void (await sql`create table`.execute(db)) };
      await expect(migrate(database.db, [creates('a/0001', 'x'), broken])).rejects.toThrow(/^migration a\/0002-broken failed: /);
    } finally {
      await database.close();
    }
  });
});
