import { readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { PortcullisError, describeError } from '../errors.js';
import type { Readiness } from '../http/readiness.js';
import { buildServer, listen, type HttpServer, type TlsMaterial } from '../http/server.js';
import type { Logger } from '../log/logger.js';
import type { PolicyStore } from '../policy/store.js';
import { VerdictCache } from '../verdicts/cache.js';
import type { VerdictSource } from '../verdicts/source.js';
import type { DecisionSink } from './decision.js';
import { EvaluationMemo } from './evaluation-memo.js';
import type { AdmissionKube } from './kube-port.js';
import { admissionStats } from './metrics.js';
import { admissionRoutes } from './routes.js';
import { namespaceExcluder } from './subject.js';
import type { PipelineDeps } from './validate.js';
import { readWebhookSettings, type WebhookSettings } from './webhook-config.js';
import type { FastifyPluginAsync } from 'fastify';

export interface AdmissionDeps {
  config: Config['webhook'];
  logger: Logger;
  metrics: Registry;
  readiness: Readiness;
  /** The live policy set (src/policy/store.ts); the caller starts and closes it. */
  policies: Pick<PolicyStore, 'current' | 'readinessCheck'>;
  /** Where verdicts come from; undefined when `verdicts.source` is `none`. Wrapped in the cache here. */
  verdicts: VerdictSource | undefined;
  /** Kubernetes access for namespace labels and Secret copies; absent outside a cluster. */
  kube?: AdmissionKube;
  decisions: DecisionSink;
  /** The clock for decision times and policy expiry. */
  clock?: () => Date;
  /** Paths and timeouts; read from `config.webhooksDir` when absent. */
  webhooks?: WebhookSettings;
  /** TLS key pair; read from `config.tls` files when absent (certs may also swap it with setTls). */
  tls?: TlsMaterial;
}

export interface Admission {
  readonly webhooks: WebhookSettings;
  /** The verdict cache (undefined without a source); exposed for warm-up and metrics. */
  readonly verdictCache: VerdictCache | undefined;
  /** The two admission routes, to register into any fastify app. */
  readonly routes: FastifyPluginAsync;
  /** A fastify HTTPS app with the routes, `/healthz`, `/readyz` and `/metrics`. Never listens. */
  buildServer(): Promise<HttpServer>;
  /** Builds the server and listens on `config.listen`; resolves with the bound address. */
  start(): Promise<{ host: string; port: number; server: HttpServer }>;
  /** Closes the server started by start() (idempotent). */
  close(): Promise<void>;
}

function readTls(config: Config['webhook']): TlsMaterial {
  try {
    return { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
  } catch (error) {
    throw new PortcullisError('CERT_INVALID', `webhook TLS key pair ${config.tls.certFile}, ${config.tls.keyFile}: ${describeError(error)}`, { cause: error });
  }
}

function parseListen(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(':');
  return { host: listen.slice(0, at), port: Number(listen.slice(at + 1)) };
}

/**
 * The admission subsystem: validating and mutating webhooks over HTTPS. Registers the readiness
 * check `policies` (not ready while no valid policy set is loaded) and the admission metrics.
 * Throws CONFIG_INVALID when webhooks/*.yaml lack a path or timeout.
 */
export function createAdmission(deps: AdmissionDeps): Admission {
  const config = deps.config;
  const webhooks = deps.webhooks ?? readWebhookSettings(config.webhooksDir);
  const verdictCache = deps.verdicts
    ? new VerdictCache({ source: deps.verdicts, max: config.verdicts.cacheMax, ttlMs: config.verdicts.cacheTtlSeconds * 1000 })
    : undefined;
  const now = deps.clock ?? (() => new Date());
  const pipeline: PipelineDeps = {
    policies: deps.policies,
    verdicts: verdictCache,
    kube: deps.kube,
    excluded: namespaceExcluder(config.excludedNamespaces),
    now,
    logger: deps.logger,
    memo: new EvaluationMemo(),
  };
  const routes = admissionRoutes({
    pipeline,
    webhooks,
    deadlineMarginMs: config.deadlineMarginMs,
    metrics: admissionStats(deps.metrics),
    decisions: deps.decisions,
  });
  deps.readiness.register('policies', () => deps.policies.readinessCheck());
  let started: HttpServer | undefined;

  async function build(): Promise<HttpServer> {
    const app = buildServer({
      logger: deps.logger,
      tls: deps.tls ?? readTls(config),
      bodyLimit: config.bodyLimitBytes,
      readiness: deps.readiness,
      metrics: deps.metrics,
    });
    await app.register(routes);
    return app;
  }

  return {
    webhooks,
    verdictCache,
    routes,
    buildServer: build,
    async start() {
      const app = await build();
      started = app;
      const { host, port } = parseListen(config.listen);
      const address = await listen(app, host, port);
      deps.logger.info({ address: `${address.host}:${address.port}`, validate: webhooks.validate.path, mutate: webhooks.mutate.path }, 'admission webhooks listening');
      return { ...address, server: app };
    },
    async close() {
      const app = started;
      started = undefined;
      if (app) await app.close();
    },
  };
}
