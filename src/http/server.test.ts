import { afterEach, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { DEFAULT_CIPHERS, connect } from 'node:tls';
import { Agent, fetch } from 'undici';
import { createLogger, silentLogger } from '../log/logger.js';
import { PortcullisError } from '../errors.js';
import { testTls, trustingAgent } from '../../test/helpers/tls.js';
import { createMetricsRegistry } from './metrics.js';
import { Readiness } from './readiness.js';
import { CIPHER_PREFERENCE, buildServer, closeConnectionsWhen, listen, setTls, type HttpServer } from './server.js';

const servers: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(readiness = new Readiness()) {
  const tls = testTls();
  const app = buildServer({ logger: silentLogger(), tls: tls.serving, bodyLimit: 1024, readiness, metrics: createMetricsRegistry() });
  app.post('/echo', async (request) => ({ got: request.body }));
  app.get('/boom', async () => {
    throw new PortcullisError('FORBIDDEN', 'not for you');
  });
  servers.push(app);
  const { port } = await listen(app, '127.0.0.1', 0);
  const dispatcher = trustingAgent(tls.ca.cert);
  return (path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) =>
    fetch(`https://127.0.0.1:${port}${path}`, { ...init, dispatcher });
}

describe('buildServer over real TLS', () => {
  it('serves health, readiness with reasons, and Prometheus metrics', async () => {
    const readiness = new Readiness();
    readiness.register('policies', () => ({ ok: false, reason: 'no valid policy set loaded' }));
    const call = await start(readiness);
    expect((await call('/healthz')).status).toBe(200);
    const ready = await call('/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false, checks: { policies: { ok: false, reason: 'no valid policy set loaded' } } });
    const metrics = await call('/metrics');
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(await metrics.text()).toContain('portcullis_process_');
  });

  it.each([
    ['malformed JSON', { body: '{"a":', headers: { 'content-type': 'application/json' } }, 400, 'REQUEST_MALFORMED'],
    ['a body over the limit', { body: JSON.stringify({ a: 'x'.repeat(2048) }), headers: { 'content-type': 'application/json' } }, 413, 'REQUEST_TOO_LARGE'],
    ['an unsupported content type', { body: '<a/>', headers: { 'content-type': 'application/xml' } }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a key that could poison prototypes', { body: '{"a":{"__proto__":{"admin":true}}}', headers: { 'content-type': 'application/json' } }, 400, 'REQUEST_MALFORMED'],
  ])('answers %s with a JSON error', async (_name, init, status, code) => {
    const call = await start();
    const response = await call('/echo', { method: 'POST', ...init });
    expect(response.status).toBe(status);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message.length).toBeGreaterThan(0);
    // The server keeps serving after a rejected request.
    expect((await call('/echo', { method: 'POST', body: '{"ok":1}', headers: { 'content-type': 'application/json' } })).status).toBe(200);
  });

  it('turns a PortcullisError into its status and code, and unknown routes into 404', async () => {
    const call = await start();
    const boom = await call('/boom');
    expect(boom.status).toBe(403);
    expect(await boom.json()).toEqual({ error: { code: 'FORBIDDEN', message: 'not for you' } });
    const missing = await call('/nowhere?x=1');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no route for GET /nowhere' } });
  });
});

describe('the client address', () => {
  it.each([
    ['no trusted proxy: the peer, whatever X-Forwarded-For says', undefined, '127.0.0.1'],
    ['a trusted proxy: the client X-Forwarded-For names', ['127.0.0.1'], '198.51.100.7'],
    ['a proxy that is not the trusted one: the peer', ['10.0.0.0/8'], '127.0.0.1'],
  ])('is, with %s', async (_case, trustedProxies, expected) => {
    const app = buildServer({ logger: silentLogger(), ...(trustedProxies ? { trustedProxies } : {}) });
    app.get('/ip', async (request) => ({ ip: request.ip }));
    servers.push(app);
    const { port } = await listen(app, '127.0.0.1', 0);
    const response = await fetch(`http://127.0.0.1:${port}/ip`, { headers: { 'x-forwarded-for': '198.51.100.7' } });
    expect(await response.json()).toEqual({ ip: expected });
  });
});

describe('TLS suites', () => {
  /** The TLS 1.3 suite a Node client (OpenSSL's default order: AES-256 first) negotiates, or only `ciphers`. */
  function negotiated(port: number, ca: string | Buffer, ciphers?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...(ciphers ? { ciphers } : {}) }, () => {
        const suite = socket.getCipher().standardName;
        socket.end();
        resolve(suite);
      });
      socket.on('error', reject);
    });
  }

  it('reorders only the TLS 1.3 suites: the TLS 1.2 list and its order are Node\'s own', () => {
    const tls12 = (list: string) => list.split(':').filter((suite) => !suite.startsWith('TLS_'));
    expect(tls12(CIPHER_PREFERENCE.ciphers)).toEqual(tls12(DEFAULT_CIPHERS));
    expect(CIPHER_PREFERENCE.ciphers.split(':').filter((suite) => suite.startsWith('TLS_'))).toEqual(['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']);
  });

  it('prefers AES-128-GCM, as Go clients do, also after the key pair is swapped, and still serves clients that only offer AES-256', async () => {
    const tls = testTls();
    const app = buildServer({ logger: silentLogger(), tls: tls.serving });
    servers.push(app);
    const { port } = await listen(app, '127.0.0.1', 0);
    expect(await negotiated(port, tls.ca.cert)).toBe('TLS_AES_128_GCM_SHA256');
    expect(await negotiated(port, tls.ca.cert, 'TLS_AES_256_GCM_SHA384')).toBe('TLS_AES_256_GCM_SHA384');
    const next = testTls();
    setTls(app, next.serving);
    expect(await negotiated(port, next.ca.cert)).toBe('TLS_AES_128_GCM_SHA256');
  });
});

