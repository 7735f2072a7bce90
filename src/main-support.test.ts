import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from './log/logger.js';
import { detectKube, findExecutable, legacyAdminPasswordFile, resolveShipped, withRegistryHosts } from './main-support.js';
import { createPolicyStore } from './policy/store.js';
import { repoRoot } from '../test/helpers/cli.js';
import { tempDir } from '../test/helpers/tmp.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

describe('up: the default PullSecretPolicy follows the registry address', () => {
  it.each([
    ['the address up actually listens on', '127.0.0.1:43123', true],
    ['localhost with that port', 'localhost:43123', true],
    ['another registry on the same machine', '127.0.0.1:6000', false],
  ])('covers %s (%s: %s)', async (_name, host, covered) => {
    const store = createPolicyStore({ dir: join(repoRoot, 'policies'), logger: silentLogger(), watch: false });
    await store.start();
    try {
      const wrapped = withRegistryHosts(store, ['127.0.0.1:43123', 'localhost:43123']);
      const policy = wrapped.current()?.pullSecretPolicies.find((candidate) => candidate.name === 'included-registry');
      expect(policy?.registries.matches(host)).toBe(covered);
      // The store itself is unchanged, and the default address stays covered.
      expect(store.current()?.pullSecretPolicies.find((candidate) => candidate.name === 'included-registry')?.registries.matches('127.0.0.1:43123')).toBe(false);
      expect(policy?.registries.matches('127.0.0.1:5000')).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('leaves the store alone when the registry listens on its default address', () => {
    const store = createPolicyStore({ dir: join(repoRoot, 'policies'), logger: silentLogger(), watch: false });
    expect(withRegistryHosts(store, ['127.0.0.1:5000', 'localhost:5000'])).toBe(store);
  });
});

describe('up: Kubernetes detection (kube.mode auto)', () => {
  const saDir = join(tmp.path, 'sa');
  mkdirSync(saDir, { recursive: true });
  writeFileSync(join(saDir, 'token'), 'x');
  it.each([
    ['kube.mode off wins over everything', { mode: 'off' as const }, { KUBECONFIG: '/k' }, { mode: 'none', reason: 'kube.mode is off' }],
    ['kube.kubeconfig wins over KUBECONFIG', { mode: 'auto' as const, kubeconfig: '/explicit' }, { KUBECONFIG: '/k' }, { mode: 'kubeconfig', file: '/explicit' }],
    ['the first file of KUBECONFIG', { mode: 'auto' as const }, { KUBECONFIG: ':/a:/b' }, { mode: 'kubeconfig', file: '/a' }],
    ['the in-cluster service account', { mode: 'auto' as const }, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, { mode: 'in-cluster' }],
    ['nothing: run without Kubernetes', { mode: 'auto' as const }, {}, { mode: 'none' }],
  ])('%s', (_name, config, env, expected) => {
    expect(detectKube(config, env, saDir)).toMatchObject(expected);
  });
});

describe('up: small helpers', () => {
  it('finds the plain-text admin password file of earlier versions, only when it exists', () => {
    const dataDir = join(tmp.path, 'legacy');
    mkdirSync(dataDir, { recursive: true });
    expect(legacyAdminPasswordFile(dataDir)).toBeUndefined();
    writeFileSync(join(dataDir, 'admin-password'), 'old-secret\n');
    expect(legacyAdminPasswordFile(dataDir)).toBe(join(dataDir, 'admin-password'));
  });

  it('finds executables on PATH or by path, and nothing else', () => {
    expect(findExecutable('node', { PATH: process.env.PATH })).toMatch(/node$/);
    expect(findExecutable('no-such-tool-here', { PATH: process.env.PATH })).toBeUndefined();
    expect(findExecutable(process.execPath, {})).toBe(process.execPath);
  });

  it('resolves shipped directories from the working directory, else from the package', () => {
    expect(resolveShipped('webhooks', repoRoot)).toBe(join(repoRoot, 'webhooks'));
    expect(resolveShipped('webhooks', tmp.path)).toBe(join(repoRoot, 'webhooks'));
    expect(resolveShipped('/abs/dir', tmp.path)).toBe('/abs/dir');
  });
});
