import type { Generated } from 'kysely';

/** The registry's tables as Kysely sees them (created by ./migrations.ts). Times are ISO-8601 strings. */
export interface RegistryTables {
  registry_repositories: {
    id: Generated<number>;
    name: string;
    project: string;
    pull_count: Generated<number>;
    created_at: string;
    updated_at: string;
  };
  registry_blobs: { digest: string; size: number; created_at: string };
  registry_repository_blobs: { repository: string; digest: string; created_at: string };
  registry_manifests: {
    id: Generated<number>;
    repository_id: number;
    digest: string;
    media_type: string;
    artifact_type: string | null;
    config_media_type: string | null;
    subject_digest: string | null;
    size: number;
    /** JSON object of the manifest's annotations, or null. */
    annotations: string | null;
    pushed_at: string;
    pulled_at: string | null;
  };
  registry_manifest_references: {
    manifest_id: number;
    digest: string;
    kind: ReferenceKind;
    media_type: string | null;
    size: number | null;
    /** JSON of an index child's platform, or null. */
    platform: string | null;
    annotations: string | null;
  };
  registry_tags: { id: Generated<number>; repository_id: number; name: string; manifest_id: number; pushed_at: string };
  registry_uploads: { id: string; repository: string; started_at: string };
  registry_events: {
    id: Generated<number>;
    type: string;
    repository: string;
    digest: string;
    tag: string | null;
    /** Since migration registry/0002: the digest a moved tag pointed to before (`tag.changed`). */
    previous_digest: string | null;
    media_type: string;
    artifact_type: string | null;
    config_media_type: string | null;
    actor: string | null;
    occurred_at: string;
  };
}

export type ReferenceKind = 'config' | 'layer' | 'manifest' | 'subject';
