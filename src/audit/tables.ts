import { PostgresAdapter, type Generated, type Kysely } from 'kysely';

/**
 * The audit tables as Kysely sees them. Times are milliseconds since the epoch in a BIGINT
 * (PostgreSQL returns BIGINT as a string, hence `number | string` on reads; `toNumber` converts).
 * Booleans are 0/1 integers so that SQLite and PostgreSQL run the same statements.
 */
export type AuditTables = {
  audit_decisions: {
    id: Generated<number | string>;
    time_ms: number | string;
    uid: string;
    webhook: string;
    username: string;
    /** JSON array of group names. */
    groups: string;
    operation: string;
    namespace: string;
    kind: string;
    name: string;
    decision: string;
    mode: string;
    dry_run: number;
    duration_ms: number;
    /** JSON: DecisionRecord['images']. */
    images: string;
    /** JSON: PolicyResult[]. */
    results: string;
    /** JSON: string[]. */
    warnings: string;
    /** JSON: string[]. */
    patch: string;
  };
  /** One row per distinct (image, digest) of a decision: the `image` and `digest` filters use it. */
  audit_decision_images: {
    decision_id: number | string;
    time_ms: number | string;
    image: string;
    digest: string | null;
    /** 1 when the decision was a denial (summaries count without a join). */
    denied: number;
  };
  /** One row per policy of a decision with the policy's worst result status: the `policy` filter uses it. */
  audit_decision_policies: {
    decision_id: number | string;
    time_ms: number | string;
    policy: string;
    status: string;
    /** 1 when the status is fail, warn or error: what the `policy` filter matches. */
    violated: number;
  };
};

export type AuditDb = Kysely<AuditTables>;

export function toNumber(value: number | string | bigint): number {
  return typeof value === 'number' ? value : Number(value);
}

export function isPostgres(db: Kysely<unknown> | AuditDb): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
