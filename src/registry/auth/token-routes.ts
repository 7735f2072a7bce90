import { createHash } from 'node:crypto';
import type { FastifyError, FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Principal } from '../access.js';
import { PortcullisError } from '../../errors.js';
import { classifyError } from '../../http/server.js';
import type { RegistryAccessController } from './access-controller.js';
import { parseAuthorization } from './credentials.js';
import type { ProjectStore } from './projects.js';
import type { RobotStore } from './robots.js';
import { formatScope, parseScopes, requestedRepositoryActions, type AccessEntry } from './scope.js';
import { TOKEN_SERVICE, type TokenService } from './token-service.js';
import type { UserStore } from './users.js';
import { F } from '../../log/fields.js';

export interface TokenRoutesDeps {
  controller: RegistryAccessController;
  projects: ProjectStore;
  users: UserStore;
  robots: RobotStore;
  tokens: () => TokenService;
}

/** A short fingerprint of a stored credential hash; refresh tokens carry it, so a new password revokes them. */
function fingerprint(storedHash: string): string {
  return createHash('sha256').update(storedHash).digest('base64url').slice(0, 22);
}

async function credentialHash(deps: TokenRoutesDeps, principal: Principal): Promise<string | undefined> {
  if (principal.kind === 'user') return (await deps.users.findById(principal.id))?.password_hash;
  if (principal.kind === 'robot') return (await deps.robots.get(principal.id))?.secretHash;
  return undefined;
}

/**
 * The access to put in a token: for each requested scope, the intersection of the requested
 * actions and what the principal may do (auth-token.md: a subset is not an error). Unknown
 * projects and resource types yield no actions.
 */
export async function grantedAccess(deps: TokenRoutesDeps, principal: Principal, scopes: readonly string[]): Promise<AccessEntry[]> {
  const access: AccessEntry[] = [];
  for (const scope of parseScopes(scopes)) {
    if (scope.type === 'registry' && scope.name === 'catalog') {
      const allowed = principal.kind === 'user' && principal.sysadmin && scope.actions.includes('*');
      access.push({ type: 'registry', name: 'catalog', actions: allowed ? ['*'] : [] });
      continue;
    }
    if (scope.type !== 'repository') continue;
    const slash = scope.name.indexOf('/');
    const project = slash > 0 ? await deps.projects.findByName(scope.name.slice(0, slash)) : undefined;
    const permitted = project ? await deps.controller.repositoryActions(principal, project) : [];
    const requested = requestedRepositoryActions(scope.actions);
    access.push({ type: 'repository', name: scope.name, actions: requested.filter((action) => permitted.includes(action)) });
  }
  return access;
}

function scopeValues(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return [];
}

function checkService(service: unknown): void {
  if (service !== undefined && service !== TOKEN_SERVICE) {
    throw new PortcullisError('REQUEST_MALFORMED', `service: this token server issues tokens for ${JSON.stringify(TOKEN_SERVICE)}, got ${JSON.stringify(service)}`);
  }
}

function sendAuthError(reply: FastifyReply, error: FastifyError | Error): FastifyReply {
  const classified = classifyError(error);
  if (classified.status === 401) void reply.header('www-authenticate', `Basic realm="${TOKEN_SERVICE}"`);
  const code = classified.status === 401 ? 'UNAUTHORIZED' : classified.status >= 500 ? 'UNKNOWN' : 'UNSUPPORTED';
  return reply.status(classified.status).send({ errors: [{ code, message: classified.status >= 500 ? 'internal error' : classified.message }] });
}

/**
 * The token server: `GET /service/token` (auth-token.md; Basic credentials or anonymous) and
 * `POST /service/token` (auth-oauth.md; `grant_type=password` or `refresh_token`).
 */
export function tokenRoutes(deps: TokenRoutesDeps): FastifyPluginAsync {
  return async (app) => {
    app.setErrorHandler((error: FastifyError, request, reply) => {
      if (classifyError(error).status >= 500) request.log.error({ [F.err]: error }, 'token request failed');
      return sendAuthError(reply, error);
    });
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(typeof body === 'string' ? body : body.toString('utf8'))));
    });

    app.get<{ Querystring: Record<string, unknown> }>('/service/token', async (request) => {
      checkService(request.query.service);
      const header = request.headers.authorization;
      let principal: Principal = { kind: 'anonymous' };
      if (header) {
        const parsed = parseAuthorization(header);
        if (parsed.scheme === 'bearer') throw new PortcullisError('UNAUTHORIZED', 'the token endpoint takes Basic credentials or none');
        if (parsed.scheme === 'basic') principal = await deps.controller.login(parsed.username, parsed.password, request.ip);
      }
      const access = await grantedAccess(deps, principal, scopeValues(request.query.scope));
      const subject = principal.kind === 'anonymous' ? '' : principal.name;
      const issued = await deps.tokens().issue(subject, access);
      request.log.debug({ [F.user]: subject, [F.count]: access.length }, 'token issued');
      const body: Record<string, unknown> = { token: issued.token, access_token: issued.token, expires_in: issued.expiresIn, issued_at: issued.issuedAt };
      const hash = await credentialHash(deps, principal);
      if (request.query.offline_token === 'true' && hash) body.refresh_token = await deps.tokens().issueRefresh(subject, fingerprint(hash));
      return body;
    });

    app.post<{ Body: Record<string, unknown> }>('/service/token', async (request) => {
      const body = request.body;
      if (typeof body !== 'object' || body === null) throw new PortcullisError('REQUEST_MALFORMED', 'body: expected an application/x-www-form-urlencoded form');
      checkService(body.service);
      let principal: Principal;
      let refreshToken: string | undefined;
      if (body.grant_type === 'password') {
        if (typeof body.username !== 'string' || typeof body.password !== 'string') {
          throw new PortcullisError('REQUEST_MALFORMED', 'grant_type=password needs username and password');
        }
        principal = await deps.controller.login(body.username, body.password, request.ip);
      } else if (body.grant_type === 'refresh_token') {
        if (typeof body.refresh_token !== 'string') throw new PortcullisError('REQUEST_MALFORMED', 'grant_type=refresh_token needs refresh_token');
        const refresh = await deps.tokens().verifyRefresh(body.refresh_token);
        principal = await deps.controller.authenticateSubject(refresh.subject);
        const hash = await credentialHash(deps, principal);
        if (!hash || fingerprint(hash) !== refresh.credentialFingerprint) {
          throw new PortcullisError('UNAUTHORIZED', 'refresh token: the credentials it was issued for have changed');
        }
        refreshToken = body.refresh_token;
      } else {
        throw new PortcullisError('REQUEST_MALFORMED', `grant_type: expected "password" or "refresh_token", got ${JSON.stringify(body.grant_type ?? null)}`);
      }
      const access = await grantedAccess(deps, principal, scopeValues(body.scope));
      const subject = principal.kind === 'anonymous' ? '' : principal.name;
      const issued = await deps.tokens().issue(subject, access);
      if (refreshToken === undefined && body.access_type === 'offline') {
        const hash = await credentialHash(deps, principal);
        if (hash) refreshToken = await deps.tokens().issueRefresh(subject, fingerprint(hash));
      }
      return {
        access_token: issued.token,
        token: issued.token,
        scope: access.filter((entry) => entry.actions.length > 0).map((entry) => formatScope(entry)).join(' '),
        expires_in: issued.expiresIn,
        issued_at: issued.issuedAt,
        ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
      };
    });
  };
}
