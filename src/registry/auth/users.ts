import type { Selectable } from 'kysely';
import { PortcullisError } from '../../errors.js';
import type { Generation } from './cache.js';
import type { Clock } from './clock.js';
import { hashPassword } from './password.js';
import { isUniqueViolation, type AuthDb, type UserTable } from './tables.js';

export type UserRow = Selectable<UserTable>;

export interface NewUser {
  username: string;
  password: string;
  sysadmin?: boolean;
  auditor?: boolean;
  email?: string;
  realname?: string;
  comment?: string;
}

/** Harbor refuses `,"~#$%` in user names; `robot$…` is reserved for robot accounts. */
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,254}$/;
export const MIN_PASSWORD_LENGTH = 8;

export function checkUsername(username: string, where: string): void {
  if (!USERNAME.test(username)) {
    throw new PortcullisError('REQUEST_MALFORMED', `${where}: must be 1-255 letters, digits and . _ @ - starting with a letter or digit, got ${JSON.stringify(username)}`);
  }
}

export function checkPassword(password: string, where: string): void {
  if (password.length < MIN_PASSWORD_LENGTH || password.length > 1024) {
    throw new PortcullisError('REQUEST_MALFORMED', `${where}: must be ${MIN_PASSWORD_LENGTH} to 1024 characters, got ${password.length}`);
  }
}

/** Local users (Harbor's `db_auth` mode). Passwords are stored as scrypt hashes only. */
export class UserStore {
  constructor(
    private readonly db: AuthDb,
    private readonly clock: Clock,
    private readonly generation: Generation,
  ) {}

  /** Undefined when there is no such user. */
  async findByName(username: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('registry_users').selectAll().where('username', '=', username).executeTakeFirst();
  }

  async findById(id: number): Promise<UserRow | undefined> {
    return this.db.selectFrom('registry_users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async count(): Promise<number> {
    const row = await this.db.selectFrom('registry_users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Throws REQUEST_MALFORMED for a bad name or password, CONFLICT when the name is taken. */
  async create(user: NewUser): Promise<UserRow> {
    checkUsername(user.username, 'username');
    checkPassword(user.password, 'password');
    if (await this.findByName(user.username)) throw new PortcullisError('CONFLICT', `user ${JSON.stringify(user.username)} already exists`);
    const now = new Date(this.clock.now()).toISOString();
    let row;
    try {
      row = await this.db
        .insertInto('registry_users')
        .values({
          username: user.username,
          password_hash: await hashPassword(user.password),
          sysadmin: user.sysadmin ? 1 : 0,
          auditor: user.auditor ? 1 : 0,
          email: user.email ?? '',
          realname: user.realname ?? '',
          comment: user.comment ?? '',
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    } catch (error) {
      if (isUniqueViolation(error)) throw new PortcullisError('CONFLICT', `user ${JSON.stringify(user.username)} already exists`, { cause: error });
      throw error;
    }
    this.generation.bump();
    return row;
  }

  async setPassword(id: number, password: string): Promise<void> {
    checkPassword(password, 'new_password');
    const hash = await hashPassword(password);
    await this.update(id, { password_hash: hash });
  }

  async setFlags(id: number, flags: { sysadmin?: boolean; auditor?: boolean }): Promise<void> {
    await this.update(id, {
      ...(flags.sysadmin === undefined ? {} : { sysadmin: flags.sysadmin ? 1 : 0 }),
      ...(flags.auditor === undefined ? {} : { auditor: flags.auditor ? 1 : 0 }),
    });
  }

  /** Users ordered by id; `username` filters by substring. */
  async list(options: { offset: number; limit: number; username?: string }): Promise<{ items: UserRow[]; total: number }> {
    let query = this.db.selectFrom('registry_users');
    if (options.username) query = query.where('username', 'like', `%${options.username.replace(/[%_\\]/g, '')}%`);
    const total = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const items = await query.selectAll().orderBy('id').offset(options.offset).limit(options.limit).execute();
    return { items, total: Number(total.n) };
  }

  /** Throws NOT_FOUND when there is no such user. */
  async delete(id: number): Promise<void> {
    const result = await this.db.deleteFrom('registry_users').where('id', '=', id).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw new PortcullisError('NOT_FOUND', `user ${id} does not exist`);
    this.generation.bump();
  }

  private async update(id: number, values: Partial<Omit<UserRow, 'id'>>): Promise<void> {
    const result = await this.db
      .updateTable('registry_users')
      .set({ ...values, updated_at: new Date(this.clock.now()).toISOString() })
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw new PortcullisError('NOT_FOUND', `user ${id} does not exist`);
    this.generation.bump();
  }
}
