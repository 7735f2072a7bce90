import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDecisionStore, type DecisionStore } from '../../src/audit/store.js';
import type { DecisionFilter } from '../../src/audit/filter.js';
import type { AuditDb } from '../../src/audit/tables.js';
import { decision, DIGEST_A, DIGEST_B } from './decisions.js';

/** A migrated, empty audit database of one dialect. */
export type OpenAuditDatabase = () => Promise<{ db: AuditDb; close(): Promise<void> }>;

const at = (minute: number) => new Date(Date.parse('2026-11-21T09:00:00Z') + minute * 60_000).toISOString();

/**
 * The store's specification, run against SQLite (store.test.ts) and PostgreSQL
 * (store-postgres.test.ts): the same code must give the same answers on both.
 */
export function storeSpecification(dialect: string, open: OpenAuditDatabase): void {
let database: Awaited<ReturnType<OpenAuditDatabase>>;
let store: DecisionStore;

beforeEach(async () => {
  database = await open();
  store = createDecisionStore(database.db);
});
afterEach(async () => {
  await database.close();
});

describe(`decision store (${dialect})`, () => {
  it('returns a stored decision with every field as it was recorded', async () => {
    const recorded = decision({ dryRun: true, patch: ['add /spec/imagePullSecrets/-'], warnings: ['w1'], mode: 'deny' });
    await store.insert([recorded]);
    const { items, next } = await store.list({}, { limit: 10 });
    expect(next).toBeUndefined();
    expect(items).toEqual([{ id: 1, ...recorded }]);
  });

  const seed = [
    decision({ time: at(1), uid: 'u1', namespace: 'shop', decision: 'deny', user: { username: 'alice', groups: [] } }),
    decision({ time: at(2), uid: 'u2', namespace: 'shop', decision: 'allow', mode: 'none', results: [], user: { username: 'bob', groups: [] } }),
    decision({ time: at(3), uid: 'u3', namespace: 'blog', decision: 'deny', dryRun: true, user: { username: 'alice', groups: [] } }),
    decision({
      time: at(4),
      uid: 'u4',
      namespace: 'blog',
      kind: 'Pod',
      name: 'cache',
      operation: 'UPDATE',
      decision: 'allow',
      mode: 'warn',
      images: [{ image: 'docker.io/library/redis:7', pointer: '/spec/containers/0/image', digest: DIGEST_B }],
      results: [{ policy: 'no-latest', rule: 'tags', status: 'warn', message: 'tag', action: 'warn', image: 'docker.io/library/redis:7' }],
      user: { username: 'bob', groups: [] },
    }),
  ];

  it.each<[string, DecisionFilter, string[]]>([
    ['no filter lists everything newest first', {}, ['u4', 'u3', 'u2', 'u1']],
    ['namespace and decision combine', { namespace: 'shop', decision: 'deny' }, ['u1']],
    ['user and dryRun combine', { user: 'alice', dryRun: true }, ['u3']],
    ['dryRun false excludes dry runs', { dryRun: false, user: 'alice' }, ['u1']],
    ['kind, name and operation select one object', { kind: 'Pod', name: 'cache', operation: 'UPDATE' }, ['u4']],
    ['an image glob with a prefix matches across slashes', { image: 'registry.example.com/*' }, ['u3', 'u2', 'u1']],
    ['an image glob with ? and a suffix', { image: 'docker.io/library/redi?:*' }, ['u4']],
    ['an exact image name', { image: 'docker.io/library/redis:7' }, ['u4']],
    ['an image glob that matches nothing', { image: 'quay.io/*' }, []],
    ['a digest', { digest: DIGEST_B }, ['u4']],
    ['a policy matches where it failed or warned, not where it passed', { policy: 'no-critical' }, ['u3', 'u2', 'u1'].filter((uid) => uid !== 'u2')],
    ['a policy that only passed matches nothing', { policy: 'allowed-registries' }, []],
    ['a policy and a namespace combine', { policy: 'no-latest', namespace: 'blog' }, ['u4']],
    ['since and until bound the time inclusively', { sinceMs: Date.parse(at(2)), untilMs: Date.parse(at(3)) }, ['u3', 'u2']],
    ['image, decision and since combine', { image: 'registry.example.com/team/*', decision: 'deny', sinceMs: Date.parse(at(2)) }, ['u3']],
  ])('filters: %s', async (_name, filter, uids) => {
    await store.insert(seed);
    const { items } = await store.list(filter, { limit: 100 });
    expect(items.map((item) => item.uid)).toEqual(uids);
  });

  it('pages newest first, and pages stay stable while newer decisions arrive', async () => {
    await store.insert(Array.from({ length: 25 }, (_, index) => decision({ time: at(index), uid: `old-${index}` })));
    const first = await store.list({}, { limit: 10 });
    expect(first.items.map((item) => item.uid)).toEqual(Array.from({ length: 10 }, (_, index) => `old-${24 - index}`));
    // New decisions, some with the same time as the page boundary, arrive between pages.
    await store.insert([decision({ time: at(30), uid: 'new-1' }), decision({ time: at(15), uid: 'new-same-time' })]);
    const seen = [...first.items.map((item) => item.uid)];
    let cursor = first.next;
    while (cursor) {
      const page = await store.list({}, { limit: 10, cursor });
      seen.push(...page.items.map((item) => item.uid));
      cursor = page.next;
    }
    const old = seen.filter((uid) => uid.startsWith('old-'));
    expect(old).toEqual(Array.from({ length: 25 }, (_, index) => `old-${24 - index}`));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).not.toContain('new-1');
  });

  it('lists a decision once when several of its images match the glob, and pages stay whole', async () => {
    const twoImages = (uid: string, minute: number) =>
      decision({
        time: at(minute),
        uid,
        images: [
          { image: 'registry.example.com/team/a:1', pointer: '/spec/containers/0/image', digest: DIGEST_A },
          { image: 'registry.example.com/team/b:1', pointer: '/spec/containers/1/image', digest: DIGEST_B },
        ],
      });
    await store.insert([twoImages('m1', 1), twoImages('m2', 2), twoImages('m3', 3), twoImages('m4', 4)]);
    const first = await store.list({ image: 'registry.example.com/team/*' }, { limit: 3 });
    expect(first.items.map((item) => item.uid)).toEqual(['m4', 'm3', 'm2']);
    const second = await store.list({ image: 'registry.example.com/team/*' }, { limit: 3, cursor: first.next });
    expect(second.items.map((item) => item.uid)).toEqual(['m1']);
    expect(second.next).toBeUndefined();
  });

  it('keeps decisions with the same time apart by id across pages', async () => {
    await store.insert(Array.from({ length: 7 }, (_, index) => decision({ time: at(0), uid: `same-${index}` })));
    const uids: string[] = [];
    let cursor: Awaited<ReturnType<DecisionStore['list']>>['next'];
    do {
      const page = await store.list({}, { limit: 3, cursor });
      uids.push(...page.items.map((item) => item.uid));
      cursor = page.next;
    } while (cursor);
    expect(uids).toEqual(['same-6', 'same-5', 'same-4', 'same-3', 'same-2', 'same-1', 'same-0']);
  });

  it('summarises a window: decisions, modes, policies, namespaces, images and top denied images with CVEs', async () => {
    await store.insert(seed);
    const summary = await store.summary({ sinceMs: Date.parse(at(0)), untilMs: Date.parse(at(10)) }, 10);
    expect(summary).toEqual({
      window: { since: at(0), until: at(10) },
      total: 4,
      dryRun: 1,
      byDecision: { allow: 2, deny: 2 },
      byMode: { deny: 2, warn: 1, audit: 0, none: 1 },
      byPolicy: [
        { policy: 'no-critical', fail: 2, warn: 0, error: 0, pass: 0, skip: 0 },
        { policy: 'no-latest', fail: 0, warn: 1, error: 0, pass: 0, skip: 0 },
        { policy: 'allowed-registries', fail: 0, warn: 0, error: 0, pass: 2, skip: 0 },
      ],
      byNamespace: [
        { namespace: 'blog', total: 2, denied: 1 },
        { namespace: 'shop', total: 2, denied: 1 },
      ],
      byImage: [
        { image: 'registry.example.com/team/web:1.2', total: 3, denied: 2 },
        { image: 'docker.io/library/redis:7', total: 1, denied: 0 },
      ],
      topDeniedImages: [{ image: 'registry.example.com/team/web:1.2', denied: 2, worstCves: ['CVE-2021-3711'] }],
    });
    const empty = await store.summary({ sinceMs: Date.parse(at(100)), untilMs: Date.parse(at(200)) }, 10);
    expect(empty.total).toBe(0);
    expect(empty.byImage).toEqual([]);
  });

  it('prunes by age and by count, oldest first, children included', async () => {
    await store.insert(Array.from({ length: 20 }, (_, index) => decision({ time: at(index), uid: `d-${index}` })));
    expect(await store.prune({ olderThanMs: Date.parse(at(5)), maxRecords: 1000 })).toEqual({ deleted: 5 });
    expect(await store.prune({ olderThanMs: 0, maxRecords: 10 })).toEqual({ deleted: 5 });
    const { items } = await store.list({}, { limit: 100 });
    expect(items.map((item) => item.uid)).toEqual(Array.from({ length: 10 }, (_, index) => `d-${19 - index}`));
    const orphans = await database.db.selectFrom('audit_decision_images').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
    expect(Number(orphans.n)).toBe(10);
    expect(await store.prune({ olderThanMs: Date.parse(at(5)), maxRecords: 10 })).toEqual({ deleted: 0 });
  });
});
}
