import type { Generated, Kysely } from 'kysely';

/**
 * The identity tables (created by ./migrations.ts). Times are ISO-8601 strings and flags are
 * 0/1 integers so that SQLite and PostgreSQL run the same queries.
 */
export type UserTable = {
  id: Generated<number>;
  username: string;
  /** `scrypt$N$r$p$salt$hash` (see ./password.ts). */
  password_hash: string;
  sysadmin: number;
  auditor: number;
  email: string;
  realname: string;
  comment: string;
  created_at: string;
  updated_at: string;
};

export type ProjectTable = {
  id: Generated<number>;
  name: string;
  owner_id: number;
  /** Mirrors `metadata.public` so that listings can filter on it. */
  public: number;
  /** Harbor's `metadata` map (string values), JSON; `public` and `auto_scan` always present. */
  metadata: string;
  /** Harbor's `cve_allowlist`, JSON; stored and served, enforced by policies rather than here. */
  cve_allowlist: string;
  created_at: string;
  updated_at: string;
};

export type MemberTable = {
  id: Generated<number>;
  project_id: number;
  user_id: number;
  role_id: number;
  created_at: string;
  updated_at: string;
};

export type RobotTable = {
  id: Generated<number>;
  project_id: number;
  /** The short name; the full name is `robot$<project>+<name>`. */
  name: string;
  description: string;
  secret_hash: string;
  /** JSON array of the repository actions granted (`pull`, `push`, `delete`). */
  actions: string;
  /** Days; -1 never expires. */
  duration: number;
  /** Seconds since the epoch; -1 never expires. */
  expires_at: number;
  disabled: number;
  creator_ref: number;
  created_at: string;
  updated_at: string;
};

export type AuthTables = {
  registry_users: UserTable;
  registry_projects: ProjectTable;
  registry_members: MemberTable;
  registry_robots: RobotTable;
};

export type AuthDb = Kysely<AuthTables>;

/** Gives the identity tables a type on a database handle opened for every subsystem. */
export function authDb(db: Kysely<unknown>): AuthDb {
  return db.withTables<AuthTables>();
}

/**
 * Whether `error` is a unique-constraint violation (SQLite `SQLITE_CONSTRAINT_UNIQUE`, PostgreSQL
 * 23505): two requests creating the same name at once; the loser answers CONFLICT.
 */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error)) return false;
  return error.code === 'SQLITE_CONSTRAINT_UNIQUE' || error.code === '23505';
}
