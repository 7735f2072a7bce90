import type { FastifyPluginAsync } from 'fastify';
import { sql, type Kysely } from 'kysely';
import type { AccessController, RepositoryAction } from '../access.js';
import type { Config } from '../../config/schema.js';
import { PortcullisError, describeError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import { useHarborErrors } from '../harbor/errors.js';
import { memberRoutes } from '../harbor/members-routes.js';
import { projectRoutes, type RepositoryCounter } from '../harbor/projects-routes.js';
import { robotRoutes } from '../harbor/robots-routes.js';
import { systemInfoRoutes, type ComponentHealth } from '../harbor/systeminfo-routes.js';
import { userRoutes } from '../harbor/users-routes.js';
import { RegistryAccessController } from './access-controller.js';
import { Generation } from './cache.js';
import { BruteForceGuard, DEFAULT_BRUTE_FORCE, type BruteForceOptions } from './brute-force.js';
import { realSleep, systemClock, type Clock, type Sleep } from './clock.js';
import { MemberStore } from './members.js';
import { randomSecret } from './password.js';
import { ProjectStore, type ProjectSettings } from './projects.js';
import { RobotStore } from './robots.js';
import { authDb } from './tables.js';
import { loadOrCreateSigningKey } from './token-key.js';
import { tokenRoutes } from './token-routes.js';
import { TokenService } from './token-service.js';
import { UserStore } from './users.js';
import { F } from '../../log/fields.js';

export interface AccessControlOptions {
  config: Config['registry'];
  logger: Logger;
  /** The shared database, migrated with `registryAuthMigrations` (./migrations.ts) before `bootstrap`. */
  db: Kysely<unknown>;
  /** Where the token signing key is kept (`<dataDir>/registry-auth/token-signing-key.pem`). */
  dataDir: string;
  clock?: Clock;
  /** The brute-force delay waits through this; tests pass one that records. */
  sleep?: Sleep;
  bruteForce?: BruteForceOptions;
  /** `bearer` (default): the Docker token flow; `basic`: challenge clients for Basic credentials. */
  challengeScheme?: 'bearer' | 'basic';
  /** Repository counts per project, from the registry core (`repo_count`, refusing to delete non-empty projects). */
  repositories?: RepositoryCounter;
  /** Extra `/api/v2.0/health` components (storage…); the database is always checked. */
  health?: () => Promise<ComponentHealth[]>;
  /** Reported as `harbor_version` by `/api/v2.0/systeminfo`. */
  version?: string;
}

export interface RobotCredential {
  username: string;
  password: string;
  /** RFC 3339. */
  expiresAt: string;
}

export interface AccessControl {
  controller: RegistryAccessController & AccessController;
  /** The token endpoint (`/service/token`) and the `/api/v2.0` identity routes; register on the registry app. */
  routes: FastifyPluginAsync;
  /**
   * Loads (or creates) the token signing key and creates `admin` on first start: `created` says
   * whether this call did, `adminPassword` is the password when it was generated (not configured).
   */
  bootstrap(): Promise<{ created: boolean; adminPassword?: string }>;
  /** A short-lived robot of `project` with `actions`, for the scanner to pull with. */
  issueRobotCredential(project: string, actions: RepositoryAction[], ttlSeconds: number): Promise<RobotCredential>;
  /** The settings other subsystems read; undefined when the project does not exist. */
  projectSettings(name: string): Promise<ProjectSettings | undefined>;
  /** Sets the address clients use, when it was not configured and is known only once listening. */
  setExternalUrl(url: string): void;
  /** The address used in challenges and `/systeminfo`. */
  externalUrl(): string;
}

/** `https://HOST:PORT` from `registry.listen` (with `localhost` for a wildcard host). */
function derivedUrl(config: Config['registry']): string {
  const [host = 'localhost', port = '5000'] = config.listen.split(/:(?=[0-9]+$)/);
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  return `${config.tls.enabled ? 'https' : 'http'}://${shown}:${port}`;
}

/**
 * The registry's identity subsystem: users, projects, members, robots, the token service and the
 * AccessController the OCI routes consult. Nothing happens at construction; `bootstrap()` reads or
 * writes the signing key and the first admin.
 */
export function createAccessControl(options: AccessControlOptions): AccessControl {
  const clock = options.clock ?? systemClock;
  const db = authDb(options.db);
  const generation = new Generation();
  const users = new UserStore(db, clock, generation);
  const projects = new ProjectStore(db, clock, generation);
  const members = new MemberStore(db, clock, generation);
  const robots = new RobotStore(db, clock, generation);
  let externalUrl = (options.config.externalUrl ?? derivedUrl(options.config)).replace(/\/+$/, '');
  let tokenService: TokenService | undefined;
  const tokens = (): TokenService => {
    if (!tokenService) throw new PortcullisError('INTERNAL', 'the registry token service is used before bootstrap()');
    return tokenService;
  };
  const controller = new RegistryAccessController({
    users,
    projects,
    members,
    robots,
    tokens,
    guard: new BruteForceGuard(options.bruteForce ?? DEFAULT_BRUTE_FORCE, clock, options.sleep ?? realSleep),
    clock,
    generation,
    challengeScheme: options.challengeScheme ?? 'bearer',
    realm: () => `${externalUrl}/service/token`,
    logger: options.logger,
  });
  const api = { controller, projects };

  const databaseHealth = async (): Promise<ComponentHealth[]> => {
    try {
      await sql`select 1`.execute(options.db);
      return [{ name: 'database', status: 'healthy' }];
    } catch (error) {
      return [{ name: 'database', status: 'unhealthy', error: describeError(error) }];
    }
  };

  const routes: FastifyPluginAsync = async (app) => {
    await app.register(tokenRoutes({ controller, projects, users, robots, tokens }));
    await app.register(
      async (harbor) => {
        useHarborErrors(harbor);
        await harbor.register(projectRoutes({ ...api, members, users, ...(options.repositories ? { repositories: options.repositories } : {}) }));
        await harbor.register(memberRoutes({ ...api, members, users }));
        await harbor.register(robotRoutes({ ...api, robots }));
        await harbor.register(userRoutes({ ...api, users }));
        await harbor.register(
          systemInfoRoutes({
            ...api,
            externalUrl: () => externalUrl,
            version: options.version ?? 'v2.15.2-portcullis',
            now: () => clock.now(),
            health: async () => [...(await databaseHealth()), ...(options.health ? await options.health() : [])],
          }),
        );
      },
      { prefix: '/api/v2.0' },
    );
  };

  return {
    controller,
    routes,
    async bootstrap() {
      const key = await loadOrCreateSigningKey(options.dataDir);
      tokenService = new TokenService(key, clock, options.config.tokenTtlSeconds);
      if ((await users.count()) > 0) return { created: false };
      const configured = options.config.adminPassword;
      const password = configured ?? randomSecret(24);
      await users.create({ username: 'admin', password, sysadmin: true, realname: 'system admin', comment: 'created on first start' });
      options.logger.info({ [F.user]: 'admin', generated: configured === undefined }, 'registry admin created');
      return configured === undefined ? { created: true, adminPassword: password } : { created: true };
    },
    async issueRobotCredential(project, actions, ttlSeconds) {
      const found = await projects.findByName(project);
      if (!found) throw new PortcullisError('NOT_FOUND', `project ${JSON.stringify(project)} does not exist`);
      await robots.purgeExpired('scanner-');
      const name = `scanner-${randomSecret(10).toLowerCase()}`;
      const { robot, secret } = await robots.create({
        projectId: found.id,
        name,
        description: 'short-lived credential of the scanner',
        actions,
        duration: Math.max(1, Math.ceil(ttlSeconds / 86_400)),
        ttlSeconds,
        disabled: false,
        creatorRef: 0,
      });
      return { username: robot.fullName, password: secret, expiresAt: new Date(robot.expiresAt * 1000).toISOString() };
    },
    async projectSettings(name) {
      const project = await projects.findByName(name);
      return project && { name: project.name, public: project.public, autoScan: project.metadata.auto_scan !== 'false' };
    },
    setExternalUrl(url) {
      externalUrl = url.replace(/\/+$/, '');
    },
    externalUrl: () => externalUrl,
  };
}
