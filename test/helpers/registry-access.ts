import { timingSafeEqual } from 'node:crypto';
import { PortcullisError } from '../../src/errors.js';
import type { AccessController, AccessDecision, Principal, RepositoryAction } from '../../src/registry/access.js';

/**
 * TEST HELPER, not for production: an AccessController for registry-core tests that do not need the
 * identity subsystem. With no users every request is a system administrator (allow-all). With
 * users, Basic credentials are required; each user may be limited to actions, and `projects` lists
 * the projects that exist (others answer `unknown-project`).
 */
export interface TestAccessOptions {
  users?: Record<string, { password: string; actions?: RepositoryAction[]; sysadmin?: boolean }>;
  projects?: string[];
}

export function testAccessController(options: TestAccessOptions = {}): AccessController {
  const users = options.users;
  const challenge = (scope?: string) => `Basic realm="portcullis-test"${scope ? `,scope="${scope}"` : ''}`;
  return {
    async authenticate(authorization: string | undefined): Promise<Principal> {
      if (!users) return { kind: 'user', id: 1, name: 'admin', sysadmin: true, auditor: false };
      if (authorization === undefined) return { kind: 'anonymous' };
      const match = /^Basic\s+(.+)$/i.exec(authorization);
      if (!match) throw new PortcullisError('UNAUTHORIZED', 'expected Basic credentials');
      const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const name = decoded.slice(0, colon);
      const user = users[name];
      const given = Buffer.from(decoded.slice(colon + 1));
      const expected = Buffer.from(user?.password ?? '');
      if (!user || given.length !== expected.length || !timingSafeEqual(given, expected)) throw new PortcullisError('UNAUTHORIZED', 'wrong credentials');
      return { kind: 'user', id: 2, name, sysadmin: user.sysadmin ?? false, auditor: false };
    },
    async authorize(principal: Principal, repository: string, actions: readonly RepositoryAction[]): Promise<AccessDecision> {
      const project = repository.split('/')[0] ?? '';
      if (options.projects && !options.projects.includes(project)) return { allowed: false, reason: 'unknown-project', message: `project ${project} does not exist` };
      if (principal.kind === 'anonymous') return { allowed: false, reason: 'unauthenticated', challenge: challenge(`repository:${repository}:${actions.join(',')}`) };
      if (principal.kind !== 'user') return { allowed: false, reason: 'denied', message: 'robots are not known here' };
      const allowedActions = users?.[principal.name]?.actions;
      if (principal.sysadmin || !allowedActions) return { allowed: true };
      const missing = actions.filter((action) => !allowedActions.includes(action));
      return missing.length === 0 ? { allowed: true } : { allowed: false, reason: 'denied', message: `${principal.name} may not ${missing.join(',')} ${repository}` };
    },
    canListCatalog: (principal) => principal.kind === 'user' && principal.sysadmin,
    challenge,
  };
}