describe('closing connections while stopping', () => {
  /** A server with a route held until released, a streamed route, and a plain one; `stopping` is the test's to set. */
  async function stoppable(tls?: ReturnType<typeof testTls>) {
    const app = buildServer({ logger: silentLogger(), ...(tls ? { tls: tls.serving } : {}) });
    const state = { stopping: false };
    let entered: () => void = () => undefined;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    app.get('/now', async () => ({ ok: true }));
    // A stream body: the headers go out through Node's implicit writeHead, not fastify's.
    app.get('/stream', async (_request, reply) => reply.type('text/plain').send(Readable.from(['a', 'b'])));
    app.get('/slow', async () => {
      entered();
      await held;
      return { ok: true };
    });
    closeConnectionsWhen(app, () => state.stopping);
    servers.push(app);
    const { port } = await listen(app, '127.0.0.1', 0);
    const dispatcher = tls ? trustingAgent(tls.ca.cert) : new Agent();
    const call = (path: string) => fetch(`${tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`, { dispatcher });
    return { app, state, inside, release, call };
  }

  it.each([
    ['over TLS', true],
    ['over plain HTTP', false],
  ])('%s: keeps connections alive until stopping begins, then every answer closes its connection, in-flight and streamed ones too', async (_name, secure) => {
    const { state, inside, release, call } = await stoppable(secure ? testTls() : undefined);
    for (const path of ['/now', '/stream']) {
      const before = await call(path);
      await before.arrayBuffer();
      expect(before.headers.get('connection')).toBe('keep-alive');
    }
    const inFlight = call('/slow');
    await inside;
    state.stopping = true;
    release();
    const slow = await inFlight;
    await slow.arrayBuffer();
    expect(slow.status).toBe(200);
    expect(slow.headers.get('connection')).toBe('close');
    for (const path of ['/now', '/stream']) {
      const after = await call(path);
      expect(await after.text()).toBe(path === '/now' ? '{"ok":true}' : 'ab');
      expect(after.headers.get('connection')).toBe('close');
    }
  });

  it('refuses a server it did not make', () => {
    expect(() => closeConnectionsWhen({} as HttpServer, () => true)).toThrow(/buildServer/);
  });
});

describe('request logging', () => {
  async function logged(level: 'info' | 'debug', headers: Record<string, string> = {}) {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const tls = testTls();
    const app = buildServer({ logger, tls: tls.serving });
    app.get('/quiet', async () => ({ ok: true }));
    app.get('/noisy', async (request) => {
      request.log.info({ step: 'one', password: 'Hunter2', headers: { authorization: 'Bearer abc.def' } }, 'handler says hello');
      request.log.debug('handler detail');
      return { ok: true };
    });
    servers.push(app);
    const { port } = await listen(app, '127.0.0.1', 0);
    const dispatcher = trustingAgent(tls.ca.cert);
    lines.length = 0; // the listen line
    for (const path of ['/quiet', '/noisy']) expect((await fetch(`https://127.0.0.1:${port}${path}`, { headers, dispatcher })).status).toBe(200);
    return lines;
  }

  it('binds the request id to what a handler logs, and honours X-Request-Id', async () => {
    const lines = await logged('info', { 'x-request-id': 'trace-42' });
    expect(lines.map((line) => line.msg)).toEqual(['handler says hello']);
    expect(lines[0]).toMatchObject({ reqId: 'trace-42', step: 'one', level: 'info' });
    // The root logger's redaction applies to what request loggers write.
    expect(lines[0]).toMatchObject({ password: '[redacted]', headers: { authorization: '[redacted]' } });
    expect(JSON.stringify(lines)).not.toMatch(/Hunter2|abc\.def/);
  });

  it('gives each request its own id when the client sends none', async () => {
    const lines = await logged('info');
    expect(lines[0]?.reqId).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
  });

  it('logs handler details and one completion line per request at debug level', async () => {
    const lines = await logged('debug');
    const completed = lines.filter((line) => line.msg === 'request completed');
    expect(completed.map((line) => line.url)).toEqual(['/quiet', '/noisy']);
    expect(new Set(completed.map((line) => line.reqId)).size).toBe(2);
    expect(lines.find((line) => line.msg === 'handler detail')?.reqId).toBe(completed[1]?.reqId);
  });
});
