import type { Kysely, Transaction } from 'kysely';
import type { ReferenceKind, RegistryTables } from './schema.js';

export interface RepositoryRow {
  id: number;
  name: string;
  project: string;
  pullCount: number;
  createdAt: string;
  updatedAt: string;
}

export interface ManifestRow {
  id: number;
  repositoryId: number;
  digest: string;
  mediaType: string;
  artifactType: string | null;
  configMediaType: string | null;
  subjectDigest: string | null;
  size: number;
  annotations: Record<string, string> | null;
  pushedAt: string;
  pulledAt: string | null;
}

export interface ManifestReference {
  digest: string;
  kind: ReferenceKind;
  mediaType?: string;
  size?: number;
  platform?: Record<string, unknown>;
  annotations?: Record<string, string>;
}

export interface NewManifest {
  repository: string;
  project: string;
  digest: string;
  mediaType: string;
  artifactType?: string;
  configMediaType?: string;
  subjectDigest?: string;
  size: number;
  annotations?: Record<string, string>;
  references: ManifestReference[];
  tag?: string;
}

export interface TagRow {
  id: number;
  name: string;
  manifestId: number;
  digest: string;
  pushedAt: string;
}

/** A page of names: `next` is the last name returned when more may follow. */
export interface NamePage {
  names: string[];
  more: boolean;
}

type Db = Kysely<RegistryTables>;
type Executor = Db | Transaction<RegistryTables>;

function parseJsonObject<T>(text: string | null): T | null {
  if (text === null) return null;
  const value: unknown = JSON.parse(text);
  return value !== null && typeof value === 'object' ? (value as T) : null;
}

const MANIFEST_COLUMNS = [
  'm.id',
  'm.repository_id',
  'm.digest',
  'm.media_type',
  'm.artifact_type',
  'm.config_media_type',
  'm.subject_digest',
  'm.size',
  'm.annotations',
  'm.pushed_at',
  'm.pulled_at',
] as const;

function toManifest(row: {
  id: number;
  repository_id: number;
  digest: string;
  media_type: string;
  artifact_type: string | null;
  config_media_type: string | null;
  subject_digest: string | null;
  size: number;
  annotations: string | null;
  pushed_at: string;
  pulled_at: string | null;
}): ManifestRow {
  return {
    id: row.id,
    repositoryId: row.repository_id,
    digest: row.digest,
    mediaType: row.media_type,
    artifactType: row.artifact_type,
    configMediaType: row.config_media_type,
    subjectDigest: row.subject_digest,
    size: Number(row.size),
    annotations: parseJsonObject<Record<string, string>>(row.annotations),
    pushedAt: row.pushed_at,
    pulledAt: row.pulled_at,
  };
}

/**
 * The registry's metadata in the database: repositories, blob links, manifests with their
 * references, tags and upload sessions. Every method is one statement or one transaction, so a
 * crash leaves either the old or the new state. Names passed in are already validated.
 */
export class RegistryMetadata {
  readonly #db: Db;
  readonly #now: () => Date;

  constructor(db: Kysely<unknown>, now: () => Date = () => new Date()) {
    this.#db = db as Kysely<RegistryTables>;
    this.#now = now;
  }

