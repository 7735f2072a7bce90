import type { Selectable } from 'kysely';
import type { RepositoryAction } from '../access.js';
import { PortcullisError } from '../../errors.js';
import type { Generation } from './cache.js';
import type { Clock } from './clock.js';
import { hashPassword, randomSecret } from './password.js';
import { isRepositoryAction } from './scope.js';
import { isUniqueViolation, type AuthDb, type RobotTable } from './tables.js';

export const ROBOT_PREFIX = 'robot$';

/** Harbor's robot name rule. */
const ROBOT_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

export interface Robot {
  id: number;
  projectId: number;
  projectName: string;
  /** The short name given at creation. */
  name: string;
  /** `robot$<project>+<name>`: the user name it logs in with. */
  fullName: string;
  description: string;
  actions: RepositoryAction[];
  duration: number;
  /** Seconds since the epoch; -1 never. */
  expiresAt: number;
  disabled: boolean;
  creatorRef: number;
  createdAt: string;
  updatedAt: string;
  secretHash: string;
}

export function robotFullName(project: string, name: string): string {
  return `${ROBOT_PREFIX}${project}+${name}`;
}

/** Splits `robot$<project>+<name>`; undefined when `username` is not a robot name. */
export function parseRobotName(username: string): { project: string; name: string } | undefined {
  if (!username.startsWith(ROBOT_PREFIX)) return undefined;
  const rest = username.slice(ROBOT_PREFIX.length);
  const plus = rest.indexOf('+');
  if (plus <= 0 || plus === rest.length - 1) return undefined;
  return { project: rest.slice(0, plus), name: rest.slice(plus + 1) };
}

export function checkRobotName(name: string, where: string): void {
  if (name.length > 255 || !ROBOT_NAME.test(name)) {
    throw new PortcullisError('REQUEST_MALFORMED', `${where}: must be lower-case letters and digits separated by single . _ or -, got ${JSON.stringify(name)}`);
  }
}

/** Robot secrets follow Harbor's rule: 8-128 characters with an upper, a lower case letter and a digit. */
export function checkRobotSecret(secret: string, where: string): void {
  if (secret.length < 8 || secret.length > 128 || !/[A-Z]/.test(secret) || !/[a-z]/.test(secret) || !/[0-9]/.test(secret)) {
    throw new PortcullisError('REQUEST_MALFORMED', `${where}: must be 8-128 characters with at least one upper-case letter, one lower-case letter and one digit`);
  }
}

type RobotJoinRow = Selectable<RobotTable> & { project_name: string };

function toRobot(row: RobotJoinRow): Robot {
  const parsed: unknown = JSON.parse(row.actions);
  const actions = Array.isArray(parsed) ? parsed.filter((action): action is RepositoryAction => typeof action === 'string' && isRepositoryAction(action)) : [];
  return {
    id: row.id,
    projectId: row.project_id,
    projectName: row.project_name,
    name: row.name,
    fullName: robotFullName(row.project_name, row.name),
    description: row.description,
    actions,
    duration: row.duration,
    expiresAt: Number(row.expires_at),
    disabled: row.disabled === 1,
    creatorRef: row.creator_ref,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    secretHash: row.secret_hash,
  };
}

export interface NewRobot {
  projectId: number;
  name: string;
  description: string;
  actions: RepositoryAction[];
  /** Days; -1 never expires. */
  duration: number;
  disabled: boolean;
  creatorRef: number;
  /** Given by the caller, or generated when absent. */
  secret?: string;
  /** Expire after this many seconds instead of `duration` days (short-lived scanner robots). */
  ttlSeconds?: number;
}

/** Robot accounts of projects. Secrets are returned once, at creation and refresh, and stored hashed. */
export class RobotStore {
  constructor(
    private readonly db: AuthDb,
    private readonly clock: Clock,
    private readonly generation: Generation,
  ) {}

  private select() {
    return this.db
      .selectFrom('registry_robots')
      .innerJoin('registry_projects', 'registry_projects.id', 'registry_robots.project_id')
      .selectAll('registry_robots')
      .select('registry_projects.name as project_name');
  }

  async get(id: number): Promise<Robot | undefined> {
    const row = await this.select().where('registry_robots.id', '=', id).executeTakeFirst();
    return row && toRobot(row);
  }

  async findByFullName(fullName: string): Promise<Robot | undefined> {
    const parsed = parseRobotName(fullName);
    if (!parsed) return undefined;
    const row = await this.select().where('registry_projects.name', '=', parsed.project).where('registry_robots.name', '=', parsed.name).executeTakeFirst();
    return row && toRobot(row);
  }

