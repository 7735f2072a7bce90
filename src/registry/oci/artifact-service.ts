import { LRUCache } from 'lru-cache';
import { PortcullisError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import { F } from '../../log/fields.js';
import type { RegistryEvents } from '../events.js';
import type { ManifestRow, RegistryMetadata } from '../metadata/store.js';
import type { BlobStore } from '../storage/blob-store.js';
import { digestOf } from './digest.js';
import { manifestUnknown } from './errors.js';
import { parseManifest, type ParsedManifest } from './manifest.js';
import { looksLikeDigest } from './digest.js';
import type { RepositoryName } from './names.js';

/** Manifest bytes kept in memory, by digest (manifests are immutable, so the cache never goes stale). */
const MANIFEST_CACHE_BYTES = 32 * 1024 * 1024;
/** How long pull counts are gathered before they are written. */
const PULL_FLUSH_MS = 1000;

export interface PushedManifest {
  digest: string;
  parsed: ParsedManifest;
}

/**
 * The operations on artifacts that both the OCI routes and the Harbor API perform: push, resolve,
 * delete of manifests and tags, each emitting its event after the change is committed.
 */
export class ArtifactService {
  readonly #metadata: RegistryMetadata;
  readonly #blobs: BlobStore;
  readonly #events: RegistryEvents;
  readonly #logger: Logger;
  readonly #now: () => Date;
  readonly #content = new LRUCache<string, Buffer>({ maxSize: MANIFEST_CACHE_BYTES, sizeCalculation: (value) => Math.max(1, value.length) });
  readonly #pulls = new Map<number, { row: ManifestRow; count: number }>();
  #flushTimer: NodeJS.Timeout | undefined;

  constructor(deps: { metadata: RegistryMetadata; blobs: BlobStore; events: RegistryEvents; logger: Logger; now: () => Date }) {
    this.#metadata = deps.metadata;
    this.#blobs = deps.blobs;
    this.#events = deps.events;
    this.#logger = deps.logger;
    this.#now = deps.now;
  }

  /**
   * Validates and stores a manifest pushed as `reference` (a tag or its digest). Throws
   * REGISTRY_MANIFEST_INVALID, REGISTRY_DIGEST_INVALID (reference digest differs from the content)
   * or REGISTRY_MANIFEST_BLOB_UNKNOWN (listing what is missing).
   */
  async push(name: RepositoryName, reference: string, body: Buffer, contentType: string | undefined, actor: string | undefined): Promise<PushedManifest> {
    const parsed = parseManifest(body, contentType);
    const isDigestReference = looksLikeDigest(reference);
    const digest = digestOf(body, isDigestReference && reference.startsWith('sha512:') ? 'sha512' : 'sha256');
    if (isDigestReference && digest !== reference) {
      throw new PortcullisError('REGISTRY_DIGEST_INVALID', `manifest pushed as ${reference} has digest ${digest}`, { detail: { expected: reference, actual: digest } });
    }
    const missingBlobs = await this.#metadata.missingBlobs(name.full, parsed.blobs);
    const missingChildren = await this.#metadata.missingManifests(name.full, parsed.children);
    if (missingBlobs.length > 0 || missingChildren.length > 0) {
      const what = [...missingBlobs.map((d) => `blob ${d}`), ...missingChildren.map((d) => `manifest ${d}`)];
      throw new PortcullisError('REGISTRY_MANIFEST_BLOB_UNKNOWN', `manifest references what repository ${name.full} does not have: ${what.join(', ')}`, {
        detail: { blobs: missingBlobs, manifests: missingChildren },
      });
    }
    await this.#blobs.putContent(name.full, digest, body);
    this.#content.set(digest, body);
    const tag = isDigestReference ? undefined : reference;
    const result = await this.#metadata.putManifest({
      repository: name.full,
      project: name.project,
      digest,
      mediaType: parsed.mediaType,
      ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
      ...(parsed.configMediaType ? { configMediaType: parsed.configMediaType } : {}),
      ...(parsed.subject ? { subjectDigest: parsed.subject } : {}),
      ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
      size: body.length,
      references: parsed.references,
      ...(tag !== undefined ? { tag } : {}),
    });
    const base = {
      repository: name.full,
      digest,
      mediaType: parsed.mediaType,
      ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
      ...(parsed.configMediaType ? { configMediaType: parsed.configMediaType } : {}),
      ...(actor ? { actor } : {}),
      occurredAt: this.#now(),
    };
    if (result.created) await this.#events.emit({ ...base, type: 'artifact.pushed', ...(tag !== undefined ? { tag } : {}) });
    // A new manifest's tag is part of its push event; a tag created on or moved to a stored one is its own event.
    if (tag !== undefined && result.tagChanged && (!result.created || result.previousTagDigest !== undefined)) {
      await this.#events.emit({ ...base, type: 'tag.changed', tag, ...(result.previousTagDigest ? { previousDigest: result.previousTagDigest } : {}) });
    }
    return { digest, parsed };
  }

  /** The manifest `reference` (tag or digest) of `repository`; throws REGISTRY_MANIFEST_UNKNOWN. */
  async resolve(repository: string, reference: string): Promise<ManifestRow> {
    const row = looksLikeDigest(reference) ? await this.#metadata.manifestByDigest(repository, reference) : await this.#metadata.manifestByTag(repository, reference);
    if (!row) throw manifestUnknown(repository, reference);
    return row;
  }

  /** The bytes of a stored manifest. */
  async content(digest: string): Promise<Buffer> {
    const cached = this.#content.get(digest);
    if (cached) return cached;
    const body = await this.#blobs.read(digest);
    this.#content.set(digest, body);
    return body;
  }

  /**
   * Counts a pull. Writes are batched (at most one per manifest per PULL_FLUSH_MS) so that GETs never
   * wait on them and a burst of pulls costs a handful of updates; `flushPulls` writes what is pending.
   */
  recordPull(row: ManifestRow): void {
    const pending = this.#pulls.get(row.id);
    if (pending) pending.count += 1;
    else this.#pulls.set(row.id, { row, count: 1 });
    if (this.#flushTimer) return;
    this.#flushTimer = setTimeout(() => void this.flushPulls(), PULL_FLUSH_MS);
    // Pending statistics never keep the process alive; close() flushes them.
    this.#flushTimer.unref();
  }

  async flushPulls(): Promise<void> {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const pending = [...this.#pulls.values()];
    this.#pulls.clear();
    for (const { row, count } of pending) {
      try {
        await this.#metadata.recordPull(row, count);
      } catch (error) {
        // Pull statistics are best-effort: a failed update must not fail or delay pulls.
        this.#logger.warn({ [F.err]: error, [F.digest]: row.digest }, 'pull not counted');
      }
    }
  }

  /** Deletes the manifest `digest` with its tags. Throws REGISTRY_MANIFEST_UNKNOWN. */
  async deleteManifest(repository: string, digest: string, actor: string | undefined): Promise<void> {
    const deleted = await this.#metadata.deleteManifest(repository, digest);
    if (!deleted) throw manifestUnknown(repository, digest);
    await this.#metadata.unlinkBlob(repository, digest);
    await this.#events.emit({
      type: 'artifact.deleted',
      repository,
      digest,
      mediaType: deleted.row.mediaType,
      ...(deleted.row.artifactType ? { artifactType: deleted.row.artifactType } : {}),
      ...(deleted.row.configMediaType ? { configMediaType: deleted.row.configMediaType } : {}),
      ...(deleted.tags[0] !== undefined ? { tag: deleted.tags[0] } : {}),
      ...(actor ? { actor } : {}),
      occurredAt: this.#now(),
    });
  }

  /** Removes a tag (the manifest stays). Throws REGISTRY_MANIFEST_UNKNOWN when the tag is absent. */
  async deleteTag(repository: string, tag: string, actor: string | undefined): Promise<void> {
    const row = await this.#metadata.deleteTag(repository, tag);
    if (!row) throw manifestUnknown(repository, tag);
    await this.#events.emit({
      type: 'tag.deleted',
      repository,
      digest: row.digest,
      mediaType: row.mediaType,
      tag,
      ...(row.artifactType ? { artifactType: row.artifactType } : {}),
      ...(row.configMediaType ? { configMediaType: row.configMediaType } : {}),
      ...(actor ? { actor } : {}),
      occurredAt: this.#now(),
    });
  }

  /** Points `tag` at the manifest `digest`. Throws REGISTRY_MANIFEST_UNKNOWN when the manifest is absent. */
  async addTag(repository: string, tag: string, row: ManifestRow, actor: string | undefined): Promise<void> {
    const result = await this.#metadata.tagManifest(repository, tag, row.digest);
    if (!result) throw manifestUnknown(repository, row.digest);
    if (!result.changed) return;
    await this.#events.emit({
      type: 'tag.changed',
      repository,
      digest: row.digest,
      mediaType: row.mediaType,
      tag,
      ...(result.previousDigest ? { previousDigest: result.previousDigest } : {}),
      ...(row.artifactType ? { artifactType: row.artifactType } : {}),
      ...(row.configMediaType ? { configMediaType: row.configMediaType } : {}),
      ...(actor ? { actor } : {}),
      occurredAt: this.#now(),
    });
  }

  /** Deletes a whole repository; emits `artifact.deleted` for each manifest. Throws REGISTRY_NAME_UNKNOWN. */
  async deleteRepository(repository: string, actor: string | undefined): Promise<void> {
    const removed = await this.#metadata.deleteRepository(repository);
    if (!removed) throw new PortcullisError('REGISTRY_NAME_UNKNOWN', `repository ${repository} is not known`);
    for (const row of removed) {
      await this.#events.emit({
        type: 'artifact.deleted',
        repository,
        digest: row.digest,
        mediaType: row.mediaType,
        ...(row.artifactType ? { artifactType: row.artifactType } : {}),
        ...(row.configMediaType ? { configMediaType: row.configMediaType } : {}),
        ...(actor ? { actor } : {}),
        occurredAt: this.#now(),
      });
    }
  }
}
