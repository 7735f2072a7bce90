import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startRegistryChild, type RegistryChild } from '../helpers/registry-child.js';
import { filesUnder, tempDir } from '../helpers/tmp.js';
import { testTls, trustingAgent } from '../helpers/tls.js';

/**
 * `portcullis registry` as its own process. On an empty data directory without
 * PORTCULLIS_ADMIN_PASSWORD it creates `admin` with a generated password, prints it once, and keeps
 * only its hash; `portcullis admin reset-password` is the way back in when that password is lost.
 * Without --tls-cert/--tls-key it serves the key pair of its certificates directory, else plain
 * HTTP, and says so.
 */
const tls = testTls();
const dispatcher = trustingAgent(tls.ca.cert);
let work: { path: string; remove(): void };
const running: RegistryChild[] = [];

function start(): Promise<RegistryChild> {
  return startRegistryChild({
    dataDir: join(work.path, 'data'),
    tlsCert: join(work.path, 'tls.crt'),
    tlsKey: join(work.path, 'tls.key'),
  }).then((registry) => {
    running.push(registry);
    return registry;
  });
}

async function stop(registry: RegistryChild): Promise<void> {
  const exited = once(registry.child, 'exit');
  registry.child.kill('SIGTERM');
  await exited;
}

async function v2Status(registry: RegistryChild, username: string, password: string): Promise<number> {
  const response = await fetch(`${registry.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` }, dispatcher });
  await response.arrayBuffer();
  return response.status;
}

beforeAll(() => {
  work = tempDir('portcullis-first-admin-');
  writeFileSync(join(work.path, 'tls.crt'), tls.serving.cert);
  writeFileSync(join(work.path, 'tls.key'), tls.serving.key);
});

afterAll(async () => {
  for (const registry of running) if (registry.child.exitCode === null && registry.child.signalCode === null) await stop(registry);
  await dispatcher.close();
  work.remove();
});

/** The password `portcullis registry` generated on its first start, in the first describe. */
let password = '';

describe('the first admin of `portcullis registry`', () => {
  it('gets a generated password, printed once, that signs in', async () => {
    const first = await start();
    password = /^admin password \(shown once\): (\S+)$/m.exec(first.stdout())?.[1] ?? '';
    expect(password).toMatch(/^\S{24,}$/);
    expect(await v2Status(first, 'admin', password)).toBe(200);
    expect(await v2Status(first, 'admin', `${password}x`)).toBe(401);
    await stop(first);
  });

  it('is stored nowhere in plain text', () => {
    const holding = filesUnder(work.path).filter((file) => readFileSync(file).includes(password));
    expect(holding).toEqual([]);
  });

  it('is not generated or printed again on the next start, and still signs in', async () => {
    const second = await start();
    expect(second.stdout()).not.toContain('admin password');
    expect(await v2Status(second, 'admin', password)).toBe(200);
    await stop(second);
  });
});

// On the data directory of the admin above: these follow its first start.
describe('portcullis admin reset-password', () => {
  const dataDir = () => join(work.path, 'data');
  let generated = '';

  it('sets a generated password, printed once, in place of the old one, even with PORTCULLIS_ADMIN_PASSWORD set', async () => {
    const reset = await runCli(['admin', 'reset-password', '--data-dir', dataDir()], { env: { PORTCULLIS_ADMIN_PASSWORD: 'not-taken-without-the-flag' } });
    expect(reset.code, reset.stderr).toBe(0);
    generated = /^new password of admin \(shown once\): (\S+)$/m.exec(reset.stdout)?.[1] ?? '';
    expect(generated).toMatch(/^\S{24,}$/);
    expect(filesUnder(work.path).filter((file) => readFileSync(file).includes(generated))).toEqual([]);
    const registry = await start();
    expect(await v2Status(registry, 'admin', generated)).toBe(200);
    expect(await v2Status(registry, 'admin', password)).toBe(401);
    expect(await v2Status(registry, 'admin', 'not-taken-without-the-flag')).toBe(401);
    await stop(registry);
  });

  it('sets the configured admin password with --from-config, for automation', async () => {
    const reset = await runCli(['admin', 'reset-password', '--from-config', '--data-dir', dataDir()], { env: { PORTCULLIS_ADMIN_PASSWORD: 'chosen-by-automation' } });
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toBe('password of admin set to the configured admin password\n');
    const registry = await start();
    expect(await v2Status(registry, 'admin', 'chosen-by-automation')).toBe(200);
    expect(await v2Status(registry, 'admin', generated)).toBe(401);
    await stop(registry);
  });

  it('refuses --from-config with nothing configured or for another user, an unknown user and a directory where no registry ran, creating nothing', async () => {
    const elsewhere = join(work.path, 'never-used');
    const [unconfigured, otherUser, unknown, missing] = await Promise.all([
      runCli(['admin', 'reset-password', '--from-config', '--data-dir', dataDir()]),
      runCli(['admin', 'reset-password', '--from-config', '--user', 'bob', '--data-dir', dataDir()], { env: { PORTCULLIS_ADMIN_PASSWORD: 'chosen-by-automation' } }),
      runCli(['admin', 'reset-password', '--data-dir', dataDir(), '--user', 'nobody']),
      runCli(['admin', 'reset-password', '--data-dir', elsewhere]),
    ]);
    expect(unconfigured.code).toBe(2);
    expect(unconfigured.stderr).toContain('--from-config: no admin password is configured');
    expect(otherUser.code).toBe(2);
    expect(otherUser.stderr).toContain('--from-config sets the admin\'s configured password, not "bob"\'s');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('NOT_FOUND: user "nobody" does not exist');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`no registry database at ${join(elsewhere, 'portcullis.db')}`);
    expect(existsSync(elsewhere)).toBe(false);
  });
});

describe('the key pair of `portcullis registry` without --tls-cert and --tls-key', () => {
  it('is the one in the certificates directory of the data directory (portcullis certs init)', async () => {
    const dataDir = join(work.path, 'with-certs');
    mkdirSync(join(dataDir, 'certs'), { recursive: true });
    writeFileSync(join(dataDir, 'certs', 'tls.crt'), tls.serving.cert);
    writeFileSync(join(dataDir, 'certs', 'tls.key'), tls.serving.key);
    const registry = await startRegistryChild({ dataDir, env: { PORTCULLIS_ADMIN_PASSWORD: 'chosen-by-automation' } });
    running.push(registry);
    expect(registry.url).toMatch(/^https:\/\//);
    expect(await v2Status(registry, 'admin', 'chosen-by-automation')).toBe(200);
    await stop(registry);
  });

  it('is none when there is no such pair: plain HTTP, with a warning', async () => {
    const registry = await startRegistryChild({ dataDir: join(work.path, 'without-certs'), env: { PORTCULLIS_ADMIN_PASSWORD: 'chosen-by-automation' } });
    running.push(registry);
    expect(registry.url).toMatch(/^http:\/\//);
    expect(registry.stderr()).toContain('no TLS key pair: serving plain HTTP');
    const response = await fetch(`${registry.url}/v2/`);
    expect(response.status).toBe(401);
    await response.arrayBuffer();
    await stop(registry);
  });
});
