import type { RepositoryAction } from '../access.js';

/**
 * Harbor's project roles and the part of its permission matrix that Portcullis serves
 * (goharbor/harbor src/common/rbac/project/rbac_role.go). Role ids are Harbor's.
 */
export const ROLES = {
  projectAdmin: 1,
  developer: 2,
  guest: 3,
  maintainer: 4,
  limitedGuest: 5,
} as const;

export type RoleName = keyof typeof ROLES;
export type RoleId = (typeof ROLES)[RoleName];

export const ROLE_NAMES: readonly RoleName[] = ['projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest'];

export function roleName(id: number): RoleName | undefined {
  return ROLE_NAMES.find((name) => ROLES[name] === id);
}

export function isRoleId(id: unknown): id is RoleId {
  return typeof id === 'number' && roleName(id) !== undefined;
}

/** A resource and action of the project permission matrix, written `resource:action`. */
export type ProjectPermission =
  | 'project:read'
  | 'project:update'
  | 'project:delete'
  | 'member:list'
  | 'member:read'
  | 'member:create'
  | 'member:update'
  | 'member:delete'
  | 'repository:list'
  | 'repository:pull'
  | 'repository:push'
  | 'repository:delete'
  | 'artifact:read'
  | 'artifact:delete'
  | 'tag:list'
  | 'tag:create'
  | 'tag:delete'
  | 'scan:read'
  | 'scan:create'
  | 'robot:list'
  | 'robot:read'
  | 'robot:create'
  | 'robot:update'
  | 'robot:delete';

export const PROJECT_PERMISSIONS: readonly ProjectPermission[] = [
  'project:read',
  'project:update',
  'project:delete',
  'member:list',
  'member:read',
  'member:create',
  'member:update',
  'member:delete',
  'repository:list',
  'repository:pull',
  'repository:push',
  'repository:delete',
  'artifact:read',
  'artifact:delete',
  'tag:list',
  'tag:create',
  'tag:delete',
  'scan:read',
  'scan:create',
  'robot:list',
  'robot:read',
  'robot:create',
  'robot:update',
  'robot:delete',
];

const GUEST_READ: ProjectPermission[] = ['project:read', 'repository:list', 'repository:pull', 'artifact:read', 'tag:list', 'scan:read'];

/** What each role may do in its project. */
const MATRIX: Record<RoleName, ReadonlySet<ProjectPermission>> = {
  projectAdmin: new Set(PROJECT_PERMISSIONS),
  maintainer: new Set<ProjectPermission>([
    ...GUEST_READ,
    'member:list',
    'member:read',
    'repository:push',
    'repository:delete',
    'artifact:delete',
    'tag:create',
    'tag:delete',
    'scan:create',
    'robot:list',
    'robot:read',
  ]),
  developer: new Set<ProjectPermission>([...GUEST_READ, 'member:list', 'member:read', 'repository:push', 'tag:create', 'robot:list', 'robot:read']),
  guest: new Set<ProjectPermission>([...GUEST_READ, 'member:list', 'member:read', 'robot:list', 'robot:read']),
  // A limited guest may pull but not see members, robots or logs.
  limitedGuest: new Set<ProjectPermission>(GUEST_READ),
};

/**
 * What anybody who may see a public project gets there without being a member: Harbor treats
 * them as a reader (pull, browse, read scan results).
 */
const PUBLIC_READER: ReadonlySet<ProjectPermission> = new Set(GUEST_READ);

export function roleAllows(role: RoleName, permission: ProjectPermission): boolean {
  return MATRIX[role].has(permission);
}

export function publicReaderAllows(permission: ProjectPermission): boolean {
  return PUBLIC_READER.has(permission);
}

/**
 * The token-scope action that stands for each Harbor permission on the OCI and Harbor artifact
 * routes, which only ask pull/push/delete of the AccessController: tag create needs `push`; tag,
 * artifact and repository delete and starting a scan need `delete` (maintainer and above, as in
 * Harbor's matrix).
 */
export const REPOSITORY_ACTION_FOR: Partial<Record<ProjectPermission, RepositoryAction>> = {
  'repository:pull': 'pull',
  'artifact:read': 'pull',
  'tag:list': 'pull',
  'scan:read': 'pull',
  'repository:push': 'push',
  'tag:create': 'push',
  'repository:delete': 'delete',
  'artifact:delete': 'delete',
  'tag:delete': 'delete',
  'scan:create': 'delete',
};

export function repositoryActionsOf(allows: (permission: ProjectPermission) => boolean): RepositoryAction[] {
  const actions: RepositoryAction[] = [];
  if (allows('repository:pull')) actions.push('pull');
  if (allows('repository:push')) actions.push('push');
  if (allows('repository:delete')) actions.push('delete');
  return actions;
}
