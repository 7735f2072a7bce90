import { describe, expect, it } from 'vitest';
import { grants, grantsCatalog, parseScopes, requestedRepositoryActions } from './scope.js';

describe('the scope grammar', () => {
  it.each([
    { scope: 'repository:team/app:pull,push', parsed: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }] },
    { scope: 'repository(plugin):team/app:pull', parsed: [{ type: 'repository', name: 'team/app', actions: ['pull'] }] },
    { scope: 'repository:registry.example.com:5000/team/app:pull', parsed: [{ type: 'repository', name: 'registry.example.com:5000/team/app', actions: ['pull'] }] },
    { scope: 'registry:catalog:*', parsed: [{ type: 'registry', name: 'catalog', actions: ['*'] }] },
    { scope: 'repository:a/b:pull repository:c/d:push', parsed: [{ type: 'repository', name: 'a/b', actions: ['pull'] }, { type: 'repository', name: 'c/d', actions: ['push'] }] },
    { scope: 'nonsense', parsed: [] },
    { scope: 'repository::pull', parsed: [] },
    { scope: 'Repo:x/y:pull', parsed: [] },
  ])('parses $scope', ({ scope, parsed }) => {
    expect(parseScopes([scope])).toEqual(parsed);
  });

  it('reads * as every repository action and drops unknown ones', () => {
    expect(requestedRepositoryActions(['*'])).toEqual(['pull', 'push', 'delete']);
    expect(requestedRepositoryActions(['push', 'fly', 'pull'])).toEqual(['pull', 'push']);
  });

  it('grants only what the access claim lists for that exact repository', () => {
    const access = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];
    expect(grants(access, 'team/app', ['pull'])).toBe(true);
    expect(grants(access, 'team/app', ['pull', 'push'])).toBe(false);
    expect(grants(access, 'team/app2', ['pull'])).toBe(false);
    expect(grantsCatalog(access)).toBe(false);
    expect(grantsCatalog([{ type: 'registry', name: 'catalog', actions: ['*'] }])).toBe(true);
  });
});