  /** Throws CONFLICT when the project already has a robot of that name. */
  async create(input: NewRobot): Promise<{ robot: Robot; secret: string }> {
    checkRobotName(input.name, 'name');
    const existing = await this.db
      .selectFrom('registry_robots')
      .select('id')
      .where('project_id', '=', input.projectId)
      .where('name', '=', input.name)
      .executeTakeFirst();
    if (existing) throw new PortcullisError('CONFLICT', `robot ${JSON.stringify(input.name)} already exists in project ${input.projectId}`);
    const secret = input.secret ?? randomSecret(32);
    const now = this.clock.now();
    let row;
    try {
      row = await this.db
        .insertInto('registry_robots')
        .values({
          project_id: input.projectId,
          name: input.name,
          description: input.description,
          secret_hash: await hashPassword(secret),
          actions: JSON.stringify(input.actions),
          duration: input.duration,
          expires_at: input.ttlSeconds === undefined ? expiry(now, input.duration) : Math.floor(now / 1000) + input.ttlSeconds,
          disabled: input.disabled ? 1 : 0,
          creator_ref: input.creatorRef,
          created_at: new Date(now).toISOString(),
          updated_at: new Date(now).toISOString(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
    } catch (error) {
      if (isUniqueViolation(error)) throw new PortcullisError('CONFLICT', `robot ${JSON.stringify(input.name)} already exists in project ${input.projectId}`, { cause: error });
      throw error;
    }
    this.generation.bump();
    const robot = await this.get(row.id);
    if (!robot) throw new PortcullisError('INTERNAL', `robot ${row.id} vanished after creation`);
    return { robot, secret };
  }

  async list(options: { projectId?: number; name?: string; offset: number; limit: number }): Promise<{ items: Robot[]; total: number }> {
    let query = this.db.selectFrom('registry_robots').innerJoin('registry_projects', 'registry_projects.id', 'registry_robots.project_id');
    if (options.projectId !== undefined) query = query.where('registry_robots.project_id', '=', options.projectId);
    if (options.name) query = query.where('registry_robots.name', 'like', `%${options.name.replace(/[%_\\]/g, '')}%`);
    const total = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await query
      .selectAll('registry_robots')
      .select('registry_projects.name as project_name')
      .orderBy('registry_robots.id')
      .offset(options.offset)
      .limit(options.limit)
      .execute();
    return { items: rows.map(toRobot), total: Number(total.n) };
  }

  /** Changing `duration` restarts the expiry from now, as Harbor does. */
  async update(id: number, input: { description?: string; actions?: RepositoryAction[]; duration?: number; disabled?: boolean }): Promise<void> {
    const current = await this.get(id);
    if (!current) throw new PortcullisError('NOT_FOUND', `robot ${id} does not exist`);
    const now = this.clock.now();
    await this.db
      .updateTable('registry_robots')
      .set({
        ...(input.description === undefined ? {} : { description: input.description }),
        ...(input.actions === undefined ? {} : { actions: JSON.stringify(input.actions) }),
        ...(input.duration === undefined || input.duration === current.duration ? {} : { duration: input.duration, expires_at: expiry(now, input.duration) }),
        ...(input.disabled === undefined ? {} : { disabled: input.disabled ? 1 : 0 }),
        updated_at: new Date(now).toISOString(),
      })
      .where('id', '=', id)
      .execute();
    this.generation.bump();
  }

  /** Sets a new secret (the given one, or a generated one) and returns it. */
  async refreshSecret(id: number, secret?: string): Promise<string> {
    const next = secret ?? randomSecret(32);
    const result = await this.db
      .updateTable('registry_robots')
      .set({ secret_hash: await hashPassword(next), updated_at: new Date(this.clock.now()).toISOString() })
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw new PortcullisError('NOT_FOUND', `robot ${id} does not exist`);
    this.generation.bump();
    return next;
  }

  /** Deletes the expired robots whose name starts with `prefix`; returns how many. */
  async purgeExpired(prefix: string): Promise<number> {
    const now = Math.floor(this.clock.now() / 1000);
    const result = await this.db
      .deleteFrom('registry_robots')
      .where('name', 'like', `${prefix.replace(/[%_\\]/g, '')}%`)
      .where('expires_at', '!=', -1)
      .where('expires_at', '<', now)
      .executeTakeFirst();
    if (Number(result.numDeletedRows) > 0) this.generation.bump();
    return Number(result.numDeletedRows);
  }

  async delete(id: number): Promise<void> {
    const result = await this.db.deleteFrom('registry_robots').where('id', '=', id).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw new PortcullisError('NOT_FOUND', `robot ${id} does not exist`);
    this.generation.bump();
  }
}

function expiry(nowMs: number, durationDays: number): number {
  return durationDays === -1 ? -1 : Math.floor(nowMs / 1000) + durationDays * 86_400;
}
