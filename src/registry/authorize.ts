import { PortcullisError } from '../errors.js';
import type { AccessController, Principal, RepositoryAction } from './access.js';

/** A 401 that carries the WWW-Authenticate challenge to send (both the OCI and Harbor surfaces use it). */
export class ChallengeError extends PortcullisError {
  readonly challenge: string;

  constructor(message: string, challenge: string, cause?: unknown) {
    super('UNAUTHORIZED', message, cause === undefined ? {} : { cause });
    this.challenge = challenge;
  }
}

/**
 * What `authenticate` reads from a request (a FastifyRequest fits): the Authorization header and
 * the client address, which the brute-force delay counts failures by as well as by user name.
 */
export interface CallerRequest {
  readonly headers: { readonly authorization?: string | undefined };
  readonly ip: string;
}

/**
 * Identifies the caller of `request`; wrong credentials become a ChallengeError so clients learn
 * where to log in. The client address goes with the credentials so that a guesser who changes user
 * names is still slowed down.
 */
export async function authenticate(access: AccessController, request: CallerRequest): Promise<Principal> {
  try {
    return await access.authenticate(request.headers.authorization, { ip: request.ip });
  } catch (error) {
    if (error instanceof PortcullisError && error.code === 'UNAUTHORIZED') throw new ChallengeError(error.message, access.challenge(), error);
    throw error;
  }
}

/**
 * Checks that `principal` may perform `actions` on `repository`; throws the error the surfaces
 * answer with: 401 + challenge (ChallengeError), 403 FORBIDDEN (served as DENIED), or 404
 * REGISTRY_NAME_UNKNOWN for a project that does not exist.
 */
export async function requireAccess(access: AccessController, principal: Principal, repository: string, actions: readonly RepositoryAction[]): Promise<void> {
  const decision = await access.authorize(principal, repository, actions);
  if (decision.allowed) return;
  switch (decision.reason) {
    case 'unauthenticated':
      throw new ChallengeError(`authentication required for ${actions.join(',')} on ${repository}`, decision.challenge);
    case 'denied':
      throw new PortcullisError('FORBIDDEN', decision.message);
    case 'unknown-project':
      throw new PortcullisError('REGISTRY_NAME_UNKNOWN', decision.message);
  }
}

/** The name logged and recorded for a principal (undefined for anonymous). */
export function actorName(principal: Principal): string | undefined {
  return principal.kind === 'anonymous' ? undefined : principal.name;
}

export function scope(repository: string, actions: readonly RepositoryAction[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}
