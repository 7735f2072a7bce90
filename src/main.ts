/**
 * The composition root (DESIGN.md, "Layout"): config → logger → database + migrations →
 * subsystems → servers. Every subsystem gets its slice of the configuration and its collaborators
 * here and nowhere else; `portcullis up` (src/cli/up.ts) calls `startSuite` and turns signals into
 * `close()`.
 *
 * Shutdown order (`close`): stop accepting on every server and let in-flight requests (admission
 * reviews above all) finish → stop the subsystems' background work → flush the audit buffer →
 * close the database.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { issueCa, issueServing, serviceDnsNames, type KeyPair } from './certs/issue.js';
import { parseHostPort } from './config/load.js';
import type { Config } from './config/schema.js';
import { migrate, openDatabase, type Migration, type OpenDatabase } from './db/database.js';
import { PortcullisError, describeError } from './errors.js';
import { createMetricsRegistry, type Registry } from './http/metrics.js';
import { Readiness, type ReadinessReport } from './http/readiness.js';
import { buildServer, listen, type HttpServer, type TlsMaterial } from './http/server.js';
import { F } from './log/fields.js';
import type { Logger } from './log/logger.js';
import { createAdmission } from './admission/admission.js';
import { createAdmissionKube } from './admission/kube-port.js';
import { systemClock as auditClock } from './audit/clock.js';
import { auditMigrations } from './audit/migrations.js';
import { createDecisionStore } from './audit/store.js';
import type { AuditDb } from './audit/tables.js';
import { createDecisionWriter } from './audit/writer.js';
import { createKubeClient, loadKubeConfig, type KubeClient } from './kube/client.js';
import { createPolicyStore } from './policy/store.js';
import { HarborVerdictSource } from './verdicts/harbor-source.js';
import type { VerdictSource } from './verdicts/source.js';

export const ROLES = ['webhook', 'registry', 'scanner'] as const;
export type Role = (typeof ROLES)[number];

export interface SuiteDeps {
  config: Config;
  logger: Logger;
  /** The process environment (KUBECONFIG, KUBERNETES_SERVICE_HOST, PATH); only main.ts reads it. */
  env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths in the configuration are resolved against. */
  cwd: string;
  /** The clock; injected so that tests control certificate validity. */
  now?: () => Date;
  /** The roles to run (all three by default; one per Deployment in a cluster). */
  roles?: readonly Role[];
}

export interface Endpoint {
  role: Role;
  /** `https://HOST:PORT` with the port actually bound (useful with `:0`). */
  url: string;
  host: string;
  port: number;
  readiness: Readiness;
}

/** How Kubernetes is reached (`kube.mode auto`): a kubeconfig, the in-cluster config, or not at all. */
export type KubeAccess =
  | { mode: 'kubeconfig'; file: string }
  | { mode: 'in-cluster' }
  | { mode: 'none'; reason: string };

export interface AdminCredentials {
  username: string;
  /** File the password is kept in (0600); absent when it came from configuration. */
  passwordFile?: string;
  /** Set only on the start that generated it: the banner prints it this once. */
  generatedPassword?: string;
}

export interface Suite {
  /** The roles this process runs, and their endpoints. */
  roles: Role[];
  endpoints: Partial<Record<Role, Endpoint>>;
  /** PEM file of the CA that signed every serving certificate (the webhooks' caBundle). */
  caFile: string;
  /** A directory holding only `ca.crt`, usable as `skopeo --cert-dir` / Docker's certs.d. */
  trustDir: string;
  admin: AdminCredentials;
  kube: KubeAccess;
  policiesDir: string;
  webhooksDir: string;
  /** Names of the subsystems wired in this build (the rest run as bare servers). */
  subsystems: string[];
  readiness(role: Role): Promise<ReadinessReport>;
  /** Graceful shutdown; idempotent. Never rejects: failures are logged. */
  close(): Promise<void>;
}

interface Closer {
  name: string;
  close(): Promise<void> | void;
}

const PACKAGE_ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * Resolves a shipped directory (`policies`, `webhooks`): relative to `cwd` when it exists there,
 * otherwise relative to the installed package, so that `npx portcullis up` works from anywhere.
 */
