import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, parseHostPort } from '../config/load.js';
import { migrate, openDatabase } from '../db/database.js';
import { createMetricsRegistry } from '../http/metrics.js';
import { Readiness } from '../http/readiness.js';
import { listen, type TlsMaterial } from '../http/server.js';
import { createLogger } from '../log/logger.js';
import { F } from '../log/fields.js';
import { createAccessControl } from '../registry/auth/access-control.js';
import { registryAuthMigrations } from '../registry/auth/migrations.js';
import { registryMigrations } from '../registry/metadata/migrations.js';
import { createRegistry, type RegistryRole } from '../registry/registry.js';
import { EXIT, UsageError, stringOption, type Command } from './command.js';
import { nextSignal } from './signals.js';

/** The key pair from the flags, else the certificates of `portcullis certs init` when present, else none. */
function tlsMaterial(certFile: string | undefined, keyFile: string | undefined, fallback: { certFile: string; keyFile: string }): TlsMaterial | undefined {
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (certFile && keyFile) return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  if (existsSync(fallback.certFile) && existsSync(fallback.keyFile)) return { cert: readFileSync(fallback.certFile), key: readFileSync(fallback.keyFile) };
  return undefined;
}

export const registryCommand: Command = {
  name: 'registry',
  summary: 'Run the registry role alone: OCI Distribution API, token service and Harbor API subset',
  usage: `Usage: portcullis registry --data-dir DIR --listen HOST:PORT [--tls-cert FILE --tls-key FILE] [--config FILE]

Runs the registry role by itself: the OCI Distribution API v1.1 under /v2/, the token service
(/service/token) and the Harbor-compatible API under /api/v2.0/. Metadata lives in the SQLite file of
the data directory (or PostgreSQL when database.url is configured), blobs under DIR/registry. On first
start the admin user is created with the password of PORTCULLIS_ADMIN_PASSWORD, or a random one that
is printed once. HTTPS uses --tls-cert/--tls-key, else DIR/certs/tls.crt and tls.key when present
(portcullis certs init); without either it serves plain HTTP and says so. SIGINT or SIGTERM stops it:
in-flight requests finish, pull counts are written, the database is closed.

Options:
  --data-dir DIR        State directory (default from the configuration, ./.portcullis)
  --listen HOST:PORT    Address to listen on (default 127.0.0.1:5000; port 0 picks a free port)
  --tls-cert FILE       PEM certificate (chain) to serve
  --tls-key FILE        PEM private key of --tls-cert
  --config FILE         YAML configuration (default: PORTCULLIS_CONFIG); flags win over it

On stdout: "admin password (shown once): <password>" on the first start when the password is
generated (as soon as the admin exists, before listening), then, once listening, one line:
"registry listening on <URL>".

Exit codes:
  0  stopped cleanly after SIGINT/SIGTERM
  2  bad usage, invalid configuration, or a start failure (port in use, unreadable data directory)

Example:
  PORTCULLIS_ADMIN_PASSWORD=change-me-now portcullis registry --data-dir /var/lib/portcullis --listen 0.0.0.0:5000
`,
  options: {
    'data-dir': { type: 'string' },
    listen: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    config: { type: 'string' },
  },
  positionals: false,
  async run({ values, io }) {
    const overrides: Record<string, unknown> = {};
    const dataDir = stringOption(values, 'data-dir');
    if (dataDir) overrides.dataDir = dataDir;
    const listenAt = stringOption(values, 'listen');
    const certFile = stringOption(values, 'tls-cert');
    const config0 = loadConfig({ file: stringOption(values, 'config'), env: io.env, overrides });
    const tls = tlsMaterial(certFile, stringOption(values, 'tls-key'), { certFile: join(config0.certs.dir, 'tls.crt'), keyFile: join(config0.certs.dir, 'tls.key') });
    overrides.registry = { ...(listenAt ? { listen: listenAt } : {}), tls: { enabled: tls !== undefined } };
    const config = loadConfig({ file: stringOption(values, 'config'), env: io.env, overrides });
    const logger = createLogger({ level: config.log.level, name: 'portcullis-registry' }, process.stderr);

    const database = openDatabase<unknown>(config.database);
    let role: RegistryRole | undefined;
    try {
      await migrate(database.db, [...registryAuthMigrations, ...registryMigrations]);
      const metrics = createMetricsRegistry();
      const readiness = new Readiness();
      const identity = createAccessControl({
        config: config.registry,
        logger,
        db: database.db,
        dataDir: config.dataDir,
        repositories: { count: (project) => (role ? role.repositories.count(project) : Promise.resolve(0)) },
      });
      const { adminPassword } = await identity.bootstrap();
      // Printed at once: should the start fail after this, the password would otherwise be lost.
      if (adminPassword) io.stdout(`admin password (shown once): ${adminPassword}\n`);
      role = createRegistry({
        config: config.registry,
        logger,
        db: database.db,
        metrics,
        readiness,
        access: identity.controller,
        authRoutes: identity.routes,
        ...(tls ? { tls } : {}),
      });
      await role.start();
      const { host, port } = parseHostPort(config.registry.listen);
      const bound = await listen(role.app, host, port);
      const url = `${tls ? 'https' : 'http'}://${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port}`;
      if (!config.registry.externalUrl) identity.setExternalUrl(url);
      if (!tls) logger.warn('no TLS key pair: serving plain HTTP (clients need --tls-verify=false)');
      io.stdout(`registry listening on ${url}\n`);
      logger.info({ [F.address]: url }, 'listening');
      const signal = await nextSignal();
      logger.info({ signal }, 'shutting down');
      return EXIT.ok;
    } finally {
      await role?.close();
      await database.close();
    }
  },
};
