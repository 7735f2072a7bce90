import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { fetch, type RequestInit, type Response } from 'undici';
import { openDatabase, migrate, type OpenDatabase } from '../../src/db/database.js';
import { listen } from '../../src/http/server.js';
import { createMetricsRegistry } from '../../src/http/metrics.js';
import { Readiness } from '../../src/http/readiness.js';
import { silentLogger } from '../../src/log/logger.js';
import type { AccessController } from '../../src/registry/access.js';
import { registryMigrations } from '../../src/registry/metadata/migrations.js';
import { createRegistry, type RegistryRole } from '../../src/registry/registry.js';
import type { ScanPort } from '../../src/registry/scan-port.js';
import type { Migration } from '../../src/db/database.js';
import { createAccessControl, type AccessControl } from '../../src/registry/auth/access-control.js';
import { registryAuthMigrations } from '../../src/registry/auth/migrations.js';
import { testAccessController } from './registry-access.js';
import { tempDir } from './tmp.js';
import { testTls, trustingAgent } from './tls.js';

export interface TestRegistry {
  /** `https://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, as skopeo wants it in `docker://` references. */
  host: string;
  role: RegistryRole;
  database: OpenDatabase<unknown>;
  dataDir: string;
  /** A directory with the CA as `ca.crt`, for skopeo's `--dest-cert-dir` / `--src-cert-dir`. */
  certDir: string;
  caPem: string;
  /** The real identity subsystem, when started `withIdentity`. */
  identity?: AccessControl;
  /** fetch against the registry, trusting the test CA (with `headers` of the options on every call). */
  call(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

export interface TestRegistryOptions {
  /** Defaults to the allow-all test controller (every caller is a system administrator). */
  access?: AccessController;
  authRoutes?: FastifyPluginAsync;
  /** More migrations to apply first (the identity subsystem's, when `access` is the real one). */
  migrations?: Migration[];
  scans?: ScanPort;
  /** Use this data directory instead of a fresh temporary one (it is then not removed). */
  dataDir?: string;
  /**
   * Use the real identity subsystem (users, projects, roles, robots, tokens) with an `admin` whose
   * password is given, instead of the allow-all test controller.
   */
  withIdentity?: { adminPassword: string; challengeScheme?: 'bearer' | 'basic' };
  /** Headers sent on every `call` unless overridden (e.g. an Authorization header). */
  headers?: Record<string, string>;
  /** registry.trustedProxies: proxies whose X-Forwarded-For names the client. */
  trustedProxies?: string[];
  /** Called with the open database before the registry is built (to create the real access controller). */
  prepare?: (database: OpenDatabase<unknown>, dataDir: string) => Promise<{ access?: AccessController; authRoutes?: FastifyPluginAsync } | void>;
}

/**
 * Starts the registry role on 127.0.0.1 over real TLS (the test CA), with its SQLite file and blob
 * storage in a temporary directory. `close()` stops it and removes the directory.
 */
export async function startTestRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const tmp = options.dataDir ? undefined : tempDir('portcullis-registry-');
  const dataDir = options.dataDir ?? (tmp as { path: string }).path;
  const tls = testTls();
  const database = openDatabase<unknown>({ sqlitePath: join(dataDir, 'portcullis.db') });
  await migrate(database.db, [...(options.withIdentity ? registryAuthMigrations : []), ...(options.migrations ?? []), ...registryMigrations]);
  const prepared = (await options.prepare?.(database, dataDir)) ?? {};
  const config = { listen: '127.0.0.1:0', storageDir: join(dataDir, 'registry'), tls: { enabled: true }, tokenTtlSeconds: 300, ...(options.trustedProxies ? { trustedProxies: options.trustedProxies } : {}) };
  let role: RegistryRole | undefined;
  let identity: AccessControl | undefined;
  if (options.withIdentity) {
    identity = createAccessControl({
      config: { ...config, adminPassword: options.withIdentity.adminPassword },
      logger: silentLogger(),
      db: database.db,
      dataDir,
      ...(options.withIdentity.challengeScheme ? { challengeScheme: options.withIdentity.challengeScheme } : {}),
      repositories: { count: (project) => (role ? role.repositories.count(project) : Promise.resolve(0)) },
    });
    await identity.bootstrap();
  }
  const access = prepared.access ?? options.access ?? identity?.controller ?? testAccessController();
  const authRoutes = prepared.authRoutes ?? options.authRoutes ?? identity?.routes;
  role = createRegistry({
    config,
    logger: silentLogger(),
    db: database.db,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    readiness: new Readiness(),
    access,
    ...(authRoutes ? { authRoutes } : {}),
    ...(options.scans ? { scans: options.scans } : {}),
    tls: tls.serving,
  });
  await role.start();
  const { port } = await listen(role.app, '127.0.0.1', 0);
  const certDir = join(dataDir, 'certs.d');
  mkdirSync(certDir, { recursive: true });
  writeFileSync(join(certDir, 'ca.crt'), tls.ca.cert);
  const dispatcher = trustingAgent(tls.ca.cert);
  const url = `https://127.0.0.1:${port}`;
  identity?.setExternalUrl(url);
  const started = role;
  return {
    url,
    host: `127.0.0.1:${port}`,
    role: started,
    ...(identity ? { identity } : {}),
    database,
    dataDir,
    certDir,
    caPem: tls.ca.cert,
    call: (path, init = {}) => fetch(`${url}${path}`, { ...init, headers: { ...options.headers, ...(init.headers as Record<string, string> | undefined) }, dispatcher }),
    async close() {
      await started.close();
      await database.close();
      await dispatcher.close();
      tmp?.remove();
    },
  };
}