export function resolveShipped(path: string, cwd: string): string {
  if (isAbsolute(path)) return path;
  const fromCwd = resolve(cwd, path);
  if (existsSync(fromCwd)) return fromCwd;
  return resolve(PACKAGE_ROOT, path);
}

/** Detects how Kubernetes can be reached, without contacting it. */
export function detectKube(config: Config['kube'], env: SuiteDeps['env']): KubeAccess {
  if (config.mode === 'off') return { mode: 'none', reason: 'kube.mode is off' };
  const file = config.kubeconfig ?? env.KUBECONFIG;
  if (file) return { mode: 'kubeconfig', file };
  const tokenFile = '/var/run/secrets/kubernetes.io/serviceaccount/token';
  if (env.KUBERNETES_SERVICE_HOST && existsSync(tokenFile)) return { mode: 'in-cluster' };
  return { mode: 'none', reason: 'KUBECONFIG is not set and no in-cluster service account was found' };
}

/** Finds an executable named `command` (a path, or a name looked up on PATH). */
export function findExecutable(command: string, env: SuiteDeps['env']): string | undefined {
  const candidates = command.includes('/') ? [command] : (env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not here (or not executable): try the next PATH entry.
    }
  }
  return undefined;
}

/** The hostnames and addresses the local serving certificate must cover. */
function servingNames(config: Config): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = new Set(['localhost', ...serviceDnsNames(config.certs.service, config.certs.namespace), ...config.certs.dnsNames]);
  const ipAddresses = new Set(['127.0.0.1', ...config.certs.ipAddresses]);
  for (const listenAddress of [config.webhook.listen, config.registry.listen, config.scanner.listen]) {
    const { host } = parseHostPort(listenAddress);
    if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) {
      if (host !== '0.0.0.0') ipAddresses.add(host);
    } else if (host !== '::') {
      dnsNames.add(host);
    }
  }
  return { dnsNames: [...dnsNames], ipAddresses: [...ipAddresses] };
}

interface LocalCertificates {
  ca: KeyPair;
  serving: KeyPair;
  caFile: string;
  trustDir: string;
  generated: boolean;
}

/**
 * The certificates of `up`: a CA and one serving certificate (localhost, 127.0.0.1, the Service
 * names) in `certs.dir`, issued on first start and reused afterwards. Rotation and the in-cluster
 * Secret store belong to the certificate manager (src/certs/).
 */
