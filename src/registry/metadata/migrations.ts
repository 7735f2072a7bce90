import type { Kysely } from 'kysely';
import type { Migration } from '../../db/database.js';

/**
 * The registry's tables. Repositories exist from their first manifest; blobs are linked to the
 * repositories they were pushed to or mounted into (a blob is readable in a repository only
 * through such a link); manifests record what they reference so that pushes are checked and the
 * Harbor API can show children, and their subject for the referrers API.
 */
export const registryMigrations: Migration[] = [
  {
    name: 'registry/0001-core',
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('registry_repositories')
        .addColumn('id', 'integer', (column) => column.primaryKey().autoIncrement())
        .addColumn('name', 'varchar(255)', (column) => column.notNull().unique())
        .addColumn('project', 'varchar(255)', (column) => column.notNull())
        .addColumn('pull_count', 'integer', (column) => column.notNull().defaultTo(0))
        .addColumn('created_at', 'varchar(40)', (column) => column.notNull())
        .addColumn('updated_at', 'varchar(40)', (column) => column.notNull())
        .execute();
      await db.schema.createIndex('registry_repositories_project').on('registry_repositories').column('project').execute();

      await db.schema
        .createTable('registry_blobs')
        .addColumn('digest', 'varchar(200)', (column) => column.primaryKey())
        .addColumn('size', 'bigint', (column) => column.notNull())
        .addColumn('created_at', 'varchar(40)', (column) => column.notNull())
        .execute();

      await db.schema
        .createTable('registry_repository_blobs')
        .addColumn('repository', 'varchar(255)', (column) => column.notNull())
        .addColumn('digest', 'varchar(200)', (column) => column.notNull().references('registry_blobs.digest').onDelete('cascade'))
        .addColumn('created_at', 'varchar(40)', (column) => column.notNull())
        .addPrimaryKeyConstraint('registry_repository_blobs_pk', ['repository', 'digest'])
        .execute();
      await db.schema.createIndex('registry_repository_blobs_digest').on('registry_repository_blobs').column('digest').execute();

      await db.schema
        .createTable('registry_manifests')
        .addColumn('id', 'integer', (column) => column.primaryKey().autoIncrement())
        .addColumn('repository_id', 'integer', (column) => column.notNull().references('registry_repositories.id').onDelete('cascade'))
        .addColumn('digest', 'varchar(200)', (column) => column.notNull())
        .addColumn('media_type', 'varchar(255)', (column) => column.notNull())
        .addColumn('artifact_type', 'varchar(255)')
        .addColumn('config_media_type', 'varchar(255)')
        .addColumn('subject_digest', 'varchar(200)')
        .addColumn('size', 'bigint', (column) => column.notNull())
        .addColumn('annotations', 'text')
        .addColumn('pushed_at', 'varchar(40)', (column) => column.notNull())
        .addColumn('pulled_at', 'varchar(40)')
        .addUniqueConstraint('registry_manifests_repository_digest', ['repository_id', 'digest'])
        .execute();
      await db.schema.createIndex('registry_manifests_subject').on('registry_manifests').columns(['repository_id', 'subject_digest']).execute();

      await db.schema
        .createTable('registry_manifest_references')
        .addColumn('manifest_id', 'integer', (column) => column.notNull().references('registry_manifests.id').onDelete('cascade'))
        .addColumn('digest', 'varchar(200)', (column) => column.notNull())
        /** `config`, `layer`, `manifest` (child of an index) or `subject`. */
        .addColumn('kind', 'varchar(20)', (column) => column.notNull())
        .addColumn('media_type', 'varchar(255)')
        .addColumn('size', 'bigint')
        .addColumn('platform', 'text')
        .addColumn('annotations', 'text')
        .addPrimaryKeyConstraint('registry_manifest_references_pk', ['manifest_id', 'digest', 'kind'])
        .execute();
      await db.schema.createIndex('registry_manifest_references_digest').on('registry_manifest_references').columns(['digest', 'kind']).execute();

      await db.schema
        .createTable('registry_tags')
        .addColumn('id', 'integer', (column) => column.primaryKey().autoIncrement())
        .addColumn('repository_id', 'integer', (column) => column.notNull().references('registry_repositories.id').onDelete('cascade'))
        .addColumn('name', 'varchar(128)', (column) => column.notNull())
        .addColumn('manifest_id', 'integer', (column) => column.notNull().references('registry_manifests.id').onDelete('cascade'))
        .addColumn('pushed_at', 'varchar(40)', (column) => column.notNull())
        .addUniqueConstraint('registry_tags_repository_name', ['repository_id', 'name'])
        .execute();
      await db.schema.createIndex('registry_tags_manifest').on('registry_tags').column('manifest_id').execute();

      await db.schema
        .createTable('registry_uploads')
        .addColumn('id', 'varchar(64)', (column) => column.primaryKey())
        .addColumn('repository', 'varchar(255)', (column) => column.notNull())
        .addColumn('started_at', 'varchar(40)', (column) => column.notNull())
        .execute();

      await db.schema
        .createTable('registry_events')
        .addColumn('id', 'integer', (column) => column.primaryKey().autoIncrement())
        .addColumn('type', 'varchar(40)', (column) => column.notNull())
        .addColumn('repository', 'varchar(255)', (column) => column.notNull())
        .addColumn('digest', 'varchar(200)', (column) => column.notNull())
        .addColumn('tag', 'varchar(128)')
        .addColumn('media_type', 'varchar(255)', (column) => column.notNull())
        .addColumn('artifact_type', 'varchar(255)')
        .addColumn('config_media_type', 'varchar(255)')
        .addColumn('actor', 'varchar(255)')
        .addColumn('occurred_at', 'varchar(40)', (column) => column.notNull())
        .execute();
      await db.schema.createIndex('registry_events_occurred').on('registry_events').column('occurred_at').execute();
    },
  },
  {
    // `tag.changed` events carry the digest a moved tag pointed to before; 0001 had no place for it.
    name: 'registry/0002-event-previous-digest',
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('registry_events').addColumn('previous_digest', 'varchar(200)').execute();
    },
  },
];
