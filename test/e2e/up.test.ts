import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnv, repoRoot, runCli } from '../helpers/cli.js';
import { startRegistryChild } from '../helpers/registry-child.js';
import { filesUnder, tempDir } from '../helpers/tmp.js';
import { trustingAgent } from '../helpers/tls.js';

/**
 * `portcullis up` as a user runs it: a real child process on ephemeral ports with a fresh data
 * directory; the test waits for the banner, talks TLS to every endpoint, then presses Ctrl-C.
 */
const entry = join(repoRoot, 'src/cli/main.ts');

interface Started {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
}

function startUp(dataDir: string, extraEnv: Record<string, string> = {}): Promise<Started> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', entry, 'up', '--data-dir', dataDir, '--webhook-listen', '127.0.0.1:0', '--registry-listen', '127.0.0.1:0', '--scanner-listen', '127.0.0.1:0'],
    // An empty PATH entry for Trivy keeps the "not ready" path deterministic on machines that have it.
    // No PORTCULLIS_* from the test's own environment (the first start generates the password).
    { cwd: repoRoot, env: childEnv({ KUBECONFIG: '', PORTCULLIS_SCANNER_TRIVY_PATH: '/nonexistent/trivy', ...extraEnv }) },
  );
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('Press Ctrl-C')) resolve({ child, stdout: () => stdout, stderr: () => stderr });
    });
    child.once('exit', (code) => reject(new Error(`up exited with ${code} before the banner:\n${stdout}\n${stderr}`)));
  });
}

function urlOf(banner: string, role: string): string {
  const match = new RegExp(`^  ${role}\\s+(https?://\\S+)`, 'm').exec(banner);
  if (!match?.[1]) throw new Error(`no ${role} URL in the banner:\n${banner}`);
  return match[1];
}

