import { randomBytes } from 'node:crypto';
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { DEFAULT_CIPHERS } from 'node:tls';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Bindings, ChildLoggerOptions, LevelWithSilent } from 'pino';
import type { Registry } from 'prom-client';
import { PortcullisError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { parseJsonBody } from './json-body.js';
import type { Readiness } from './readiness.js';

export interface TlsMaterial {
  key: string | Buffer;
  cert: string | Buffer;
  /** Extra CA certificates to send in the chain. */
  ca?: string | Buffer;
}

export interface ServerOptions {
  logger: Logger;
  /** Serve HTTPS with this key pair; plain HTTP when absent (tests of internal roles, `--insecure`). */
  tls?: TlsMaterial;
  /** Largest accepted request body in bytes (413 above it). Fastify's default of 1 MiB when absent. */
  bodyLimit?: number;
  /** When given, `/readyz` reports these checks. */
  readiness?: Readiness;
  /** When given, `/metrics` serves this registry. */
  metrics?: Registry;
  /**
   * Proxies (addresses or CIDRs) whose `X-Forwarded-For` names the client: `request.ip` is then
   * the client's address. None by default: the peer is the client.
   */
  trustedProxies?: readonly string[];
}

export type HttpServer = FastifyInstance;

/**
 * TLS 1.3 suites in the server's order of preference: AES-128-GCM first, as Go's crypto/tls
 * (kube-apiserver, skopeo, distribution) prefers it on hardware with AES instructions. OpenSSL's
 * own order puts AES-256-GCM first, which costs both ends more per byte for no practical gain in
 * strength; clients that only offer the others still get them. TLS 1.2 keeps Node's default list.
 */
const TLS13_ORDER = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
const defaultSuites = DEFAULT_CIPHERS.split(':');
/** Only suites Node offers by default (an operator's `--tls-cipher-list` may have dropped some). */
const TLS13_SUITES = TLS13_ORDER.filter((suite) => defaultSuites.includes(suite));
export const CIPHER_PREFERENCE = {
  ciphers: [...TLS13_SUITES, ...defaultSuites.filter((suite) => !TLS13_ORDER.includes(suite))].join(':'),
  honorCipherOrder: true,
} as const;

/** The JSON error body served by Portcullis's own endpoints. */
export interface ErrorBody {
  error: { code: string; message: string; detail?: unknown };
}

export function errorBody(code: string, message: string, detail?: unknown): ErrorBody {
  return { error: detail === undefined ? { code, message } : { code, message, detail } };
}

/** Maps fastify's own error codes onto the project's catalog. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'REQUEST_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'REQUEST_MALFORMED',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'REQUEST_MALFORMED',
  FST_ERR_CTP_INVALID_JSON_BODY: 'REQUEST_MALFORMED',
};

/**
 * Converts any error thrown in a handler to `{status, code, message}`. Exposed so that surfaces
 * with their own envelope (OCI, Harbor, AdmissionReview) share the classification.
 */
export function classifyError(error: FastifyError | Error): { status: number; code: string; message: string; detail?: unknown } {
  if (error instanceof PortcullisError) return { status: error.status, code: error.code, message: error.message, detail: error.detail };
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    return { status: 400, code: 'REQUEST_MALFORMED', message: `${fastifyError.validationContext ?? 'request'} ${error.message}` };
  }
  const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped) return { status: fastifyError.statusCode ?? 400, code: mapped, message: error.message };
  if (error instanceof SyntaxError) return { status: 400, code: 'REQUEST_MALFORMED', message: `body is not valid JSON: ${error.message}` };
  if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return { status: fastifyError.statusCode, code: 'REQUEST_MALFORMED', message: error.message };
  }
  return { status: 500, code: 'INTERNAL', message: 'internal error' };
}

/**
 * Request ids: a random prefix per process and a counter, unique across replicas and restarts
 * for every practical purpose and much cheaper than a UUID per request. A client's
 * `X-Request-Id` is used instead when it sends one.
 */
function requestIds(): () => string {
  const prefix = randomBytes(6).toString('hex');
  let next = 0;
  return () => `${prefix}-${(next++).toString(36)}`;
}

/**
 * A request's logger that becomes a real child logger (with the request id bound) only when
 * something is written at an enabled level. Most requests log nothing, and creating a pino child
 * per request was a measurable part of the admission hot path.
 */
class RequestLogger implements FastifyBaseLogger {
  readonly #parent: FastifyBaseLogger & { isLevelEnabled(level: string): boolean };
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger & { isLevelEnabled(level: string): boolean }, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  get level(): LevelWithSilent | string {
    return this.#child?.level ?? this.#parent.level;
  }

  set level(level: LevelWithSilent | string) {
    this.#real().level = level;
  }

  // Methods on the prototype: one logger per request must not allocate a closure per level.
  fatal(...args: unknown[]): void {
    this.#write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.#write('error', args);
  }
  warn(...args: unknown[]): void {
    this.#write('warn', args);
  }
  info(...args: unknown[]): void {
    this.#write('info', args);
  }
  debug(...args: unknown[]): void {
    this.#write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.#write('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options);
  }

