import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../http/metrics.js';
import { silentLogger } from '../log/logger.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { formatProblem } from './load.js';
import { createPolicyStore, type PolicyStore, type PolicyStoreStatus } from './store.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function policy(name: string, severity = 'High'): string {
  return `apiVersion: portcullis.io/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: ${name}\nspec:\n  rules:\n    vulnerabilities:\n      maxSeverity: ${severity}\n`;
}

function setup(files: Record<string, string>) {
  const dir = tempDir();
  cleanups.push(() => dir.remove());
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir.path, name), text);
  const metrics = createMetricsRegistry({ defaultMetrics: false });
  const store = createPolicyStore({ dir: dir.path, logger: silentLogger(), metrics, debounceMs: 10 });
  cleanups.push(() => store.close());
  return { dir: dir.path, store, metrics };
}

/** Resolves with the first reload status that satisfies `accept` (file events may come in bursts). */
function nextReload(store: PolicyStore, accept: (status: PolicyStoreStatus) => boolean): Promise<PolicyStoreStatus> {
  return new Promise((resolve) => {
    const stop = store.onReload((status) => {
      if (!accept(status)) return;
      stop();
      resolve(status);
    });
  });
}

async function metric(metrics: ReturnType<typeof createMetricsRegistry>, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const found = await metrics.getSingleMetric(name)?.get();
  return found?.values.find((value) => Object.entries(labels).every(([key, label]) => value.labels[key] === label))?.value;
}

