/**
 * The seam between the OCI routes (src/registry/oci/) and the identity model
 * (src/registry/auth/: users, projects, roles, robot accounts, tokens). The OCI routes only ask
 * "who is this" and "may they do that"; everything about Harbor's permission matrix lives behind
 * this interface.
 */

/**
 * Actions of the Docker token scope grammar (`repository:project/app:pull,push`). Harbor's finer
 * permissions map onto them as in its role matrix (src/registry/auth/roles.ts REPOSITORY_ACTION_FOR):
 * reading artifacts, tags and scan results = `pull`; tag create = `push` (developer and above);
 * tag delete, artifact delete, repository delete and starting a scan = `delete` (maintainer and above).
 */
export type RepositoryAction = 'pull' | 'push' | 'delete';

export type Principal =
  | { kind: 'anonymous' }
  /** `auditor`: a system role that may read the audit record (and nothing else beyond its project roles). */
  | { kind: 'user'; id: number; name: string; sysadmin: boolean; auditor: boolean }
  | { kind: 'robot'; id: number; name: string; project: string };

export type AccessDecision =
  /** Go on. */
  | { allowed: true }
  /** Anonymous (or token lacking the scope): answer 401 with `challenge` as WWW-Authenticate. */
  | { allowed: false; reason: 'unauthenticated'; challenge: string }
  /** Authenticated but not permitted: answer 403 DENIED. */
  | { allowed: false; reason: 'denied'; message: string }
  /** The project of the repository does not exist: answer 404 NAME_UNKNOWN. */
  | { allowed: false; reason: 'unknown-project'; message: string };

export interface AccessController {
  /**
   * Identifies the caller from the Authorization header (Basic with a user or robot, Bearer with a
   * token issued by the token service). Absent header → anonymous. Throws a PortcullisError
   * UNAUTHORIZED for wrong credentials or an invalid/expired token (after the brute-force delay).
   * `context.ip`, when given, lets the brute-force delay also count failures per client address.
   */
  authenticate(authorization: string | undefined, context?: { ip?: string }): Promise<Principal>;
  /**
   * Decides whether `principal` may perform `actions` on `repository` (`project/name[/…]`). For a
   * Bearer principal the token's granted scope is what counts. Never throws for a denial.
   */
  authorize(principal: Principal, repository: string, actions: readonly RepositoryAction[]): Promise<AccessDecision>;
  /** Whether `principal` may list the catalog (system admins only). */
  canListCatalog(principal: Principal): boolean;
  /** The WWW-Authenticate challenge for an unauthenticated request to `/v2/` or a scope. */
  challenge(scope?: string): string;
}