describe('portcullis up: usage', () => {
  it.each([
    ['an unknown role', ['--role', 'gateway'], '--role must be one of webhook, registry, scanner, got gateway'],
    ['a listen address without a port', ['--webhook-listen', 'localhost'], 'config /webhook/listen: must match pattern'],
  ])('refuses %s with exit code 2 and says why', async (_name, args, message) => {
    const result = await runCli(['up', ...args], { env: { PORTCULLIS_DATA_DIR: join(tmpdir(), 'portcullis-up-usage-never-created') } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });
});

describe('portcullis up', () => {
  const data = tempDir();
  let started: Started;
  const t0 = Date.now();
  let startupMs = 0;
  /** The admin password the first banner printed. */
  let password = '';

  beforeAll(async () => {
    started = await startUp(data.path);
    startupMs = Date.now() - t0;
  });
  afterAll(() => {
    if (started.child.exitCode === null) started.child.kill('SIGKILL');
    data.remove();
  });

  it('comes up well within a minute and prints every URL, the CA and the password once', () => {
    expect(startupMs).toBeLessThan(60_000);
    const banner = started.stdout();
    for (const role of ['webhook', 'registry', 'scanner']) expect(urlOf(banner, role)).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(banner).toContain(join(data.path, 'certs/ca.crt'));
    password = /^ {2}admin +user "admin", password (\S+)$/m.exec(banner)?.[1] ?? '';
    expect(password).toMatch(/^[A-Za-z0-9_-]{24,}$/);
    expect(banner.split(password)).toHaveLength(2);
    expect(banner).toContain('shown this once and stored only as a hash');
    expect(banner).toContain('webhooks render --ca');
  });

  it('stores the generated password nowhere in plain text', () => {
    expect(existsSync(join(data.path, 'admin-password'))).toBe(false);
    const holding = filesUnder(data.path).filter((file) => readFileSync(file).includes(password));
    expect(holding).toEqual([]);
  });

  it('shows the scanner as not ready with the reason when Trivy is absent', () => {
    expect(started.stdout()).toMatch(/not ready \(.*trivy.*\/nonexistent\/trivy/);
  });

  it('serves /healthz on every endpoint over TLS signed by the printed CA', async () => {
    const ca = readFileSync(join(data.path, 'certs/ca.crt'), 'utf8');
    const dispatcher = trustingAgent(ca);
    try {
      for (const role of ['webhook', 'registry', 'scanner']) {
        const response = await fetch(`${urlOf(started.stdout(), role)}/healthz`, { dispatcher });
        expect(response.status, role).toBe(200);
        expect(await response.json()).toEqual({ status: 'ok' });
      }
    } finally {
      await dispatcher.close();
    }
  });

  it('serves each role: admission reviews, the OCI registry with its token challenge, the scanner adapter', async () => {
    const ca = readFileSync(join(data.path, 'certs/ca.crt'), 'utf8');
    const dispatcher = trustingAgent(ca);
    const banner = started.stdout();
    try {
      const review = await fetch(`${urlOf(banner, 'webhook')}/validate?timeout=10s`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        dispatcher,
        body: JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: {
            uid: 'up-test-1',
            kind: { group: '', version: 'v1', kind: 'Pod' },
            resource: { group: '', version: 'v1', resource: 'pods' },
            name: 'web',
            namespace: 'team-a',
            operation: 'CREATE',
            userInfo: { username: 'alice' },
            object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'team-a' }, spec: { containers: [{ name: 'app', image: 'docker.io/library/nginx:1.27' }] } },
            dryRun: true,
          },
        }),
      });
      expect(review.status).toBe(200);
      expect(await review.json()).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'up-test-1' } });

      const registry = await fetch(`${urlOf(banner, 'registry')}/v2/`, { dispatcher });
      expect(registry.status).toBe(401);
      expect(registry.headers.get('www-authenticate')).toMatch(/^Bearer realm="https:\/\/127\.0\.0\.1:\d+\/service\/token"/);
      await registry.arrayBuffer();
      // The password the banner printed is the registry admin's.
      const signedIn = await fetch(`${urlOf(banner, 'registry')}/v2/`, { dispatcher, headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } });
      expect(signedIn.status).toBe(200);
      await signedIn.arrayBuffer();

      const scanner = await fetch(`${urlOf(banner, 'scanner')}/api/v1/metadata`, { dispatcher });
      expect(scanner.status).toBe(200);
      expect(await scanner.json()).toMatchObject({ scanner: { name: expect.any(String) } });
    } finally {
      await dispatcher.close();
    }
  });

  it('exits 0 on Ctrl-C (SIGINT) after closing everything', async () => {
    const exited = once(started.child, 'exit');
    started.child.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    expect(code, started.stderr()).toBe(0);
    expect(started.stderr()).toContain('"msg":"stopped"');
  });

  it('keeps the certificates and password on the next start and does not print the password again', async () => {
    const again = await startUp(data.path);
    try {
      expect(again.stdout()).not.toContain(password);
      expect(again.stdout()).toContain('password as set on the first start (stored only as a hash; lost: portcullis admin reset-password)');
    } finally {
      const exited = once(again.child, 'exit');
      again.child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
    }
  });
});

describe('portcullis up: a start that fails after the admin was created', () => {
  it('still shows the generated password, which signs in on the next start', async () => {
    const data = tempDir();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const address = taken.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      // The registry starts (and creates its admin) before the webhook finds its port taken.
      const failed = await runCli(['up', '--data-dir', data.path, '--webhook-listen', `127.0.0.1:${port}`, '--registry-listen', '127.0.0.1:0', '--scanner-listen', '127.0.0.1:0'], {
        env: { KUBECONFIG: '', PORTCULLIS_SCANNER_TRIVY_PATH: '/nonexistent/trivy' },
      });
      expect(failed.code).toBe(2);
      const password = /^admin password \(shown once; the start failed after the admin was created\): (\S+)$/m.exec(failed.stdout)?.[1] ?? '';
      expect(password, failed.stdout + failed.stderr).toMatch(/^\S{24,}$/);
      const registry = await startRegistryChild({ dataDir: data.path });
      const dispatcher = trustingAgent(readFileSync(join(data.path, 'certs/ca.crt'), 'utf8'));
      try {
        const response = await fetch(`${registry.url}/v2/`, { dispatcher, headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } });
        expect(response.status).toBe(200);
        await response.arrayBuffer();
      } finally {
        const exited = once(registry.child, 'exit');
        registry.child.kill('SIGTERM');
        await exited;
        await dispatcher.close();
      }
    } finally {
      taken.close();
      data.remove();
    }
  });
});