  #write(level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace', args: unknown[]): void {
    if (this.#child === undefined && !this.#parent.isLevelEnabled(level)) return;
    const real = this.#real();
    (real[level] as (...all: unknown[]) => void).apply(real, args);
  }

  #real(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options);
    return this.#child;
  }
}

/**
 * Builds a fastify app with what every role shares: TLS, request ids (honouring `X-Request-Id`),
 * the JSON error handler, `/healthz`, `/readyz` and `/metrics`. It never listens: call `listen`
 * (or `app.listen({ port: 0 })` in tests).
 */
export function buildServer(options: ServerOptions): HttpServer {
  const draining: Draining = { stopping: () => false };
  const Response = drainingResponse(draining);
  const app = Fastify({
    loggerInstance: options.logger,
    ...(options.tls
      ? { https: { key: options.tls.key, cert: options.tls.cert, ca: options.tls.ca, ...CIPHER_PREFERENCE, ServerResponse: Response } }
      : { http: { ServerResponse: Response } }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // From these proxies fastify also believes X-Forwarded-Host and X-Forwarded-Proto
    // (request.host, request.protocol); nothing here reads those, only request.ip.
    ...(options.trustedProxies && options.trustedProxies.length > 0 ? { trustProxy: [...options.trustedProxies] } : {}),
    requestIdHeader: 'x-request-id',
    genReqId: requestIds(),
    // A route with its own log level or serializers gets its real child at once (its level, not
    // the root's, decides what is written).
    childLoggerFactory: (logger, bindings, options) =>
      Object.keys(options).length > 0 ? logger.child(bindings, options) : new RequestLogger(logger as FastifyBaseLogger & { isLevelEnabled(level: string): boolean }, bindings, options),
    // One line per request at info level would dominate the admission hot path; completed
    // requests are logged at debug below, errors always.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  }) as unknown as HttpServer;
  drainingOf.set(app, draining);

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  // Decided once: a hook on every request costs even when it writes nothing.
  if (options.logger.isLevelEnabled('debug')) {
    app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      request.log.debug({ method: request.method, url: request.url, statusCode: reply.statusCode, durationMs: reply.elapsedTime }, 'request completed');
      done();
    });
  }

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const classified = classifyError(error);
    if (classified.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: classified.code, statusCode: classified.status, reason: classified.message }, 'request rejected');
    void reply.status(classified.status).send(errorBody(classified.code, classified.message, classified.detail));
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(errorBody('NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`));
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  if (options.readiness) {
    const readiness = options.readiness;
    app.get('/readyz', async (_request, reply) => {
      const report = await readiness.report();
      return reply.status(report.ready ? 200 : 503).send(report);
    });
  }

  if (options.metrics) {
    const metrics = options.metrics;
    app.get('/metrics', async (_request, reply) => {
      return reply.header('content-type', metrics.contentType).send(await metrics.metrics());
    });
  }

  return app;
}

/** When a server's answers should close their connections (see closeConnectionsWhen). */
interface Draining {
  stopping: () => boolean;
}

const drainingOf = new WeakMap<HttpServer, Draining>();

/**
 * The server's response class: Node's own, except that while `draining.stopping()` is true the
 * headers say `Connection: close` and the connection closes after the answer. Decided when the
 * headers are written, so that requests already in flight when stopping began are covered too.
 * A class rather than an onSend hook: it costs one call per response, where a hook costs fastify's
 * hook runner and its closures on every response of every role.
 */
function drainingResponse(draining: Draining): typeof ServerResponse {
  const Draining = class extends ServerResponse<IncomingMessage> {};
  const writeHead = ServerResponse.prototype.writeHead;
  Draining.prototype.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    if (draining.stopping()) this.shouldKeepAlive = false;
    return Reflect.apply(writeHead, this, args) as ServerResponse;
  } as typeof writeHead;
  // Node constructs it with the request type of the server: the generic signature of its own class.
  return Draining as typeof ServerResponse;
}

/**
 * While `stopping()` is true, every response closes its connection: a keep-alive connection
 * (kube-apiserver keeps them) that turns idle after `close()` began would otherwise hold the
 * server open until its keep-alive timeout. For servers made by buildServer.
 */
export function closeConnectionsWhen(app: HttpServer, stopping: () => boolean): void {
  const draining = drainingOf.get(app);
  if (draining === undefined) throw new Error('closeConnectionsWhen: the server was not made by buildServer');
  draining.stopping = stopping;
}

/** Listens on `HOST:PORT` and returns the bound address (the port is resolved when 0). */
export async function listen(app: HttpServer, host: string, port: number): Promise<{ host: string; port: number }> {
  await app.listen({ host, port });
  const address = app.server.address();
  if (address === null || typeof address === 'string') return { host, port };
  return { host: address.address, port: address.port };
}

/** Swaps the TLS key pair of a running HTTPS server; new connections use it, open ones keep theirs. */
export function setTls(app: HttpServer, tls: TlsMaterial): void {
  (app.server as unknown as HttpsServer).setSecureContext({ key: tls.key, cert: tls.cert, ca: tls.ca, ...CIPHER_PREFERENCE });
}
