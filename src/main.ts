/**
 * The composition root (DESIGN.md, "Layout"): config → logger → database + migrations →
 * certificates → subsystems → servers. Every subsystem gets its slice of the configuration and its
 * collaborators here and nowhere else; `portcullis up` (src/cli/up.ts) calls `startSuite` and
 * turns signals into `close()`.
 *
 * Start order: database and migrations → Kubernetes client → certificates (issued on first start,
 * attached to every HTTPS server for rotation) → registry (identity bootstrap, listens first: the
 * scanner needs its address) → scanner → policies → audit → admission → the scanner and webhook
 * servers listen.
 *
 * Shutdown order (`close`, the reverse): stop accepting on every server and let in-flight
 * requests — admission reviews above all — finish → stop the scanner's workers → flush the audit
 * buffer → stop watching policies and certificates → close the database.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createAdmission } from './admission/admission.js';
import { createAdmissionKube } from './admission/kube-port.js';
import { createAudit } from './audit/audit.js';
import { auditMigrations } from './audit/migrations.js';
import { FILES } from './certs/file-store.js';
import { createCertificateManager, type CertificateManager } from './certs/manager.js';
import { readWebhookConfigNames } from './certs/webhook-configs.js';
import { parseHostPort } from './config/load.js';
import type { Config } from './config/schema.js';
import { migrate, openDatabase, type Migration, type OpenDatabase } from './db/database.js';
import { PortcullisError, describeError } from './errors.js';
import { createMetricsRegistry, type Registry } from './http/metrics.js';
import { Readiness, type ReadinessReport } from './http/readiness.js';
import { buildServer, closeConnectionsWhen, listen, type HttpServer } from './http/server.js';
import { createKubeClient, loadKubeConfig, type KubeClient } from './kube/client.js';
import { F } from './log/fields.js';
import type { Logger } from './log/logger.js';
import { createPolicyStore } from './policy/store.js';
import { createAccessControl, type AccessControl } from './registry/auth/access-control.js';
import { registryAuthMigrations } from './registry/auth/migrations.js';
import { registryMigrations } from './registry/metadata/migrations.js';
import { RegistryMetadata } from './registry/metadata/store.js';
import { createRegistry, type RegistryRole } from './registry/registry.js';
import type { ScanPort } from './registry/scan-port.js';
import type { Principal } from './registry/access.js';
import { createScanner, type ScannerSubsystem } from './scanner/create.js';
import { scannerMigrations } from './scanner/migrations.js';
import { HarborVerdictSource } from './verdicts/harbor-source.js';
import type { VerdictSource } from './verdicts/source.js';
import { ROLES, detectKube, findExecutable, legacyAdminPasswordFile, resolveShipped, withRegistryHosts, writeTrustBundle, type AdminCredentials, type KubeAccess, type Role } from './main-support.js';

export { ROLES, detectKube, findExecutable, resolveShipped, type AdminCredentials, type KubeAccess, type Role } from './main-support.js';

export interface SuiteDeps {
  config: Config;
  logger: Logger;
  /** The process environment (KUBECONFIG, KUBERNETES_SERVICE_HOST, PATH); only main.ts reads it. */
  env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths in the configuration are resolved against. */
  cwd: string;
  /** The clock; injected so that tests control certificate validity and policy expiry. */
  now?: () => Date;
  /** The roles to run (all three by default; one per Deployment in a cluster). */
  roles?: readonly Role[];
  /**
   * Called as soon as the registry created its admin with a generated password, before the rest
   * starts: if a later step fails, the caller can still show the password, whose hash alone is kept.
   */
  onAdminPasswordGenerated?: (password: string) => void;
}

export interface Endpoint {
  role: Role;
  /** `https://HOST:PORT` with the port actually bound (useful with `:0`). */
  url: string;
  host: string;
  port: number;
  readiness: Readiness;
}

