import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { sql, type ExpressionBuilder, type RawBuilder } from 'kysely';
import type { DecisionRecord } from '../admission/decision.js';
import type { PolicyResult, ResultStatus } from '../policy/types.js';
import { decisionImageSchema, policyResultSchema, type DecisionImage, type StoredDecision, type Summary } from './api-schemas.js';
import { globPrefix, globToLike, globToSqliteGlob, prefixUpperBound, type Cursor, type DecisionFilter } from './filter.js';
import { isPostgres, toNumber, type AuditDb, type AuditTables } from './tables.js';

/** Where decisions are written; the DecisionWriter needs nothing more (tests pass a blocking one). */
export interface DecisionInserter {
  /** Inserts all records in one transaction; rejects (inserting none) when the database fails. */
  insert(records: readonly DecisionRecord[]): Promise<void>;
}

export interface DecisionStore extends DecisionInserter {
  /** One page, newest first, strictly after `cursor` when given. `next` is absent on the last page. */
  list(filter: DecisionFilter, page: { limit: number; cursor?: Cursor }): Promise<{ items: StoredDecision[]; next?: Cursor }>;
  /** Counts over [sinceMs, untilMs]; lists are cut to the `top` largest entries. */
  summary(window: { sinceMs: number; untilMs: number }, top: number): Promise<Summary>;
  /** Deletes decisions older than `olderThanMs` and the oldest beyond `maxRecords`. Idempotent. */
  prune(limits: { olderThanMs: number; maxRecords: number }): Promise<{ deleted: number }>;
}

const STATUS_RANK: Record<ResultStatus, number> = { pass: 0, skip: 1, warn: 2, fail: 3, error: 4 };
const VIOLATED: ResultStatus[] = ['fail', 'warn', 'error'];
/** Rows per INSERT statement: stays below SQLite's limit of 32766 bound parameters. */
const ROWS_PER_STATEMENT = 500;
/** Small chunks: with SQLite each delete runs on the event loop, between admission requests. */
const PRUNE_CHUNK = 1000;
/** Up to this many image rows under a glob's prefix are read through the image index and sorted. */
const NARROW_PREFIX_ROWS = 1000;
/** How far the driver choice counts index entries before it stops (either way the query is cheap then). */
const DRIVER_COUNT_CAP = 20_000;
const CVE = /\b(CVE-\d{4}-\d{4,}|GHSA(?:-[23456789cfghjmpqrvwx]{4}){3})\b/g;

type DecisionRow = Omit<AuditTables['audit_decisions'], 'id'> & { id: number | string };

