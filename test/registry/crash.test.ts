import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fetch, type RequestInit } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistryChild, type RegistryChild } from '../helpers/registry-child.js';
import { tempDir } from '../helpers/tmp.js';
import { testTls, trustingAgent } from '../helpers/tls.js';
import { sha256 } from './oci-client.js';

/**
 * Kill -9 during a chunked upload: the registry runs as its own process (the real CLI), is killed
 * while a chunk streams in, and is started again on the same data directory.
 */
const PASSWORD = 'crash-test-password-1';
const auth = { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` };

let work: { path: string; remove(): void };
const children: ChildProcess[] = [];
const tls = testTls();
const dispatcher = trustingAgent(tls.ca.cert);

type Running = RegistryChild;

function startRegistry(): Promise<Running> {
  return startRegistryChild({
    dataDir: join(work.path, 'data'),
    tlsCert: join(work.path, 'tls.crt'),
    tlsKey: join(work.path, 'tls.key'),
    env: { PORTCULLIS_ADMIN_PASSWORD: PASSWORD },
  }).then((running) => {
    children.push(running.child);
    return running;
  });
}

function call(running: Running, path: string, init: RequestInit = {}) {
  return fetch(`${running.url}${path}`, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) }, dispatcher });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Resolves once `check` holds, re-checking on every chunk the server acknowledges (a TCP drain), never by sleeping a fixed time. */
async function until(check: () => boolean, next: () => Promise<void>): Promise<void> {
  for (let attempt = 0; attempt < 10_000 && !check(); attempt += 1) await next();
  if (!check()) throw new Error('condition never held');
}

beforeAll(() => {
  work = tempDir('portcullis-crash-');
  writeFileSync(join(work.path, 'tls.crt'), tls.serving.cert);
  writeFileSync(join(work.path, 'tls.key'), tls.serving.key);
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) await killed(child);
  await dispatcher.close();
  work.remove();
});

describe('a registry killed with SIGKILL during a chunked upload', () => {
  it('shows no partial blob after restart, stays consistent, and lets the upload be redone', async () => {
    const first = await startRegistry();
    const created = await call(first, '/api/v2.0/projects', { method: 'POST', body: JSON.stringify({ project_name: 'library', metadata: { public: 'false' } }), headers: { 'content-type': 'application/json' } });
    expect(created.status, await created.text()).toBe(201);

    // Something committed before the crash must survive it.
    const before = Buffer.from('committed before the crash');
    const committed = await call(first, `/v2/library/app/blobs/uploads/?digest=${sha256(before)}`, { method: 'POST', body: before, headers: { 'content-type': 'application/octet-stream' } });
    expect(committed.status).toBe(201);

    const content = randomBytes(4 * 1024 * 1024);
    const digest = sha256(content);
    const started = await call(first, '/v2/library/app/blobs/uploads/', { method: 'POST' });
    const location = started.headers.get('location') ?? '';
    const uploadId = location.split('/').pop() ?? '';
    const half = 2 * 1024 * 1024;
    const chunk = await call(first, location, { method: 'PATCH', body: content.subarray(0, half), headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${half - 1}` } });
    expect(chunk.status).toBe(202);

    // The second chunk streams in slowly; the process dies while it is being written.
    const uploadFile = join(work.path, 'data', 'registry', 'uploads', uploadId, 'data');
    const streaming = httpsRequest({
      host: '127.0.0.1',
      port: first.port,
      method: 'PATCH',
      path: location,
      ca: tls.ca.cert,
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': `${half}-${content.length - 1}`, 'content-length': content.length - half },
    });
    streaming.on('error', () => undefined);
    let sent = half;
    const piece = 64 * 1024;
    await until(
      () => existsSync(uploadFile) && statSync(uploadFile).size > half,
      () =>
        new Promise<void>((resolve) => {
          if (sent + piece < content.length) {
            streaming.write(content.subarray(sent, sent + piece), () => resolve());
            sent += piece;
          } else resolve();
        }),
    );
    await killed(first.child);
    streaming.destroy();

    const second = await startRegistry();
    // No visible partial blob: neither the digest nor the content path exists.
    expect((await call(second, `/v2/library/app/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    expect(existsSync(join(work.path, 'data', 'registry', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7)))).toBe(false);
    // What was committed before is intact.
    const intact = await call(second, `/v2/library/app/blobs/${sha256(before)}`);
    expect(Buffer.from(await intact.arrayBuffer())).toEqual(before);

    // The interrupted upload reports how far it got, and can be finished from there.
    const status = await call(second, location);
    expect(status.status).toBe(204);
    const range = /^0-(\d+)$/.exec(status.headers.get('range') ?? '');
    const offset = Number(range?.[1]) + 1;
    expect(offset).toBeGreaterThan(half);
    const rest = content.subarray(offset);
    const finished = await call(second, `${location}?digest=${digest}`, { method: 'PUT', body: rest, headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${content.length - 1}` } });
    expect(finished.status, await finished.text()).toBe(201);
    const pulled = Buffer.from(await (await call(second, `/v2/library/app/blobs/${digest}`)).arrayBuffer());
    expect(sha256(pulled)).toBe(digest);

    // And it can also be redone from scratch in a new session.
    const again = await call(second, `/v2/library/redo/blobs/uploads/?digest=${digest}`, { method: 'POST', body: content, headers: { 'content-type': 'application/octet-stream' } });
    expect(again.status).toBe(201);
    await killed(second.child);
  }, 60_000);
});
