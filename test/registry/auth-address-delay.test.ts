import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AccessControl } from '../../src/registry/auth/access-control.js';
import { registryAuthMigrations } from '../../src/registry/auth/migrations.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { BRUTE_FORCE_WINDOW_MS, ManualClock, basic, recordingIdentity } from './auth-fixture.js';

/**
 * The brute-force delay counts failed logins per client address as well as per user name, on every
 * surface that takes credentials (docs/registry.md, "Answers"): a guesser who changes the user name
 * with each attempt is slowed down all the same. The sleeper records the delays instead of waiting.
 */

const clock = new ManualClock();
const delays: number[] = [];
let registry: TestRegistry;
let identity: AccessControl | undefined;

beforeAll(async () => {
  registry = await startTestRegistry({
    migrations: registryAuthMigrations,
    // The test client is its own proxy: with no X-Forwarded-For the peer address counts.
    trustedProxies: ['127.0.0.1'],
    prepare: async (database, dataDir) => {
      identity = await recordingIdentity(database.db, dataDir, { clock, delays });
      return { access: identity.controller, authRoutes: identity.routes };
    },
  });
  identity?.setExternalUrl(registry.url);
});

afterAll(async () => {
  await registry?.close();
});

beforeEach(() => {
  // Each case starts with no recent failure for the address.
  clock.advance(BRUTE_FORCE_WINDOW_MS + 1);
  delays.length = 0;
});

describe('failed logins from one address, each with another user name', () => {
  it.each([
    ['the OCI base endpoint', 'GET', '/v2/'],
    ['an OCI manifest', 'GET', '/v2/team/app/manifests/latest'],
    ['an OCI upload', 'POST', '/v2/team/app/blobs/uploads/'],
    ['the OCI catalog', 'GET', '/v2/_catalog'],
    ['the Harbor repositories of a project', 'GET', '/api/v2.0/projects/team/repositories'],
    ['a Harbor artifact', 'GET', '/api/v2.0/projects/team/repositories/app/artifacts/latest'],
    ['the token endpoint', 'GET', '/service/token?service=portcullis-registry&scope=repository:team/app:pull'],
    ['a Harbor identity route', 'GET', '/api/v2.0/users/current'],
  ])('wait longer each time on %s', async (_surface, method, path) => {
    for (const guess of ['carol', 'dave', 'erin']) {
      const response = await registry.call(path, { method, headers: { authorization: basic(guess, 'not-the-password') } });
      expect(response.status).toBe(401);
    }
    expect(delays).toHaveLength(3);
    // Per user name alone, each new name would start again at the base delay.
    for (let attempt = 1; attempt < delays.length; attempt += 1) {
      expect(delays[attempt], `delays ${delays.join(', ')} ms`).toBeGreaterThan(delays[attempt - 1] as number);
    }
  });
});

describe('failed logins behind a trusted proxy (registry.trustedProxies)', () => {
  it('count per client that X-Forwarded-For names, not per proxy', async () => {
    const guess = async (name: string, client: string) => {
      const response = await registry.call('/v2/', { headers: { authorization: basic(name, 'not-the-password'), 'x-forwarded-for': client } });
      expect(response.status).toBe(401);
    };
    await guess('carol', '198.51.100.7');
    await guess('dave', '198.51.100.7');
    await guess('erin', '203.0.113.9');
    await guess('frank', '2001:db8:5:6::1');
    await guess('grace', '2001:db8:5:6::2');
    expect(delays).toEqual([100, 200, 100, 100, 200]);
  });
});
