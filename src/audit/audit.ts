import type { FastifyPluginAsync } from 'fastify';
import type { Kysely } from 'kysely';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import type { Registry } from '../http/metrics.js';
import type { KubeClient } from '../kube/client.js';
import type { Logger } from '../log/logger.js';
import { F } from '../log/fields.js';
import type { Principal } from '../registry/access.js';
import type { VerdictSource } from '../verdicts/source.js';
import { systemClock, type Clock } from './clock.js';
import { createPolicyReportWriter } from './policy-reports.js';
import { createRetention } from './retention.js';
import { auditRoutes } from './routes.js';
import { createBackgroundAudit, type BackgroundAudit, type PolicySource } from './running.js';
import { createDecisionStore, type DecisionStore } from './store.js';
import type { AuditTables } from './tables.js';
import { createDecisionWriter, type DecisionWriter } from './writer.js';

export interface AuditDeps {
  config: Config['audit'];
  logger: Logger;
  /** The shared database, migrated with `auditMigrations` (src/audit/migrations.ts). */
  db: Kysely<unknown>;
  metrics: Registry;
  /** Identifies API callers: AccessController.authenticate of the registry. */
  authenticate(authorization: string | undefined, context: { ip: string }): Promise<Principal>;
  /** With kube, policies and verdicts (and `config.background.enabled`), the background audit runs. */
  kube?: KubeClient;
  policies?: PolicySource;
  verdicts?: VerdictSource;
  /** Namespaces the background audit skips (the webhook's `excludedNamespaces`). */
  excludedNamespaces?: readonly string[];
  clock?: Clock;
}

export interface Audit {
  /** Hand to the admission pipelines (a DecisionSink): buffers decisions and writes them in batches. */
  sink: DecisionWriter;
  /** The audit API; mount on the registry's server (`app.register(audit.routes)`). */
  routes: FastifyPluginAsync;
  store: DecisionStore;
  /** Present when the background audit is configured and its collaborators were given. */
  background?: BackgroundAudit;
  /** Starts the flush and pruning timers and the background audit (which syncs in the background). */
  start(): void;
  /** Stops the timers and the background audit, then flushes buffered decisions. */
  close(): Promise<void>;
}

/** The audit subsystem: decision store and writer, retention, API routes, background audit. */
export function createAudit(deps: AuditDeps): Audit {
  const { config, logger, metrics } = deps;
  const clock = deps.clock ?? systemClock;
  const db = deps.db.withTables<AuditTables>();
  const store = createDecisionStore(db);
  const writer: DecisionWriter = createDecisionWriter({
    store,
    logger,
    metrics,
    clock,
    bufferSize: config.bufferSize,
    batchSize: config.batchSize,
    flushIntervalMs: config.flushIntervalMs,
    dropPolicy: config.dropPolicy,
  });
  const retention = createRetention({
    store,
    logger,
    metrics,
    clock,
    retentionDays: config.retentionDays,
    maxRecords: config.retentionMaxRecords,
    intervalMs: config.pruneIntervalSeconds * 1000,
  });
  let background: BackgroundAudit | undefined;
  if (config.background.enabled && deps.kube && deps.policies && deps.verdicts) {
    background = createBackgroundAudit({
      kube: deps.kube,
      policies: deps.policies,
      verdicts: deps.verdicts,
      logger,
      metrics,
      clock,
      excludedNamespaces: deps.excludedNamespaces,
      reports: config.background.policyReports
        ? { writer: createPolicyReportWriter({ kube: deps.kube, logger }), maxResults: config.background.maxReportResults }
        : undefined,
    });
  }
  const running = background;
  const routes = auditRoutes({
    store,
    authenticate: deps.authenticate,
    apiToken: config.apiToken,
    clock,
    running: running ? () => running.report() : undefined,
  });
  let starting: Promise<void> | undefined;

  return {
    sink: writer,
    routes,
    store,
    background,
    start() {
      writer.start();
      retention.start();
      if (background && !starting) {
        starting = background.start().catch((error: unknown) => logger.error({ [F.err]: describeError(error) }, 'background audit did not start'));
      }
    },
    async close() {
      await background?.close();
      await retention.close();
      await writer.close();
    },
  };
}
