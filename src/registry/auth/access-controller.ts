import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { AccessController, AccessDecision, Principal, RepositoryAction } from '../access.js';
import { PortcullisError } from '../../errors.js';
import { F } from '../../log/fields.js';
import type { Logger } from '../../log/logger.js';
import type { Clock } from './clock.js';
import type { BruteForceGuard } from './brute-force.js';
import { parseAuthorization } from './credentials.js';
import type { MemberStore } from './members.js';
import { verifyPassword } from './password.js';
import type { Project, ProjectStore } from './projects.js';
import { REPOSITORY_ACTION_FOR, publicReaderAllows, repositoryActionsOf, roleAllows, type ProjectPermission, type RoleName } from './roles.js';
import { parseRobotName, type RobotStore } from './robots.js';
import { grants, grantsCatalog, type AccessEntry } from './scope.js';
import { TOKEN_SERVICE, type TokenService } from './token-service.js';
import type { UserStore } from './users.js';

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;
export type RobotPrincipal = Extract<Principal, { kind: 'robot' }>;

export interface AccessControllerDeps {
  users: UserStore;
  projects: ProjectStore;
  members: MemberStore;
  robots: RobotStore;
  /** Undefined until the signing key is loaded (bootstrap). */
  tokens: () => TokenService;
  guard: BruteForceGuard;
  clock: Clock;
  /** `bearer`: the Docker token flow (default); `basic`: challenge for Basic credentials directly. */
  challengeScheme: 'bearer' | 'basic';
  /** The token endpoint URL (`<externalUrl>/service/token`), read at each challenge. */
  realm: () => string;
  logger: Logger;
}

/** Who the caller is, in words, for denial messages and logs. */
export function describePrincipal(principal: Principal): string {
  switch (principal.kind) {
    case 'anonymous':
      return 'anonymous';
    case 'user':
      return `user ${JSON.stringify(principal.name)}`;
    case 'robot':
      return `robot ${JSON.stringify(principal.name)}`;
  }
}

/**
 * The AccessController of the included registry: users and robots by Basic credentials, bearer
 * tokens of the token service, and Harbor's project permission matrix. A bearer principal carries
 * the token's granted access (kept beside the principal object, not in it, so the Principal type
 * stays the shared contract), and only that access counts for it.
 */
export class RegistryAccessController implements AccessController {
  private readonly granted = new WeakMap<Principal, AccessEntry[]>();
  private readonly robotActions = new WeakMap<Principal, RepositoryAction[]>();
  /** Recently verified credentials → the hash they matched, so each request does not pay scrypt. */
  private readonly verified = new LRUCache<string, string>({ max: 10_000, ttl: 60_000 });
  private readonly cacheKey = randomBytes(32);

  constructor(private readonly deps: AccessControllerDeps) {}

  async authenticate(authorization: string | undefined, context: { ip?: string } = {}): Promise<Principal> {
    if (authorization === undefined || authorization === '') return { kind: 'anonymous' };
    const parsed = parseAuthorization(authorization);
    if (parsed.scheme === 'none') return { kind: 'anonymous' };
    if (parsed.scheme === 'basic') return this.login(parsed.username, parsed.password, context.ip);
    const verified = await this.deps.tokens().verify(parsed.token);
    const principal = await this.authenticateSubject(verified.subject);
    this.granted.set(principal, verified.access);
    return principal;
  }

  /**
   * Checks a user name and password (or robot name and secret). Wrong credentials, unknown names,
   * disabled and expired robots all wait the brute-force delay and throw UNAUTHORIZED with the
   * same message, so an attacker learns nothing about which names exist.
   */
  async login(username: string, password: string, ip: string | undefined): Promise<UserPrincipal | RobotPrincipal> {
    const robotName = parseRobotName(username);
    if (robotName) {
      const robot = await this.deps.robots.findByFullName(username);
      const ok = await this.checkSecret(username, password, robot?.secretHash);
      const now = Math.floor(this.deps.clock.now() / 1000);
      if (robot && ok && !robot.disabled && (robot.expiresAt === -1 || robot.expiresAt > now)) {
        this.deps.guard.succeed(username);
        const principal: RobotPrincipal = { kind: 'robot', id: robot.id, name: robot.fullName, project: robot.projectName };
        this.robotActions.set(principal, robot.actions);
        return principal;
      }
    } else {
      const user = await this.deps.users.findByName(username);
      if (await this.checkSecret(username, password, user?.password_hash)) {
        if (user) {
          this.deps.guard.succeed(username);
          return { kind: 'user', id: user.id, name: user.username, sysadmin: user.sysadmin === 1, auditor: user.auditor === 1 };
        }
      }
    }
    const delayMs = await this.deps.guard.fail(username, ip);
    this.deps.logger.info({ [F.user]: username, [F.address]: ip, [F.durationMs]: delayMs }, 'login failed');
    throw new PortcullisError('UNAUTHORIZED', 'wrong user name or password (or the robot account is disabled or expired)');
  }

  private async checkSecret(username: string, password: string, stored: string | undefined): Promise<boolean> {
    const key = createHmac('sha256', this.cacheKey).update(username).update('\0').update(password).digest('base64');
    if (stored !== undefined && this.verified.get(key) === stored) return true;
    const ok = await verifyPassword(password, stored);
    if (ok && stored !== undefined) this.verified.set(key, stored);
    return ok;
  }