function ensureLocalCertificates(config: Config, now: Date): LocalCertificates {
  const dir = config.certs.dir;
  const files = { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), cert: config.webhook.tls.certFile, key: config.webhook.tls.keyFile };
  if (config.certs.mode === 'external') {
    // Bring-your-own (cert-manager, or the webhook's Secret mounted into the other roles): read only.
    const read = (file: string) => {
      try {
        return readFileSync(file, 'utf8');
      } catch (error) {
        throw new PortcullisError('CERT_INVALID', `certs.mode external: cannot read ${file}: ${describeError(error)}`, { cause: error });
      }
    };
    return { ca: { cert: read(files.caCert), key: '' }, serving: { cert: read(files.cert), key: read(files.key) }, caFile: files.caCert, trustDir: dir, generated: false };
  }
  const trustDir = join(dir, 'trust');
  mkdirSync(trustDir, { recursive: true, mode: 0o700 });
  let generated = false;
  if (!existsSync(files.caCert) || !existsSync(files.caKey)) {
    const ca = issueCa({ commonName: 'Portcullis local CA', validityDays: config.certs.caValidityDays, now });
    writeFileSync(files.caKey, ca.key, { mode: 0o600 });
    writeFileSync(files.caCert, ca.cert);
    generated = true;
  }
  const ca: KeyPair = { cert: readFileSync(files.caCert, 'utf8'), key: readFileSync(files.caKey, 'utf8') };
  if (generated || !existsSync(files.cert) || !existsSync(files.key)) {
    const serving = issueServing({ ca, ...servingNames(config), validityDays: config.certs.servingValidityDays, now });
    writeFileSync(files.key, serving.key, { mode: 0o600 });
    writeFileSync(files.cert, serving.cert);
    generated = true;
  }
  writeFileSync(join(trustDir, 'ca.crt'), ca.cert);
  return { ca, serving: { cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8') }, caFile: files.caCert, trustDir, generated };
}

/**
 * The registry's admin password: from configuration (`PORTCULLIS_ADMIN_PASSWORD`), else the one
 * kept in `<dataDir>/admin-password`, else a new one written there (0600) and shown once.
 */
function ensureAdminPassword(config: Config): AdminCredentials & { password: string } {
  if (config.registry.adminPassword) return { username: 'admin', password: config.registry.adminPassword };
  const passwordFile = join(config.dataDir, 'admin-password');
  if (existsSync(passwordFile)) return { username: 'admin', passwordFile, password: readFileSync(passwordFile, 'utf8').trim() };
  const password = randomBytes(18).toString('base64url');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  return { username: 'admin', passwordFile, password, generatedPassword: password };
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** The migrations of the subsystems this process runs (names are `<subsystem>/NNNN-what`). */
function migrationsFor(roles: readonly Role[]): Migration[] {
  const migrations: Migration[] = [];
  if (roles.includes('webhook')) migrations.push(...auditMigrations);
  return migrations;
}

/** The verdict source the webhook asks (`webhook.verdicts.source`). */
function verdictSource(config: Config['webhook']['verdicts'], logger: Logger): VerdictSource | undefined {
  switch (config.source) {
    case 'harbor': {
      const harbor = config.harbor;
      if (!harbor.url) throw new PortcullisError('CONFIG_INVALID', 'webhook.verdicts.source is harbor but webhook.verdicts.harbor.url is not set (PORTCULLIS_WEBHOOK_VERDICTS_HARBOR_URL)');
      let ca: string | undefined;
      if (harbor.caFile) {
        try {
          ca = readFileSync(harbor.caFile, 'utf8');
        } catch (error) {
          throw new PortcullisError('CONFIG_INVALID', `webhook.verdicts.harbor.caFile ${harbor.caFile}: ${describeError(error)}`, { cause: error });
        }
      }
      return new HarborVerdictSource({ url: harbor.url, username: harbor.username, password: harbor.password, ca, insecureSkipVerify: harbor.insecureSkipVerify });
    }
    case 'builtin':
      // Wired to the in-process registry and scanner below when they run here.
      return undefined;
    case 'none':
      logger.warn('webhook.verdicts.source is none: vulnerability gates see every image as unavailable');
      return undefined;
  }
}

/**
 * Starts every role in this process and returns once all servers listen. On a failure part-way,
 * whatever was started is closed again before the error is rethrown.
 */
export async function startSuite(deps: SuiteDeps): Promise<Suite> {
  const { config, logger, env } = deps;
  const now = deps.now ?? (() => new Date());
  const roles = deps.roles ?? ROLES;
  const closers: Closer[] = [];
  const closeAll = async () => {
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
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    const policiesDir = resolveShipped(config.webhook.policiesDir, deps.cwd);
    const webhooksDir = resolveShipped(config.webhook.webhooksDir, deps.cwd);
    const metrics: Registry = createMetricsRegistry();
    const kube = detectKube(config.kube, env);

    // Database first: every stateful subsystem migrates before it serves.
    const database: OpenDatabase<unknown> = openDatabase(config.database);
    closers.push({ name: 'database', close: () => database.close() });
    const applied = await migrate(database.db, migrationsFor(roles));
    if (applied.length > 0) logger.info({ [F.count]: applied.length }, 'migrations applied');

    const certificates = ensureLocalCertificates(config, now());
    if (certificates.generated) logger.info({ [F.path]: certificates.caFile }, 'certificates issued');
    const tls: TlsMaterial = { key: certificates.serving.key, cert: certificates.serving.cert };
    const admin = ensureAdminPassword(config);

    const readiness: Record<Role, Readiness> = { webhook: new Readiness(), registry: new Readiness(), scanner: new Readiness() };
    const subsystems: string[] = [];
    const runs = (role: Role) => roles.includes(role);

    const servers: Partial<Record<Role, HttpServer>> = {};
    if (runs('webhook')) servers.webhook = buildServer({ logger: logger.child({ role: 'webhook' }), tls, bodyLimit: config.webhook.bodyLimitBytes, readiness: readiness.webhook, metrics });
    if (runs('registry')) {
      servers.registry = buildServer({ logger: logger.child({ role: 'registry' }), tls: config.registry.tls.enabled ? tls : undefined, bodyLimit: 64 * 1024 * 1024, readiness: readiness.registry, metrics });
    }
    if (runs('scanner')) servers.scanner = buildServer({ logger: logger.child({ role: 'scanner' }), tls, readiness: readiness.scanner, metrics });

    // Kubernetes (kube.mode auto): KUBECONFIG or the in-cluster config when present.
    const kubeConfig = kube.mode === 'none' ? undefined : loadKubeConfig({ kubeconfigPath: config.kube.kubeconfig, env });
    const kubeClient: KubeClient | undefined = kubeConfig ? createKubeClient(kubeConfig) : undefined;

    // ---- scanner role ---------------------------------------------------------------------
    if (runs('scanner')) {
      const trivy = findExecutable(config.scanner.trivyPath, env);
      readiness.scanner.register('trivy', () =>
        trivy ? { ok: true, reason: trivy } : { ok: false, reason: `trivy not found (scanner.trivyPath=${config.scanner.trivyPath}); install Trivy or set PORTCULLIS_SCANNER_TRIVY_PATH` },
      );
    }

    // ---- webhook role: policies → verdicts → audit sink → admission routes ----------------------
    if (runs('webhook') && servers.webhook) {
      const policies = createPolicyStore({ dir: policiesDir, logger: logger.child({ subsystem: 'policy' }), metrics, now });
      await policies.start();
      closers.push({ name: 'policy store', close: () => policies.close() });
      subsystems.push('policy');

      const decisionWriter = createDecisionWriter({
        store: createDecisionStore(database.db as AuditDb),
        logger: logger.child({ subsystem: 'audit' }),
        metrics,
        clock: auditClock,
        bufferSize: config.audit.bufferSize,
        batchSize: config.audit.batchSize,
        flushIntervalMs: config.audit.flushIntervalMs,
        dropPolicy: config.audit.dropPolicy,
      });
      decisionWriter.start();
      // Closed after the servers (closers run in reverse): in-flight decisions are flushed first.
      closers.push({ name: 'audit writer', close: () => decisionWriter.close(5_000) });
      subsystems.push('audit');

      const admission = createAdmission({
        config: config.webhook,
        logger: logger.child({ subsystem: 'admission' }),
        metrics,
        readiness: readiness.webhook,
        policies,
        verdicts: verdictSource(config.webhook.verdicts, logger),
        kube: kubeClient ? createAdmissionKube(kubeClient) : undefined,
        decisions: decisionWriter,
        clock: now,
        tls,
      });
      await servers.webhook.register(admission.routes);
      subsystems.push('admission');
    }

    const listenAddresses: Record<Role, string> = { webhook: config.webhook.listen, registry: config.registry.listen, scanner: config.scanner.listen };
    const endpoints: Partial<Record<Role, Endpoint>> = {};
    for (const role of roles) {
      const server = servers[role];
      if (!server) continue;
      const { host, port } = parseHostPort(listenAddresses[role]);
      const bound = await listen(server, host, port);
      const scheme = role === 'registry' && !config.registry.tls.enabled ? 'http' : 'https';
      endpoints[role] = { role, host: bound.host, port: bound.port, url: `${scheme}://${urlHost(bound.host)}:${bound.port}`, readiness: readiness[role] };
      // Closing a fastify app stops accepting and waits for in-flight requests to finish.
      closers.push({ name: `${role} server`, close: () => server.close() });
      logger.info({ role, [F.address]: endpoints[role]?.url }, 'listening');
    }

    let closing: Promise<void> | undefined;
    return {
      roles: [...roles],
      endpoints,
      caFile: certificates.caFile,
      trustDir: certificates.trustDir,
      admin: { username: admin.username, passwordFile: admin.passwordFile, generatedPassword: admin.generatedPassword },
      kube,
      policiesDir,
      webhooksDir,
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