export interface Suite {
  /** The roles this process runs, and their endpoints. */
  roles: Role[];
  endpoints: Partial<Record<Role, Endpoint>>;
  /** PEM file of the CA bundle that signed every serving certificate (the webhooks' caBundle). */
  caFile: string;
  /** A directory holding only `ca.crt`, usable as `skopeo --cert-dir` / Docker's certs.d. */
  trustDir: string;
  /** The registry's admin account; absent when the registry does not run here. */
  admin?: AdminCredentials;
  kube: KubeAccess;
  policiesDir: string;
  webhooksDir: string;
  /** The certificate manager (rotation, the served caBundle). */
  certificates: CertificateManager;
  /** Names of the subsystems wired in this process. */
  subsystems: string[];
  readiness(role: Role): Promise<ReadinessReport>;
  /** Graceful shutdown; idempotent. Never rejects: failures are logged. */
  close(): Promise<void>;
}

interface Closer {
  name: string;
  close(): Promise<void> | void;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** The migrations of the subsystems this process runs (names are `<subsystem>/NNNN-what`). */
function migrationsFor(roles: readonly Role[]): Migration[] {
  const migrations: Migration[] = [];
  if (roles.includes('webhook') || roles.includes('registry')) migrations.push(...auditMigrations);
  if (roles.includes('registry')) migrations.push(...registryAuthMigrations, ...registryMigrations);
  if (roles.includes('scanner')) migrations.push(...scannerMigrations);
  return migrations;
}

function readCaFile(file: string, field: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new PortcullisError('CONFIG_INVALID', `${field} ${file}: ${describeError(error)}`, { cause: error });
  }
}

/** The Harbor verdict source of `webhook.verdicts.source: harbor`. */
function harborSource(config: Config['webhook']['verdicts']['harbor']): VerdictSource {
  if (!config.url) throw new PortcullisError('CONFIG_INVALID', 'webhook.verdicts.source is harbor but webhook.verdicts.harbor.url is not set (PORTCULLIS_WEBHOOK_VERDICTS_HARBOR_URL)');
  const ca = config.caFile ? readCaFile(config.caFile, 'webhook.verdicts.harbor.caFile') : undefined;
  return new HarborVerdictSource({ url: config.url, username: config.username, password: config.password, ca, insecureSkipVerify: config.insecureSkipVerify });
}

/** The registry host spellings clients use for an address bound to `host:port`. */
function registryHosts(host: string, port: number): string[] {
  const hosts = [`${urlHost(host)}:${port}`];
  if (['127.0.0.1', '0.0.0.0', '::', 'localhost'].includes(host)) hosts.push(`127.0.0.1:${port}`, `localhost:${port}`);
  return [...new Set(hosts)];
}

/**
 * Starts the configured roles in this process and returns once all servers listen. On a failure
 * part-way, whatever was started is closed again before the error is rethrown.
 */
