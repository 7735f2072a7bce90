import type { RepositoryAction } from '../access.js';

/**
 * The Docker token scope grammar (`repository:project/app:pull,push`, `registry:catalog:*`),
 * see reference auth-scope.md. A resource name may itself contain one `:` (a host with a port),
 * so the type is what precedes the first `:` and the actions what follows the last.
 */
export interface ResourceScope {
  type: string;
  name: string;
  actions: string[];
}

/** One entry of the JWT `access` claim (auth-jwt.md). */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/** Parses one or more space-separated scopes; entries that do not fit the grammar are skipped. */
export function parseScopes(values: readonly string[]): ResourceScope[] {
  const scopes: ResourceScope[] = [];
  for (const value of values) {
    for (const item of value.split(' ')) {
      const first = item.indexOf(':');
      const last = item.lastIndexOf(':');
      if (first <= 0 || last === first) continue;
      // `repository(plugin)` is a repository with a class; the class carries no meaning here.
      const type = item.slice(0, first).replace(/\([a-z0-9]+\)$/, '');
      const name = item.slice(first + 1, last);
      const actions = item
        .slice(last + 1)
        .split(',')
        .filter((action) => /^[a-z*]+$/.test(action));
      if (!/^[a-z0-9]+$/.test(type) || name === '' || actions.length === 0) continue;
      scopes.push({ type, name, actions });
    }
  }
  return scopes;
}

export function formatScope(scope: ResourceScope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(',')}`;
}

export const REPOSITORY_ACTIONS: readonly RepositoryAction[] = ['pull', 'push', 'delete'];

export function isRepositoryAction(value: string): value is RepositoryAction {
  return (REPOSITORY_ACTIONS as readonly string[]).includes(value);
}

/** The repository actions a scope asks for; `*` means all of them. */
export function requestedRepositoryActions(actions: readonly string[]): RepositoryAction[] {
  if (actions.includes('*')) return [...REPOSITORY_ACTIONS];
  return REPOSITORY_ACTIONS.filter((action) => actions.includes(action));
}

/** Whether `access` grants every one of `actions` on repository `name`. */
export function grants(access: readonly AccessEntry[], name: string, actions: readonly RepositoryAction[]): boolean {
  const granted = new Set(access.filter((entry) => entry.type === 'repository' && entry.name === name).flatMap((entry) => entry.actions));
  return actions.every((action) => granted.has(action) || granted.has('*'));
}

export function grantsCatalog(access: readonly AccessEntry[]): boolean {
  return access.some((entry) => entry.type === 'registry' && entry.name === 'catalog' && entry.actions.includes('*'));
}
