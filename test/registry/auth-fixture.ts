import type { AddressInfo } from 'node:net';
import { fetch, type Agent } from 'undici';
import type { Kysely } from 'kysely';
import { openDatabase, migrate } from '../../src/db/database.js';
import { buildServer, type HttpServer } from '../../src/http/server.js';
import { defaultConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log/logger.js';
import { createAccessControl, type AccessControl } from '../../src/registry/auth/access-control.js';
import { registryAuthMigrations } from '../../src/registry/auth/migrations.js';
import type { Clock } from '../../src/registry/auth/clock.js';
import { testTls, trustingAgent } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(public ms = Date.parse('2026-01-01T00:00:00Z')) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

export const ADMIN_PASSWORD = 'Admin-Passw0rd';

export interface AuthFixture {
  auth: AccessControl;
  clock: ManualClock;
  /** Every brute-force delay asked for, in ms (nothing actually waits). */
  delays: number[];
  dataDir: string;
  /** Registered project repositories per project name (the stand-in for the registry core). */
  repositories: Map<string, number>;
  app: HttpServer;
  url: string;
  agent: Agent;
  request(method: string, path: string, options?: { user?: [string, string]; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; headers: Headers; json: unknown; text: string }>;
  close(): Promise<void>;
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** The brute-force window of recordingIdentity. */
export const BRUTE_FORCE_WINDOW_MS = 60_000;

/**
 * The identity subsystem for tests, bootstrapped: an admin with ADMIN_PASSWORD, time from `clock`,
 * and brute-force delays (100 ms doubling to 800 ms) recorded into `delays` instead of waited.
 */
export async function recordingIdentity(
  db: Kysely<unknown>,
  dataDir: string,
  options: { clock: ManualClock; delays: number[]; challengeScheme?: 'bearer' | 'basic'; repositories?: Map<string, number> },
): Promise<AccessControl> {
  const auth = createAccessControl({
    config: { ...defaultConfig(dataDir).registry, adminPassword: ADMIN_PASSWORD, tokenTtlSeconds: 300 },
    logger: silentLogger(),
    db,
    dataDir,
    clock: options.clock,
    sleep: async (ms) => {
      options.delays.push(ms);
    },
    bruteForce: { baseDelayMs: 100, maxDelayMs: 800, windowMs: BRUTE_FORCE_WINDOW_MS },
    ...(options.challengeScheme ? { challengeScheme: options.challengeScheme } : {}),
    repositories: { count: async (project) => options.repositories?.get(project) ?? 0 },
  });
  await auth.bootstrap();
  return auth;
}

/**
 * A real HTTPS server on 127.0.0.1 with the identity routes over a fresh SQLite file, an admin
 * with ADMIN_PASSWORD, a manual clock and a recording sleeper.
 */
export async function startAuthFixture(options: { challengeScheme?: 'bearer' | 'basic'; dataDir?: string } = {}): Promise<AuthFixture> {
  const temp = options.dataDir === undefined ? tempDir('portcullis-auth-') : undefined;
  const dataDir = options.dataDir ?? (temp as { path: string }).path;
  const database = openDatabase<unknown>({ sqlitePath: `${dataDir}/portcullis.db` });
  await migrate(database.db, registryAuthMigrations);
  const clock = new ManualClock();
  const delays: number[] = [];
  const repositories = new Map<string, number>();
  const auth = await recordingIdentity(database.db, dataDir, { clock, delays, repositories, ...(options.challengeScheme ? { challengeScheme: options.challengeScheme } : {}) });
  const tls = testTls();
  const app = buildServer({ logger: silentLogger(), tls: { key: tls.serving.key, cert: tls.serving.cert }, bodyLimit: 64 * 1024 });
  await app.register(auth.routes);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  auth.setExternalUrl(url);
  const agent = trustingAgent(tls.ca.cert);
  return {
    auth,
    clock,
    delays,
    dataDir,
    repositories,
    app,
    url,
    agent,
    async request(method, path, requestOptions = {}) {
      const headers: Record<string, string> = { ...requestOptions.headers };
      if (requestOptions.user) headers.authorization = basic(...requestOptions.user);
      let body: string | undefined = requestOptions.raw;
      if (requestOptions.body !== undefined) body = JSON.stringify(requestOptions.body);
      if (body !== undefined) headers['content-type'] ??= 'application/json';
      const response = await fetch(`${url}${path}`, { method, headers, body, dispatcher: agent });
      const text = await response.text();
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: response.status, headers: response.headers as unknown as Headers, json, text };
    },
    async close() {
      await app.close();
      await agent.close();
      await database.close();
      temp?.remove();
    },
  };
}
