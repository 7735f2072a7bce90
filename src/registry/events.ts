import type { Kysely } from 'kysely';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import type { RegistryTables } from './metadata/schema.js';

export const REGISTRY_EVENT_TYPES = ['artifact.pushed', 'artifact.deleted', 'tag.changed', 'tag.deleted'] as const;
export type RegistryEventType = (typeof REGISTRY_EVENT_TYPES)[number];

function isEventType(value: string): value is RegistryEventType {
  return (REGISTRY_EVENT_TYPES as readonly string[]).includes(value);
}

/**
 * Something that happened to an artifact. Enough to decide what to do without a lookup: the
 * scanner scans `artifact.pushed` images (configMediaType `application/vnd.oci.image.config.v1+json`
 * or Docker's) and skips Helm charts (`application/vnd.cncf.helm.config.v1+json`) and signatures.
 */
export interface RegistryEvent {
  type: RegistryEventType;
  /** `project/repo[/…]` */
  repository: string;
  digest: string;
  /** The manifest media type. */
  mediaType: string;
  /** The tag pushed, moved or deleted, when there is one. */
  tag?: string;
  /** For `tag.changed`: the digest the tag pointed to before. */
  previousDigest?: string;
  /** `artifactType` of the manifest, or its config media type. */
  artifactType?: string;
  configMediaType?: string;
  /** Who did it (user or robot name); absent for anonymous or system actions. */
  actor?: string;
  occurredAt: Date;
}

export type RegistryEventListener = (event: RegistryEvent) => void | Promise<void>;

/**
 * In-process delivery of registry events. Each event is recorded in `registry_events` first, then
 * handed to every subscriber; a subscriber that throws or rejects is logged and does not affect the
 * others or the request that caused the event. Delivery happens after the response's data is
 * committed, so a subscriber reading the registry sees the artifact.
 */
export class RegistryEvents {
  readonly #db: Kysely<RegistryTables>;
  readonly #logger: Logger;
  readonly #listeners = new Set<RegistryEventListener>();
  readonly #pending = new Set<Promise<void>>();

  constructor(db: Kysely<unknown>, logger: Logger) {
    this.#db = db as Kysely<RegistryTables>;
    this.#logger = logger;
  }

  /** Adds a listener; returns a function that removes it. */
  subscribe(listener: RegistryEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Records the event, then delivers it to every listener without waiting for them. */
  async emit(event: RegistryEvent): Promise<void> {
    await this.#db
      .insertInto('registry_events')
      .values({
        type: event.type,
        repository: event.repository,
        digest: event.digest,
        tag: event.tag ?? null,
        previous_digest: event.previousDigest ?? null,
        media_type: event.mediaType,
        artifact_type: event.artifactType ?? null,
        config_media_type: event.configMediaType ?? null,
        actor: event.actor ?? null,
        occurred_at: event.occurredAt.toISOString(),
      })
      .execute();
    for (const listener of this.#listeners) {
      const delivery = (async () => {
        try {
          await listener(event);
        } catch (error) {
          this.#logger.error({ [F.err]: error, [F.repository]: event.repository, [F.digest]: event.digest, type: event.type }, 'registry event listener failed');
        }
      })();
      this.#pending.add(delivery);
      void delivery.finally(() => this.#pending.delete(delivery));
    }
  }

  /** The most recent recorded events, newest first. */
  async recent(limit = 100): Promise<RegistryEvent[]> {
    const rows = await this.#db.selectFrom('registry_events').selectAll().orderBy('id', 'desc').limit(limit).execute();
    // Rows of a type this version does not know (written by a newer one) are skipped.
    return rows.flatMap(({ type, ...row }) => (isEventType(type) ? [{ ...row, type }] : [])).map((row) => ({
      type: row.type,
      repository: row.repository,
      digest: row.digest,
      mediaType: row.media_type,
      ...(row.tag !== null ? { tag: row.tag } : {}),
      ...(row.previous_digest !== null ? { previousDigest: row.previous_digest } : {}),
      ...(row.artifact_type !== null ? { artifactType: row.artifact_type } : {}),
      ...(row.config_media_type !== null ? { configMediaType: row.config_media_type } : {}),
      ...(row.actor !== null ? { actor: row.actor } : {}),
      occurredAt: new Date(row.occurred_at),
    }));
  }

  /** Waits for deliveries in flight (used on close and by tests). */
  async settle(): Promise<void> {
    await Promise.all([...this.#pending]);
  }
}