describe('the policy store', () => {
  it('loads the directory at start, is ready, and says so in status and metrics', async () => {
    const { store, metrics, dir } = setup({ 'gate.yaml': policy('gate') });
    await store.start();
    expect(store.current()?.imagePolicies.map((entry) => entry.name)).toEqual(['gate']);
    expect(store.status()).toMatchObject({ ok: true, problems: [], files: [join(dir, 'gate.yaml')], loadedAt: expect.any(String) });
    expect(store.readinessCheck()).toMatchObject({ ok: true });
    expect(await metric(metrics, 'portcullis_policy_set_valid')).toBe(1);
    expect(await metric(metrics, 'portcullis_policy_reload_total', { result: 'success' })).toBe(1);
    expect(await metric(metrics, 'portcullis_policy_documents', { kind: 'ImagePolicy' })).toBe(1);
  });

  it('keeps the last good set when a broken file is written, reports the problem, and swaps in the fix', async () => {
    const { store, metrics, dir } = setup({ 'gate.yaml': policy('gate') });
    await store.start();
    const good = store.current();

    const rejected = nextReload(store, (status) => !status.ok);
    writeFileSync(join(dir, 'broken.yaml'), policy('broken', 'Severe'));
    const status = await rejected;

    expect(store.current()).toBe(good);
    expect(status.problems.map(formatProblem)).toEqual([
      `${join(dir, 'broken.yaml')}:8:20 /spec/rules/vulnerabilities/maxSeverity: must be one of Unknown, Negligible, Low, Medium, High, Critical, got "Severe"`,
    ]);
    expect(store.status()).toMatchObject({ ok: false, revision: good?.revision, files: [join(dir, 'gate.yaml')] });
    const readiness = store.readinessCheck();
    expect(readiness.ok).toBe(true);
    expect(readiness.reason).toContain('latest change rejected');
    expect(readiness.reason).toContain('broken.yaml:8:20');
    expect(await metric(metrics, 'portcullis_policy_set_valid')).toBe(0);
    expect(await metric(metrics, 'portcullis_policy_reload_total', { result: 'failure' })).toBeGreaterThanOrEqual(1);

    const changed = new Promise((resolve) => store.onChange(resolve));
    // Written beside and renamed into place, the way editors and ConfigMap updates do.
    writeFileSync(join(dir, '.broken.yaml.tmp'), policy('broken', 'Critical'));
    renameSync(join(dir, '.broken.yaml.tmp'), join(dir, 'broken.yaml'));
    const fixed = await changed;

    expect(fixed).toBe(store.current());
    expect(store.current()?.imagePolicies.map((entry) => entry.name)).toEqual(['broken', 'gate']);
    expect(store.status()).toMatchObject({ ok: true, problems: [] });
    expect(await metric(metrics, 'portcullis_policy_set_valid')).toBe(1);
  });

  it('is not ready while no valid set was ever loaded, and becomes ready once one is', async () => {
    const { store, dir } = setup({ 'gate.yaml': 'apiVersion: portcullis.io/v1alpha1\nkind: ImagePolicy\nmetadata: { name: gate }\nspec:\n  rulez: {}\n' });
    await store.start();
    expect(store.current()).toBeUndefined();
    expect(store.readinessCheck()).toEqual({
      ok: false,
      reason: expect.stringMatching(/^no valid policy set: .*gate\.yaml:5:3 \/spec\/rulez: unknown field "rulez" \(did you mean "rules"\?\) \(\+1 more\)$/),
    });

    const loaded = nextReload(store, (status) => status.ok);
    writeFileSync(join(dir, 'gate.yaml'), policy('gate'));
    await loaded;
    expect(store.readinessCheck().ok).toBe(true);
  });

  it('follows a mounted ConfigMap update (the ..data symlink swap)', async () => {
    const { store, dir } = setup({});
    // The kubelet's layout: a timestamped directory, `..data` pointing at it, and each key a symlink through `..data`.
    mkdirSync(join(dir, '..2026_06_01_v1'));
    writeFileSync(join(dir, '..2026_06_01_v1', 'gate.yaml'), policy('gate'));
    symlinkSync('..2026_06_01_v1', join(dir, '..data'));
    symlinkSync('..data/gate.yaml', join(dir, 'gate.yaml'));
    await store.start();
    expect(store.current()?.imagePolicies[0]?.vulnerabilities?.maxSeverity).toBe('High');

    const changed = new Promise((resolve) => store.onChange(resolve));
    mkdirSync(join(dir, '..2026_06_01_v2'));
    writeFileSync(join(dir, '..2026_06_01_v2', 'gate.yaml'), policy('gate', 'Medium'));
    symlinkSync('..2026_06_01_v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(join(dir, '..2026_06_01_v1'), { recursive: true });
    await changed;
    expect(store.current()?.imagePolicies[0]?.vulnerabilities?.maxSeverity).toBe('Medium');
  });

  it('calls change listeners only when the policies differ, and isolates a failing listener', async () => {
    const { store } = setup({ 'gate.yaml': policy('gate') });
    const seen: string[] = [];
    store.onChange(() => {
      throw new Error('listener bug');
    });
    const unsubscribe = store.onChange((set) => seen.push(set.revision));
    await store.start();
    await store.reload();
    expect(seen).toHaveLength(1);
    unsubscribe();
    expect(store.status().ok).toBe(true);
  });

  it('reports a missing directory as not ready, and loads it once it appears', async () => {
    const parent = tempDir();
    cleanups.push(() => parent.remove());
    const dir = join(parent.path, 'policies');
    const store = createPolicyStore({ dir, logger: silentLogger(), debounceMs: 10, rewatchMs: 20 });
    cleanups.push(() => store.close());
    await store.start();
    expect(store.readinessCheck()).toMatchObject({ ok: false, reason: expect.stringContaining('cannot read the policy directory') });

    const loaded = nextReload(store, (status) => status.ok);
    mkdirSync(join(parent.path, 'staging'));
    writeFileSync(join(parent.path, 'staging', 'gate.yaml'), policy('gate'));
    renameSync(join(parent.path, 'staging'), dir);
    await loaded;
    expect(store.readinessCheck().ok).toBe(true);
  });

  it('keeps the last good set while the directory is removed, and follows the one that replaces it', async () => {
    const parent = tempDir();
    cleanups.push(() => parent.remove());
    const dir = join(parent.path, 'policies');
    mkdirSync(dir);
    writeFileSync(join(dir, 'gate.yaml'), policy('gate'));
    const store = createPolicyStore({ dir, logger: silentLogger(), debounceMs: 10, rewatchMs: 20 });
    cleanups.push(() => store.close());
    await store.start();
    const good = store.current();

    const gone = nextReload(store, (status) => !status.ok);
    rmSync(dir, { recursive: true });
    await gone;
    expect(store.current()).toBe(good);

    const back = nextReload(store, (status) => status.ok && status.revision !== good?.revision);
    mkdirSync(join(parent.path, 'staging'));
    writeFileSync(join(parent.path, 'staging', 'gate.yaml'), policy('gate', 'Medium'));
    renameSync(join(parent.path, 'staging'), dir);
    await back;
    expect(store.current()?.imagePolicies[0]?.vulnerabilities?.maxSeverity).toBe('Medium');
  });

  it('closes idempotently', async () => {
    const { store } = setup({ 'gate.yaml': policy('gate') });
    await store.start();
    await store.close();
    await store.close();
    expect(store.current()).toBeDefined();
  });
});