  #timestamp(): string {
    return this.#now().toISOString();
  }

  // ---- blobs ----

  /** Records a committed blob and links it to `repository`. Idempotent. */
  async linkBlob(repository: string, digest: string, size: number): Promise<void> {
    const now = this.#timestamp();
    await this.#db.transaction().execute(async (trx) => {
      await trx.insertInto('registry_blobs').values({ digest, size, created_at: now }).onConflict((oc) => oc.column('digest').doNothing()).execute();
      await trx
        .insertInto('registry_repository_blobs')
        .values({ repository, digest, created_at: now })
        .onConflict((oc) => oc.columns(['repository', 'digest']).doNothing())
        .execute();
    });
  }

  /** The size of `digest` when it is linked to `repository`; undefined otherwise. */
  async blobInRepository(repository: string, digest: string): Promise<number | undefined> {
    const row = await this.#db
      .selectFrom('registry_repository_blobs as l')
      .innerJoin('registry_blobs as b', 'b.digest', 'l.digest')
      .select('b.size')
      .where('l.repository', '=', repository)
      .where('l.digest', '=', digest)
      .executeTakeFirst();
    return row ? Number(row.size) : undefined;
  }

  /** Up to `limit` repositories that hold a link to `digest` (candidates for a mount). */
  async repositoriesWithBlob(digest: string, limit: number): Promise<string[]> {
    const rows = await this.#db.selectFrom('registry_repository_blobs').select('repository').where('digest', '=', digest).orderBy('repository').limit(limit).execute();
    return rows.map((row) => row.repository);
  }

  /** Removes the link of `digest` to `repository`; false when there was none. */
  async unlinkBlob(repository: string, digest: string): Promise<boolean> {
    const result = await this.#db.deleteFrom('registry_repository_blobs').where('repository', '=', repository).where('digest', '=', digest).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Digests among `digests` not linked to `repository`. */
  async missingBlobs(repository: string, digests: readonly string[]): Promise<string[]> {
    if (digests.length === 0) return [];
    const rows = await this.#db.selectFrom('registry_repository_blobs').select('digest').where('repository', '=', repository).where('digest', 'in', [...digests]).execute();
    const present = new Set(rows.map((row) => row.digest));
    return digests.filter((digest) => !present.has(digest));
  }

  // ---- repositories ----

  async repository(name: string): Promise<RepositoryRow | undefined> {
    const row = await this.#db.selectFrom('registry_repositories').selectAll().where('name', '=', name).executeTakeFirst();
    return row && { id: row.id, name: row.name, project: row.project, pullCount: Number(row.pull_count), createdAt: row.created_at, updatedAt: row.updated_at };
  }

  /** Repository names in lexical order after `last`, at most `n` (the catalog). */
  async catalog(n: number, last?: string): Promise<NamePage> {
    let query = this.#db.selectFrom('registry_repositories').select('name').orderBy('name').limit(n + 1);
    if (last !== undefined) query = query.where('name', '>', last);
    const rows = await query.execute();
    return { names: rows.slice(0, n).map((row) => row.name), more: rows.length > n };
  }

  /** Repositories of `project` with their artifact counts, by name, for one page. */
  async projectRepositories(project: string, page: { offset: number; limit: number; nameContains?: string }): Promise<{ rows: (RepositoryRow & { artifactCount: number })[]; total: number }> {
    let base = this.#db.selectFrom('registry_repositories as r').where('r.project', '=', project);
    if (page.nameContains) base = base.where('r.name', 'like', `%${page.nameContains.replace(/[%_\\]/g, (c) => `\\${c}`)}%`);
    const total = await base.select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
    const rows = await base
      .selectAll('r')
      .select((eb) => eb.selectFrom('registry_manifests as m').whereRef('m.repository_id', '=', 'r.id').select((e) => e.fn.countAll<number>().as('c')).as('artifact_count'))
      .orderBy('r.name')
      .offset(page.offset)
      .limit(page.limit)
      .execute();
    return {
      total: Number(total.count),
      rows: rows.map((row) => ({
        id: row.id,
        name: row.name,
        project: row.project,
        pullCount: Number(row.pull_count),
        createdAt: row.created_at,
        updatedAt: row.updated_at,
        artifactCount: Number(row.artifact_count ?? 0),
      })),
    };
  }

  async artifactCount(repositoryId: number): Promise<number> {
    const row = await this.#db.selectFrom('registry_manifests').select((eb) => eb.fn.countAll<number>().as('count')).where('repository_id', '=', repositoryId).executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /**
   * Deletes the repository with its manifests, tags and blob links; returns the manifests that
   * were removed (for events), or undefined when there was no such repository.
   */
  async deleteRepository(name: string): Promise<ManifestRow[] | undefined> {
    return this.#db.transaction().execute(async (trx) => {
      const repository = await trx.selectFrom('registry_repositories').select('id').where('name', '=', name).executeTakeFirst();
      if (!repository) return undefined;
      const manifests = await trx.selectFrom('registry_manifests as m').select(MANIFEST_COLUMNS).where('m.repository_id', '=', repository.id).execute();
      await trx.deleteFrom('registry_repositories').where('id', '=', repository.id).execute();
      await trx.deleteFrom('registry_repository_blobs').where('repository', '=', name).execute();
      return manifests.map(toManifest);
    });
  }

  /** Counts `count` pulls of a manifest (Harbor's pull_count / pull_time). */
  async recordPull(manifest: ManifestRow, count = 1): Promise<void> {
    const now = this.#timestamp();
    await this.#db.updateTable('registry_manifests').set({ pulled_at: now }).where('id', '=', manifest.id).execute();
    await this.#db.updateTable('registry_repositories').set((eb) => ({ pull_count: eb('pull_count', '+', count) })).where('id', '=', manifest.repositoryId).execute();
  }

  // ---- manifests ----

  /**
   * Stores a manifest (idempotent for the same digest) with its references and, when given, points
   * `tag` at it. Returns the row, whether it is new, whether the tag was created or moved, and the
   * digest the tag pointed to before when it moved.
   */
  async putManifest(manifest: NewManifest): Promise<{ row: ManifestRow; created: boolean; tagChanged: boolean; previousTagDigest?: string }> {
    const now = this.#timestamp();
    return this.#db.transaction().execute(async (trx) => {
      const repositoryId = await this.#ensureRepository(trx, manifest.repository, manifest.project, now);
      let existing = await trx.selectFrom('registry_manifests as m').select(MANIFEST_COLUMNS).where('m.repository_id', '=', repositoryId).where('m.digest', '=', manifest.digest).executeTakeFirst();
      const created = existing === undefined;
      if (!existing) {
        const inserted = await trx
          .insertInto('registry_manifests')
          .values({
            repository_id: repositoryId,
            digest: manifest.digest,
            media_type: manifest.mediaType,
            artifact_type: manifest.artifactType ?? null,
            config_media_type: manifest.configMediaType ?? null,
            subject_digest: manifest.subjectDigest ?? null,
            size: manifest.size,
            annotations: manifest.annotations ? JSON.stringify(manifest.annotations) : null,
            pushed_at: now,
            pulled_at: null,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        if (manifest.references.length > 0) {
          await trx
            .insertInto('registry_manifest_references')
            .values(
              manifest.references.map((reference) => ({
                manifest_id: inserted.id,
                digest: reference.digest,
                kind: reference.kind,
                media_type: reference.mediaType ?? null,
                size: reference.size ?? null,
                platform: reference.platform ? JSON.stringify(reference.platform) : null,
                annotations: reference.annotations ? JSON.stringify(reference.annotations) : null,
              })),
            )
            .onConflict((oc) => oc.columns(['manifest_id', 'digest', 'kind']).doNothing())
            .execute();
        }
        existing = await trx.selectFrom('registry_manifests as m').select(MANIFEST_COLUMNS).where('m.id', '=', inserted.id).executeTakeFirstOrThrow();
      }
      const row = toManifest(existing);
      await trx.updateTable('registry_repositories').set({ updated_at: now }).where('id', '=', repositoryId).execute();
      if (manifest.tag === undefined) return { row, created, tagChanged: false };
      const tag = await this.#setTag(trx, repositoryId, manifest.tag, row.id, now);
      return { row, created, tagChanged: tag.changed, ...(tag.previous !== undefined ? { previousTagDigest: tag.previous } : {}) };
    });
  }

  async #ensureRepository(trx: Executor, name: string, project: string, now: string): Promise<number> {
    const found = await trx.selectFrom('registry_repositories').select('id').where('name', '=', name).executeTakeFirst();
    if (found) return found.id;
    const inserted = await trx.insertInto('registry_repositories').values({ name, project, created_at: now, updated_at: now }).returning('id').executeTakeFirstOrThrow();
    return inserted.id;
  }

  /** Points `tag` at `manifestId`: whether anything changed, and the digest it pointed to before when it moved. */
  async #setTag(trx: Executor, repositoryId: number, tag: string, manifestId: number, now: string): Promise<{ changed: boolean; previous?: string }> {
    const current = await trx
      .selectFrom('registry_tags as t')
      .innerJoin('registry_manifests as m', 'm.id', 't.manifest_id')
      .select(['t.id', 't.manifest_id', 'm.digest'])
      .where('t.repository_id', '=', repositoryId)
      .where('t.name', '=', tag)
      .executeTakeFirst();
    if (current && current.manifest_id === manifestId) return { changed: false };
    if (current) {
      await trx.updateTable('registry_tags').set({ manifest_id: manifestId, pushed_at: now }).where('id', '=', current.id).execute();
      return { changed: true, previous: current.digest };
    }
    await trx.insertInto('registry_tags').values({ repository_id: repositoryId, name: tag, manifest_id: manifestId, pushed_at: now }).execute();
    return { changed: true };
  }

  /** Points `tag` of `repository` at the manifest `digest` (Harbor's "add tag"); see #setTag. */
  async tagManifest(repository: string, tag: string, digest: string): Promise<{ changed: boolean; previousDigest?: string } | undefined> {
    const now = this.#timestamp();
    return this.#db.transaction().execute(async (trx) => {
      const manifest = await trx
        .selectFrom('registry_manifests as m')
        .innerJoin('registry_repositories as r', 'r.id', 'm.repository_id')
        .select(['m.id', 'm.repository_id'])
        .where('r.name', '=', repository)
        .where('m.digest', '=', digest)
        .executeTakeFirst();
      if (!manifest) return undefined;
      const result = await this.#setTag(trx, manifest.repository_id, tag, manifest.id, now);
      return { changed: result.changed, ...(result.previous !== undefined ? { previousDigest: result.previous } : {}) };
    });
  }

  async manifestByDigest(repository: string, digest: string): Promise<ManifestRow | undefined> {
    const row = await this.#db
      .selectFrom('registry_manifests as m')
      .innerJoin('registry_repositories as r', 'r.id', 'm.repository_id')
      .select(MANIFEST_COLUMNS)
      .where('r.name', '=', repository)
      .where('m.digest', '=', digest)
      .executeTakeFirst();
    return row && toManifest(row);
  }

  async manifestByTag(repository: string, tag: string): Promise<ManifestRow | undefined> {
    const row = await this.#db
      .selectFrom('registry_tags as t')
      .innerJoin('registry_repositories as r', 'r.id', 't.repository_id')
      .innerJoin('registry_manifests as m', 'm.id', 't.manifest_id')
      .select(MANIFEST_COLUMNS)
      .where('r.name', '=', repository)
      .where('t.name', '=', tag)
      .executeTakeFirst();
    return row && toManifest(row);
  }

  async manifestById(id: number): Promise<ManifestRow | undefined> {
    const row = await this.#db.selectFrom('registry_manifests as m').select(MANIFEST_COLUMNS).where('m.id', '=', id).executeTakeFirst();
    return row && toManifest(row);
  }

  /** Digests among `digests` that are not manifests of `repository`. */
  async missingManifests(repository: string, digests: readonly string[]): Promise<string[]> {
    if (digests.length === 0) return [];
    const rows = await this.#db
      .selectFrom('registry_manifests as m')
      .innerJoin('registry_repositories as r', 'r.id', 'm.repository_id')
      .select('m.digest')
      .where('r.name', '=', repository)
      .where('m.digest', 'in', [...digests])
      .execute();
    const present = new Set(rows.map((row) => row.digest));
    return digests.filter((digest) => !present.has(digest));
  }

  async references(manifestId: number, kinds?: readonly ReferenceKind[]): Promise<ManifestReference[]> {
    let query = this.#db.selectFrom('registry_manifest_references').selectAll().where('manifest_id', '=', manifestId);
    if (kinds) query = query.where('kind', 'in', [...kinds]);
    const rows = await query.execute();
    return rows.map((row) => ({
      digest: row.digest,
      kind: row.kind,
      ...(row.media_type !== null ? { mediaType: row.media_type } : {}),
      ...(row.size !== null ? { size: Number(row.size) } : {}),
      ...(row.platform !== null ? { platform: parseJsonObject<Record<string, unknown>>(row.platform) ?? {} } : {}),
      ...(row.annotations !== null ? { annotations: parseJsonObject<Record<string, string>>(row.annotations) ?? {} } : {}),
    }));
  }

  /** Manifest ids of `repository` that are children of an index in the same repository. */
  async childManifestDigests(repositoryId: number): Promise<Set<string>> {
    const rows = await this.#db
      .selectFrom('registry_manifest_references as ref')
      .innerJoin('registry_manifests as m', 'm.id', 'ref.manifest_id')
      .select('ref.digest')
      .where('m.repository_id', '=', repositoryId)
      .where('ref.kind', '=', 'manifest')
      .execute();
    return new Set(rows.map((row) => row.digest));
  }

  /** Manifests of `repository` whose subject is `digest`, optionally of one artifact type. */
  async referrers(repository: string, digest: string, artifactType?: string): Promise<ManifestRow[]> {
    let query = this.#db
      .selectFrom('registry_manifests as m')
      .innerJoin('registry_repositories as r', 'r.id', 'm.repository_id')
      .select(MANIFEST_COLUMNS)
      .where('r.name', '=', repository)
      .where('m.subject_digest', '=', digest);
    if (artifactType !== undefined) query = query.where('m.artifact_type', '=', artifactType);
    return (await query.orderBy('m.id').execute()).map(toManifest);
  }

  /** Every manifest of the repository, newest first, for one page. */
  async manifests(repositoryId: number, page: { offset: number; limit: number; exclude?: ReadonlySet<string> }): Promise<{ rows: ManifestRow[]; total: number }> {
    const all = (await this.#db.selectFrom('registry_manifests as m').select(MANIFEST_COLUMNS).where('m.repository_id', '=', repositoryId).orderBy('m.id', 'desc').execute())
      .map(toManifest)
      .filter((row) => !page.exclude?.has(row.digest));
    return { rows: all.slice(page.offset, page.offset + page.limit), total: all.length };
  }

  /** Deletes the manifest `digest` of `repository` with its tags; returns it and the tags it had. */
  async deleteManifest(repository: string, digest: string): Promise<{ row: ManifestRow; tags: string[] } | undefined> {
    return this.#db.transaction().execute(async (trx) => {
      const found = await trx
        .selectFrom('registry_manifests as m')
        .innerJoin('registry_repositories as r', 'r.id', 'm.repository_id')
        .select(MANIFEST_COLUMNS)
        .where('r.name', '=', repository)
        .where('m.digest', '=', digest)
        .executeTakeFirst();
      if (!found) return undefined;
      const tags = await trx.selectFrom('registry_tags').select('name').where('manifest_id', '=', found.id).execute();
      await trx.deleteFrom('registry_tags').where('manifest_id', '=', found.id).execute();
      await trx.deleteFrom('registry_manifests').where('id', '=', found.id).execute();
      return { row: toManifest(found), tags: tags.map((tag) => tag.name) };
    });
  }

  // ---- tags ----

  async tags(repositoryId: number): Promise<TagRow[]> {
    const rows = await this.#db
      .selectFrom('registry_tags as t')
      .innerJoin('registry_manifests as m', 'm.id', 't.manifest_id')
      .select(['t.id', 't.name', 't.manifest_id', 'm.digest', 't.pushed_at'])
      .where('t.repository_id', '=', repositoryId)
      .orderBy('t.name')
      .execute();
    return rows.map((row) => ({ id: row.id, name: row.name, manifestId: row.manifest_id, digest: row.digest, pushedAt: row.pushed_at }));
  }

  /** Tag names of `repository` in lexical order after `last`, at most `n`. */
  async tagNames(repository: string, n: number, last?: string): Promise<NamePage> {
    let query = this.#db
      .selectFrom('registry_tags as t')
      .innerJoin('registry_repositories as r', 'r.id', 't.repository_id')
      .select('t.name')
      .where('r.name', '=', repository)
      .orderBy('t.name')
      .limit(n + 1);
    if (last !== undefined) query = query.where('t.name', '>', last);
    const rows = await query.execute();
    return { names: rows.slice(0, n).map((row) => row.name), more: rows.length > n };
  }

  /** Removes `tag` from `repository`; returns the manifest it pointed to, undefined when absent. */
  async deleteTag(repository: string, tag: string): Promise<ManifestRow | undefined> {
    return this.#db.transaction().execute(async (trx) => {
      const found = await trx
        .selectFrom('registry_tags as t')
        .innerJoin('registry_repositories as r', 'r.id', 't.repository_id')
        .innerJoin('registry_manifests as m', 'm.id', 't.manifest_id')
        .select([...MANIFEST_COLUMNS, 't.id as tag_id'])
        .where('r.name', '=', repository)
        .where('t.name', '=', tag)
        .executeTakeFirst();
      if (!found) return undefined;
      await trx.deleteFrom('registry_tags').where('id', '=', found.tag_id).execute();
      return toManifest(found);
    });
  }

  // ---- uploads ----

  async createUpload(id: string, repository: string): Promise<void> {
    await this.#db.insertInto('registry_uploads').values({ id, repository, started_at: this.#timestamp() }).execute();
  }

  async upload(id: string): Promise<{ id: string; repository: string; startedAt: string } | undefined> {
    const row = await this.#db.selectFrom('registry_uploads').selectAll().where('id', '=', id).executeTakeFirst();
    return row && { id: row.id, repository: row.repository, startedAt: row.started_at };
  }

  async deleteUpload(id: string): Promise<void> {
    await this.#db.deleteFrom('registry_uploads').where('id', '=', id).execute();
  }

  async uploadIds(): Promise<string[]> {
    return (await this.#db.selectFrom('registry_uploads').select('id').execute()).map((row) => row.id);
  }
}