  /** The principal a token subject stands for; UNAUTHORIZED when it no longer exists or may not log in. */
  async authenticateSubject(subject: string): Promise<Principal> {
    if (subject === '') return { kind: 'anonymous' };
    if (parseRobotName(subject)) {
      const robot = await this.deps.robots.findByFullName(subject);
      const now = Math.floor(this.deps.clock.now() / 1000);
      if (!robot || robot.disabled || (robot.expiresAt !== -1 && robot.expiresAt <= now)) {
        throw new PortcullisError('UNAUTHORIZED', `bearer token: robot ${JSON.stringify(subject)} no longer exists or is disabled or expired`);
      }
      const principal: RobotPrincipal = { kind: 'robot', id: robot.id, name: robot.fullName, project: robot.projectName };
      this.robotActions.set(principal, robot.actions);
      return principal;
    }
    const user = await this.deps.users.findByName(subject);
    if (!user) throw new PortcullisError('UNAUTHORIZED', `bearer token: user ${JSON.stringify(subject)} no longer exists`);
    return { kind: 'user', id: user.id, name: user.username, sysadmin: user.sysadmin === 1, auditor: user.auditor === 1 };
  }

  /** Whether the principal came with a bearer token (whose granted access then limits it). */
  isBearer(principal: Principal): boolean {
    return this.granted.has(principal);
  }

  /**
   * Whether `principal` holds `permission` in `project` by its role (ignoring any token scope):
   * system admins everything, members by Harbor's matrix, anybody reading a public project, robots
   * by their explicit repository actions in their own project.
   */
  async can(principal: Principal, project: Project, permission: ProjectPermission): Promise<boolean> {
    return (await this.permissionsIn(principal, project))(permission);
  }

  /**
   * `can` by project name, for routes that hold only a name (the Harbor artifact routes: tag
   * create/delete, scan, artifact delete). False when the project does not exist.
   */
  async canInProject(principal: Principal, projectName: string, permission: ProjectPermission): Promise<boolean> {
    const project = await this.deps.projects.findByName(projectName);
    return project !== undefined && this.can(principal, project, permission);
  }

  async roleIn(principal: Principal, project: Project): Promise<RoleName | undefined> {
    return principal.kind === 'user' ? this.deps.members.roleOf(project.id, principal.id) : undefined;
  }

  async permissionsIn(principal: Principal, project: Project): Promise<(permission: ProjectPermission) => boolean> {
    switch (principal.kind) {
      case 'anonymous':
        return (permission) => project.public && publicReaderAllows(permission);
      case 'user': {
        if (principal.sysadmin) return () => true;
        const role = await this.deps.members.roleOf(project.id, principal.id);
        return (permission) => (role !== undefined && roleAllows(role, permission)) || (project.public && publicReaderAllows(permission));
      }
      case 'robot': {
        if (principal.project !== project.name) return (permission) => project.public && publicReaderAllows(permission);
        const actions = this.robotActions.get(principal) ?? (await this.deps.robots.get(principal.id))?.actions ?? [];
        return (permission) => {
          if (permission === 'project:read' || permission === 'repository:list') return actions.includes('pull');
          const action = REPOSITORY_ACTION_FOR[permission];
          return action !== undefined && actions.includes(action);
        };
      }
    }
  }

  /** The repository actions `principal` could be granted in `project`. */
  async repositoryActions(principal: Principal, project: Project): Promise<RepositoryAction[]> {
    return repositoryActionsOf(await this.permissionsIn(principal, project));
  }

  async authorize(principal: Principal, repository: string, actions: readonly RepositoryAction[]): Promise<AccessDecision> {
    const scope = `repository:${repository}:${actions.join(',')}`;
    const slash = repository.indexOf('/');
    const project = slash > 0 ? await this.deps.projects.findByName(repository.slice(0, slash)) : undefined;
    if (!project) {
      if (principal.kind === 'anonymous') return { allowed: false, reason: 'unauthenticated', challenge: this.challenge(scope) };
      const message = slash > 0 ? `project ${JSON.stringify(repository.slice(0, slash))} does not exist` : `repository ${JSON.stringify(repository)} is not of the form project/name`;
      return { allowed: false, reason: 'unknown-project', message };
    }
    const permitted = await this.repositoryActions(principal, project);
    const missing = actions.filter((action) => !permitted.includes(action));
    const granted = this.granted.get(principal);
    if (granted !== undefined && !grants(granted, repository, actions)) {
      // The token lacks the scope. When a fresh token would carry it, challenge so that the client
      // fetches one (RFC 6750 insufficient_scope); otherwise the answer is no.
      if (missing.length === 0 || principal.kind === 'anonymous') {
        return { allowed: false, reason: 'unauthenticated', challenge: this.challenge(scope, 'insufficient_scope') };
      }
    } else if (missing.length === 0) {
      return { allowed: true };
    }
    if (principal.kind === 'anonymous') return { allowed: false, reason: 'unauthenticated', challenge: this.challenge(scope) };
    return { allowed: false, reason: 'denied', message: `${describePrincipal(principal)} may not ${missing.join(', ')} ${repository}` };
  }

  canListCatalog(principal: Principal): boolean {
    if (principal.kind !== 'user' || !principal.sysadmin) return false;
    const granted = this.granted.get(principal);
    return granted === undefined || grantsCatalog(granted);
  }

  challenge(scope?: string, error?: 'insufficient_scope' | 'invalid_token'): string {
    if (this.deps.challengeScheme === 'basic') return `Basic realm="${TOKEN_SERVICE}"`;
    const parts = [`Bearer realm="${this.deps.realm()}"`, `service="${TOKEN_SERVICE}"`];
    if (scope) parts.push(`scope="${scope}"`);
    if (error) parts.push(`error="${error}"`);
    return parts.join(',');
  }
}
