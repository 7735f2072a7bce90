import type { Selectable } from 'kysely';
import { PortcullisError } from '../../errors.js';
import { ReadCache, type Generation } from './cache.js';
import type { Clock } from './clock.js';
import { isUniqueViolation, type AuthDb, type ProjectTable } from './tables.js';

export type ProjectRow = Selectable<ProjectTable>;

export interface Project {
  id: number;
  name: string;
  ownerId: number;
  public: boolean;
  /** Harbor's metadata map; `public` and `auto_scan` are always present ("true"/"false"). */
  metadata: Record<string, string>;
  cveAllowlist: { items: { cve_id: string }[]; expires_at?: number | null };
  createdAt: string;
  updatedAt: string;
}

/** The project settings other subsystems read (the scanner reads `autoScan`). */
export interface ProjectSettings {
  name: string;
  public: boolean;
  autoScan: boolean;
}

/** Harbor's project name rule (src/pkg/project/models), lower case only. */
const PROJECT_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

export function checkProjectName(name: string, where: string): void {
  if (name.length > 255 || !PROJECT_NAME.test(name)) {
    throw new PortcullisError(
      'REQUEST_MALFORMED',
      `${where}: must be 1-255 lower-case letters and digits separated by single . _ or -, got ${JSON.stringify(name)}`,
    );
  }
}

function parseJsonObject(text: string, what: string): Record<string, unknown> {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

export function toProject(row: ProjectRow): Project {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(parseJsonObject(row.metadata, `project ${row.name} metadata`))) {
    if (typeof value === 'string') metadata[key] = value;
  }
  const allowlist = parseJsonObject(row.cve_allowlist, `project ${row.name} cve_allowlist`);
  const items = Array.isArray(allowlist.items)
    ? allowlist.items.flatMap((item: unknown) =>
        typeof item === 'object' && item !== null && 'cve_id' in item && typeof item.cve_id === 'string' ? [{ cve_id: item.cve_id }] : [],
      )
    : [];
  const expires = typeof allowlist.expires_at === 'number' ? allowlist.expires_at : null;
  return {
    id: row.id,
    name: row.name,
    ownerId: row.owner_id,
    public: row.public === 1,
    metadata: { ...metadata, public: row.public === 1 ? 'true' : 'false' },
    cveAllowlist: { items, expires_at: expires },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface ProjectFilter {
  /** Only these project ids (plus public ones when `includePublic`); all projects when absent. */
  memberOf?: number[];
  includePublic: boolean;
  name?: string;
  public?: boolean;
  offset: number;
  limit: number;
}

/** Projects and their metadata. Deleting a project removes its members and robots (cascade). */
export class ProjectStore {
  private readonly byName: ReadCache<Project | undefined>;

  constructor(
    private readonly db: AuthDb,
    private readonly clock: Clock,
    private readonly generation: Generation,
  ) {
    this.byName = new ReadCache(generation);
  }

  /** Undefined when there is no such project. Cached briefly (./cache.ts): asked on every registry request. */
  async findByName(name: string): Promise<Project | undefined> {
    return this.byName.get(name, async () => {
      const row = await this.db.selectFrom('registry_projects').selectAll().where('name', '=', name).executeTakeFirst();
      return row && toProject(row);
    });
  }

  async findById(id: number): Promise<Project | undefined> {
    const row = await this.db.selectFrom('registry_projects').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toProject(row);
  }

  /** Throws CONFLICT when the name is taken. */
  async create(input: { name: string; ownerId: number; metadata: Record<string, string>; cveAllowlist: Project['cveAllowlist'] }): Promise<Project> {
    checkProjectName(input.name, 'project_name');
    if (await this.findByName(input.name)) throw new PortcullisError('CONFLICT', `project ${JSON.stringify(input.name)} already exists`);
    const now = new Date(this.clock.now()).toISOString();
    const metadata = { public: 'false', auto_scan: 'true', ...input.metadata };
    let row;
    try {
      row = await this.db
        .insertInto('registry_projects')
        .values({
          name: input.name,
          owner_id: input.ownerId,
          public: metadata.public === 'true' ? 1 : 0,
          metadata: JSON.stringify(metadata),
          cve_allowlist: JSON.stringify(input.cveAllowlist),
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    } catch (error) {
      if (isUniqueViolation(error)) throw new PortcullisError('CONFLICT', `project ${JSON.stringify(input.name)} already exists`, { cause: error });
      throw error;
    }
    this.generation.bump();
    return toProject(row);
  }

  async update(id: number, input: { metadata?: Record<string, string>; cveAllowlist?: Project['cveAllowlist'] }): Promise<void> {
    const current = await this.findById(id);
    if (!current) throw new PortcullisError('NOT_FOUND', `project ${id} does not exist`);
    const metadata = { ...current.metadata, ...input.metadata };
    await this.db
      .updateTable('registry_projects')
      .set({
        public: metadata.public === 'true' ? 1 : 0,
        metadata: JSON.stringify(metadata),
        cve_allowlist: JSON.stringify(input.cveAllowlist ?? current.cveAllowlist),
        updated_at: new Date(this.clock.now()).toISOString(),
      })
      .where('id', '=', id)
      .execute();
    this.generation.bump();
  }

  async delete(id: number): Promise<void> {
    // Members and robots go with it (foreign keys cascade); delete them explicitly as well so that
    // a database without foreign key enforcement stays clean.
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('registry_members').where('project_id', '=', id).execute();
      await trx.deleteFrom('registry_robots').where('project_id', '=', id).execute();
      await trx.deleteFrom('registry_projects').where('id', '=', id).execute();
    });
    this.generation.bump();
  }

  async list(filter: ProjectFilter): Promise<{ items: Project[]; total: number }> {
    let query = this.db.selectFrom('registry_projects');
    if (filter.memberOf) {
      const ids = filter.memberOf.length > 0 ? filter.memberOf : [-1];
      query = query.where((eb) =>
        filter.includePublic ? eb.or([eb('id', 'in', ids), eb('public', '=', 1)]) : eb('id', 'in', ids),
      );
    }
    if (filter.name) query = query.where('name', 'like', `%${filter.name.replace(/[%_\\]/g, '')}%`);
    if (filter.public !== undefined) {
      query = query.where('public', '=', filter.public ? 1 : 0);
    }
    const total = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await query.selectAll().orderBy('name').offset(filter.offset).limit(filter.limit).execute();
    return { items: rows.map(toProject), total: Number(total.n) };
  }
}
