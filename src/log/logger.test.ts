import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'info' }, stream) };
}

describe('logger redaction', () => {
  it.each([
    ['an authorization header', { req: { headers: { authorization: 'Basic c2VjcmV0' } } }],
    ['a password', { password: 'hunter2-secret' }],
    ['a nested token', { robot: { token: 'tok-secret' } }],
    ['a private key two levels down', { certs: { serving: { privateKey: '-----BEGIN KEY----- secret' } } }],
    ['Trivy credentials in a child environment', { env: { TRIVY_PASSWORD: 'robot-secret' } }],
    ['the admin password in the config', { registry: { adminPassword: 'admin-secret' } }],
  ])('censors %s', (_name, fields) => {
    const { lines, logger } = capture();
    logger.info(fields, 'something happened');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/secret|c2VjcmV0|hunter2/);
    expect(lines[0]).toContain('[redacted]');
  });
});