export async function startSuite(deps: SuiteDeps): Promise<Suite> {
  const { config, logger, env } = deps;
  const now = deps.now ?? (() => new Date());
  const roles = deps.roles ?? ROLES;
  const runs = (role: Role) => roles.includes(role);
  const closers: Closer[] = [];
  // While stopping, every response closes its connection (see closeConnectionsWhen).
  let stopping = false;
  const closeConnectionsWhenStopping = (app: HttpServer) => closeConnectionsWhen(app, () => stopping);
  const closeAll = async () => {
    stopping = true;
    while (closers.length > 0) {
      const closer = closers.pop() as Closer;
      try {
        await closer.close();
        logger.debug({ [F.name]: closer.name }, 'closed');
      } catch (error) {
        logger.error({ [F.name]: closer.name, [F.err]: error }, 'close failed');
      }
    }
  };

  try {
    const policiesDir = resolveShipped(config.webhook.policiesDir, deps.cwd);
    const webhooksDir = resolveShipped(config.webhook.webhooksDir, deps.cwd);
    const metrics: Registry = createMetricsRegistry();
    const readiness: Record<Role, Readiness> = { webhook: new Readiness(), registry: new Readiness(), scanner: new Readiness() };
    const subsystems: string[] = [];
    const endpoints: Partial<Record<Role, Endpoint>> = {};

    // ---- database: every stateful subsystem migrates before it serves ----------------------------
    const database: OpenDatabase<unknown> = openDatabase(config.database);
    closers.push({ name: 'database', close: () => database.close() });
    const applied = await migrate(database.db, migrationsFor(roles));
    if (applied.length > 0) logger.info({ [F.count]: applied.length }, 'migrations applied');

    // ---- Kubernetes (kube.mode auto): KUBECONFIG or the in-cluster config when present -----------
    const kube = detectKube(config.kube, env);
    const kubeConfig = kube.mode === 'none' ? undefined : loadKubeConfig({ kubeconfigPath: config.kube.kubeconfig, env });
    const kubeClient: KubeClient | undefined = kubeConfig ? createKubeClient(kubeConfig) : undefined;

    // ---- certificates: issued on first start, rotated, caBundle kept in step ----------------------
    const certificates = createCertificateManager({
      config: config.certs,
      logger: logger.child({ subsystem: 'certs' }),
      metrics,
      readiness: readiness.webhook,
      ...(kubeClient ? { kube: kubeClient, webhookConfigNames: readWebhookConfigNames(webhooksDir) } : {}),
      now,
    });
    const tls = await certificates.start();
    closers.push({ name: 'certificates', close: () => certificates.close() });
    // A copy of the CA bundle in the data directory: certs.dir may be a read-only Secret mount.
    const trustFile = writeTrustBundle(config.dataDir, certificates.current().caBundle);
    certificates.onRotate((served) => writeTrustBundle(config.dataDir, served.caBundle));
    const caFile = config.certs.mode === 'managed' && !(kubeClient && config.certs.secretName) ? join(config.certs.dir, FILES.caBundle) : trustFile;
    subsystems.push('certs');

    const listenOn = async (role: Role, server: HttpServer, address: string, close: () => Promise<void>) => {
      closeConnectionsWhenStopping(server);
      const { host, port } = parseHostPort(address);
      const bound = await listen(server, host, port);
      const scheme = role === 'registry' && !config.registry.tls.enabled ? 'http' : 'https';
      const endpoint: Endpoint = { role, host: bound.host, port: bound.port, url: `${scheme}://${urlHost(bound.host)}:${bound.port}`, readiness: readiness[role] };
      endpoints[role] = endpoint;
      // Closing a fastify app stops accepting and waits for in-flight requests to finish.
      closers.push({ name: `${role} server`, close });
      logger.info({ role, [F.address]: endpoint.url }, 'listening');
      return endpoint;
    };

    // ---- registry role ----------------------------------------------------------------------------
    let admin: AdminCredentials | undefined;
    let identity: AccessControl | undefined;
    let registry: RegistryRole | undefined;
    let scanner: ScannerSubsystem | undefined;
    let registryUrl = config.registry.externalUrl;
    let hosts: string[] = [];
    if (runs('registry')) {
      const registryConfig = config.registry;
      const role: { current?: RegistryRole } = {};
      identity = createAccessControl({
        config: registryConfig,
        logger: logger.child({ subsystem: 'registry-auth' }),
        db: database.db,
        dataDir: config.dataDir,
        repositories: { count: (project) => (role.current ? role.current.repositories.count(project) : Promise.resolve(0)) },
      });
      // A generated admin password comes back this once, for the banner; only its hash is stored.
      const { created, adminPassword } = await identity.bootstrap();
      admin = { username: 'admin', created, ...(adminPassword ? { generatedPassword: adminPassword } : {}) };
      if (adminPassword) deps.onAdminPasswordGenerated?.(adminPassword);
      const legacy = legacyAdminPasswordFile(config.dataDir);
      if (legacy) logger.warn({ [F.file]: legacy }, 'this file holds an admin password in plain text, written by an earlier version; it is no longer read: delete it');
      // The scanner is created once the registry's address is known; until then it has none.
      const scans: ScanPort = {
        overview: (digest) => (scanner ? scanner.scanPort.overview(digest) : Promise.resolve(undefined)),
        report: (digest) => (scanner ? scanner.scanPort.report(digest) : Promise.resolve(undefined)),
        requestScan: (artifact) => {
          if (!scanner) return Promise.reject(new PortcullisError('INTERNAL', 'no scanner runs in this process'));
          return scanner.scanPort.requestScan(artifact);
        },
      };
      registry = createRegistry({
        config: registryConfig,
        logger: logger.child({ subsystem: 'registry' }),
        db: database.db,
        metrics,
        readiness: readiness.registry,
        access: identity.controller,
        authRoutes: identity.routes,
        ...(runs('scanner') ? { scans } : {}),
        ...(config.registry.tls.enabled ? { tls } : {}),
        now,
      });
      role.current = registry;
      await registry.start();
      if (config.registry.tls.enabled) certificates.attach(registry.app);
      subsystems.push('registry');
    }

    // ---- audit: decisions from the webhook, API on the registry (or webhook) server --------------
    // The background audit asks the same verdict source as the webhook, which is known only once
    // the scanner exists (after the registry listens); it reaches it through this indirection.
    let verdicts: VerdictSource | undefined;
    const lateVerdicts: VerdictSource = {
      name: 'webhook',
      resolveDigest: (reference, options) => (verdicts ? verdicts.resolveDigest(reference, options) : Promise.reject(new PortcullisError('VERDICT_UNAVAILABLE', 'no verdict source is configured'))),
      verdict: (reference, digest, options) => (verdicts ? verdicts.verdict(reference, digest, options) : Promise.reject(new PortcullisError('VERDICT_UNAVAILABLE', 'no verdict source is configured'))),
    };
    const policies = runs('webhook') ? createPolicyStore({ dir: policiesDir, logger: logger.child({ subsystem: 'policy' }), metrics, now }) : undefined;
    const audit =
      runs('webhook') || runs('registry')
        ? createAudit({
            config: config.audit,
            logger: logger.child({ subsystem: 'audit' }),
            db: database.db,
            metrics,
            authenticate: identity ? (authorization, context) => identity.controller.authenticate(authorization, context) : async (): Promise<Principal> => ({ kind: 'anonymous' }),
            ...(kubeClient ? { kube: kubeClient } : {}),
            ...(policies ? { policies, verdicts: lateVerdicts } : {}),
            excludedNamespaces: config.webhook.excludedNamespaces,
          })
        : undefined;

    if (registry) {
      if (audit) await registry.app.register(audit.routes);
      const bound = await listenOn('registry', registry.app, config.registry.listen, () => (registry as RegistryRole).close());
      registryUrl ??= bound.url;
      if (!config.registry.externalUrl) identity?.setExternalUrl(bound.url);
      hosts = registryHosts(bound.host, bound.port);
    }

    // ---- scanner role -------------------------------------------------------------------------------
    if (runs('scanner')) {
      const trivy = findExecutable(config.scanner.trivyPath, env);
      const server = buildServer({ logger: logger.child({ role: 'scanner' }), tls, readiness: readiness.scanner, metrics });
      certificates.attach(server);
      const { host, port } = parseHostPort(config.registry.listen);
      const url = registryUrl ?? `https://${urlHost(host)}:${port}`;
      scanner = createScanner({
        config: { ...config.scanner, trivyPath: trivy ?? config.scanner.trivyPath },
        logger: logger.child({ subsystem: 'scanner' }),
        db: database.db,
        metrics,
        readiness: readiness.scanner,
        registryUrl: url,
        registryCa: certificates.current().caBundle,
        credentials: {
          issueRobotCredential: (project, actions, ttlSeconds) => {
            if (!identity) return Promise.reject(new PortcullisError('INTERNAL', 'the scanner runs without the registry in this process: no robot credentials (run both roles together)'));
            return identity.issueRobotCredential(project, [...actions], ttlSeconds);
          },
        },
        ...(registry ? { events: registry.events } : {}),
        ...(identity ? { projectSettings: identity } : {}),
        ...(registry ? { digestResolver: { resolve: async (repository: string, tag: string) => (await new RegistryMetadata(database.db, now).manifestByTag(repository, tag))?.digest } } : {}),
        registryHosts: hosts.length > 0 ? hosts : [new URL(url).host],
        env,
      });
      await server.register(scanner.adapterRoutes);
      await scanner.start();
      closers.push({ name: 'scanner', close: () => (scanner as ScannerSubsystem).close() });
      await listenOn('scanner', server, config.scanner.listen, () => server.close());
      subsystems.push('scanner');
    }

    // ---- webhook role: policies → verdicts → audit sink → admission routes ------------------------
    if (audit) {
      audit.start();
      // Closed after the servers (closers run in reverse): in-flight decisions are flushed first.
      closers.push({ name: 'audit', close: () => audit.close() });
      subsystems.push('audit');
    }
    if (runs('webhook') && policies && audit) {
      await policies.start();
      closers.push({ name: 'policy store', close: () => policies.close() });
      subsystems.push('policy');

      switch (config.webhook.verdicts.source) {
        case 'harbor':
          verdicts = harborSource(config.webhook.verdicts.harbor);
          break;
        case 'builtin':
          verdicts = scanner?.verdictSource;
          if (!verdicts) logger.warn('webhook.verdicts.source is builtin but the scanner does not run in this process: vulnerability gates see images as unavailable (use source harbor against the registry)');
          break;
        case 'none':
          logger.warn('webhook.verdicts.source is none: vulnerability gates see every image as unavailable');
          break;
      }

      const server = buildServer({ logger: logger.child({ role: 'webhook' }), tls, bodyLimit: config.webhook.bodyLimitBytes, readiness: readiness.webhook, metrics });
      certificates.attach(server);
      const admission = createAdmission({
        config: config.webhook,
        logger: logger.child({ subsystem: 'admission' }),
        metrics,
        readiness: readiness.webhook,
        // The shipped PullSecretPolicy covers the registry's default address; follow the real one.
        policies: withRegistryHosts(policies, hosts),
        verdicts,
        ...(kubeClient ? { kube: createAdmissionKube(kubeClient) } : {}),
        decisions: audit.sink,
        clock: now,
        tls,
      });
      // A finished scan changes a verdict: the webhook forgets its cached one at once, and the
      // background audit re-evaluates the running pods.
      if (scanner) {
        const cache = admission.verdictCache;
        const background = audit.background;
        scanner.scanner.onScanFinished((job) => {
          cache?.forget(job.digest);
          void background?.rerun(`scan of ${job.repository}@${job.digest} ${job.status}`).catch((error: unknown) => logger.warn({ [F.err]: describeError(error) }, 'background audit rerun failed'));
        });
        // New vulnerability data makes stored reports stale: cached verdicts go, and the background
        // audit re-evaluates; rescans are queued when the webhook next asks for a stale digest.
        scanner.scanner.status.onDbChange(() => {
          cache?.clear();
          void background?.rerun('trivy vulnerability database changed').catch((error: unknown) => logger.warn({ [F.err]: describeError(error) }, 'background audit rerun failed'));
        });
      }
      await server.register(admission.routes);
      // Without the registry here, the audit API is served next to the webhooks.
      if (!registry) await server.register(audit.routes);
      await listenOn('webhook', server, config.webhook.listen, () => server.close());
      subsystems.push('admission');
    }

    let closing: Promise<void> | undefined;
    return {
      roles: [...roles],
      endpoints,
      caFile,
      trustDir: dirname(trustFile),
      ...(admin ? { admin } : {}),
      kube,
      policiesDir,
      webhooksDir,
      certificates,
      subsystems,
      readiness: (role) => readiness[role].report(),
      close: () => {
        closing ??= closeAll();
        return closing;
      },
    };
  } catch (error) {
    logger.error({ [F.err]: describeError(error) }, 'start failed');
    await closeAll();
    throw error;
  }
}
