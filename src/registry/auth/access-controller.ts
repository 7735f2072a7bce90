import { createHmac, randomBytes } from 'node:crypto';
import type { AccessController, AccessDecision, Principal, RepositoryAction } from '../access.js';
import { PortcullisError } from '../../errors.js';
import { F } from '../../log/fields.js';
import type { Logger } from '../../log/logger.js';
import { ReadCache, type Generation } from './cache.js';
import type { Clock } from './clock.js';
import type { BruteForceGuard } from './brute-force.js';
import { parseAuthorization } from './credentials.js';
import type { MemberStore } from './members.js';
import { verifyPassword } from './password.js';
import type { Project, ProjectStore } from './projects.js';
import { REPOSITORY_ACTION_FOR, publicReaderAllows, repositoryActionsOf, roleAllows, type ProjectPermission, type RoleName } from './roles.js';
import { parseRobotName, type Robot, type RobotStore } from './robots.js';
import { grants, grantsCatalog, type AccessEntry } from './scope.js';
import { TOKEN_SERVICE, type TokenService } from './token-service.js';
import type { UserRow, UserStore } from './users.js';

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
  /** Bumped by every write of the stores; cached logins die with it. */
  generation: Generation;
  /** `bearer`: the Docker token flow (default); `basic`: challenge for Basic credentials directly. */
  challengeScheme: 'bearer' | 'basic';
  /** The token endpoint URL (`<externalUrl>/service/token`), read at each challenge. */
  realm: () => string;
  logger: Logger;
}

/** A verified user or robot, as cached: the principal, a robot's actions and its expiry (s, -1 never). */
interface Identity {
  principal: UserPrincipal | RobotPrincipal;
  robotActions?: RepositoryAction[];
  expiresAt: number;
}

function userIdentity(user: UserRow): Identity {
  return { principal: { kind: 'user', id: user.id, name: user.username, sysadmin: user.sysadmin === 1, auditor: user.auditor === 1 }, expiresAt: -1 };
}

function robotIdentity(robot: Robot): Identity {
  return { principal: { kind: 'robot', id: robot.id, name: robot.fullName, project: robot.projectName }, robotActions: robot.actions, expiresAt: robot.expiresAt };
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
  private readonly cacheKey = randomBytes(32);
  private readonly logins: ReadCache<Identity | undefined>;
  private readonly subjects: ReadCache<Identity | undefined>;

  constructor(private readonly deps: AccessControllerDeps) {
    this.logins = new ReadCache(deps.generation);
    this.subjects = new ReadCache(deps.generation);
  }

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
    // Clients send the same credentials with every request: a verified pair is remembered briefly
    // (keyed by an HMAC, never the password) so that each request does not pay scrypt.
    const key = createHmac('sha256', this.cacheKey).update(username).update('\0').update(password).digest('base64');
    const identity = await this.logins.get(key, () => this.checkCredentials(username, password));
    if (identity && this.current(identity)) {
      this.deps.guard.succeed(username);
      return this.principalOf(identity);
    }
    const delayMs = await this.deps.guard.fail(username, ip);
    this.deps.logger.info({ [F.user]: username, [F.address]: ip, [F.durationMs]: delayMs }, 'login failed');
    throw new PortcullisError('UNAUTHORIZED', 'wrong user name or password (or the robot account is disabled or expired)');
  }

  /** Always derives a key, for unknown names too (constant time); undefined when the credentials are wrong. */
  private async checkCredentials(username: string, password: string): Promise<Identity | undefined> {
    if (parseRobotName(username)) {
      const robot = await this.deps.robots.findByFullName(username);
      const ok = await verifyPassword(password, robot?.secretHash);
      return robot && ok && !robot.disabled ? robotIdentity(robot) : undefined;
    }
    const user = await this.deps.users.findByName(username);
    const ok = await verifyPassword(password, user?.password_hash);
    return user && ok ? userIdentity(user) : undefined;
  }

  /** The principal a token subject stands for; UNAUTHORIZED when it no longer exists or may not log in. */
  async authenticateSubject(subject: string): Promise<Principal> {
    if (subject === '') return { kind: 'anonymous' };
    const identity = await this.subjects.get(subject, async () => {
      if (parseRobotName(subject)) {
        const robot = await this.deps.robots.findByFullName(subject);
        return robot && !robot.disabled ? robotIdentity(robot) : undefined;
      }
      const user = await this.deps.users.findByName(subject);
      return user && userIdentity(user);
    });
    if (!identity || !this.current(identity)) {
      throw new PortcullisError('UNAUTHORIZED', `bearer token: ${JSON.stringify(subject)} no longer exists, or is a disabled or expired robot`);
    }
    return this.principalOf(identity);
  }

  private current(identity: Identity): boolean {
    return identity.expiresAt === -1 || identity.expiresAt > Math.floor(this.deps.clock.now() / 1000);
  }

  /** A fresh principal object each time: bearer scopes are attached to the object. */
  private principalOf(identity: Identity): UserPrincipal | RobotPrincipal {
    const principal = { ...identity.principal };
    if (identity.robotActions) this.robotActions.set(principal, identity.robotActions);
    return principal;
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
