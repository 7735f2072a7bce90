import type { DecisionRecord } from '../../src/admission/decision.js';
import { openDatabase, migrate } from '../../src/db/database.js';
import { auditMigrations } from '../../src/audit/migrations.js';
import type { AuditTables } from '../../src/audit/tables.js';
import { tempDir } from '../helpers/tmp.js';

export const DIGEST_A = `sha256:${'a'.repeat(64)}`;
export const DIGEST_B = `sha256:${'b'.repeat(64)}`;

/** A complete decision with every field set; override what a case is about. */
export function decision(overrides: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    time: '2026-11-21T09:00:00.000Z',
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    webhook: 'validate',
    user: { username: 'alice@example.com', groups: ['system:authenticated', 'devs'] },
    operation: 'CREATE',
    namespace: 'shop',
    kind: 'Deployment',
    name: 'web',
    images: [{ image: 'registry.example.com/team/web:1.2', pointer: '/spec/template/spec/containers/0/image', digest: DIGEST_A }],
    results: [
      {
        policy: 'no-critical',
        rule: 'vulnerabilities',
        status: 'fail',
        message: 'registry.example.com/team/web:1.2 has 1 Critical: CVE-2021-3711 (openssl 1.1.1k, fixed in 1.1.1l)',
        action: 'deny',
        image: 'registry.example.com/team/web:1.2',
        pointer: '/spec/template/spec/containers/0/image',
        digest: DIGEST_A,
      },
      { policy: 'allowed-registries', rule: 'registries', status: 'pass', message: 'ok', action: 'deny', image: 'registry.example.com/team/web:1.2' },
    ],
    decision: 'deny',
    mode: 'deny',
    warnings: [],
    patch: [],
    dryRun: false,
    durationMs: 12.5,
    ...overrides,
  };
}

/** A migrated SQLite file in a temp dir. */
export async function auditDatabase() {
  const dir = tempDir('portcullis-audit-');
  const opened = openDatabase<unknown>({ sqlitePath: `${dir.path}/audit.db` });
  await migrate(opened.db, auditMigrations);
  return {
    raw: opened.db,
    db: opened.db.withTables<AuditTables>(),
    path: `${dir.path}/audit.db`,
    async close() {
      await opened.close();
      dir.remove();
    },
  };
}
