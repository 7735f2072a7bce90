import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Config } from '../../src/config/schema.js';
import { defaultConfig } from '../../src/config/schema.js';
import { createMetricsRegistry } from '../../src/http/metrics.js';
import { Readiness } from '../../src/http/readiness.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Clock } from '../../src/scanner/clock.js';
import { createScanner, type CreateScannerDeps, type ScannerSubsystem } from '../../src/scanner/create.js';
import type { ArtifactEvent, ArtifactEvents, CredentialIssuer } from '../../src/scanner/ports.js';
import { tempDir } from '../helpers/tmp.js';
import { STANDIN_TRIVY, standinEnv } from '../trivy-standin/path.js';
import { scannerTestDb, type ScannerTestDb } from './db.js';

/** An in-memory event bus with the registry's `subscribe` shape; `emit` waits for the listeners. */
export class TestEvents implements ArtifactEvents {
  readonly #listeners = new Set<(event: ArtifactEvent) => void | Promise<void>>();
  subscribe(listener: (event: ArtifactEvent) => void | Promise<void>): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  async emit(event: ArtifactEvent): Promise<void> {
    await Promise.all([...this.#listeners].map((listener) => listener(event)));
  }
}

export interface HarnessOptions {
  registryHost: string;
  caPem?: string;
  credentials: CredentialIssuer;
  config?: Partial<Config['scanner']>;
  clock?: Clock;
  events?: ArtifactEvents;
  projectSettings?: CreateScannerDeps['projectSettings'];
  /** Initial stand-in control (mode, dbUpdatedAt); rewrite with `control()`. */
  control?: { mode?: string; dbUpdatedAt?: string };
  killGraceMs?: number;
}

export interface Harness extends ScannerSubsystem {
  db: ScannerTestDb;
  readiness: Readiness;
  /** Rewrites the stand-in control file (read by each Trivy start). */
  control(settings: { mode?: string; dbUpdatedAt?: string }): void;
  /** Every stand-in invocation so far. */
  invocations(): { argv: string[]; username: string | null; passwordSet: boolean; sslCertFile: string | null }[];
  scans(): { argv: string[] }[];
  dir: string;
  pidFile: string;
  dispose(): Promise<void>;
}

export async function scannerHarness(options: HarnessOptions): Promise<Harness> {
  const dir = tempDir('portcullis-scanner-harness-');
  const db = await scannerTestDb();
  const controlFile = join(dir.path, 'control.json');
  const logFile = join(dir.path, 'trivy.log');
  const pidFile = join(dir.path, 'pids.json');
  writeFileSync(controlFile, JSON.stringify(options.control ?? {}));
  const readiness = new Readiness();
  const config: Config['scanner'] = {
    ...defaultConfig(dir.path).scanner,
    trivyPath: 'trivy',
    cacheDir: join(dir.path, 'trivy-cache'),
    ...options.config,
  };
  const subsystem = createScanner({
    config,
    logger: silentLogger(),
    db: db.db as unknown as Kysely<unknown>,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    readiness,
    registryUrl: `https://${options.registryHost}`,
    ...(options.caPem ? { registryCa: options.caPem } : {}),
    credentials: options.credentials,
    ...(options.events ? { events: options.events } : {}),
    ...(options.projectSettings ? { projectSettings: options.projectSettings } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    env: standinEnv({ PORTCULLIS_TEST_TRIVY_CONTROL: controlFile, PORTCULLIS_TEST_TRIVY_LOG: logFile, PORTCULLIS_TEST_TRIVY_PIDFILE: pidFile }),
    killGraceMs: options.killGraceMs ?? 200,
    instanceId: 'test-host',
  });
  const invocations = () =>
    existsSync(logFile)
      ? readFileSync(logFile, 'utf8')
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as { argv: string[]; username: string | null; passwordSet: boolean; sslCertFile: string | null })
      : [];
  return {
    ...subsystem,
    db,
    readiness,
    dir: dir.path,
    pidFile,
    control: (settings) => writeFileSync(controlFile, JSON.stringify(settings)),
    invocations,
    scans: () => invocations().filter((entry) => entry.argv[0] === 'image' && !entry.argv.includes('--download-db-only')),
    async dispose() {
      await subsystem.close();
      await db.close();
      dir.remove();
    },
  };
}

export { STANDIN_TRIVY };
