import { PortcullisError } from '../../errors.js';
import { ReadCache, type Generation } from './cache.js';
import type { Clock } from './clock.js';
import { isRoleId, roleName, type RoleId, type RoleName } from './roles.js';
import { isUniqueViolation, type AuthDb } from './tables.js';

export interface Member {
  id: number;
  projectId: number;
  userId: number;
  username: string;
  roleId: RoleId;
  roleName: RoleName;
}

/** Project membership: one role per user and project. */
export class MemberStore {
  private readonly roles: ReadCache<RoleName | undefined>;

  constructor(
    private readonly db: AuthDb,
    private readonly clock: Clock,
    private readonly generation: Generation,
  ) {
    this.roles = new ReadCache(generation);
  }

  /** The user's role in the project; undefined when not a member. Cached briefly (./cache.ts). */
  async roleOf(projectId: number, userId: number): Promise<RoleName | undefined> {
    return this.roles.get(`${projectId}:${userId}`, async () => {
      const row = await this.db
        .selectFrom('registry_members')
        .select('role_id')
        .where('project_id', '=', projectId)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row ? roleName(row.role_id) : undefined;
    });
  }

  /** Ids of the projects the user is a member of. */
  async projectsOf(userId: number): Promise<Map<number, RoleName>> {
    const rows = await this.db.selectFrom('registry_members').select(['project_id', 'role_id']).where('user_id', '=', userId).execute();
    const out = new Map<number, RoleName>();
    for (const row of rows) {
      const name = roleName(row.role_id);
      if (name) out.set(row.project_id, name);
    }
    return out;
  }

  async list(projectId: number, options: { offset: number; limit: number; entityName?: string }): Promise<{ items: Member[]; total: number }> {
    let query = this.db
      .selectFrom('registry_members')
      .innerJoin('registry_users', 'registry_users.id', 'registry_members.user_id')
      .where('registry_members.project_id', '=', projectId);
    if (options.entityName) query = query.where('registry_users.username', 'like', `%${options.entityName.replace(/[%_\\]/g, '')}%`);
    const total = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await query
      .select(['registry_members.id', 'registry_members.project_id', 'registry_members.user_id', 'registry_members.role_id', 'registry_users.username'])
      .orderBy('registry_members.id')
      .offset(options.offset)
      .limit(options.limit)
      .execute();
    return { items: rows.flatMap((row) => this.toMember(row)), total: Number(total.n) };
  }

  /** Undefined when the project has no such member. */
  async get(projectId: number, memberId: number): Promise<Member | undefined> {
    const row = await this.db
      .selectFrom('registry_members')
      .innerJoin('registry_users', 'registry_users.id', 'registry_members.user_id')
      .select(['registry_members.id', 'registry_members.project_id', 'registry_members.user_id', 'registry_members.role_id', 'registry_users.username'])
      .where('registry_members.project_id', '=', projectId)
      .where('registry_members.id', '=', memberId)
      .executeTakeFirst();
    return row ? this.toMember(row)[0] : undefined;
  }

  /** Throws CONFLICT when the user is already a member. Returns the member id. */
  async add(projectId: number, userId: number, roleId: RoleId): Promise<number> {
    if (await this.roleOf(projectId, userId)) throw new PortcullisError('CONFLICT', `user ${userId} is already a member of project ${projectId}`);
    const now = new Date(this.clock.now()).toISOString();
    let row;
    try {
      row = await this.db
        .insertInto('registry_members')
        .values({ project_id: projectId, user_id: userId, role_id: roleId, created_at: now, updated_at: now })
        .returning('id')
        .executeTakeFirstOrThrow();
    } catch (error) {
      if (isUniqueViolation(error)) throw new PortcullisError('CONFLICT', `user ${userId} is already a member of project ${projectId}`, { cause: error });
      throw error;
    }
    this.generation.bump();
    return row.id;
  }

  async update(projectId: number, memberId: number, roleId: RoleId): Promise<void> {
    const result = await this.db
      .updateTable('registry_members')
      .set({ role_id: roleId, updated_at: new Date(this.clock.now()).toISOString() })
      .where('project_id', '=', projectId)
      .where('id', '=', memberId)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw new PortcullisError('NOT_FOUND', `project ${projectId} has no member ${memberId}`);
    this.generation.bump();
  }

  async remove(projectId: number, memberId: number): Promise<void> {
    const result = await this.db.deleteFrom('registry_members').where('project_id', '=', projectId).where('id', '=', memberId).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw new PortcullisError('NOT_FOUND', `project ${projectId} has no member ${memberId}`);
    this.generation.bump();
  }

  private toMember(row: { id: number; project_id: number; user_id: number; role_id: number; username: string }): Member[] {
    const roleId = row.role_id;
    const name = roleName(roleId);
    if (!name || !isRoleId(roleId)) return [];
    return [{ id: row.id, projectId: row.project_id, userId: row.user_id, username: row.username, roleId, roleName: name }];
  }
}
