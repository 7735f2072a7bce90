import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type OpenDatabase } from '../db/database.js';
import { silentLogger } from '../log/logger.js';
import { pushImage } from '../../test/registry/oci-client.js';
import { startTestRegistry } from '../../test/helpers/registry.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { RegistryEvents, type RegistryEvent } from './events.js';
import { registryMigrations } from './metadata/migrations.js';

const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function freshDatabase(): OpenDatabase<unknown> {
  const dir = tempDir('portcullis-events-');
  const database = openDatabase<unknown>({ sqlitePath: join(dir.path, 'portcullis.db') });
  cleanups.push(() => dir.remove(), () => database.close());
  return database;
}

const moved: RegistryEvent = {
  type: 'tag.changed',
  repository: 'team/app',
  digest: DIGEST_B,
  mediaType: OCI_MANIFEST,
  tag: 'latest',
  previousDigest: DIGEST_A,
  configMediaType: 'application/vnd.oci.image.config.v1+json',
  actor: 'alice',
  occurredAt: new Date('2026-01-01T00:00:00.000Z'),
};

describe('recorded registry events', () => {
  it('keep the digest a moved tag pointed to before', async () => {
    const database = freshDatabase();
    await migrate(database.db, registryMigrations);
    const events = new RegistryEvents(database.db, silentLogger());
    await events.emit(moved);
    expect(await events.recent()).toEqual([moved]);
  });

  it('are read back without previousDigest when recorded before its column existed', async () => {
    const database = freshDatabase();
    const [core] = registryMigrations;
    await migrate(database.db, core ? [core] : []);
    const before = new RegistryEvents(database.db, silentLogger());
    const pushed: RegistryEvent = { type: 'artifact.pushed', repository: 'team/app', digest: DIGEST_A, mediaType: OCI_MANIFEST, tag: 'latest', occurredAt: new Date('2025-12-31T00:00:00.000Z') };
    // What a version without the column wrote: the row has no previous_digest.
    await sql`insert into registry_events (type, repository, digest, tag, media_type, occurred_at)
      values (${pushed.type}, ${pushed.repository}, ${pushed.digest}, ${pushed.tag}, ${pushed.mediaType}, ${pushed.occurredAt.toISOString()})`.execute(database.db);
    await migrate(database.db, registryMigrations);
    await before.emit(moved);
    expect(await before.recent()).toEqual([moved, pushed]);
  });

  it('record a tag moved by a manifest push with the digest it left', async () => {
    const registry = await startTestRegistry();
    cleanups.push(() => registry.close());
    const first = await pushImage(registry, 'library/moving', 'v1', { seed: 'first' });
    const second = await pushImage(registry, 'library/moving', 'v2', { seed: 'second' });
    const response = await registry.call('/v2/library/moving/manifests/v1', { method: 'PUT', body: second.manifest, headers: { 'content-type': OCI_MANIFEST } });
    expect(response.status).toBe(201);
    const [latest] = await registry.role.events.recent(1);
    expect(latest).toMatchObject({ type: 'tag.changed', repository: 'library/moving', tag: 'v1', digest: second.digest, previousDigest: first.digest });
  });
});
