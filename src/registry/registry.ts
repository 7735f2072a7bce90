import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Kysely } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { buildServer, type HttpServer, type TlsMaterial } from '../http/server.js';
import type { Readiness } from '../http/readiness.js';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import type { AccessController } from './access.js';
import { REGISTRY_EVENT_TYPES, RegistryEvents } from './events.js';
import { useHarborErrors } from './harbor/errors.js';
import { harborArtifactRoutes } from './harbor/artifacts-routes.js';
import { harborRepositoryRoutes } from './harbor/repositories-routes.js';
import { RegistryMetadata } from './metadata/store.js';
import { ArtifactService } from './oci/artifact-service.js';
import { ociRoutes } from './oci/routes.js';
import type { ScanPort } from './scan-port.js';
import { BlobStore } from './storage/blob-store.js';
import type { StorageDriver } from './storage/driver.js';
import { FilesystemDriver } from './storage/filesystem.js';

export interface RegistryDeps {
  config: Config['registry'];
  logger: Logger;
  /** The shared database, already migrated with `registryMigrations` (./metadata/migrations.ts). */
  db: Kysely<unknown>;
  metrics: Registry;
  readiness: Readiness;
  access: AccessController;
  /** The identity subsystem's plugin (token endpoint, projects/members/robots/users/systeminfo API). */
  authRoutes?: FastifyPluginAsync;
  /** The scanner; without it scan requests answer 503 and artifacts carry no scan overview. */
  scans?: ScanPort;
  /** Serve HTTPS with this pair; plain HTTP when absent. */
  tls?: TlsMaterial;
  /** Harbor's numeric project id for a name (shown as `project_id`); omitted from bodies when absent. */
  projectId?: (project: string) => Promise<number | undefined>;
  /** Blob storage; the filesystem under `config.storageDir` when absent. */
  driver?: StorageDriver;
  now?: () => Date;
}

export interface RegistryRole {
  /** The registry's HTTP app (never listening by itself: call `listen` from src/http/server.ts). */
  app: HttpServer;
  /** The same routes as a plugin, for mounting into an app built elsewhere. */
  routes: FastifyPluginAsync;
  events: RegistryEvents;
  /** Repository counts per project, for the identity subsystem's `repo_count` and project deletion. */
  repositories: { count(project: string): Promise<number> };
  /** Startup maintenance: removes upload files of sessions the database does not know. */
  start(): Promise<void>;
  /** Writes pending pull statistics now (they are otherwise written within a second). */
  flushPulls(): Promise<void>;
  /** Flushes pull statistics, waits for event deliveries and closes the app. */
  close(): Promise<void>;
}

/**
 * Assembles the registry role: the OCI Distribution API (`/v2`), the Harbor repositories and
 * artifacts API (`/api/v2.0`), and the identity plugin when given. Nothing touches the disk or the
 * network until `start()` and `listen`.
 */
export function createRegistry(deps: RegistryDeps): RegistryRole {
  const now = deps.now ?? (() => new Date());
  const logger = deps.logger;
  const metadata = new RegistryMetadata(deps.db, now);
  const driver = deps.driver ?? new FilesystemDriver(deps.config.storageDir);
  const blobs = new BlobStore(driver, metadata);
  const events = new RegistryEvents(deps.db, logger);
  const artifacts = new ArtifactService({ metadata, blobs, events, logger, now });

  const eventCounter = new Counter({
    name: 'portcullis_registry_events_total',
    help: 'Registry events by type (artifact.pushed, artifact.deleted, tag.changed, tag.deleted).',
    labelNames: ['type'],
    registers: [deps.metrics],
  });
  for (const type of REGISTRY_EVENT_TYPES) eventCounter.inc({ type }, 0);
  events.subscribe((event) => eventCounter.inc({ type: event.type }));

  const routes: FastifyPluginAsync = async (app: FastifyInstance) => {
    await app.register(async (oci) => ociRoutes(oci, { access: deps.access, metadata, blobs, artifacts }), { prefix: '/v2' });
    await app.register(
      async (harbor) => {
        // The identity plugin, when present, owns the 404 handler of /api/v2.0 (fastify allows one per prefix).
        useHarborErrors(harbor, { notFound: deps.authRoutes === undefined });
        const harborDeps = { access: deps.access, metadata, artifacts, ...(deps.projectId ? { projectId: deps.projectId } : {}) };
        await harborRepositoryRoutes(harbor, harborDeps);
        await harborArtifactRoutes(harbor, { ...harborDeps, ...(deps.scans ? { scans: deps.scans } : {}) });
      },
      { prefix: '/api/v2.0' },
    );
    if (deps.authRoutes) await app.register(deps.authRoutes);
  };

  const app = buildServer({
    logger,
    ...(deps.tls ? { tls: deps.tls } : {}),
    readiness: deps.readiness,
    metrics: deps.metrics,
    bodyLimit: 1024 * 1024,
    ...(deps.config.trustedProxies ? { trustedProxies: deps.config.trustedProxies } : {}),
  });
  void app.register(routes);

  deps.readiness.register('registry-storage', async () => {
    await driver.list('/');
    return { ok: true, reason: driver.name };
  });

  return {
    app,
    routes,
    events,
    repositories: { count: async (project) => (await metadata.projectRepositories(project, { offset: 0, limit: 1 })).total },
    async start() {
      const removed = await blobs.removeOrphanUploads();
      if (removed > 0) logger.info({ [F.count]: removed }, 'orphan uploads removed');
    },
    flushPulls: () => artifacts.flushPulls(),
    async close() {
      await app.close();
      await artifacts.flushPulls();
      await events.settle();
    },
  };
}