function worstByPolicy(results: readonly PolicyResult[]): Map<string, ResultStatus> {
  const worst = new Map<string, ResultStatus>();
  for (const result of results) {
    const current = worst.get(result.policy);
    if (current === undefined || STATUS_RANK[result.status] > STATUS_RANK[current]) worst.set(result.policy, result.status);
  }
  return worst;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

export function createDecisionStore(db: AuditDb): DecisionStore {
  const postgres = isPostgres(db);
  const ajv = new Ajv({ allErrors: false });
  addFormats.default(ajv);
  const validImages = ajv.compile<DecisionImage[]>({ type: 'array', items: decisionImageSchema });
  const validResults = ajv.compile<PolicyResult[]>({ type: 'array', items: policyResultSchema });
  const validStrings = ajv.compile<string[]>({ type: 'array', items: { type: 'string' } });

  function parseJson<T>(column: string, id: number, text: string, valid: (value: unknown) => value is T): T {
    const value: unknown = JSON.parse(text);
    if (!valid(value)) throw new Error(`audit_decisions id ${id}: column ${column} does not hold the expected JSON shape`);
    return value;
  }

  function toDecision(row: DecisionRow): StoredDecision {
    const id = toNumber(row.id);
    return {
      id,
      time: new Date(toNumber(row.time_ms)).toISOString(),
      uid: row.uid,
      webhook: row.webhook === 'mutate' ? 'mutate' : 'validate',
      user: { username: row.username, groups: parseJson('groups', id, row.groups, validStrings) },
      operation: row.operation,
      namespace: row.namespace,
      kind: row.kind,
      name: row.name,
      images: parseJson('images', id, row.images, validImages),
      results: parseJson('results', id, row.results, validResults),
      decision: row.decision === 'deny' ? 'deny' : 'allow',
      mode: row.mode === 'deny' || row.mode === 'warn' || row.mode === 'audit' ? row.mode : 'none',
      warnings: parseJson('warnings', id, row.warnings, validStrings),
      patch: parseJson('patch', id, row.patch, validStrings),
      dryRun: toNumber(row.dry_run) === 1,
      durationMs: row.duration_ms,
    };
  }

  /**
   * SQL for "`column` matches the glob". With `useIndex`, a literal prefix becomes an index range;
   * without, the column is wrapped so that no index on it is used and the query walks the time
   * index instead (right when the prefix matches many rows: the first page is found early).
   */
  function globCondition(column: string, glob: string, useIndex: boolean): RawBuilder<unknown> {
    const ref = useIndex ? sql.ref(column) : sql`(${sql.ref(column)} || '')`;
    const prefix = globPrefix(glob);
    if (prefix === glob) return sql`${ref} = ${glob}`;
    const range = prefix === '' || !useIndex ? [] : [sql`${ref} >= ${prefix}`, sql`${ref} < ${prefixUpperBound(prefix)}`];
    const pattern = postgres ? sql`${ref} like ${globToLike(glob)} escape '\\'` : sql`${ref} glob ${globToSqliteGlob(glob)}`;
    return sql.join([...range, pattern], sql` and `);
  }

  /** Whether the image rows under the glob's literal prefix are few enough to read them all and sort. */
  async function narrowPrefix(glob: string): Promise<boolean> {
    const prefix = globPrefix(glob);
    if (prefix === '') return false;
    if (prefix === glob) return true;
    const rows = await db
      .selectFrom((eb) =>
        eb
          .selectFrom('audit_decision_images')
          .select('image')
          .where('image', '>=', prefix)
          .where('image', '<', prefixUpperBound(prefix))
          .limit(NARROW_PREFIX_ROWS + 1)
          .as('sample'),
      )
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirstOrThrow();
    return toNumber(rows.n) <= NARROW_PREFIX_ROWS;
  }

  /**
   * With a policy and an indexed decision filter (namespace, user, name) together, the smaller of
   * the two index ranges should drive the query. Both are counted up to a cap from the indexes
   * alone; true when the decisions' range is the smaller one.
   */
  async function fewerDecisionRows(filter: DecisionFilter): Promise<boolean> {
    const column = filter.namespace !== undefined ? 'namespace' : filter.user !== undefined ? 'username' : filter.name !== undefined ? 'name' : undefined;
    const value = filter.namespace ?? filter.user ?? filter.name;
    if (column === undefined || value === undefined || filter.policy === undefined) return false;
    const policy = filter.policy;
    const capped = async (count: Promise<{ n: number | string }>) => toNumber((await count).n);
    const decisions = await capped(
      db
        .selectFrom((eb) => {
          let inner = eb.selectFrom('audit_decisions').select('id').where(column, '=', value);
          if (filter.sinceMs !== undefined) inner = inner.where('time_ms', '>=', filter.sinceMs);
          if (filter.untilMs !== undefined) inner = inner.where('time_ms', '<=', filter.untilMs);
          return inner.limit(DRIVER_COUNT_CAP).as('sample');
        })
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirstOrThrow(),
    );
    if (decisions >= DRIVER_COUNT_CAP) return false;
    const policies = await capped(
      db
        .selectFrom((eb) => {
          let inner = eb.selectFrom('audit_decision_policies').select('decision_id').where('policy', '=', policy).where('violated', '=', 1);
          if (filter.sinceMs !== undefined) inner = inner.where('time_ms', '>=', filter.sinceMs);
          if (filter.untilMs !== undefined) inner = inner.where('time_ms', '<=', filter.untilMs);
          return inner.limit(DRIVER_COUNT_CAP).as('sample');
        })
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirstOrThrow(),
    );
    return decisions < policies;
  }

  /**
   * One query for a page. The table that drives it is the most selective one that can deliver
   * rows already in (time DESC, id DESC) order through an index: the image rows for a digest or
   * image glob, the policy rows for a policy, the decisions otherwise. The other filters are
   * checked per row, so the database stops after `limit` matches.
   */
  async function listRows(filter: DecisionFilter, cursor: Cursor | undefined, limit: number): Promise<DecisionRow[]> {
    let driver: 'images' | 'policies' | 'decisions' =
      filter.digest !== undefined || (filter.image !== undefined && filter.policy === undefined) ? 'images' : filter.policy !== undefined ? 'policies' : 'decisions';
    if (driver === 'policies' && (await fewerDecisionRows(filter))) driver = 'decisions';
    const time = sql.ref(driver === 'decisions' ? 'd.time_ms' : 'c.time_ms');
    const id = sql.ref(driver === 'decisions' ? 'd.id' : 'c.decision_id');
    const from =
      driver === 'decisions'
        ? sql`audit_decisions d`
        : driver === 'images'
          ? sql`audit_decision_images c join audit_decisions d on d.id = c.decision_id`
          : sql`audit_decision_policies c join audit_decisions d on d.id = c.decision_id`;
    const where: RawBuilder<unknown>[] = [];
    if (filter.sinceMs !== undefined) where.push(sql`${time} >= ${filter.sinceMs}`);
    if (filter.untilMs !== undefined) where.push(sql`${time} <= ${filter.untilMs}`);
    if (cursor) where.push(sql`${time} <= ${cursor.timeMs} and (${time} < ${cursor.timeMs} or ${id} < ${cursor.id})`);
    const equal: [string, string | number | undefined][] = [
      ['d.namespace', filter.namespace],
      ['d.kind', filter.kind],
      ['d.name', filter.name],
      ['d.decision', filter.decision],
      ['d.username', filter.user],
      ['d.operation', filter.operation],
      ['d.dry_run', filter.dryRun === undefined ? undefined : filter.dryRun ? 1 : 0],
    ];
    for (const [column, value] of equal) if (value !== undefined) where.push(sql`${sql.ref(column)} = ${value}`);
    if (driver === 'images') {
      if (filter.digest !== undefined) where.push(sql`c.digest = ${filter.digest}`);
      if (filter.image !== undefined) {
        const useIndex = filter.digest === undefined && (await narrowPrefix(filter.image));
        where.push(globCondition('c.image', filter.image, useIndex));
      }
    } else if (filter.image !== undefined) {
      where.push(sql`exists (select 1 from audit_decision_images i where i.decision_id = d.id and ${globCondition('i.image', filter.image, false)})`);
    }
    if (driver === 'policies') where.push(sql`c.policy = ${filter.policy} and c.violated = 1`);
    else if (filter.policy !== undefined) {
      where.push(sql`exists (select 1 from audit_decision_policies p where p.decision_id = d.id and p.policy = ${filter.policy} and p.violated = 1)`);
    }
    const condition = where.length === 0 ? sql`1 = 1` : sql.join(where, sql` and `);
    const query = sql<DecisionRow>`select d.* from ${from} where ${condition} order by ${time} desc, ${id} desc limit ${limit}`;
    return (await query.execute(db)).rows;
  }

  return {
    async insert(records) {
      if (records.length === 0) return;
      await db.transaction().execute(async (trx) => {
        for (const batch of chunks(records, ROWS_PER_STATEMENT)) {
          const rows = batch.map((record) => ({
            time_ms: Date.parse(record.time),
            uid: record.uid,
            webhook: record.webhook,
            username: record.user.username,
            groups: JSON.stringify(record.user.groups),
            operation: record.operation,
            namespace: record.namespace,
            kind: record.kind,
            name: record.name,
            decision: record.decision,
            mode: record.mode,
            dry_run: record.dryRun ? 1 : 0,
            duration_ms: record.durationMs,
            images: JSON.stringify(record.images),
            results: JSON.stringify(record.results),
            warnings: JSON.stringify(record.warnings),
            patch: JSON.stringify(record.patch),
          }));
          // Both SQLite and PostgreSQL return the rows of a multi-row VALUES insert in order.
          const ids = await trx.insertInto('audit_decisions').values(rows).returning('id').execute();
          const images: AuditTables['audit_decision_images'][] = [];
          const policies: AuditTables['audit_decision_policies'][] = [];
          batch.forEach((record, index) => {
            const decisionId = toNumber(ids[index]?.id ?? Number.NaN);
            const timeMs = Date.parse(record.time);
            const seen = new Set<string>();
            for (const image of record.images) {
              const key = `${image.image}\n${image.digest ?? ''}`;
              if (seen.has(key)) continue;
              seen.add(key);
              images.push({ decision_id: decisionId, time_ms: timeMs, image: image.image, digest: image.digest ?? null, denied: record.decision === 'deny' ? 1 : 0 });
            }
            for (const [policy, status] of worstByPolicy(record.results)) {
              policies.push({ decision_id: decisionId, time_ms: timeMs, policy, status, violated: VIOLATED.includes(status) ? 1 : 0 });
            }
          });
          for (const part of chunks(images, ROWS_PER_STATEMENT * 3)) await trx.insertInto('audit_decision_images').values(part).execute();
          for (const part of chunks(policies, ROWS_PER_STATEMENT * 3)) await trx.insertInto('audit_decision_policies').values(part).execute();
        }
      });
    },

    async list(filter, page) {
      const items: StoredDecision[] = [];
      let cursor = page.cursor;
      // A decision with several images matching a glob comes once per image from the image-driven
      // join; duplicates are adjacent (same time and id) and skipped, and the page is topped up.
      for (;;) {
        const want = page.limit + 1 - items.length;
        const rows = await listRows(filter, cursor, want);
        for (const row of rows) {
          const id = toNumber(row.id);
          if (items.some((item) => item.id === id)) continue;
          items.push(toDecision(row));
        }
        const last = rows[rows.length - 1];
        if (rows.length < want || items.length > page.limit || !last) break;
        cursor = { timeMs: toNumber(last.time_ms), id: toNumber(last.id) };
      }
      const pageItems = items.slice(0, page.limit);
      const lastItem = pageItems[pageItems.length - 1];
      if (items.length <= page.limit || !lastItem) return { items: pageItems };
      return { items: pageItems, next: { timeMs: Date.parse(lastItem.time), id: lastItem.id } };
    },

    async summary(window, top) {
      const { sinceMs, untilMs } = window;
      const inWindow = <T extends 'audit_decisions' | 'audit_decision_images' | 'audit_decision_policies'>(table: T) =>
        (eb: ExpressionBuilder<AuditTables, T>) =>
          eb.and([eb(sql.ref(`${table}.time_ms`), '>=', sinceMs), eb(sql.ref(`${table}.time_ms`), '<=', untilMs)]);

      // One pass over the window for decisions, modes, dry runs and namespaces (index-only).
      const byDecisionRows = await db
        .selectFrom('audit_decisions')
        .select(['namespace', 'decision', 'mode', 'dry_run', (eb) => eb.fn.countAll<number | string>().as('count')])
        .where(inWindow('audit_decisions'))
        .groupBy(['namespace', 'decision', 'mode', 'dry_run'])
        .execute();
      const summary: Summary = {
        window: { since: new Date(sinceMs).toISOString(), until: new Date(untilMs).toISOString() },
        total: 0,
        dryRun: 0,
        byDecision: { allow: 0, deny: 0 },
        byMode: { deny: 0, warn: 0, audit: 0, none: 0 },
        byPolicy: [],
        byNamespace: [],
        byImage: [],
        topDeniedImages: [],
      };
      for (const row of byDecisionRows) {
        const n = toNumber(row.count);
        summary.total += n;
        if (toNumber(row.dry_run) === 1) summary.dryRun += n;
        if (row.decision === 'allow' || row.decision === 'deny') summary.byDecision[row.decision] += n;
        if (row.mode === 'deny' || row.mode === 'warn' || row.mode === 'audit' || row.mode === 'none') summary.byMode[row.mode] += n;
      }

      const policyRows = await db
        .selectFrom('audit_decision_policies')
        .select(['policy', 'status', (eb) => eb.fn.countAll<number | string>().as('count')])
        .where(inWindow('audit_decision_policies'))
        .groupBy(['policy', 'status'])
        .execute();
      const policies = new Map<string, Summary['byPolicy'][number]>();
      for (const row of policyRows) {
        const entry = policies.get(row.policy) ?? { policy: row.policy, fail: 0, warn: 0, error: 0, pass: 0, skip: 0 };
        if (row.status === 'fail' || row.status === 'warn' || row.status === 'error' || row.status === 'pass' || row.status === 'skip') {
          entry[row.status] += toNumber(row.count);
        }
        policies.set(row.policy, entry);
      }
      summary.byPolicy = [...policies.values()]
        .sort((a, b) => b.fail + b.warn + b.error - (a.fail + a.warn + a.error) || a.policy.localeCompare(b.policy))
        .slice(0, top);

      const namespaces = new Map<string, Summary['byNamespace'][number]>();
      for (const row of byDecisionRows) {
        const entry = namespaces.get(row.namespace) ?? { namespace: row.namespace, total: 0, denied: 0 };
        entry.total += toNumber(row.count);
        if (row.decision === 'deny') entry.denied += toNumber(row.count);
        namespaces.set(row.namespace, entry);
      }
      summary.byNamespace = [...namespaces.values()].sort((a, b) => b.total - a.total || a.namespace.localeCompare(b.namespace)).slice(0, top);

      const imageRows = await db
        .selectFrom('audit_decision_images')
        .select(['image', 'denied', (eb) => eb.fn.count<number | string>('decision_id').distinct().as('count')])
        .where(inWindow('audit_decision_images'))
        .groupBy(['image', 'denied'])
        .execute();
      const images = new Map<string, Summary['byImage'][number]>();
      for (const row of imageRows) {
        const entry = images.get(row.image) ?? { image: row.image, total: 0, denied: 0 };
        entry.total += toNumber(row.count);
        if (toNumber(row.denied) === 1) entry.denied += toNumber(row.count);
        images.set(row.image, entry);
      }
      const allImages = [...images.values()];
      summary.byImage = [...allImages].sort((a, b) => b.total - a.total || a.image.localeCompare(b.image)).slice(0, top);

      const denied = allImages.filter((entry) => entry.denied > 0).sort((a, b) => b.denied - a.denied || a.image.localeCompare(b.image)).slice(0, top);
      for (const entry of denied) {
        // The worst CVEs are read from the denial messages of the latest denials of this image:
        // the policy engine names them worst first.
        const recent = await db
          .selectFrom('audit_decision_images')
          .innerJoin('audit_decisions', 'audit_decisions.id', 'audit_decision_images.decision_id')
          .select(['audit_decisions.results as results', 'audit_decisions.id as id'])
          .where('audit_decision_images.image', '=', entry.image)
          .where('audit_decisions.decision', '=', 'deny')
          .where(inWindow('audit_decision_images'))
          .orderBy('audit_decision_images.time_ms', 'desc')
          .limit(5)
          .execute();
        const cves: string[] = [];
        for (const row of recent) {
          const results = parseJson('results', toNumber(row.id), row.results, validResults);
          for (const result of results) {
            if (result.status !== 'fail' || (result.image !== undefined && result.image !== entry.image)) continue;
            for (const match of result.message.matchAll(CVE)) if (!cves.includes(match[1] as string)) cves.push(match[1] as string);
          }
        }
        summary.topDeniedImages.push({ image: entry.image, denied: entry.denied, worstCves: cves.slice(0, 5) });
      }
      return summary;
    },

    async prune(limits) {
      let deleted = 0;
      const deleteUpTo = async (cutoff: Cursor | { timeMs: number }) => {
        for (;;) {
          let ids = db.selectFrom('audit_decisions').select('id');
          ids = 'id' in cutoff
            ? ids.where((eb) => eb.or([eb('time_ms', '<', cutoff.timeMs), eb.and([eb('time_ms', '=', cutoff.timeMs), eb('id', '<=', cutoff.id)])]))
            : ids.where('time_ms', '<', cutoff.timeMs);
          const chunk = (await ids.orderBy('time_ms').orderBy('id').limit(PRUNE_CHUNK).execute()).map((row) => toNumber(row.id));
          if (chunk.length === 0) return;
          await db.transaction().execute(async (trx) => {
            await trx.deleteFrom('audit_decision_images').where('decision_id', 'in', chunk).execute();
            await trx.deleteFrom('audit_decision_policies').where('decision_id', 'in', chunk).execute();
            await trx.deleteFrom('audit_decisions').where('id', 'in', chunk).execute();
          });
          deleted += chunk.length;
        }
      };
      await deleteUpTo({ timeMs: limits.olderThanMs });
      const boundary = await db
        .selectFrom('audit_decisions')
        .select(['time_ms', 'id'])
        .orderBy('time_ms', 'desc')
        .orderBy('id', 'desc')
        .offset(limits.maxRecords)
        .limit(1)
        .executeTakeFirst();
      if (boundary) await deleteUpTo({ timeMs: toNumber(boundary.time_ms), id: toNumber(boundary.id) });
      return { deleted };
    },
  };
}
