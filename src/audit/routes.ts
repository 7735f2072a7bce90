import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { PortcullisError } from '../errors.js';
import type { Principal } from '../registry/access.js';
import {
  DEFAULT_PAGE,
  decisionPageSchema,
  decisionQuerySchema,
  runningQuerySchema,
  runningReportSchema,
  summaryQuerySchema,
  summarySchema,
  type DecisionPage,
  type DecisionQuery,
  type RunningQuery,
  type RunningReport,
  type Summary,
  type SummaryQuery,
} from './api-schemas.js';
import type { Clock } from './clock.js';
import { decodeCursor, encodeCursor, parseTime, type DecisionFilter } from './filter.js';
import type { DecisionStore } from './store.js';

export interface AuditRoutesDeps {
  store: DecisionStore;
  /** Identifies the caller from the Authorization header and the client address, by which AccessController.authenticate also counts failed logins. */
  authenticate(authorization: string | undefined, context: { ip: string }): Promise<Principal>;
  /** A static bearer token that may read the audit API (machines). */
  apiToken?: string;
  clock: Clock;
  /** The background audit's current report; absent when it is not running. */
  running?: () => RunningReport;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const CHALLENGE = 'Basic realm="portcullis audit", charset="UTF-8"';
const DEFAULT_SUMMARY_WINDOW = '24h';

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** Who may read the audit record: a system administrator, an auditor, or the configured token. */
function guard(deps: AuditRoutesDeps) {
  const tokenDigest = deps.apiToken ? digest(deps.apiToken) : undefined;
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    // The scheme is case-insensitive (RFC 9110), for the audit token and the refusal alike.
    const bearer = header === undefined ? undefined : /^bearer\s+(.*)$/is.exec(header)?.[1]?.trim();
    if (tokenDigest && bearer !== undefined && timingSafeEqual(digest(bearer), tokenDigest)) return;
    // Any other bearer token is a registry token, scoped to repositories: it says nothing about
    // the audit record, whoever it was issued to.
    if (bearer !== undefined) {
      void reply.header('www-authenticate', CHALLENGE);
      throw new PortcullisError('UNAUTHORIZED', 'the audit API takes Basic credentials or the audit API token, not registry bearer tokens');
    }
    let principal: Principal;
    try {
      principal = await deps.authenticate(header, { ip: request.ip });
    } catch (error) {
      if (error instanceof PortcullisError && error.code === 'UNAUTHORIZED') void reply.header('www-authenticate', CHALLENGE);
      throw error;
    }
    if (principal.kind === 'anonymous') {
      void reply.header('www-authenticate', CHALLENGE);
      throw new PortcullisError('UNAUTHORIZED', 'the audit API needs credentials: a system administrator, an auditor, or the audit API token');
    }
    if (principal.kind === 'user' && (principal.sysadmin || principal.auditor)) return;
    throw new PortcullisError('FORBIDDEN', `${principal.kind} "${principal.name}" may not read the audit record: it needs the system administrator or auditor role`);
  };
}

/** Turns validated query parameters into a store filter; throws REQUEST_MALFORMED for bad times. */
export function toFilter(query: DecisionQuery, nowMs: number): DecisionFilter {
  const filter: DecisionFilter = {};
  if (query.since !== undefined) filter.sinceMs = parseTime('since', query.since, nowMs);
  if (query.until !== undefined) filter.untilMs = parseTime('until', query.until, nowMs);
  if (filter.sinceMs !== undefined && filter.untilMs !== undefined && filter.sinceMs > filter.untilMs) {
    throw new PortcullisError('REQUEST_MALFORMED', `query parameters since/until: since (${query.since}) is after until (${query.until})`);
  }
  for (const key of ['namespace', 'kind', 'name', 'image', 'digest', 'policy', 'user', 'operation'] as const) {
    const value = query[key];
    if (value !== undefined) filter[key] = value;
  }
  if (query.decision !== undefined) filter.decision = query.decision;
  if (query.dryRun !== undefined) filter.dryRun = query.dryRun;
  return filter;
}

/**
 * The audit API as a fastify plugin, mounted by src/main.ts on the registry's server (the same
 * address as the registry's REST API). Register it without fastify-plugin so that its
 * authentication hook stays inside it.
 */
export function auditRoutes(deps: AuditRoutesDeps): FastifyPluginAsync {
  return async (app) => {
    app.addHook('onRequest', guard(deps));
    // Fastify strips unknown query parameters by default; a misspelt filter must not silently
    // widen the answer, so it is refused instead.
    app.addHook('preValidation', async (request) => {
      const known = request.routeOptions.schema?.querystring;
      if (!isRecord(known) || !isRecord(known.properties) || !isRecord(request.query)) return;
      const properties = known.properties;
      const unknown = Object.keys(request.query).filter((key) => !(key in properties));
      if (unknown.length > 0) {
        throw new PortcullisError('REQUEST_MALFORMED', `unknown query parameter ${unknown.join(', ')}; expected one of ${Object.keys(properties).join(', ')}`, {
          detail: { unknown },
        });
      }
    });

    app.get<{ Querystring: DecisionQuery; Reply: DecisionPage }>(
      '/api/v1/audit/decisions',
      { schema: { querystring: decisionQuerySchema, response: { 200: decisionPageSchema } } },
      async (request) => {
        const filter = toFilter(request.query, deps.clock.now());
        const cursor = request.query.cursor === undefined ? undefined : decodeCursor(request.query.cursor);
        const page = await deps.store.list(filter, { limit: request.query.limit ?? DEFAULT_PAGE, cursor });
        return { items: page.items, nextCursor: page.next ? encodeCursor(page.next) : null };
      },
    );

    app.get<{ Querystring: SummaryQuery; Reply: Summary }>(
      '/api/v1/audit/summary',
      { schema: { querystring: summaryQuerySchema, response: { 200: summarySchema } } },
      async (request) => {
        const now = deps.clock.now();
        const sinceMs = parseTime('since', request.query.since ?? DEFAULT_SUMMARY_WINDOW, now);
        const untilMs = request.query.until === undefined ? now : parseTime('until', request.query.until, now);
        if (sinceMs > untilMs) throw new PortcullisError('REQUEST_MALFORMED', `query parameters since/until: since is after until`);
        return deps.store.summary({ sinceMs, untilMs }, request.query.top ?? 10);
      },
    );

    app.get<{ Querystring: RunningQuery; Reply: RunningReport }>(
      '/api/v1/audit/running',
      { schema: { querystring: runningQuerySchema, response: { 200: runningReportSchema } } },
      async (request) => {
        const report: RunningReport = deps.running?.() ?? { state: 'disabled', evaluatedAt: null, reason: null, pods: 0, violatingPods: 0, violations: [] };
        const namespace = request.query.namespace;
        if (namespace === undefined) return report;
        const violations = report.violations.filter((violation) => violation.namespace === namespace);
        return { ...report, violations, violatingPods: new Set(violations.map((violation) => violation.pod)).size };
      },
    );
  };
}
